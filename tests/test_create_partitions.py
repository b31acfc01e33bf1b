"""CreatePartitions (KIP-195) with confluent-kafka, kafka-python and KafkaJS: topics grow, the new
partitions take records at once on every agent, a subscribed group picks them up, and bad requests
get Kafka's codes and messages and change nothing."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions
from kafka.admin import KafkaAdminClient

import clients
import kafka_wire as kw
import kafkajs
from conftest import wait_for

INVALID_PARTITIONS = 37
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REQUEST = 42
INVALID_REPLICA_ASSIGNMENT = 39
MAX_PARTITIONS = 10_000


def partition_count(bootstrap: str, topic: str) -> int:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    t = md.topics[topic]
    assert t.error is None, t.error
    return len(t.partitions)


def shows(bootstrap: str, topic: str, count: int) -> None:
    """Waits until `bootstrap`'s metadata shows `count` partitions (an agent's topic list is at most
    a second old; produce and fetch do not wait for it, see the multi-agent test)."""
    wait_for(lambda: partition_count(bootstrap, topic) == count, 30, f"{topic} with {count} partitions")


def produce_to(bootstrap: str, topic: str, per_partition: dict[int, int]) -> dict[int, list[int]]:
    """Produces `n` numbered records to each partition; their offsets by partition."""
    p = clients.producer(bootstrap)
    d = clients.Deliveries()
    total = 0
    for part, n in per_partition.items():
        for i in range(n):
            clients.produce(p, topic, d, (part, i), value=f"{part}-{i}".encode(), partition=part)
            total += 1
    clients.flush(p, d, total)
    assert not d.failed, d.failed[:3]
    return {part: sorted(o for o, _ in d.ok.get(part, [])) for part in per_partition}


def read_back(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    got = clients.read_partitions(bootstrap, topic, per_partition)
    for part, n in per_partition.items():
        assert [m.value().decode() for m in got[part]] == [f"{part}-{i}" for i in range(n)], part


def kafka_error(future) -> KafkaError:
    with pytest.raises(KafkaException) as e:
        future.result(30)
    return e.value.args[0]


def test_confluent_kafka_grows_a_topic_and_the_new_partitions_take_records(broker, topic):
    clients.create_topic(broker.bootstrap, topic, 2)
    produce_to(broker.bootstrap, topic, {0: 3, 1: 3})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    # validate_only answers yes and changes nothing.
    admin.create_partitions([NewPartitions(topic, 5)], validate_only=True)[topic].result(30)
    assert partition_count(broker.bootstrap, topic) == 2

    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(30)
    assert partition_count(broker.bootstrap, topic) == 5
    offsets = produce_to(broker.bootstrap, topic, {2: 4, 3: 4, 4: 4})
    assert offsets == {p: [0, 1, 2, 3] for p in (2, 3, 4)}
    read_back(broker.bootstrap, topic, {0: 3, 1: 3, 2: 4, 3: 4, 4: 4})
    assert clients.watermarks(broker.bootstrap, topic, 4) == (0, 4)


def test_confluent_kafka_bad_requests_get_kafkas_errors_and_change_nothing(broker, topic):
    clients.create_topic(broker.bootstrap, topic, 3)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for validate_only in (True, False):
        bad = KafkaError.INVALID_PARTITIONS
        unknown = "no-such-" + topic
        cases = [
            (topic, 2, bad, "Topic currently has 3 partitions, which is higher than the requested 2."),
            (topic, 3, bad, "Topic already has 3 partitions."),
            (topic, MAX_PARTITIONS + 1, bad, "A topic may have at most 10000 partitions; 10001 were requested."),
            (unknown, 4, KafkaError.UNKNOWN_TOPIC_OR_PART, f"The topic '{unknown}' does not exist."),
        ]
        for name, count, code, message in cases:
            futures = admin.create_partitions([NewPartitions(name, count)], validate_only=validate_only)
            err = kafka_error(futures[name])
            assert (err.code(), err.str()) == (code, message), (validate_only, count)
    assert partition_count(broker.bootstrap, topic) == 3


def test_kafka_python_grows_a_topic_and_refuses_what_kafka_refuses(broker, topic):
    clients.create_topic(broker.bootstrap, topic, 1)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        def results(request, validate_only=False):
            r = admin.create_partitions(request, validate_only=validate_only, raise_errors=False)
            return sorted((x.name, x.error_code, x.error_message) for x in r.results)

        lower = "Topic currently has 1 partitions, which is higher than the requested {}."
        for validate_only in (True, False):
            assert results({topic: 0}, validate_only) == [(topic, INVALID_PARTITIONS, lower.format(0))]
            assert results({topic: -4}, validate_only) == [(topic, INVALID_PARTITIONS, lower.format(-4))]
            # Assignments are checked as Kafka checks them, then ignored (every agent serves every
            # partition): one list per new partition.
            message = "Increasing the number of partitions by 3 but 1 assignments provided."
            assert results({topic: {"count": 4, "assignments": [[0]]}}, validate_only) == [
                (topic, INVALID_REPLICA_ASSIGNMENT, message)
            ]
        assert results({topic: 3}, validate_only=True) == [(topic, 0, None)]
        assert partition_count(broker.bootstrap, topic) == 1
        assert results({topic: 3}) == [(topic, 0, None)]
        broker_id = admin.describe_cluster()["controller_id"]
        assert results({topic: {"count": 4, "assignments": [[broker_id]]}}) == [(topic, 0, None)]
    finally:
        admin.close()
    assert partition_count(broker.bootstrap, topic) == 4
    produce_to(broker.bootstrap, topic, {1: 2, 2: 2, 3: 2})
    read_back(broker.bootstrap, topic, {0: 0, 1: 2, 2: 2, 3: 2})


def test_duplicate_topics_in_one_request_are_refused_and_the_rest_is_done(broker, topic):
    other = topic + "-other"
    clients.create_topic(broker.bootstrap, topic, 1)
    clients.create_topic(broker.bootstrap, other, 1)
    with kw.Conn(broker.bootstrap) as conn:
        payload = conn.roundtrip(
            kw.create_partitions_v1_request([(topic, 2, None), (other, 3, None), (topic, 4, None)], correlation_id=7)
        )
    correlation_id, results = kw.parse_create_partitions_v1(payload)
    assert correlation_id == 7
    assert results == [(other, 0, None), (topic, INVALID_REQUEST, "Duplicate topic in request.")]
    assert partition_count(broker.bootstrap, topic) == 1
    assert partition_count(broker.bootstrap, other) == 3


def test_kafkajs_grows_a_topic_produces_and_consumes(broker, topic):
    clients.create_topic(broker.bootstrap, topic, 1)
    out = kafkajs.run("create_partitions", broker.bootstrap, topics=[{"topic": topic, "count": 3}], validateOnly=True)
    assert out == {"ok": True}
    assert kafkajs.run("partitions", broker.bootstrap, topic=topic) == {"count": 1}
    out = kafkajs.run("create_partitions", broker.bootstrap, topics=[{"topic": topic, "count": 3}])
    assert out == {"ok": True}
    assert kafkajs.run("partitions", broker.bootstrap, topic=topic) == {"count": 3}

    messages = [{"partition": p, "value": f"{p}-{i}"} for p in (1, 2) for i in range(3)]
    out = kafkajs.run("produce", broker.bootstrap, topic=topic, messages=messages)
    assert sorted((r["partition"], r["baseOffset"]) for r in out["results"]) == [(1, 0), (2, 0)]
    out = kafkajs.run("consume", broker.bootstrap, topic=topic, group="kafkajs-" + topic, expect=6)
    got = sorted((m["partition"], m["offset"], m["value"]) for m in out["messages"])
    assert got == [(p, i, f"{p}-{i}") for p in (1, 2) for i in range(3)]

    # KafkaJS shows its own text for a code, not the broker's message.
    for count in (2, 3, 0, -1, MAX_PARTITIONS + 1):
        out = kafkajs.run("create_partitions", broker.bootstrap, topics=[{"topic": topic, "count": count}])
        assert out["ok"] is False, (count, out)
        assert (out["error"]["type"], out["error"]["code"]) == ("INVALID_PARTITIONS", INVALID_PARTITIONS), count
    assert kafkajs.run("partitions", broker.bootstrap, topic=topic) == {"count": 3}


def test_kafkajs_unknown_topic(broker, topic):
    out = kafkajs.run("create_partitions", broker.bootstrap, topics=[{"topic": "no-such-" + topic, "count": 2}])
    assert out["ok"] is False
    assert (out["error"]["type"], out["error"]["code"]) == ("UNKNOWN_TOPIC_OR_PARTITION", UNKNOWN_TOPIC_OR_PARTITION)


def wire_produce(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> tuple[int, int]:
    ts = int(time.time() * 1000)
    batch = kw.record_batch([(None, v, [], ts) for v in values], ts)
    with kw.Conn(bootstrap) as conn:
        payload = conn.roundtrip(kw.produce_request(topic, partition, batch, correlation_id=3))
    _, out = kw.parse_produce_response(payload, 3)
    return out[(topic, partition)]


@pytest.mark.timeout(240)
def test_a_second_agent_serves_new_partitions_at_once(broker_factory, topic):
    q = broker_factory.quorum(nodes=1, agents=2)
    first, second = q.agents
    clients.create_topic(first.bootstrap, topic, 2)
    # The second agent has the topic cached with two partitions.
    assert wire_produce(second.bootstrap, topic, 1, [b"old"]) == (0, 0)
    assert wire_produce(second.bootstrap, topic, 2, [b"x"])[0] == UNKNOWN_TOPIC_OR_PARTITION

    admin = AdminClient({"bootstrap.servers": first.bootstrap})
    admin.create_partitions([NewPartitions(topic, 4)])[topic].result(30)
    # At once, before its cached list would have expired: the second agent takes a produce to a
    # new partition, and a fetch of it.
    assert wire_produce(second.bootstrap, topic, 3, [b"new-0", b"new-1"]) == (0, 0)
    with kw.Conn(second.bootstrap) as conn:
        error, records = kw.parse_fetch_v4_records(conn.roundtrip(kw.fetch_request(topic, 3, 0, correlation_id=4)))
    assert error == 0 and b"new-1" in records

    # Clients of the second agent alone see four partitions, and read and write all of them.
    shows(second.bootstrap, topic, 4)
    produce_to(second.bootstrap, topic, {2: 3})
    got = clients.read_partitions(second.bootstrap, topic, {2: 3, 3: 2})
    assert [m.value() for m in got[3]] == [b"new-0", b"new-1"]
    assert [m.value() for m in got[2]] == [b"2-0", b"2-1", b"2-2"]
    # KafkaJS through the second agent grows it further, and the first agent takes writes there.
    assert kafkajs.run("create_partitions", second.bootstrap, topics=[{"topic": topic, "count": 5}]) == {"ok": True}
    assert wire_produce(first.bootstrap, topic, 4, [b"five"]) == (0, 0)


@pytest.mark.timeout(240)
def test_a_subscribed_classic_group_picks_up_new_partitions(broker, topic):
    group = "grow-" + topic
    clients.create_topic(broker.bootstrap, topic, 2)
    c = clients.consumer(
        broker.bootstrap,
        **{
            "group.id": group,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 500,
            "enable.auto.commit": True,
        },
    )
    assigned: set[int] = set()

    def on_assign(consumer, partitions):
        assigned.update(p.partition for p in partitions)

    def on_revoke(consumer, partitions):
        assigned.difference_update(p.partition for p in partitions)

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    try:
        seen: dict[int, list[bytes]] = {}

        def poll_until(cond, message):
            deadline = time.monotonic() + 60
            while not cond():
                assert time.monotonic() < deadline, f"timed out waiting for {message}; assigned {sorted(assigned)}"
                for m in c.consume(num_messages=100, timeout=0.2):
                    assert not m.error(), m.error()
                    seen.setdefault(m.partition(), []).append(m.value())

        poll_until(lambda: assigned == {0, 1}, "partitions 0 and 1")
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_partitions([NewPartitions(topic, 4)])[topic].result(30)
        poll_until(lambda: assigned == {0, 1, 2, 3}, "the new partitions to be assigned")
        produce_to(broker.bootstrap, topic, {p: 2 for p in range(4)})
        poll_until(lambda: all(len(seen.get(p, [])) == 2 for p in range(4)), "two records from each partition")
        assert {p: seen[p] for p in range(4)} == {p: [f"{p}-0".encode(), f"{p}-1".encode()] for p in range(4)}
        committed = c.committed([TopicPartition(topic, p) for p in range(4)], timeout=15)
        assert all(tp.error is None for tp in committed)
    finally:
        c.close()
