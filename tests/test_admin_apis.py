"""The admin and describe APIs tools call, with real clients (confluent-kafka's AdminClient,
kafka-python's KafkaAdminClient) and on the wire for the versions they do not send."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import ElectionType, KafkaError, KafkaException
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.admin import NewTopic as KNewTopic
from kafka.structs import TopicPartition as KTopicPartition

import clients
import kafka_wire as w

TOPIC_OPS = {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
CLUSTER_OPS = {"CREATE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "ALTER", "DESCRIBE"}
GROUP_OPS = {"READ", "DESCRIBE", "DELETE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}


def kadmin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)


def cadmin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def names(ops) -> set[str]:
    return {op.name for op in ops}


def leader_epoch(bootstrap: str, topic: str) -> int:
    admin = kadmin(bootstrap)
    try:
        described = admin.describe_topic_partitions([topic])
    finally:
        admin.close()
    (t,) = described["topics"]
    epochs = {p["leader_epoch"] for p in t["partitions"]}
    assert len(epochs) == 1, epochs
    return epochs.pop()


# --- DescribeCluster --------------------------------------------------------------------------------
def test_describe_cluster_lists_the_brokers_metadata_lists(shared_broker):
    admin = cadmin(shared_broker.bootstrap)
    md = admin.list_topics(timeout=10)
    described = admin.describe_cluster(include_authorized_operations=True).result(30)
    assert described.cluster_id == md.cluster_id
    assert {(n.id, n.host, n.port) for n in described.nodes} == {
        (b.id, b.host, b.port) for b in md.brokers.values()
    }
    assert described.controller.id == md.controller_id
    assert names(described.authorized_operations) == CLUSTER_OPS

    # Without asking, no operations (Kafka's i32::MIN: librdkafka shows none).
    plain = admin.describe_cluster().result(30)
    assert not plain.authorized_operations

    k = kadmin(shared_broker.bootstrap)
    try:
        kd = k.describe_cluster()
    finally:
        k.close()
    assert kd["cluster_id"] == md.cluster_id
    assert kd["controller_id"] == md.controller_id
    # kafka-python puts all of a broker's partitions in one request: one id per agent is enough
    # for it, where librdkafka gets every slot of every agent (agent/src/brokers.rs).
    assert {(b["broker_id"], b["host"], b["port"]) for b in kd["brokers"]} == {
        (clients.agent_of(b.id), b.host, b.port) for b in md.brokers.values()
    }
    assert len(md.brokers) == 32 and len(kd["brokers"]) == 1


def test_describe_cluster_on_the_wire(shared_broker):
    with w.Conn(shared_broker.bootstrap) as c:
        v0 = w.parse_describe_cluster(c.roundtrip(w.describe_cluster_request(1, version=0)), 0)
        assert v0["error_code"] == 0 and len(v0["brokers"]) == 1
        assert v0["cluster_authorized_operations"] == -(2**31)
        v1 = w.parse_describe_cluster(c.roundtrip(w.describe_cluster_request(2, version=1, include_ops=True)), 1)
        assert v1["error_code"] == 0 and v1["endpoint_type"] == 1
        assert v1["controller_id"] == v1["brokers"][0][0]
        # CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE.
        assert v1["cluster_authorized_operations"] == 8096
        # An agent is no controller: Kafka's MISMATCHED_ENDPOINT_TYPE.
        ctl = w.parse_describe_cluster(c.roundtrip(w.describe_cluster_request(3, version=1, endpoint_type=2)), 1)
        assert ctl["error_code"] == 114 and ctl["brokers"] == []


# --- DescribeLogDirs --------------------------------------------------------------------------------
def produce_batches(bootstrap: str, topic: str, partition: int, count: int) -> int:
    """Produces `count` single-record batches on the wire; the bytes stored."""
    total = 0
    with w.Conn(bootstrap) as c:
        for i in range(count):
            batch = w.record_batch([(b"k", b"v%d" % i * 10, [], 1_700_000_000_000)], 1_700_000_000_000)
            _, results = w.parse_produce_response(c.roundtrip(w.produce_request(topic, partition, batch, i)), 3)
            assert results[(topic, partition)][0] == 0, results
            total += len(batch)
    return total


def test_describe_log_dirs_sizes_partitions_from_the_index(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 3)
    size0 = produce_batches(shared_broker.bootstrap, topic, 0, 3)
    size2 = produce_batches(shared_broker.bootstrap, topic, 2, 1)

    with w.Conn(shared_broker.bootstrap) as c:
        (result,) = w.parse_describe_log_dirs_v1(c.roundtrip(w.describe_log_dirs_v1_request([(topic, [0, 1, 2, 7])], 1)))
        code, log_dir, parts = result
        assert code == 0 and log_dir.startswith("skiff://")
        # The partition that does not exist is left out, as Kafka leaves out what it does not host.
        assert parts == {(topic, 0): (size0, 0, False), (topic, 1): (0, 0, False), (topic, 2): (size2, 0, False)}
        (everything,) = w.parse_describe_log_dirs_v1(c.roundtrip(w.describe_log_dirs_v1_request(None, 2)))
        assert everything[2][(topic, 0)] == (size0, 0, False)

    admin = kadmin(shared_broker.bootstrap)
    try:
        answers = admin.describe_log_dirs({topic: [0, 2]})
    finally:
        admin.close()
    (broker,) = answers
    (d,) = broker["log_dirs"]
    assert d["log_dir"] == log_dir and d["error_code"] == 0
    sizes = {(t["name"], p["partition_index"]): p["partition_size"] for t in d["topics"] for p in t["partitions"]}
    assert sizes == {(topic, 0): size0, (topic, 2): size2}
    # kafka-python sends v4 to a broker that has it: the object store's size is unknown.
    assert d["total_bytes"] == -1 and d["usable_bytes"] == -1


# --- OffsetForLeaderEpoch ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", [2, 3, 4])
def test_offset_for_leader_epoch_cases(shared_broker, topic, version):
    clients.create_topic(shared_broker.bootstrap, topic, 2)
    produce_batches(shared_broker.bootstrap, topic, 0, 5)
    epoch = leader_epoch(shared_broker.bootstrap, topic)
    assert epoch >= 1
    asks = [
        (0, epoch, epoch),  # the current epoch: the high watermark
        (0, -1, 0),  # an older epoch (librdkafka stamps its batches 0): the log never diverged
        (1, -1, epoch),  # an empty partition
        (0, -1, -1),  # undefined
        (0, -1, epoch + 5),  # newer than any epoch there has been
    ]
    with w.Conn(shared_broker.bootstrap) as c:
        got = w.parse_offset_for_leader_epoch(
            c.roundtrip(w.offset_for_leader_epoch_request(topic, asks[:1], 1, version)), version
        )
        assert got == {(topic, 0): (0, epoch, 5)}
        for i, (p, current, ask) in enumerate(asks[1:]):
            got = w.parse_offset_for_leader_epoch(
                c.roundtrip(w.offset_for_leader_epoch_request(topic, [(p, current, ask)], 10 + i, version)), version
            )
            expected = {
                0: (0, 0, 5),
                1: (0, epoch, 0),
                2: (0, -1, -1),
                3: (0, -1, -1),
            }[i]
            assert got == {(topic, p): expected}, (p, current, ask)
        # The client's idea of the current epoch: newer is UNKNOWN_LEADER_EPOCH, older FENCED.
        got = w.parse_offset_for_leader_epoch(
            c.roundtrip(w.offset_for_leader_epoch_request(topic, [(0, epoch + 1, epoch)], 20, version)), version
        )
        assert got[(topic, 0)][0] == 75
        got = w.parse_offset_for_leader_epoch(
            c.roundtrip(w.offset_for_leader_epoch_request(topic, [(0, epoch - 1, 0)], 21, version)), version
        )
        assert got[(topic, 0)][0] == 74
        got = w.parse_offset_for_leader_epoch(
            c.roundtrip(w.offset_for_leader_epoch_request(topic, [(2, -1, epoch)], 22, version)), version
        )
        assert got[(topic, 2)][0] == 3
        got = w.parse_offset_for_leader_epoch(
            c.roundtrip(w.offset_for_leader_epoch_request(topic + "-nope", [(0, -1, epoch)], 23, version)), version
        )
        assert got[(topic + "-nope", 0)][0] == 3


# --- DescribeTopicPartitions ------------------------------------------------------------------------
def test_describe_topic_partitions_pages_with_a_cursor(shared_broker, topic):
    a, b = topic + "-a", topic + "-b"
    clients.create_topic(shared_broker.bootstrap, a, 5)
    clients.create_topic(shared_broker.bootstrap, b, 2)
    admin = kadmin(shared_broker.bootstrap)
    try:
        seen, cursor, pages = [], None, 0
        while True:
            page = admin.describe_topic_partitions([b, a, topic + "-missing"], response_partition_limit=3, cursor=cursor)
            pages += 1
            for t in page["topics"]:
                if t["name"] == topic + "-missing":
                    assert t["error_code"] == 3 and t["partitions"] == []
                    continue
                assert t["error_code"] == 0 and not t["is_internal"]
                assert t["topic_authorized_operations"] == 3576
                seen += [(t["name"], p["partition_index"]) for p in t["partitions"]]
                assert all(p["leader_epoch"] >= 1 for p in t["partitions"])
            assert sum(len(t["partitions"]) for t in page["topics"]) <= 3
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 10
        assert seen == [(a, p) for p in range(5)] + [(b, p) for p in range(2)]
        assert pages == 3
        # The cursor must name a topic asked for.
        bad = admin.describe_topic_partitions([a], cursor={"topic_name": b, "partition_index": 0})
        assert [t["error_code"] for t in bad["topics"]] == [42]
    finally:
        admin.close()


# --- ElectLeaders, partition reassignments ----------------------------------------------------------
def test_elect_leaders_is_never_needed(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 2)
    admin = cadmin(shared_broker.bootstrap)
    partitions = [CTopicPartition(topic, 0), CTopicPartition(topic, 1), CTopicPartition(topic, 9)]
    future = admin.elect_leaders(ElectionType.PREFERRED, partitions)
    results = future.result(30)
    codes = {(tp.topic, tp.partition): (err.code() if err else 0) for tp, err in results.items()}
    assert codes == {
        (topic, 0): KafkaError.ELECTION_NOT_NEEDED,
        (topic, 1): KafkaError.ELECTION_NOT_NEEDED,
        (topic, 9): KafkaError.UNKNOWN_TOPIC_OR_PART,
    }

    k = kadmin(shared_broker.bootstrap)
    try:
        r = k.elect_leaders(0, {topic: [0]}, raise_errors=False)
    finally:
        k.close()
    got = [(p.partition_id, p.error_code) for t in r.replica_election_results for p in t.partition_result]
    assert got == [(0, 84)]


def test_reassignments_are_refused_and_none_are_listed(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 2)
    k = kadmin(shared_broker.bootstrap)
    try:
        listed = k.list_partition_reassignments()
        assert not listed, listed
        altered = k.alter_partition_reassignments({KTopicPartition(topic, 0): [0], KTopicPartition(topic, 1): None})
    finally:
        k.close()
    flat = {}
    for tp, err in (altered.items() if isinstance(altered, dict) else []):
        flat[(tp.topic, tp.partition)] = err
    assert flat, altered
    assert "InvalidReplicaAssignment" in type(flat[(topic, 0)]).__name__ or getattr(flat[(topic, 0)], "errno", None) == 39, flat
    assert getattr(flat[(topic, 1)], "errno", None) == 85, flat


# --- DescribeProducers ------------------------------------------------------------------------------
def test_describe_producers_shows_idempotent_producers(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 2)
    before = int(time.time() * 1000)
    p = KafkaProducer(bootstrap_servers=shared_broker.bootstrap, enable_idempotence=True, acks="all")
    try:
        for i in range(4):
            p.send(topic, b"v%d" % i, partition=0).get(timeout=30)
    finally:
        p.close(timeout=30)
    k = kadmin(shared_broker.bootstrap)
    try:
        described = k.describe_producers([KTopicPartition(topic, 0), KTopicPartition(topic, 1)])
    finally:
        k.close()
    by_partition = {tp.partition: state.active_producers for tp, state in described.items()}
    assert by_partition[1] == [], by_partition
    (state,) = by_partition[0]
    assert state.producer_id >= 0 and state.producer_epoch == 0
    assert state.last_sequence == 3
    assert state.coordinator_epoch == -1 and state.current_transaction_start_offset == -1
    assert state.last_timestamp >= before


# --- authorized operations ------------------------------------------------------------------------
def test_authorized_operations_of_topics_and_groups(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 1)
    admin = cadmin(shared_broker.bootstrap)
    from confluent_kafka import TopicCollection

    (f,) = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True).values()
    assert names(f.result(30).authorized_operations) == TOPIC_OPS

    group = topic + "-g"
    consumer = clients.consumer(shared_broker.bootstrap, **{"group.id": group})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.2)
        (g,) = admin.describe_consumer_groups([group], include_authorized_operations=True).values()
        assert names(g.result(30).authorized_operations) == GROUP_OPS
    finally:
        consumer.close()


# --- reserved names and validations --------------------------------------------------------------
def test_internal_topics_are_neither_created_nor_listed(shared_broker):
    admin = cadmin(shared_broker.bootstrap)
    md = admin.list_topics("__consumer_offsets", timeout=10)
    assert md.topics["__consumer_offsets"].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    fs = admin.create_topics([NewTopic("__transaction_state", 1, 1), NewTopic("__consumer_offsets", 1, 1)])
    for name, f in fs.items():
        with pytest.raises(KafkaException) as e:
            f.result(30)
        assert e.value.args[0].code() == KafkaError.INVALID_REQUEST, name
        assert "prohibited" in e.value.args[0].str()
    listed = admin.list_topics(timeout=10).topics
    assert "__consumer_offsets" not in listed and "__transaction_state" not in listed


def test_duplicate_names_in_one_request_are_refused_and_the_rest_proceed(shared_broker, topic):
    k = kadmin(shared_broker.bootstrap)
    try:
        r = k.create_topics(
            [KNewTopic(topic + "-dup", 1, 1), KNewTopic(topic + "-dup", 2, 1), KNewTopic(topic + "-ok", 1, 1)],
            raise_errors=False,
        )
        got = {t["name"]: (t["error_code"], t["error_message"] or None) for t in r["topics"]}
        assert got == {topic + "-dup": (42, "Duplicate topic name."), topic + "-ok": (0, None)}, got
        assert topic + "-dup" not in k.list_topics()
        r = k.delete_topics([topic + "-ok", topic + "-ok", topic + "-never"], raise_errors=False)
        got = {t["name"]: t["error_code"] for t in r["topics"]}
        assert got == {topic + "-ok": 42, topic + "-never": 3}, got
        # Invalid names are Kafka's INVALID_TOPIC_EXCEPTION.
        r = k.create_topics([KNewTopic("..", 1, 1), KNewTopic("a" * 250, 1, 1), KNewTopic("bad/name", 1, 1)], raise_errors=False)
        assert {t["error_code"] for t in r["topics"]} == {17}
    finally:
        k.close()
