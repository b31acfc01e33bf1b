"""Several broker ids per agent for librdkafka (agent/src/brokers.rs).

librdkafka sends one ProduceRequest per partition and, when idempotent, keeps at most 5 in flight
per broker connection. Each agent therefore gives librdkafka-based clients several broker ids at its
one address, with the partitions' leadership spread over them, so that an idempotent producer's
requests for every partition reach the same flush window. Clients that put all of a broker's
partitions in one request (Java, kafka-python, KafkaJS) keep one id per agent.

- On the wire: Metadata after an ApiVersions naming librdkafka 2.10 or later lists 32 ids at the
  agent's address; without it, or for an older librdkafka, one. One Produce request holding 16 partitions (the Java client's shape) is still
  acknowledged from one window, one PUT.
- Idempotent confluent-kafka producers over 16 and over 100 partitions: every record acknowledged,
  exactly once, in order; the leaders are distinct slot ids; one round over every partition is one
  flush window (with one id per agent it takes a window per 5 partitions)."""

from __future__ import annotations

import struct
import time

import pytest

import clients
import kafka_wire as kw

FLUSH_INTERVAL_MS = 2000  # long enough for a round over every partition to arrive in one window
FLUSH_BYTES = 64 << 20  # so only the timer closes a window


def api_versions_as(name: str, version: str, correlation_id: int) -> bytes:
    body = kw.compact_string(name) + kw.compact_string(version) + kw.uvarint(0)
    return kw.frame(kw.header_v2(kw.API_VERSIONS, 3, correlation_id) + body)


def metadata_brokers(c: kw.Conn, correlation_id: int) -> list[tuple[int, str, int]]:
    request = kw.frame(kw.header_v1(kw.API_METADATA, 1, correlation_id) + struct.pack(">i", 0))
    corr, brokers = kw.metadata_v1_brokers(c.roundtrip(request))
    assert corr == correlation_id
    return brokers


def test_librdkafka_is_given_the_agents_slots_and_others_one_id(shared_broker):
    address = ("127.0.0.1", shared_broker.port)
    with kw.Conn(shared_broker.bootstrap) as c:
        assert metadata_brokers(c, 1) == [(0, *address)], "no ApiVersions: one id"
    with kw.Conn(shared_broker.bootstrap) as c:
        c.roundtrip(api_versions_as("apache-kafka-java", "3.9.0", 1))
        assert metadata_brokers(c, 2) == [(0, *address)]
    # Before 2.10 librdkafka matched brokers by address, so several ids at one would confuse it.
    with kw.Conn(shared_broker.bootstrap) as c:
        c.roundtrip(api_versions_as("librdkafka", "2.0.2", 1))
        assert metadata_brokers(c, 2) == [(0, *address)]
    for name, version in [("librdkafka", "2.16.0"), ("confluent-kafka-python", "2.12.0-rdkafka-2.16.0")]:
        with kw.Conn(shared_broker.bootstrap) as c:
            c.roundtrip(api_versions_as(name, version, 1))
            brokers = metadata_brokers(c, 2)
            assert sorted(brokers) == [(s * clients.SLOT_STRIDE, *address) for s in range(32)], name


@pytest.mark.timeout(120)
def test_one_request_holding_every_partition_is_one_window(broker_factory, topic):
    """The Java client's shape: all of a broker's partitions in one Produce request."""
    broker = broker_factory.start("--flush-interval-ms", str(FLUSH_INTERVAL_MS), "--flush-bytes", str(FLUSH_BYTES))
    clients.create_topic(broker.bootstrap, topic, 16)
    with kw.Conn(broker.bootstrap) as c:
        puts = broker.metric("skiff_object_store_requests_total", op="put")
        now = int(time.time() * 1000)
        data = [(topic, [(p, kw.record_batch([(None, b"p%d" % p, [], now)], now)) for p in range(16)])]
        _, answers = kw.parse_produce_response_v8(c.roundtrip(kw.produce_request_v8(data, 7)))
    assert sorted(answers) == [(topic, p) for p in range(16)]
    assert all(a["error_code"] == 0 and a["base_offset"] == 0 for a in answers.values()), answers
    assert broker.metric("skiff_object_store_requests_total", op="put") - puts == 1


def idempotent_rounds(broker, topic: str, partitions: int, rounds: int) -> list[float]:
    """Produces `rounds` rounds of one record per partition with an idempotent producer, each
    round flushed before the next; answers the flush windows each round took."""
    p = clients.producer(broker.bootstrap, **{"enable.idempotence": True, "linger.ms": 5})
    windows = []
    for r in range(rounds):
        before = broker.metric("skiff_flushes_total")
        d = clients.Deliveries()
        for part in range(partitions):
            clients.produce(p, topic, d, (r, part), value=b"%d/%d" % (r, part), partition=part)
        clients.flush(p, d, partitions)
        assert not d.failed, d.failed[:3]
        windows.append(broker.metric("skiff_flushes_total") - before)
    return windows


@pytest.mark.timeout(300)
@pytest.mark.parametrize("partitions", [16, 100])
def test_an_idempotent_producer_writes_every_partition_in_one_window(broker_factory, topic, partitions):
    broker = broker_factory.start("--flush-interval-ms", str(FLUSH_INTERVAL_MS), "--flush-bytes", str(FLUSH_BYTES))
    clients.create_topic(broker.bootstrap, topic, partitions)
    md = clients.AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic, timeout=30)
    leaders = [md.topics[topic].partitions[p].leader for p in range(partitions)]
    assert {clients.agent_of(lead) for lead in leaders} == {0}
    # Consecutive partitions take consecutive slots: each slot leads at most ceil(partitions / 32).
    per_slot = max(leaders.count(lead) for lead in leaders)
    assert per_slot == -(-partitions // 32), leaders

    # The first round also opens the connections; the later ones each fit one window.
    windows = idempotent_rounds(broker, topic, partitions, 4)
    assert windows[1:] == [1, 1, 1], windows

    # Every record once, in order.
    got = clients.read_partitions(broker.bootstrap, topic, {p: 4 for p in range(partitions)}, timeout=120)
    for part in range(partitions):
        assert [m.value() for m in got[part]] == [b"%d/%d" % (r, part) for r in range(4)], part


@pytest.mark.timeout(300)
def test_with_one_id_per_agent_an_idempotent_producer_takes_a_window_per_five_partitions(broker_factory, topic):
    """What the slots are for: --broker-ids 1 gives librdkafka one connection, 5 requests at once."""
    broker = broker_factory.start(
        "--flush-interval-ms", str(FLUSH_INTERVAL_MS), "--flush-bytes", str(FLUSH_BYTES), "--broker-ids", "1"
    )
    clients.create_topic(broker.bootstrap, topic, 16)
    windows = idempotent_rounds(broker, topic, 16, 2)
    assert windows[1] >= 4, windows
