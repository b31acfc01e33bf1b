"""One connection's requests take effect in the order they were sent, as in Kafka: a consumer that
commits asynchronously after every message ends with its last commit, with librdkafka and with
kafka-python, and OffsetCommits pipelined by hand on one connection keep the last one sent.

One broker for the module; every test uses its own topic and group."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

import clients
import kafka_wire as kw

MESSAGES = 10_000


@pytest.fixture
def broker(shared_broker_factory):
    if not shared_broker_factory.brokers:
        shared_broker_factory.start("--group-initial-rebalance-delay-ms", "0", name="order")
    b = shared_broker_factory.brokers[0]
    b.check_alive()
    yield b
    b.check_alive()


def fill(bootstrap: str, topic: str, count: int) -> None:
    clients.create_topic(bootstrap, topic, 1)
    p = clients.producer(bootstrap, **{"linger.ms": 50})
    deliveries = clients.Deliveries()
    for i in range(count):
        clients.produce(p, topic, deliveries, i, value=b"%d" % i)
    clients.flush(p, deliveries, count)
    assert not deliveries.failed


def committed(bootstrap: str, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = c.committed([TopicPartition(topic, 0)], timeout=30)
        return tp.offset
    finally:
        c.close()


@pytest.mark.parametrize("run", range(3))
def test_async_commit_after_every_message_ends_at_the_last(broker, run):
    topic = f"order-rdkafka-{run}-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    fill(broker.bootstrap, topic, MESSAGES)
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
        }
    )
    last = -1
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 180
        while last < MESSAGES - 1:
            assert time.monotonic() < deadline, f"consumed up to {last} of {MESSAGES}"
            for msg in c.consume(num_messages=500, timeout=0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                last = msg.offset()
                c.commit(message=msg, asynchronous=True)
    finally:
        # close() waits for the commits still in flight.
        c.close()
    assert last == MESSAGES - 1
    assert committed(broker.bootstrap, group, topic) == MESSAGES


def test_kafka_python_commit_async_after_every_message_ends_at_the_last(broker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition
    from kafka.structs import OffsetAndMetadata

    count = 2_000
    topic = f"order-kafka-python-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    fill(broker.bootstrap, topic, count)
    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        consumer_timeout_ms=30_000,
        # Room for every commit in flight at once, so none is refused by the client itself.
        max_in_flight_requests_per_connection=count,
    )
    tp = KTopicPartition(topic, 0)
    last = -1
    futures = []
    try:
        c.assign([tp])
        for msg in c:
            last = msg.offset
            futures.append(c.commit_async({tp: OffsetAndMetadata(msg.offset + 1, "", -1)}))
            if last == count - 1:
                break
        # kafka-python's close() cancels commits in flight: let them finish first.
        deadline = time.monotonic() + 60
        while not all(f.is_done for f in futures):
            assert time.monotonic() < deadline, "commits still in flight"
            c.poll(timeout_ms=50)
        failed = [f.exception for f in futures if not f.succeeded()]
        assert not failed, failed[:3]
    finally:
        c.close(autocommit=False)
    assert last == count - 1
    assert committed(broker.bootstrap, group, topic) == count


@pytest.mark.parametrize("run", range(3))
def test_offset_commits_pipelined_on_one_connection_keep_the_last(broker, run):
    topic = f"order-wire-{run}-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    clients.create_topic(broker.bootstrap, topic, 1)
    commits = 500
    with kw.Conn(broker.bootstrap) as c:
        wire = b"".join(
            kw.offset_commit_v7_request(group, -1, "", {topic: [(0, offset, "")]}, offset) for offset in range(1, commits + 1)
        )
        c.send(wire)
        for offset in range(1, commits + 1):
            corr, errors = kw.parse_offset_commit_v7(c.recv_frame())
            # Answers in request order, every commit accepted.
            assert (corr, errors) == (offset, {(topic, 0): 0})
        request = kw.offset_fetch_v5_request(group, {topic: [0]}, 9_999)
        corr, error, partitions = kw.parse_offset_fetch_v5(c.roundtrip(request))
        assert (corr, error) == (9_999, 0)
        assert partitions[(topic, 0)][0] == commits
