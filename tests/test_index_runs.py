"""Reads at every offset, before and after merging, and a data dir written by an older skiff.

The metastore's index keeps where each partition's batches are (one entry per batch, or per run of
batches in one object, with merged segments indexed sparsely): whatever its shape, a client must
see the same log. These tests check it at every offset:

- test_landed_data_dir_upgrades_in_place: tests/fixtures/upgrade-v1 is a `skiff dev` data dir
  written by an earlier skiff (tests/fixtures/upgrade-v1/README.md): merged segments followed by
  un-merged ingestion objects, every codec, batches of 1 to 50 records, repeated header keys. The
  broker under test starts on a copy of it and must read back exactly the records (and the very
  batches) recorded in records.json, from the log start and from every offset, answer ListOffsets
  by time as before; then take 300 new records a partition, merge old and new into segments, and
  still read every offset exactly, also after a restart.
- test_fetch_at_every_offset_after_merge: 2 × 2,000 records in batches of 1 to 50, some gzip, lz4
  or zstd, values up to 4 KiB: a fetch at every offset starts with exactly that record and goes
  on in order, before and after merging into 64 KiB segments; ListOffsets by time for every
  record; a consumer with max.partition.fetch.bytes of 1 or 100 bytes starting inside large
  batches still makes progress (KIP-74: the first batch comes whole).

"A fetch at offset o" is checked twice: with librdkafka (assign() at o, CRCs checked: the first
messages delivered are o, o+1, ...), and with raw Fetch v4 requests of max 1 byte (the first batch
of the answer is whole, and is the batch that holds o, unchanged: same base and last offset, record
count, length and CRC as when it was written).
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import struct
import tarfile
import time
from pathlib import Path

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

import clients
import kafka_wire as kw
from conftest import Broker, FileStore, metric_value, wait_for

FIXTURE = Path(__file__).parent / "fixtures" / "upgrade-v1"
BASE_TS = 1_700_000_000_000  # November 2023: the topics keep records forever (retention.ms=-1)

# No merging (a pass an hour after start), then fast passes with small segments.
SLOW = ("--compactor-interval-ms", "3600000", "--retention-ms=-1")
FLUSH = ("--flush-interval-ms", "5")


def merging(segment_bytes: int) -> tuple[str, ...]:
    return (
        "--compactor-interval-ms", "300", "--compactor-grace-ms", "1000",
        "--segment-bytes", str(segment_bytes), "--retention-ms=-1",
    )


# --- records: (offset, key, value, timestamp, headers) ----------------------------------------------
def as_record(m) -> tuple:
    ts_type, ts = m.timestamp()
    assert ts_type == TIMESTAMP_CREATE_TIME, f"offset {m.offset()}: timestamp type {ts_type}"
    return (m.offset(), m.key(), m.value(), ts, tuple(m.headers() or ()))


def _unb64(s):
    return None if s is None else base64.b64decode(s)


def load_fixture() -> dict:
    doc = json.loads((FIXTURE / "records.json").read_text())
    for part in doc["data"].values():
        part["records"] = [
            (r["offset"], _unb64(r["key"]), _unb64(r["value"]), r["timestamp"],
             tuple((k, _unb64(v)) for k, v in r["headers"]))
            for r in part["records"]
        ]
    return doc


def _bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def new_record(salt: str, p: int, i: int, ts: int, max_value: int = 600) -> tuple:
    """A deterministic record for offset i of partition p: keys repeat, some are null or empty;
    values of varied sizes (null, empty, text, random bytes); headers with repeated keys."""
    rng = random.Random(f"{salt}/{p}/{i}")
    key = None if i % 13 == 4 else b"" if i % 29 == 9 else b"k%d" % (i % 19)
    if i % 31 == 11:
        value = None
    elif i % 43 == 1:
        value = b""
    else:
        roll = rng.random()
        n = rng.randrange(0, 300) if roll < 0.7 else rng.randrange(300, max_value + 1)
        text = (b"%s p%d i%d " % (salt.encode(), p, i)) * (1 + n // 10)
        cut = n // 2
        value = text[:cut] + _bytes(rng, n - cut)  # half compressible, half not
    h = i % 5
    headers = (
        () if h == 0
        else (("dup", b"1"), ("x", b""), ("dup", b"2"), ("dup", b"%d" % i)) if h == 1
        else (("null", None), ("n", b"%d" % i)) if h == 2
        else (("r", b"r"),) * 3 if h == 3
        else (("trace", b"%08x" % rng.getrandbits(32)),)
    )
    return (i, key, value, ts, headers)


def produce_rounds(bootstrap: str, topic: str, rounds, records: dict[int, list[tuple]]) -> None:
    """rounds: [(codec, {partition: [record, ...]})]. Each round is produced, then flushed (one
    object, one batch per partition, with 5 ms flush windows). Every record must be acknowledged
    at its own offset."""
    producers = {}
    for codec, batch in rounds:
        if codec not in producers:
            producers[codec] = clients.producer(
                bootstrap, **{"linger.ms": 1000, "compression.type": codec, "batch.num.messages": 1000}
            )
        prod = producers[codec]
        d = clients.Deliveries()
        n = 0
        for part, recs in batch.items():
            for offset, key, value, ts, headers in recs:
                clients.produce(
                    prod, topic, d, offset, partition=part, key=key, value=value, timestamp=ts, headers=list(headers)
                )
                n += 1
        clients.flush(prod, d, n)
        assert not d.failed, d.failed[:3]
        for part, acks in d.ok.items():
            for offset, tag in acks:
                assert offset == tag, f"partition {part}: record meant for offset {tag} acknowledged at {offset}"
        for part, recs in batch.items():
            records.setdefault(part, []).extend(recs)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config={"retention.ms": "-1"})]
    )[topic].result(30)
    wait_for(
        lambda: (t := admin.list_topics(topic, timeout=10).topics.get(topic)) is not None
        and t.error is None and len(t.partitions) == partitions,
        60, interval=0.1, message=f"topic {topic} visible",
    )


# --- raw batches ------------------------------------------------------------------------------------
BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")  # base offset .. record count: 61 bytes
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def parse_batches(data: bytes) -> list[dict]:
    """The complete v2 batches at the start of a Fetch answer's records (the keys of records.json)."""
    out, pos = [], 0
    while pos + BATCH_HEADER.size <= len(data):
        (base, length, _epoch, magic, crc, attrs, last_delta, first_ts, max_ts, pid, _pe, base_seq, count) = (
            BATCH_HEADER.unpack_from(data, pos)
        )
        if pos + 12 + length > len(data):
            break
        assert magic == 2, f"batch at {base}: magic {magic}"
        out.append(
            {
                "base_offset": base, "last_offset": base + last_delta, "records": count,
                "codec": CODECS.get(attrs & 7, str(attrs & 7)), "first_timestamp": first_ts,
                "max_timestamp": max_ts, "producer_id": pid, "base_sequence": base_seq,
                "bytes": 12 + length, "crc": crc,
            }
        )
        pos += 12 + length
    return out


