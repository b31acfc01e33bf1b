"""acks=0 gets no response yet takes the same path as acks=1/all: the records are written and committed.
acks=1 and acks=all both answer only after the commit. An acks value Kafka does not know is refused."""

import time

import pytest

import clients
import kafka_wire as kw

INVALID_REQUIRED_ACKS = 21


def batch(values: list[bytes], ts: int) -> bytes:
    return kw.record_batch([(None, v, [], ts) for v in values], ts)


def test_acks_0_is_not_answered_but_is_committed(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 1)
    ts = int(time.time() * 1000)
    with kw.Conn(shared_broker.bootstrap) as c:
        # Pipelined on one connection: produce acks=0, then ApiVersions. Answers come in request
        # order, so the first frame back must be the ApiVersions answer: acks=0 has none.
        c.send(kw.produce_request(topic, 0, batch([b"a0", b"a1"], ts), correlation_id=7, acks=0))
        corr, error_code, _ = kw.parse_api_versions_v0(c.roundtrip(kw.api_versions_request(0, 8)))
        assert (corr, error_code) == (8, 0), "acks=0 produce must not be answered"
        # acks=1 on the same connection lands after it, and is answered after its commit.
        payload = c.roundtrip(kw.produce_request(topic, 0, batch([b"b0"], ts), correlation_id=9, acks=1))
    corr, parts = kw.parse_produce_response(payload, 3)
    assert (corr, parts[(topic, 0)]) == (9, (0, 2)), "acks=1 batch follows the two acks=0 records"

    got = clients.read_partitions(shared_broker.bootstrap, topic, {0: 3})[0]
    assert [m.value() for m in got] == [b"a0", b"a1", b"b0"]


@pytest.mark.parametrize("acks", [2, -2, 5])
def test_unknown_acks_is_invalid_required_acks(shared_broker, topic, acks):
    clients.create_topic(shared_broker.bootstrap, topic, 1)
    with kw.Conn(shared_broker.bootstrap) as c:
        payload = c.roundtrip(
            kw.produce_request(topic, 0, batch([b"x"], int(time.time() * 1000)), correlation_id=3, acks=acks)
        )
    corr, parts = kw.parse_produce_response(payload, 3)
    assert (corr, parts[(topic, 0)][0]) == (3, INVALID_REQUIRED_ACKS)
    assert clients.watermarks(shared_broker.bootstrap, topic, 0) == (0, 0), "nothing of it was written"
