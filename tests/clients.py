"""confluent-kafka helpers shared by the tests: create topics, produce with delivery reports, read back."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# confluent-kafka refuses to build a Consumer without group.id, but the tests only assign() and never
# commit, so no group is ever joined (the broker has no consumer-group APIs yet).
UNUSED_GROUP = "skiff-tests-unused-group"

# librdkafka is given several broker ids per agent (agent/src/brokers.rs): slot s of agent a is
# a + s * SLOT_STRIDE, all at the agent's address.
SLOT_STRIDE = 1_000_000


def agent_of(broker_id: int) -> int:
    """The agent's own broker id behind any of its slot ids."""
    return broker_id % SLOT_STRIDE


def agents_listed(bootstrap: str) -> set[int]:
    """The agents (their own ids) in the Metadata librdkafka gets from `bootstrap`."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    return {agent_of(b) for b in admin.list_topics(timeout=10).brokers}


def create_topic(bootstrap: str, name: str, partitions: int, timeout: float = 60.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)], operation_timeout=timeout
    )
    futures[name].result(timeout)
    # The topic must be visible in metadata with all its partitions before producing to it.
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} not visible with {partitions} partitions: {t and t.error}")
        time.sleep(0.1)


def producer(bootstrap: str, **overrides) -> Producer:
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 120000,
    }
    conf.update(overrides)
    return Producer(conf)


class Deliveries:
    """Collects delivery reports: ok[(partition, offset)] = tag, failed = [(tag, KafkaError)]."""

    def __init__(self):
        self.ok: dict[int, list[tuple[int, object]]] = {}
        self.failed: list[tuple[object, KafkaError]] = []
        self.count = 0

    def callback(self, tag):
        def cb(err, msg):
            self.count += 1
            if err is not None:
                self.failed.append((tag, err))
            else:
                self.ok.setdefault(msg.partition(), []).append((msg.offset(), tag))

        return cb


def produce(p: Producer, topic: str, deliveries: Deliveries, tag, **kwargs) -> None:
    """p.produce() that waits for room in the local queue instead of raising BufferError."""
    while True:
        try:
            p.produce(topic, on_delivery=deliveries.callback(tag), **kwargs)
            return
        except BufferError:
            p.poll(0.05)


def flush(p: Producer, deliveries: Deliveries, expected: int, timeout: float = 120.0) -> None:
    remaining = p.flush(timeout)
    assert remaining == 0, f"{remaining} messages still unacknowledged after {timeout}s"
    assert deliveries.count == expected, f"{deliveries.count} delivery reports for {expected} messages"


def consumer(bootstrap: str, **overrides) -> Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": UNUSED_GROUP,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
        "enable.partition.eof": False,
    }
    conf.update(overrides)
    return Consumer(conf)


def read_partitions(
    bootstrap: str, topic: str, ends: dict[int, int], start: int = 0, timeout: float = 120.0, **overrides
) -> dict[int, list]:
    """Read partitions (assign(), from `start`) until each has delivered every offset below ends[p].

    Returns {partition: [Message, ...]} in the order received. Fails on a consumer error or if the
    deadline passes first; never reads past the end offsets it was given (so extra records are not
    seen here: compare watermarks for that)."""
    c = consumer(bootstrap, **overrides)
    try:
        got: dict[int, list] = {p: [] for p in ends}
        todo = {p for p, end in ends.items() if end > start}
        c.assign([TopicPartition(topic, p, start) for p in todo])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                progress = {p: (len(got[p]), ends[p]) for p in sorted(todo)}
                raise AssertionError(f"timed out after {timeout}s; partitions not complete (got, end): {progress}")
            for msg in c.consume(num_messages=10000, timeout=0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                p = msg.partition()
                got[p].append(msg)
                if p in todo and msg.offset() >= ends[p] - 1:
                    todo.discard(p)
        return got
    finally:
        c.close()


def watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=30, cached=False)
    finally:
        c.close()