class RawFetcher:
    """Fetch v4 over one connection."""

    def __init__(self, bootstrap: str):
        self.conn = kw.Conn(bootstrap)
        self.cid = 0

    def close(self):
        self.conn.close()

    def first_batch(self, topic: str, partition: int, offset: int, max_bytes: int = 1) -> dict:
        self.cid += 1
        error, data = kw.parse_fetch_v4_records(
            self.conn.roundtrip(kw.fetch_request(topic, partition, offset, self.cid, max_bytes))
        )
        assert error == 0, f"fetch {partition}/{offset} (max {max_bytes} bytes): error {error}"
        batches = parse_batches(data)
        # KIP-74: however small max_bytes, the first batch comes whole, so a consumer progresses.
        assert batches, f"fetch {partition}/{offset} (max {max_bytes} bytes): no complete batch in {len(data)} bytes"
        return batches[0]


def walk_batches(bootstrap: str, topic: str, partition: int, start: int, end: int) -> list[dict]:
    """Every batch of [start, end), one 1-byte fetch each."""
    f = RawFetcher(bootstrap)
    try:
        out, offset = [], start
        while offset < end:
            b = f.first_batch(topic, partition, offset)
            assert b["base_offset"] == offset, f"partition {partition}: batch after {out[-1:]} starts at {b}"
            out.append(b)
            offset = b["last_offset"] + 1
        assert offset == end, f"partition {partition}: batches end at {offset}, high watermark {end}"
        return out
    finally:
        f.close()


