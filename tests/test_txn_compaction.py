"""The compactor and the Parquet export on topics written by a real transactional producer
(confluent-kafka): committed and aborted transactions, and plain records between them.

- key compaction drops the aborted records whatever their keys (an aborted value never
  supersedes a committed one), keeps each key's latest committed value at its offset, and
  read_committed and read_uncommitted consumers then read the same records;
- the export of a topic with skiff.parquet.enable=true holds exactly the committed records,
  never an aborted one or a marker.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import clients
from conftest import FileStore, wait_for
from test_parquet import exported

FAST = ("--compactor-interval-ms", "300", "--compactor-grace-ms", "1000")
# No pass before the test has read the topic in full.
SLOW = ("--compactor-interval-ms", "3600000")


def create(bootstrap: str, topic: str, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])[topic].result(30)


def transactions(bootstrap: str, topic: str, plan: list[tuple[bool, list[tuple[bytes, bytes]]]]) -> None:
    """Each (commit, records) of `plan` as one transaction on partition 0, with a plain record
    after each (so the partition's last batch, which is never compacted, is a plain one)."""
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{topic}-tx", "linger.ms": 5})
    p.init_transactions(30)
    plain = clients.producer(bootstrap)
    for i, (commit, records) in enumerate(plan):
        p.begin_transaction()
        for key, value in records:
            p.produce(topic, value, key=key, partition=0)
        p.flush(30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
        plain.produce(topic, f"plain {i}".encode(), key=f"plain-{i}".encode(), partition=0)
        assert plain.flush(30) == 0


def read(bootstrap: str, topic: str, isolation: str) -> list[tuple[int, bytes, bytes]]:
    end = clients.watermarks(bootstrap, topic, 0)[1]
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused",
        "enable.auto.commit": False,
        "isolation.level": isolation,
        "auto.offset.reset": "earliest",
    })
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out: list[tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                out.append((m.offset(), m.key(), m.value()))
            if c.position([TopicPartition(topic, 0)])[0].offset >= end:
                return out
        raise AssertionError(f"{isolation} read did not reach offset {end}: {out}")
    finally:
        c.close()


PLAN = [
    (True, [(b"k1", b"a"), (b"k2", b"b")]),
    (False, [(b"k1", b"ABORTED"), (b"k3", b"ABORTED")]),
    (True, [(b"k2", b"c")]),
    (False, [(b"k2", b"ABORTED")]),
]


@pytest.mark.timeout(180)
def test_compaction_drops_aborted_records_and_keeps_the_latest_committed(broker_factory, topic):
    broker = broker_factory.start(*SLOW)
    create(broker.bootstrap, topic, **{
        "cleanup.policy": "compact",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "600000",
    })
    transactions(broker.bootstrap, topic, PLAN)
    before = read(broker.bootstrap, topic, "read_uncommitted")
    assert sum(v == b"ABORTED" for _, _, v in before) == 3, before
    committed = read(broker.bootstrap, topic, "read_committed")
    assert not any(v == b"ABORTED" for _, _, v in committed)
    broker.extra_args = FAST
    broker.restart()

    def compacted():
        got = read(broker.bootstrap, topic, "read_uncommitted")
        return got if not any(v == b"ABORTED" for _, _, v in got) and (1, b"k2", b"b") not in got else None

    got = wait_for(compacted, 90, interval=0.5, message="the aborted records and k2's old value to go")
    by_key = {k: (o, v) for o, k, v in got}
    assert by_key[b"k1"][1] == b"a", "an aborted k1 never supersedes the committed one"
    assert by_key[b"k2"][1] == b"c"
    assert b"k3" not in by_key, "k3 was only ever written in an aborted transaction"
    assert all(r in before for r in got), "nothing moved: every record left is at its offset"
    assert read(broker.bootstrap, topic, "read_committed") == got
    assert broker.metric("skiff_compactor_aborted_records_removed_total") == 3
    low, high = clients.watermarks(broker.bootstrap, topic, 0)
    assert (low, high) == (0, before[-1][0] + 1)


@pytest.mark.timeout(180)
def test_the_export_holds_the_committed_records_only(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    if not isinstance(broker.store, FileStore):
        pytest.skip("reads the export from the store's directory")
    create(broker.bootstrap, topic, **{"skiff.parquet.enable": "true"})
    transactions(broker.bootstrap, topic, PLAN)
    committed = read(broker.bootstrap, topic, "read_committed")
    want = sorted((0, o, k, v) for o, k, v in committed)
    root = broker.store.root / "parquet"

    def complete():
        if not root.exists():
            return None
        rows, _ = exported(root, topic)
        return rows if len(rows) >= len(want) else None

    rows = wait_for(complete, 60, interval=0.5, message="the export to catch up")
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == want
    assert not any(r[4] == b"ABORTED" for r in rows)
