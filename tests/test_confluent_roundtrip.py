"""librdkafka (confluent-kafka) end to end: an idempotent acks=all producer writes 100,000 keyed records
with headers and explicit timestamps over 8 partitions, for each compression codec; an assign()
consumer reads every one back exactly once, in order, intact."""

import os
import random
import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME

import clients
import kafka_wire as kw

RECORDS = int(os.environ.get("SKIFF_ROUNDTRIP_RECORDS", "100000"))
PARTITIONS = 8
BASE_TS = (int(time.time() * 1000) // 1000 - 3600) * 1000  # an hour ago, explicit CreateTime
CODEC_BITS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}  # batch attributes & 0x7

_rng = random.Random(42)
# Half random, half repetitive: something for every codec to work on.
_PAYLOAD = bytes(_rng.getrandbits(8) for _ in range(256)) + b"skiff " * 64


def key_of(i: int) -> bytes:
    return b"key-%07d" % i


def value_of(i: int) -> bytes:
    start = (i * 7) % 256
    return b"value-%07d:" % i + _PAYLOAD[start : start + 40 + i % 120]


def headers_of(i: int) -> list:
    # A repeated key ("dup") whose order must survive, an empty value, and a null value.
    return [
        ("trace-id", b"%x" % (i * 2654435761 & 0xFFFFFFFF)),
        ("dup", b"first"),
        ("empty", b""),
        ("dup", b"second-%d" % i),
        ("null", None),
        ("dup", b"third"),
    ]


def timestamp_of(i: int) -> int:
    return BASE_TS + i


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_roundtrip_100k_records_8_partitions(shared_broker, topic, compression):
    bootstrap = shared_broker.bootstrap
    clients.create_topic(bootstrap, topic, PARTITIONS)

    p = clients.producer(
        bootstrap,
        **{
            "compression.type": compression,
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 2 * RECORDS,
        },
    )
    deliveries = clients.Deliveries()
    for i in range(RECORDS):
        clients.produce(
            p,
            topic,
            deliveries,
            i,
            key=key_of(i),
            value=value_of(i),
            headers=headers_of(i),
            timestamp=timestamp_of(i),
        )
        if i % 10000 == 0:
            p.poll(0)
    clients.flush(p, deliveries, RECORDS, timeout=600)
    assert not deliveries.failed, f"{len(deliveries.failed)} deliveries failed, first: {deliveries.failed[:3]}"

    # Idempotent producer: within a partition, offsets follow the produce order, contiguous from 0.
    index_at: dict[int, dict[int, int]] = {}
    for part, acked in deliveries.ok.items():
        in_produce_order = sorted(acked, key=lambda oi: oi[1])
        offsets = [o for o, _ in in_produce_order]
        assert offsets == list(range(len(acked))), f"partition {part}: acked offsets not 0..{len(acked) - 1} in order"
        index_at[part] = {o: i for o, i in acked}
    assert sum(len(v) for v in index_at.values()) == RECORDS
    assert len(index_at) == PARTITIONS, f"keys landed in only {sorted(index_at)} of {PARTITIONS} partitions"

    ends = {part: len(index_at.get(part, {})) for part in range(PARTITIONS)}
    got = clients.read_partitions(bootstrap, topic, ends, timeout=600)

    for part in range(PARTITIONS):
        msgs = got[part]
        offsets = [m.offset() for m in msgs]
        assert offsets == list(range(ends[part])), (
            f"partition {part}: read {len(offsets)} records, offsets not exactly 0..{ends[part] - 1} once each"
        )
        for m in msgs:
            i = index_at[part][m.offset()]
            where = f"partition {part} offset {m.offset()} (record {i})"
            assert m.topic() == topic
            assert m.key() == key_of(i), where
            assert m.value() == value_of(i), where
            assert m.headers() == headers_of(i), where
            assert m.timestamp() == (TIMESTAMP_CREATE_TIME, timestamp_of(i)), where

    # The batches are stored as the producer compressed them: librdkafka decides from ApiVersions
    # whether the broker takes a codec (lz4 hinges on FindCoordinator being listed), and silently
    # sends uncompressed batches when it thinks not.
    with kw.Conn(bootstrap) as c:
        error_code, records = kw.parse_fetch_v4_records(c.roundtrip(kw.fetch_request(topic, 0, 0, 1)))
    codecs = {a & 0x7 for a in kw.batch_attributes(records)}
    assert error_code == 0 and codecs == {CODEC_BITS[compression]}, (error_code, codecs)

    # Exactly once: nothing beyond what was acknowledged.
    for part in range(PARTITIONS):
        assert clients.watermarks(bootstrap, topic, part) == (0, ends[part]), f"partition {part} watermarks"
