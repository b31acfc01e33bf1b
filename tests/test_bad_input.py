"""Hostile and broken input over raw TCP. Kafka's behaviour is the spec: a frame the broker cannot
parse, an oversized length prefix, an unknown API or an unsupported version closes the connection;
ApiVersions with an unsupported version answers UNSUPPORTED_VERSION (35) in the v0 shape; a batch with
a bad CRC is CORRUPT_MESSAGE (2); a batch over max.message.bytes is MESSAGE_TOO_LARGE (10).

After each case the broker must still serve a normal client, and the records it acknowledged before
(the "canary" topic) must still be there. All tests share one broker, so the junk accumulates."""

import random
import struct
import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError

import clients
import kafka_wire as kw

CANARY = "bad-input-canary"
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35
MAX_MESSAGE_BYTES = 1048588  # the broker's default


@pytest.fixture
def broker(shared_broker):
    """The shared broker, with canary records written once and checked after every test."""
    if not hasattr(shared_broker, "canary"):
        clients.create_topic(shared_broker.bootstrap, CANARY, 1)
        shared_broker.canary = []
        _produce_canary(shared_broker, 20)
    yield shared_broker


def _produce_canary(broker, n: int) -> None:
    p = clients.producer(broker.bootstrap)
    d = clients.Deliveries()
    start = len(broker.canary)
    for i in range(start, start + n):
        clients.produce(p, CANARY, d, i, value=b"canary %d" % i, partition=0)
    clients.flush(p, d, n)
    assert not d.failed, d.failed
    assert sorted(d.ok[0]) == [(start + k, start + k) for k in range(n)], "canary offsets"
    broker.canary.extend(b"canary %d" % i for i in range(start, start + n))


def assert_still_serving(broker) -> None:
    broker.check_alive()
    with kw.Conn(broker.bootstrap) as c:
        corr, err, apis = kw.parse_api_versions_v0(c.roundtrip(kw.api_versions_request(0, 7)))
        assert (corr, err) == (7, 0) and kw.API_PRODUCE in apis
    got = clients.read_partitions(broker.bootstrap, CANARY, {0: len(broker.canary)}, timeout=60)
    assert [m.value() for m in got[0]] == broker.canary, "acknowledged canary records changed"
    _produce_canary(broker, 1)


def records(n: int, ts: int):
    return [
        (b"key-%d" % i, b"value-%d" % i, [("h", b"%d" % i), ("dup", b"x"), ("dup", None)], ts + i)
        for i in range(n)
    ]


def produce_raw(broker, topic: str, batch: bytes, version: int = 3, partition: int = 0) -> tuple[int, int]:
    with kw.Conn(broker.bootstrap) as c:
        payload = c.roundtrip(kw.produce_request(topic, partition, batch, correlation_id=42, version=version))
    corr, parts = kw.parse_produce_response(payload, version)
    assert corr == 42
    assert list(parts) == [(topic, partition)], parts
    return parts[(topic, partition)]


def expect_closed(broker, data: bytes) -> None:
    with kw.Conn(broker.bootstrap) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # closed while we were still writing: that's a close too
        c.wait_closed(timeout=15)


# --- the harness speaks the protocol correctly -----------------------------------------------------
def test_raw_api_versions_v0(broker):
    with kw.Conn(broker.bootstrap) as c:
        corr, err, apis = kw.parse_api_versions_v0(c.roundtrip(kw.api_versions_request(0, 1)))
    assert (corr, err) == (1, 0)
    lo, hi = apis[kw.API_VERSIONS]
    assert lo <= 0 and hi >= 3
    lo, hi = apis[kw.API_PRODUCE]
    assert lo <= 3 <= hi
    assert_still_serving(broker)


@pytest.mark.parametrize("version", [3, 7])
def test_raw_produce_is_readable_by_a_normal_client(broker, topic, version):
    clients.create_topic(broker.bootstrap, topic, 1)
    ts = int(time.time() * 1000) - 60_000
    batch = kw.record_batch(records(3, ts), ts)
    assert produce_raw(broker, topic, batch, version) == (0, 0)
    assert produce_raw(broker, topic, kw.record_batch(records(2, ts + 10), ts + 10), version) == (0, 3)

    got = clients.read_partitions(broker.bootstrap, topic, {0: 5})[0]
    expected = records(3, ts) + records(2, ts + 10)
    assert [m.offset() for m in got] == [0, 1, 2, 3, 4]
    for m, (k, v, h, t) in zip(got, expected):
        assert (m.key(), m.value(), m.headers(), m.timestamp()) == (k, v, h, (TIMESTAMP_CREATE_TIME, t))
    assert_still_serving(broker)


