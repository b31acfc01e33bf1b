"""Admin and describe APIs with more than one agent.

librdkafka validates a consumer's position with OffsetForLeaderEpoch when a partition's leader
epoch moves (KIP-320). In Skiff the epoch moves whenever the live agents change, and no leader
change ever truncates the log: the consumer must keep its position, not reset it.

DescribeLogDirs: each agent lists the partitions it leads, so summing over brokers counts each
partition once."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as CTopicPartition

import clients
from conftest import RemoteAgent, wait_for

PARTITIONS = 4
RECORDS = 200


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def brokers_listed(bootstrap: str) -> set[int]:
    return clients.agents_listed(bootstrap)


@pytest.mark.timeout(300)
def test_a_consumer_keeps_its_position_across_an_agent_joining(broker_factory, topic):
    q = broker_factory.quorum(nodes=1, agents=1, agent_args=("--session-timeout-ms", "3000"))
    (a0,) = q.agents
    clients.create_topic(a0.bootstrap, topic, PARTITIONS)
    p = clients.producer(a0.bootstrap)
    d = clients.Deliveries()
    for i in range(RECORDS):
        clients.produce(p, topic, d, i, value=b"r%d" % i, partition=0)
    clients.flush(p, d, RECORDS)

    log = Lines()
    logger = logging.getLogger(f"rdkafka-{topic}")
    logger.addHandler(log)
    logger.setLevel(logging.DEBUG)
    # auto.offset.reset=earliest: a wrongly detected truncation would send the consumer back to
    # offset 0, which the offsets below would show.
    c = clients.consumer(
        a0.bootstrap,
        **{
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 500,
            "debug": "fetch,topic",
            "logger": logger,
        },
    )
    offsets: list[int] = []
    try:
        c.assign([CTopicPartition(topic, 0, 0)])

        def consume(n):
            """Consumes up to `n` records (log callbacks are served here too)."""
            for m in c.consume(num_messages=n, timeout=0.2):
                if m.error():
                    raise KafkaException(m.error())
                offsets.append(m.offset())

        def consume_until(n):
            deadline = time.monotonic() + 60
            while len(offsets) < n:
                assert time.monotonic() < deadline, f"only {len(offsets)} records consumed"
                consume(min(10, n - len(offsets)))

        def validated():
            consume(10)
            return any("validation succeeded" in line for line in log.lines)

        consume_until(RECORDS // 2)
        # A second agent joins: the live set's epoch, every partition's leader epoch, moves.
        a1 = RemoteAgent(broker_factory.base / "agent1", q.metastore, q.store, "agent1", ("--session-timeout-ms", "3000"))
        broker_factory.brokers.append(a1)
        a1.start()
        wait_for(lambda: brokers_listed(a0.bootstrap) == {0, 1}, 30, message="the second agent to be listed")
        try:
            wait_for(validated, 60, interval=0.05, message="librdkafka to validate its position with OffsetForLeaderEpoch")
        except AssertionError:
            raise AssertionError("\n".join(l for l in log.lines if "VALID" in l or "epoch" in l)[-5000:])
        consume_until(RECORDS)
    finally:
        c.close()
    assert offsets == list(range(RECORDS)), offsets[RECORDS // 2 - 3 : RECORDS // 2 + 3]
    assert not any("Reset using configured policy" in line or "truncation detected" in line for line in log.lines)


@pytest.mark.timeout(300)
def test_two_agents_describe_each_partition_in_one_log_dir(broker_factory, topic):
    from kafka.admin import KafkaAdminClient

    q = broker_factory.quorum(nodes=1, agents=2, agent_args=("--session-timeout-ms", "3000"))
    a0, a1 = q.agents
    wait_for(lambda: brokers_listed(a0.bootstrap) == brokers_listed(a1.bootstrap) == {0, 1}, 30, message="2 brokers")
    partitions = 16
    clients.create_topic(a0.bootstrap, topic, partitions)
    p = clients.producer(a0.bootstrap)
    d = clients.Deliveries()
    for i in range(partitions * 5):
        clients.produce(p, topic, d, i, value=b"x" * 100, partition=i % partitions)
    clients.flush(p, d, partitions * 5)

    admin = KafkaAdminClient(bootstrap_servers=a0.bootstrap, request_timeout_ms=30000)
    try:
        answers = admin.describe_log_dirs([topic])
        leaders = {
            p["partition_index"]: p["leader_id"]
            for t in admin.describe_topic_partitions([topic])["topics"]
            for p in t["partitions"]
        }
    finally:
        admin.close()
    seen: dict[int, int] = {}
    for broker in answers:
        (log_dir,) = broker["log_dirs"]
        for t in log_dir["topics"]:
            for part in t["partitions"]:
                assert part["partition_index"] not in seen, f"partition {part['partition_index']} listed twice"
                seen[part["partition_index"]] = broker["broker"]
                assert part["partition_size"] > 5 * 100
    # Every partition once, in the log dir of the agent Metadata names as its leader; both lead some.
    assert seen == leaders
    assert set(seen.values()) == {0, 1}
