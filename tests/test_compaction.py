"""Log compaction (cleanup.policy=compact) and topic configs, with real clients:

- 10,000 updates over 100 keys, from producers using every codec (none, gzip, snappy, lz4,
  zstd), with repeated header keys and some tombstones: the topic ends with one record per live
  key, the latest, at its original offset, with its timestamp and headers; deleted keys vanish
  once delete.retention.ms has passed. The time from the last update until a fresh consumer sees
  only the latest values is printed (docs/benchmarks.md quotes it);
- IncrementalAlterConfigs and DescribeConfigs: a topic turned into a compacted one is compacted;
  unknown names and bad values are INVALID_CONFIG, at CreateTopics too.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

import clients
from conftest import wait_for

FAST = ("--compactor-interval-ms", "300", "--compactor-grace-ms", "1000")
# No pass before the test has read the topic in full.
SLOW = ("--compactor-interval-ms", "3600000")
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "2000",
}


def create(bootstrap: str, topic: str, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])
    fs[topic].result(30)


def produce_updates(bootstrap: str, topic: str, updates: int, keys: int, deleted: set[int]) -> None:
    """`updates` values round-robin over `keys` keys, each fifth of them through a producer with
    the next codec; then a tombstone for each key in `deleted`."""
    per_codec = updates // len(CODECS)
    n = 0
    for codec in CODECS:
        p = clients.producer(bootstrap, **{"compression.type": codec, "linger.ms": 5})
        d = clients.Deliveries()
        for _ in range(per_codec):
            k = n % keys
            clients.produce(
                p,
                topic,
                d,
                n,
                key=f"key-{k}".encode(),
                value=f"value {n} of key {k} via {codec} ".encode() * 2,
                partition=0,
                headers=[("h", b"first"), ("h", f"{n}".encode())],
            )
            n += 1
        clients.flush(p, d, per_codec)
        assert not d.failed, d.failed[:3]
    p = clients.producer(bootstrap)
    d = clients.Deliveries()
    for i, k in enumerate(sorted(deleted)):
        clients.produce(p, topic, d, i, key=f"key-{k}".encode(), value=None, partition=0)
    clients.flush(p, d, len(deleted))
    assert not d.failed, d.failed
    # The partition's last batch is never compacted (it plays Kafka's active segment): one more
    # record, so that the tombstones are not in it.
    end(bootstrap, topic)


def end(bootstrap: str, topic: str) -> None:
    p = clients.producer(bootstrap)
    d = clients.Deliveries()
    clients.produce(p, topic, d, 0, key=b"end", value=b"end", partition=0)
    clients.flush(p, d, 1)
    assert not d.failed, d.failed


def dump(bootstrap: str, topic: str) -> list[tuple]:
    end = clients.watermarks(bootstrap, topic, 0)[1]
    c = clients.consumer(bootstrap)
    try:
        from confluent_kafka import TopicPartition

        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msgs = c.consume(num_messages=10_000, timeout=0.5)
            for m in msgs:
                if m.error():
                    raise KafkaException(m.error())
                out.append((m.offset(), m.key(), m.value(), m.timestamp()[1], tuple(m.headers() or ())))
            if out and out[-1][0] >= end - 1:
                return out
            if not msgs and c.position([TopicPartition(topic, 0)])[0].offset >= end:
                return out
        raise AssertionError(f"read did not reach offset {end}: {len(out)} records")
    finally:
        c.close()


@pytest.mark.timeout(240)
def test_a_compacted_topic_keeps_the_latest_record_of_each_live_key(broker_factory, topic):
    broker = broker_factory.start(*SLOW)
    create(broker.bootstrap, topic, **COMPACTED)
    deleted = set(range(0, 100, 10))
    produce_updates(broker.bootstrap, topic, 10_000, 100, deleted)
    full = dump(broker.bootstrap, topic)
    assert len(full) == 10_000 + len(deleted) + 1
    broker.extra_args = FAST
    broker.restart()
    done = time.monotonic()

    latest: dict[bytes, tuple] = {}
    for record in full:
        latest[record[1]] = record
    live = sorted((r for r in latest.values() if r[2] is not None), key=lambda r: r[0])
    assert len(live) == 91  # and the end record
    tombstones = sorted((r for r in latest.values() if r[2] is None), key=lambda r: r[0])
    assert len(tombstones) == 10

    # Superseded values go first; tombstones stay until delete.retention.ms (2 s) has passed.
    def compacted():
        got = dump(broker.bootstrap, topic)
        return got if all(r[2] is not None for r in got) and len(got) == len(live) else None

    got = wait_for(compacted, 120, interval=0.5, message="one record per live key")
    elapsed = time.monotonic() - done
    assert got == live, "each live key's latest record, at its offset, with timestamp and headers"
    print(f"\ncompaction: 10,011 records -> {len(got)} in {elapsed:.1f}s after the compactor started")

    # The offsets did not move: the high watermark is where it was, the log starts at 0.
    low, high = clients.watermarks(broker.bootstrap, topic, 0)
    assert (low, high) == (0, full[-1][0] + 1)
    # The compactor's report on /metrics.
    assert broker.metric("skiff_compactor_records_removed_total") >= 10_000 - 90
    assert broker.metric("skiff_compactor_segments_written_total", kind="compaction") >= 1


@pytest.mark.timeout(120)
def test_incremental_alter_configs_turns_on_compaction(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    create(broker.bootstrap, topic)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
            ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(30)
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    configs = list(described.values())[0].result(30)
    assert configs["cleanup.policy"].value == "delete,compact"
    assert configs["min.cleanable.dirty.ratio"].value == "0.01"
    assert configs["delete.retention.ms"].value == "86400000"  # Kafka's default

    p = clients.producer(broker.bootstrap)
    d = clients.Deliveries()
    for i in range(200):
        clients.produce(p, topic, d, i, key=f"k{i % 5}".encode(), value=f"{i}".encode(), partition=0)
    clients.flush(p, d, 200)
    end(broker.bootstrap, topic)
    wait_for(lambda: len(dump(broker.bootstrap, topic)) == 6, 60, interval=0.5, message="compacted to 5 keys")
    assert [r[2] for r in dump(broker.bootstrap, topic)] == [b"195", b"196", b"197", b"198", b"199", b"end"]

    # Subtracting "compact" stops it; deleting a config restores the default.
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SUBTRACT),
            ConfigEntry("min.cleanable.dirty.ratio", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(30)
    configs = list(admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values())[0].result(30)
    assert configs["cleanup.policy"].value == "delete"
    assert configs["min.cleanable.dirty.ratio"].value == "0.5"


@pytest.mark.timeout(60)
def test_unknown_or_invalid_configs_are_refused(broker_factory, topic):
    broker = broker_factory.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for config in ({"retention.msx": "1"}, {"cleanup.policy": "shred"}, {"min.cleanable.dirty.ratio": "2"}):
        fs = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])
        with pytest.raises(KafkaException) as e:
            fs[topic].result(30)
        assert e.value.args[0].name() == "INVALID_CONFIG", config
    create(broker.bootstrap, topic)
    bad = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)],
    )
    with pytest.raises(KafkaException) as e:
        list(admin.incremental_alter_configs([bad]).values())[0].result(30)
    assert e.value.args[0].name() == "INVALID_CONFIG"