def check_raw_every_offset(bootstrap: str, topic: str, partition: int, batches: list[dict]) -> None:
    """A fetch at each offset answers, first, the batch holding it: exactly the batch known."""
    f = RawFetcher(bootstrap)
    wrong = []
    try:
        for b in batches:
            for offset in range(b["base_offset"], b["last_offset"] + 1):
                got = f.first_batch(topic, partition, offset)
                if got != b:
                    wrong.append((offset, got, b))
    finally:
        f.close()
    assert not wrong, f"partition {partition}: {len(wrong)} fetches began with another batch, first 3 (offset, got, expected): {wrong[:3]}"


# --- consumer checks --------------------------------------------------------------------------------
def read_from_start(bootstrap: str, topic: str, expected: dict[int, list[tuple]], **overrides) -> None:
    got = clients.read_partitions(
        bootstrap, topic, {p: len(r) for p, r in expected.items()}, **{"check.crcs": True, **overrides}
    )
    for p, recs in expected.items():
        back = [as_record(m) for m in got[p]]
        assert len(back) == len(recs), f"partition {p}: read {len(back)} records, expected {len(recs)}"
        diff = [(a, b) for a, b in zip(back, recs) if a != b]
        assert not diff, f"partition {p}: {len(diff)} records differ, first (read, expected): {diff[0]}"


def consume_n(c, n: int, what: str, timeout: float = 30.0) -> list:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {len(out)} of {n} messages within {timeout}s")
        for m in c.consume(num_messages=n - len(out), timeout=0.5):
            if m.error():
                raise KafkaException(m.error())
            out.append(m)
    return out


def check_every_offset(bootstrap: str, topic: str, expected: dict[int, list[tuple]], follow: int = 3, **overrides) -> None:
    """For every offset o: a consumer assigned at o delivers o first, then o+1, ... (`follow` more,
    or up to the end). Small fetches (16 KiB a partition, the first batch whole however large) and
    1 ms waits at the high watermark keep it to about a millisecond an offset."""
    c = clients.consumer(
        bootstrap, **{"fetch.wait.max.ms": 1, "check.crcs": True, "max.partition.fetch.bytes": 16384, **overrides}
    )
    wrong = []
    try:
        for p, recs in expected.items():
            for o in range(len(recs)):
                c.assign([TopicPartition(topic, p, o)])
                want = recs[o : o + 1 + follow]
                got = [as_record(m) for m in consume_n(c, len(want), f"partition {p} from offset {o}")]
                if got != want:
                    i = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
                    wrong.append((p, o, [g[0] for g in got], got[i], want[i]))
    finally:
        c.close()
    assert not wrong, (
        f"{len(wrong)} offsets read wrong, first 3 (partition, assigned offset, offsets delivered, first wrong record, "
        f"expected): {wrong[:3]}"
    )