# --- framing ---------------------------------------------------------------------------------
_rng = random.Random(7)
GARBAGE = {
    "deadbeef": kw.frame(b"\xde\xad\xbe\xef" * 8),
    "random": kw.frame(b"\xff\xfe" + bytes(_rng.getrandbits(8) for _ in range(200))),
    "short-header": kw.frame(b"\x00\x12"),
    "empty-frame": kw.frame(b""),
    "truncated-client-id": kw.frame(struct.pack(">hhih", 18, 0, 1, 500) + b"abc"),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_frame_closes_connection(broker, name):
    expect_closed(broker, GARBAGE[name])
    assert_still_serving(broker)


@pytest.mark.parametrize("prefix", [0x7FFFFFFF, 0x80000000, 0xFFFFFFFF], ids=["2GiB-1", "2GiB", "minus-1"])
def test_huge_length_prefix_closes_connection(broker, prefix):
    # A few real bytes follow; the broker must neither wait for 2 GiB nor allocate it.
    expect_closed(broker, struct.pack(">I", prefix) + kw.header_v1(kw.API_VERSIONS, 0, 1))
    assert_still_serving(broker)


NON_PRODUCE_MAX = 1024 * 1024  # the broker's default for every request but Produce


def _padded_metadata(size: int, correlation_id: int) -> bytes:
    """A Metadata v1 request for no topics, padded with trailing bytes (which decoding ignores) to a
    frame of `size` bytes."""
    body = kw.header_v1(kw.API_METADATA, 1, correlation_id) + struct.pack(">i", 0)
    return kw.frame(body + b"\x00" * (size - len(body)))


def test_request_other_than_produce_over_1mib_closes_connection(broker):
    # Decoding multiplies a request's size, so only Produce gets the 100 MiB frame limit (see
    # test_raw_batch_over_max_message_bytes for a Produce over 1 MiB).
    with kw.Conn(broker.bootstrap) as c:
        payload = c.roundtrip(_padded_metadata(NON_PRODUCE_MAX, 3))
        assert struct.unpack(">i", payload[:4]) == (3,)
    expect_closed(broker, _padded_metadata(NON_PRODUCE_MAX + 1, 4))
    assert_still_serving(broker)


# A count that the bytes after it cannot hold. kafka-protocol would size a Vec from it before
# reading a single element, so these must be refused before decoding, not by running out of memory.
HUGE_COUNTS = {
    # Metadata v1: topics array (int32 count), nothing after it
    "metadata-topics-2^31": kw.frame(kw.header_v1(kw.API_METADATA, 1, 1) + struct.pack(">i", 0x7FFFFFFF)),
    # Produce v3: transactional id null, acks, timeout, then 2^31 topics
    "produce-topics-2^31": kw.frame(
        kw.header_v1(kw.API_PRODUCE, 3, 1) + struct.pack(">hhii", -1, -1, 30000, 0x7FFFFFFF)
    ),
    # Metadata v9 (flexible): a compact array whose varint count is 2^32 - 1
    "metadata-compact-2^32": kw.frame(
        kw.header_v2(kw.API_METADATA, 9, 1) + kw.uvarint(0xFFFFFFFF) + b"\x00" * 4
    ),
    # Produce v3 with one topic of 2^31 partitions
    "produce-partitions-2^31": kw.frame(
        kw.header_v1(kw.API_PRODUCE, 3, 1)
        + struct.pack(">hhii", -1, -1, 30000, 1)
        + kw.string("t")
        + struct.pack(">i", 0x7FFFFFFF)
    ),
}


@pytest.mark.parametrize("name", list(HUGE_COUNTS))
def test_array_count_larger_than_the_request_closes_connection(broker, name):
    expect_closed(broker, HUGE_COUNTS[name])
    assert_still_serving(broker)


# --- API keys and versions -------------------------------------------------------------------
def test_unknown_api_key_closes_connection(broker):
    expect_closed(broker, kw.frame(kw.header_v1(9999, 0, 1)))
    assert_still_serving(broker)


def test_api_versions_with_unsupported_version_answers_35(broker):
    with kw.Conn(broker.bootstrap) as c:
        payload = c.roundtrip(kw.api_versions_request(99, 5))
        corr, err, apis = kw.parse_api_versions_v0(payload)
        assert corr == 5
        assert err == UNSUPPORTED_VERSION
        # Kafka lists at least ApiVersions itself, so the client can retry with a version it supports.
        assert kw.API_VERSIONS in apis and apis[kw.API_VERSIONS][1] >= 3, apis
        # ... on the same connection, which stays open.
        corr, err, apis = kw.parse_api_versions_v0(c.roundtrip(kw.api_versions_request(0, 6)))
        assert (corr, err) == (6, 0)
    assert_still_serving(broker)


@pytest.mark.parametrize(
    "api_key,version",
    [(kw.API_METADATA, 99), (kw.API_PRODUCE, 99), (1, 99), (kw.API_PRODUCE, 2)],
    ids=["metadata-v99", "produce-v99", "fetch-v99", "produce-v2"],
)
def test_other_api_with_unsupported_version_closes_connection(broker, api_key, version):
    expect_closed(broker, kw.frame(kw.header_v1(api_key, version, 1) + b"\x00" * 32))
    assert_still_serving(broker)


def test_find_coordinator_names_this_agent_for_a_group(broker):
    # Listed in ApiVersions (librdkafka enables lz4 only then); a lone agent coordinates every group.
    with kw.Conn(broker.bootstrap) as c:
        _, _, apis = kw.parse_api_versions_v0(c.roundtrip(kw.api_versions_request(0, 1)))
        assert apis.get(10) == (0, 4), apis
        metadata = kw.frame(kw.header_v1(kw.API_METADATA, 1, 3) + struct.pack(">i", 0))  # no topics
        corr, brokers = kw.metadata_v1_brokers(c.roundtrip(metadata))
        assert corr == 3 and len(brokers) == 1, brokers
        payload = c.roundtrip(kw.frame(kw.header_v1(10, 0, 2) + kw.string("some-group")))
        r = kw.Reader(payload)
        correlation_id, error_code, node_id = r.take(">ihi")
        host = r.string()
        port = r.take(">i")
        assert (correlation_id, error_code) == (2, 0)
        assert (node_id, host, port) == brokers[0] == (node_id, "127.0.0.1", broker.port), brokers
    assert_still_serving(broker)


# --- bad batches -----------------------------------------------------------------------------
@pytest.mark.parametrize("version", [3, 7])
def test_wrong_crc_is_corrupt_message(broker, topic, version):
    clients.create_topic(broker.bootstrap, topic, 1)
    ts = int(time.time() * 1000)
    assert produce_raw(broker, topic, kw.record_batch(records(2, ts), ts), version) == (0, 0)

    err, _ = produce_raw(broker, topic, kw.record_batch(records(5, ts), ts, corrupt_crc=True), version)
    assert err == CORRUPT_MESSAGE

    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, 2), "the corrupt batch must not be appended"
    assert produce_raw(broker, topic, kw.record_batch(records(1, ts), ts), version) == (0, 2)
    assert_still_serving(broker)


