"""The index timestamps of batches whose header does not say the truth, with the compactor that
`skiff dev` runs at short intervals:

- Sarama writes max_timestamp = -1 in every batch header. Such batches (uncompressed and gzip,
  and one whose base timestamp is -1 too) with records timestamped "now" survive retention of an
  hour: the agent computes the max timestamp from the records, as Kafka's LogValidator does;
  ListOffsets by timestamp and by max timestamp find the right records;
- with max -1, records timestamped two hours ago do expire under retention.ms of an hour, and
  those of now do not: retention reads the computed timestamps;
- log compaction keeps the computed timestamps of the batches it leaves whole (a compact,delete
  topic would otherwise lose them to the next retention pass);
- records that cannot be decoded, when the broker needs their timestamps, are INVALID_RECORD.
"""

from __future__ import annotations

import struct
import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

import clients
import kafka_wire as kw
from conftest import wait_for

FAST = ("--compactor-interval-ms", "200", "--compactor-grace-ms", "1000")
HOUR_MS = 3_600_000
INVALID_RECORD = 87


def create(bootstrap: str, topic: str, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])
    fs[topic].result(30)


def produce_raw(broker, topic: str, batch: bytes) -> tuple[int, int]:
    """(error code, base offset) of one hand-built batch produced to partition 0."""
    with kw.Conn(broker.bootstrap) as c:
        payload = c.roundtrip(kw.produce_request(topic, 0, batch, correlation_id=7, version=7))
    corr, parts = kw.parse_produce_response(payload, 7)
    assert corr == 7
    return parts[(topic, 0)]


def records(first: int, n: int, t0: int, step: int = 10):
    """n records numbered from `first`, timestamped t0, t0 + step, ..."""
    return [(b"k%d" % i, b"v%d" % i, [], t0 + (i - first) * step) for i in range(first, first + n)]


def passes(broker) -> float:
    return broker.metric("skiff_compactor_passes_total")


def wait_passes(broker, n: int) -> None:
    """Until `n` more compactor passes have run (each one enforces retention first)."""
    target = passes(broker) + n
    wait_for(lambda: passes(broker) >= target, 60, message=f"{n} more compactor passes")


def offsets_for_times(bootstrap: str, topic: str, timestamps: list[int]) -> list[int]:
    """ListOffsets by timestamp, one call per target (librdkafka keys answers by partition)."""
    c = clients.consumer(bootstrap)
    try:
        out = []
        for ts in timestamps:
            [a] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=30)
            assert a.error is None, a.error
            out.append(a.offset)
        return out
    finally:
        c.close()