def check_offsets_for_times(bootstrap: str, topic: str, expected: dict[int, list[tuple]]) -> None:
    """ListOffsets by timestamp t is the first offset whose timestamp >= t (-1 past the last), for
    every record's timestamp, between records, before the first; kafka-python also gets the
    timestamp of the record found (every exact target of every 5th record)."""
    targets, answers = {}, {}
    for p, recs in expected.items():
        ts = [r[3] for r in recs]
        assert ts == sorted(ts), "the checks assume non-decreasing timestamps"
        ts_targets = sorted({t for t in ts} | {t + 500 for t in ts} | {ts[0] - 10_000, ts[-1] + 1})
        targets[p] = ts_targets
        answers[p] = [bisect.bisect_left(ts, t) if t <= ts[-1] else -1 for t in ts_targets]
    c = clients.consumer(bootstrap)
    wrong = []
    try:
        for i in range(max(map(len, targets.values()))):
            ask = [TopicPartition(topic, p, targets[p][i]) for p in targets if i < len(targets[p])]
            for a in c.offsets_for_times(ask, timeout=30):
                assert a.error is None, a.error
                want = answers[a.partition][i]
                if a.offset != want:
                    wrong.append((a.partition, targets[a.partition][i] - BASE_TS, a.offset, want))
    finally:
        c.close()
    assert not wrong, f"{len(wrong)} wrong ListOffsets answers, first 5 (partition, target-BASE_TS, got, expected): {wrong[:5]}"

    k = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        for p, recs in expected.items():
            tp = KTopicPartition(topic, p)
            for r in recs[::5]:
                found = k.offsets_for_times({tp: r[3]})[tp]
                first = next(x for x in recs if x[3] >= r[3])
                assert found is not None and (found.offset, found.timestamp) == (first[0], first[3]), (
                    f"partition {p}, target = timestamp of offset {r[0]}: got {found}, expected ({first[0]}, {first[3]})"
                )
    finally:
        k.close()


def check_watermarks(bootstrap: str, topic: str, expected: dict[int, tuple[int, int]]) -> None:
    got = {p: clients.watermarks(bootstrap, topic, p) for p in expected}
    assert got == expected, "(log start, high watermark) per partition"


def check_everything(bootstrap: str, topic: str, expected: dict[int, list[tuple]], batches: dict[int, list[dict]]) -> None:
    check_watermarks(bootstrap, topic, {p: (0, len(r)) for p, r in expected.items()})
    read_from_start(bootstrap, topic, expected)
    for p in expected:
        assert walk_batches(bootstrap, topic, p, 0, len(expected[p])) == batches[p], f"partition {p}: batches changed"
        check_raw_every_offset(bootstrap, topic, p, batches[p])
    check_every_offset(bootstrap, topic, expected)
    check_offsets_for_times(bootstrap, topic, expected)


# --- merging ----------------------------------------------------------------------------------------
def wait_merged(broker: Broker, timeout: float = 120.0) -> float:
    """Until the compactor has written merge segments and then three passes in a row changed
    nothing (no segment written, no object deleted, none waiting for deletion). Returns the
    segments written."""
    state = {"last": None, "since": 0.0}

    def settled():
        s = broker.metrics()
        now = (
            metric_value(s, "skiff_compactor_segments_written_total", kind="merge"),
            metric_value(s, "skiff_compactor_objects_deleted_total"),
            len(broker.store.objects()),
        )
        passes = metric_value(s, "skiff_compactor_passes_total")
        if now != state["last"]:
            state["last"], state["since"] = now, passes
            return None
        waiting = metric_value(s, "skiff_compactor_garbage_waiting_objects")
        return now[0] > 0 and waiting == 0 and passes >= state["since"] + 3 and now

    written, _deleted, _objects = wait_for(settled, timeout, interval=0.3, message="segments merged and the compactor idle")
    assert broker.metric("skiff_compactor_rewrite_conflicts_total") == 0
    assert broker.metric("skiff_compactor_pass_failures_total") == 0
    return written