def test_unknown_partition(broker, topic):
    clients.create_topic(broker.bootstrap, topic, 1)
    ts = int(time.time() * 1000)
    err, _ = produce_raw(broker, topic, kw.record_batch(records(1, ts), ts), partition=7)
    assert err == UNKNOWN_TOPIC_OR_PARTITION
    assert_still_serving(broker)


def test_raw_batch_over_max_message_bytes_is_message_too_large(broker, topic):
    clients.create_topic(broker.bootstrap, topic, 1)
    ts = int(time.time() * 1000)
    big = kw.record_batch([(b"k", b"x" * (MAX_MESSAGE_BYTES + 1000), [], ts)], ts)
    assert len(big) > MAX_MESSAGE_BYTES
    err, _ = produce_raw(broker, topic, big)
    assert err == MESSAGE_TOO_LARGE
    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, 0), "the oversized batch must not be appended"
    # Just under the limit is fine.
    fits = kw.record_batch([(b"k", b"y" * (MAX_MESSAGE_BYTES - 200), [], ts)], ts)
    assert len(fits) <= MAX_MESSAGE_BYTES
    assert produce_raw(broker, topic, fits) == (0, 0)
    assert_still_serving(broker)


def test_client_record_over_max_message_bytes_is_message_too_large(broker, topic):
    clients.create_topic(broker.bootstrap, topic, 1)
    # The client allows 4 MB, so the broker is the one to refuse.
    p = clients.producer(
        broker.bootstrap, **{"message.max.bytes": 4_000_000, "batch.size": 4_000_000, "enable.idempotence": False}
    )
    d = clients.Deliveries()
    clients.produce(p, topic, d, "big", value=b"z" * 2_000_000, partition=0)
    clients.flush(p, d, 1)
    assert not d.ok, "a 2 MB record was accepted past max.message.bytes"
    [(_, err)] = d.failed
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, 0)
    assert_still_serving(broker)