def max_timestamp_offset(bootstrap: str, topic: str) -> tuple[int, int]:
    """ListOffsets with MAX_TIMESTAMP (-3): (offset, timestamp) of the record with the largest."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.max_timestamp()})[TopicPartition(topic, 0)]
    info = fut.result(30)
    return info.offset, info.timestamp


@pytest.mark.timeout(180)
def test_unset_max_timestamps_are_computed_and_survive_retention(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    create(broker.bootstrap, topic, **{"retention.ms": str(HOUR_MS)})
    now = int(time.time() * 1000)
    t0 = now - 5_000
    # Four batches of five records, timestamps t0 + 10·offset, every header with max -1.
    all_records = records(0, 20, t0)
    plain = kw.record_batch(all_records[0:5], t0, max_timestamp=-1)
    gz = kw.record_batch(all_records[5:10], t0 + 50, max_timestamp=-1, compression="gzip")
    # Base -1 as well: each record's timestamp is -1 + its delta.
    no_base = kw.record_batch(all_records[10:15], -1, max_timestamp=-1)
    # The header's max is below its base: as wrong as unset.
    below = kw.record_batch(all_records[15:20], t0 + 150, max_timestamp=t0 + 149, compression="gzip")
    for i, batch in enumerate([plain, gz, no_base, below]):
        assert produce_raw(broker, topic, batch) == (0, 5 * i)
    # Header-only -1 used to look a thousand years old: gone at the first pass.
    wait_passes(broker, 3)
    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, 20)

    got = clients.read_partitions(broker.bootstrap, topic, {0: 20})[0]
    assert [m.offset() for m in got] == list(range(20))
    for m, (k, v, _h, ts) in zip(got, all_records):
        assert (m.key(), m.value()) == (k, v)
        # Records keep the timestamps the producer gave them (base + delta).
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts)

    # By timestamp: the first record at or after it, inside each batch and across them.
    asked = [t0 - 1_000, t0, t0 + 15, t0 + 50, t0 + 75, t0 + 120, t0 + 190, t0 + 191]
    assert offsets_for_times(broker.bootstrap, topic, asked) == [0, 0, 2, 5, 8, 12, 19, -1]
    assert max_timestamp_offset(broker.bootstrap, topic) == (19, t0 + 190)


@pytest.mark.timeout(180)
def test_old_records_with_unset_max_timestamps_expire(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    create(broker.bootstrap, topic, **{"retention.ms": str(HOUR_MS)})
    now = int(time.time() * 1000)
    old = now - 2 * HOUR_MS
    assert produce_raw(broker, topic, kw.record_batch(records(0, 3, old), old, max_timestamp=-1)) == (0, 0)
    assert produce_raw(
        broker, topic, kw.record_batch(records(3, 3, old + 30), old + 30, max_timestamp=-1, compression="gzip")
    ) == (0, 3)
    assert produce_raw(broker, topic, kw.record_batch(records(6, 3, now), now, max_timestamp=-1)) == (0, 6)
    # The old batches go, the new one stays: the log starts exactly where it begins.
    wait_for(lambda: clients.watermarks(broker.bootstrap, topic, 0)[0] > 0, 60, message="the old records to expire")
    wait_passes(broker, 2)
    assert clients.watermarks(broker.bootstrap, topic, 0) == (6, 9)
    got = clients.read_partitions(broker.bootstrap, topic, {0: 9}, start=6)[0]
    assert [(m.offset(), m.value()) for m in got] == [(6, b"v6"), (7, b"v7"), (8, b"v8")]


@pytest.mark.timeout(180)
def test_compaction_keeps_the_computed_timestamps(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    create(
        broker.bootstrap,
        topic,
        **{
            "cleanup.policy": "compact,delete",
            "retention.ms": str(HOUR_MS),
            "min.cleanable.dirty.ratio": "0.01",
        },
    )
    now = int(time.time() * 1000)

    def one(key: bytes, value: bytes, ts: int) -> bytes:
        return kw.record_batch([(key, value, [], ts)], ts, max_timestamp=-1)

    # "a" stays whole, the first "k" goes, the last batch is never compacted.
    for i, (k, v) in enumerate([(b"a", b"a0"), (b"k", b"k1"), (b"k", b"k2"), (b"z", b"z3")]):
        assert produce_raw(broker, topic, one(k, v, now + i)) == (0, i)

    def offsets() -> list[int]:
        got = clients.read_partitions(broker.bootstrap, topic, {0: 4}, timeout=30)[0]
        return [m.offset() for m in got]

    wait_for(lambda: offsets() == [0, 2, 3], 60, interval=0.5, message="offset 1 to be compacted away")
    # Retention runs first in every pass: with the header's -1 in the rewritten index, the batches
    # kept whole would now expire.
    wait_passes(broker, 3)
    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, 4)
    got = clients.read_partitions(broker.bootstrap, topic, {0: 4})[0]
    assert [(m.offset(), m.value()) for m in got] == [(0, b"a0"), (2, b"k2"), (3, b"z3")]


def test_undecodable_records_are_refused_when_their_timestamps_are_needed(broker, topic):
    create(broker.bootstrap, topic)
    now = int(time.time() * 1000)
    good = kw.record_batch(records(0, 2, now), now, max_timestamp=-1)
    # The records section replaced by junk, length and CRC fixed: the header alone is valid.
    header = bytearray(good[:61])
    junk = b"\xff" * 12
    header[8:12] = struct.pack(">i", 61 - 12 + len(junk))
    body = bytes(header[21:]) + junk
    bad = bytes(header[:17]) + struct.pack(">I", kw.crc32c(body)) + body
    assert produce_raw(broker, topic, bad)[0] == INVALID_RECORD
    # The same header over its real records is accepted, and nothing of the refused one is kept.
    assert produce_raw(broker, topic, good) == (0, 0)
    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, 2)