# --- the tests --------------------------------------------------------------------------------------
def start_on_fixture(broker_factory, *extra: str) -> Broker:
    """A broker on a copy of the fixture's data dir (its objects under data/objects, as `skiff dev`
    keeps them by default): file store whatever SKIFF_TEST_STORE says."""
    workdir = broker_factory.base / "upgraded"
    workdir.mkdir(parents=True)
    with tarfile.open(FIXTURE / "data.tar.gz") as tar:
        tar.extractall(workdir, filter="data")
    assert (workdir / "data" / "objects").is_dir()
    b = Broker(workdir, extra, "upgraded", store=FileStore(workdir / "data" / "objects"))
    broker_factory.brokers.append(b)
    b.start()
    # The agent that wrote the fixture listened elsewhere: if it heartbeated less than a session
    # timeout ago (a fixture just regenerated), metadata names it until its session runs out.
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    wait_for(
        lambda: {f"{x.host}:{x.port}" for x in admin.list_topics(timeout=10).brokers.values()} == {b.bootstrap},
        30, interval=0.2, message="metadata naming only the broker under test",
    )
    return b


@pytest.mark.timeout(600)
def test_landed_data_dir_upgrades_in_place(broker_factory):
    fixture = load_fixture()
    topic = fixture["topic"]
    parts = range(fixture["partitions"])
    old = {p: fixture["data"][str(p)]["records"] for p in parts}
    batches = {p: fixture["data"][str(p)]["batches"] for p in parts}
    assert all(len(old[p]) == 300 and [r[0] for r in old[p]] == list(range(300)) for p in parts)
    # What the fixture is for: the landed compactor's segments, then un-merged ingestion objects.
    for p in parts:
        kinds = [r["kind"] for r in fixture["data"][str(p)]["runs"]]
        assert "segment" in kinds and kinds[-1] == "ingestion", f"partition {p}: {kinds}"

    broker = start_on_fixture(broker_factory, *SLOW, *FLUSH)
    check_watermarks(
        broker.bootstrap, topic,
        {p: (fixture["data"][str(p)]["log_start_offset"], fixture["data"][str(p)]["high_watermark"]) for p in parts},
    )
    check_everything(broker.bootstrap, topic, old, batches)

    # 300 new records a partition on the upgraded broker, in rounds of 1 to 50 records, every codec.
    rng = random.Random(7)
    records = {p: list(old[p]) for p in parts}
    nxt = {p: 300 for p in parts}
    rounds = []
    while any(nxt[p] < 600 for p in parts):
        codec = rng.choice(["none", "gzip", "lz4", "zstd", "snappy"])
        batch = {}
        for p in parts:
            n = min(rng.choice([1, 1, 3, 10, 25, 50]), 600 - nxt[p])
            if n:
                batch[p] = [new_record("after", p, i, BASE_TS + i * 1000) for i in range(nxt[p], nxt[p] + n)]
                nxt[p] += n
        rounds.append((codec, batch))
    produce_rounds(broker.bootstrap, topic, rounds, records)
    for p in parts:
        batches[p] += walk_batches(broker.bootstrap, topic, p, 300, 600)
    check_everything(broker.bootstrap, topic, records, batches)

    # Merge old and new (the landed compactor's segments, its un-merged tail, the new objects).
    objects_before = len(broker.store.objects())
    broker.extra_args = (*merging(16384), *FLUSH)
    broker.restart()
    wait_merged(broker)
    assert len(broker.store.objects()) < objects_before, "merging left as many objects as before"
    check_everything(broker.bootstrap, topic, records, batches)

    # A fresh process reads what this one wrote.
    broker.extra_args = (*SLOW, *FLUSH)
    broker.restart()
    check_everything(broker.bootstrap, topic, records, batches)


PARTITIONS_B = 2
RECORDS_B = 2000


