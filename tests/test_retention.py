"""Retention, DeleteRecords and garbage collection, with the compactor that `skiff dev` runs
(fast passes and a short grace period here, so the test takes seconds):

- retention.ms=2000: once the records expire the log start moves to the high watermark, a fetch
  below it gets OFFSET_OUT_OF_RANGE, and the objects are deleted from the store; producing goes
  on at the old high watermark;
- retention.bytes: the oldest batches go until the partition fits;
- DeleteRecords (AdminClient.delete_records): the low watermark it answers is the new earliest
  offset, records from there on still read back, below it is out of range, and ListOffsets by
  timestamp answers no offset below it;
- an object uploaded but never committed is deleted after the orphan grace period; objects of a
  topic with infinite retention are never deleted.

File store only: the orphan is planted straight into the store's directory.
"""

from __future__ import annotations

import os
import random
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import clients
from conftest import FileStore, wait_for

FAST = ("--compactor-interval-ms", "200", "--compactor-grace-ms", "1000")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_at(t: float) -> str:
    """A ULID made at `t` (seconds since the epoch): 48 bits of milliseconds, then 80 random bits."""
    n = (int(t * 1000) << 80) | random.getrandbits(80)
    return "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))


def create(bootstrap: str, topic: str, partitions: int = 1, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)])
    fs[topic].result(30)


def produce_each(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """One acknowledged produce at a time, so each value is its own batch (and object)."""
    p = clients.producer(bootstrap)
    for i, v in enumerate(values):
        d = clients.Deliveries()
        clients.produce(p, topic, d, i, value=v, partition=0)
        clients.flush(p, d, 1)
        assert not d.failed, d.failed


def earliest(bootstrap: str, topic: str) -> int:
    return clients.watermarks(bootstrap, topic, 0)[0]


def fetch_error_at(bootstrap: str, topic: str, offset: int) -> KafkaError | None:
    """The error a consumer that must not reset gets when it fetches from `offset`, if any."""
    c = clients.consumer(bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, offset)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.5):
                if m.error():
                    return m.error()
                return None
        return None
    finally:
        c.close()


def store_objects(broker) -> set[str]:
    return set(broker.store.objects())


@pytest.mark.timeout(120)
def test_retention_ms_expires_records_and_deletes_their_objects(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    create(broker.bootstrap, topic, **{"retention.ms": "2000"})
    produce_each(broker.bootstrap, topic, [b"a", b"b", b"c"])
    objects = store_objects(broker)
    assert len(objects) >= 3

    wait_for(lambda: earliest(broker.bootstrap, topic) == 3, 30, message="the log start to reach 3")
    assert clients.watermarks(broker.bootstrap, topic, 0) == (3, 3)
    err = fetch_error_at(broker.bootstrap, topic, 0)
    assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
    assert "out of range" in err.str().lower(), err.str()
    # The bytes go once the grace period has passed.
    wait_for(lambda: not (objects & store_objects(broker)), 30, message="the expired objects to be deleted")
    assert broker.metric("skiff_object_store_requests_total", op="delete") >= 3

    # The partition lives on from where it was.
    produce_each(broker.bootstrap, topic, [b"d"])
    (m,) = clients.read_partitions(broker.bootstrap, topic, {0: 4}, start=3)[0]
    assert (m.offset(), m.value()) == (3, b"d")


@pytest.mark.timeout(120)
def test_retention_bytes_keeps_the_newest_batches(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    # Each value is one ~10 KiB batch; 15,000 bytes hold one of them.
    create(broker.bootstrap, topic, **{"retention.bytes": "15000", "retention.ms": "-1"})
    produce_each(broker.bootstrap, topic, [bytes([65 + i]) * 10_000 for i in range(3)])
    wait_for(lambda: earliest(broker.bootstrap, topic) == 2, 30, message="the log start to reach 2")
    time.sleep(1)
    assert clients.watermarks(broker.bootstrap, topic, 0) == (2, 3)
    (m,) = clients.read_partitions(broker.bootstrap, topic, {0: 3}, start=2)[0]
    assert m.value() == b"C" * 10_000


@pytest.mark.timeout(120)
def test_delete_records(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    create(broker.bootstrap, topic, partitions=2)
    produce_each(broker.bootstrap, topic, [b"r%d" % i for i in range(10)])
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    (fut,) = admin.delete_records([TopicPartition(topic, 0, 4)]).values()
    assert fut.result(30).low_watermark == 4
    assert clients.watermarks(broker.bootstrap, topic, 0) == (4, 10)
    got = clients.read_partitions(broker.bootstrap, topic, {0: 10}, start=4)[0]
    assert [m.value() for m in got] == [b"r%d" % i for i in range(4, 10)]
    err = fetch_error_at(broker.bootstrap, topic, 2)
    assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
    # ListOffsets by timestamp searches from the log start: the earliest time answers 4, never
    # an offset below it that a fetch would refuse.
    c = clients.consumer(broker.bootstrap)
    try:
        [at] = c.offsets_for_times([TopicPartition(topic, 0, 0)], timeout=30)
    finally:
        c.close()
    assert at.error is None and at.offset == 4, at

    # Beyond the high watermark: OFFSET_OUT_OF_RANGE, nothing moves.
    (fut,) = admin.delete_records([TopicPartition(topic, 0, 11)]).values()
    with pytest.raises(Exception) as e:
        fut.result(30)
    assert "OFFSET_OUT_OF_RANGE" in str(e.value) or "out of range" in str(e.value).lower(), e.value
    assert earliest(broker.bootstrap, topic) == 4

    # OFFSET_END (-1): everything; the other partition is untouched.
    (fut,) = admin.delete_records([TopicPartition(topic, 0, -1)]).values()
    assert fut.result(30).low_watermark == 10
    assert clients.watermarks(broker.bootstrap, topic, 1) == (0, 0)


@pytest.mark.timeout(120)
def test_orphans_are_deleted_and_committed_objects_kept(broker_factory, topic):
    # Merging off: it would replace the committed objects (test_merge.py covers that).
    broker = broker_factory.start(*FAST, "--segment-bytes", "0")
    if not isinstance(broker.store, FileStore):
        pytest.skip("plants a file in a file:// store")
    create(broker.bootstrap, topic, **{"retention.ms": "-1"})
    produce_each(broker.bootstrap, topic, [b"keep-1", b"keep-2"])
    committed = store_objects(broker)
    assert len(committed) >= 2

    # Made and uploaded an hour ago: its grace period (5 minutes, from the later of the two) is
    # long over.
    old = time.time() - 3600
    orphan = broker.store.root / "objects" / f"{ulid_at(old)}.skiff"
    orphan.write_bytes(b"an upload whose commit never happened")
    os.utime(orphan, (old, old))
    wait_for(lambda: not orphan.exists(), 30, message="the orphan to be deleted")

    # Many passes later, every committed object is still there and reads back.
    time.sleep(2)
    assert committed <= store_objects(broker)
    got = clients.read_partitions(broker.bootstrap, topic, {0: 2})[0]
    assert [m.value() for m in got] == [b"keep-1", b"keep-2"]