@pytest.mark.timeout(600)
def test_fetch_at_every_offset_after_merge(broker_factory, topic):
    broker = broker_factory.start(*SLOW, *FLUSH)
    create_topic(broker.bootstrap, topic, PARTITIONS_B)

    # Batches of 1 to 50 records, one round (one object) at a time; equal timestamps now and then,
    # also across batches.
    rng = random.Random(2024)
    nxt = {p: 0 for p in range(PARTITIONS_B)}
    rounds = []
    while any(n < RECORDS_B for n in nxt.values()):
        codec = rng.choice(["none", "none", "gzip", "lz4", "zstd"])
        batch = {}
        for p in range(PARTITIONS_B):
            n = min(rng.choice([1, 1, 2, 5, rng.randrange(1, 51), rng.randrange(30, 51)]), RECORDS_B - nxt[p])
            recs = [
                new_record("b", p, i, BASE_TS + i * 1000 - (1000 if i % 7 == 3 else 0), max_value=4096)
                for i in range(nxt[p], nxt[p] + n)
            ]
            if recs:
                batch[p] = recs
            nxt[p] += n
        rounds.append((codec, batch))
    records: dict[int, list[tuple]] = {}
    produce_rounds(broker.bootstrap, topic, rounds, records)
    records = {p: records[p] for p in sorted(records)}
    assert all(len(records[p]) == RECORDS_B for p in records)

    batches = {p: walk_batches(broker.bootstrap, topic, p, 0, RECORDS_B) for p in records}
    for p, bs in batches.items():
        sizes = [b["records"] for b in bs]
        assert 1 in sizes and max(sizes) >= 40, f"partition {p}: batch sizes {sizes}"
        assert {"none", "gzip", "lz4", "zstd"} <= {b["codec"] for b in bs if b["records"] > 1}
    check_everything(broker.bootstrap, topic, records, batches)
    check_tiny_fetches(broker.bootstrap, topic, records, batches)

    objects_before = len(broker.store.objects())
    broker.extra_args = (*merging(65536), *FLUSH)
    broker.restart()
    written = wait_merged(broker)
    objects_after = len(broker.store.objects())
    # About 1.5 MB a partition: several segments each, far fewer objects than rounds.
    assert written >= 2 * PARTITIONS_B and objects_after * 2 < objects_before, (written, objects_before, objects_after)
    # A segment is one index entry, whatever number of batches it holds: the index counts
    # objects (each holds at most one entry a partition), far fewer than the batches.
    entries = wait_for(
        lambda: broker.metric("skiff_compactor_state_kept", kind="index_entry") or None,
        30,
        message="a housekeeping pass reporting the index size",
    )
    total_batches = sum(len(bs) for bs in batches.values())
    assert entries <= objects_after * PARTITIONS_B and entries * 2 < total_batches, (entries, objects_after, total_batches)
    check_everything(broker.bootstrap, topic, records, batches)
    check_tiny_fetches(broker.bootstrap, topic, records, batches)

    broker.extra_args = (*SLOW, *FLUSH)
    broker.restart()
    read_from_start(broker.bootstrap, topic, records)
    check_every_offset(broker.bootstrap, topic, records, follow=0)


def check_tiny_fetches(bootstrap: str, topic: str, records: dict[int, list[tuple]], batches: dict[int, list[dict]]) -> None:
    """Consumers asking for 1 or 100 bytes a partition, started inside large batches, get every
    record after it in order (each fetch answers one whole batch) up to two batches on; raw
    fetches of 100 bytes answer whole batches too."""
    for max_bytes in (1, 100):
        c = clients.consumer(
            bootstrap,
            **{"fetch.wait.max.ms": 1, "check.crcs": True, "max.partition.fetch.bytes": max_bytes,
               "fetch.max.bytes": 1000, "message.max.bytes": 1000},
        )
        f = RawFetcher(bootstrap)
        try:
            for p, bs in batches.items():
                large = [i for i, b in enumerate(bs) if b["records"] >= 20 and b["bytes"] > 1000 and i + 2 < len(bs)]
                assert len(large) >= 5, f"partition {p}: too few large batches to check ({len(large)})"
                for i in large[:: max(1, len(large) // 12)]:
                    b = bs[i]
                    start = b["base_offset"] + b["records"] // 2
                    end = bs[i + 2]["last_offset"] + 1
                    c.assign([TopicPartition(topic, p, start)])
                    got = [as_record(m) for m in consume_n(c, end - start, f"max {max_bytes} bytes, {p}/{start}")]
                    assert got == records[p][start:end], f"partition {p}: max {max_bytes} bytes from {start}"
                    assert f.first_batch(topic, p, start, max_bytes) == b
        finally:
            c.close()
            f.close()
