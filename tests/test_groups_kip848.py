"""KIP-848 consumer groups (librdkafka `group.protocol=consumer`) as topics change under them:
assignments follow partitions and topics added later, regex subscriptions, and static members'
instance ids (UNRELEASED_INSTANCE_ID, and a takeover after a leave with epoch -2)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions

import clients
import kafka_wire as kw
from test_groups import Member, produce_numbered, wait_for

UNRELEASED_INSTANCE_ID = 111
INVALID_REGULAR_EXPRESSION = 130
INVALID_REQUEST = 42
CONSUMER = {"group.protocol": "consumer", "topic.metadata.refresh.interval.ms": 500}
FAST = ("--group-consumer-heartbeat-interval-ms", "300", "--group-consumer-session-timeout-ms", "6000")


def held(member: Member) -> set[tuple[str, int]]:
    """(topic, partition) held now, from the rebalance callbacks."""
    out: set[tuple[str, int]] = set()
    for e in member.events():
        if e["e"] == "assign":
            out |= {tuple(tp) for tp in e["tp"]}
        elif e["e"] in ("revoke", "lost"):
            out -= {tuple(tp) for tp in e["tp"]}
    return out


def values(member: Member) -> set[tuple[str, str]]:
    return {(e["topic"], e["v"]) for e in member.events() if e["e"] == "msg"}


def produce(bootstrap: str, topic: str, count: int, partitions: int) -> set[tuple[str, str]]:
    produce_numbered(bootstrap, topic, 0, count, partitions)
    return {(topic, str(n)) for n in range(count)}


def grow(bootstrap: str, topic: str, count: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_partitions([NewPartitions(topic, count)])[topic].result(30)


@pytest.mark.timeout(240)
def test_assignments_follow_partitions_and_topics_added_later(broker_factory, topic, tmp_path):
    broker = broker_factory.start(*FAST)
    later = topic + "-later"
    clients.create_topic(broker.bootstrap, topic, 2)
    group = "follow-" + topic
    # Subscribed to a topic that does not exist yet, too.
    m = Member(tmp_path, "m", broker.bootstrap, group, f"{topic},{later}", **CONSUMER)
    try:
        wait_for(lambda: held(m) == {(topic, 0), (topic, 1)}, 60, "the existing topic's partitions")
        grow(broker.bootstrap, topic, 4)
        wait_for(lambda: held(m) == {(topic, p) for p in range(4)}, 60, "the new partitions")
        clients.create_topic(broker.bootstrap, later, 3)
        want = {(topic, p) for p in range(4)} | {(later, p) for p in range(3)}
        wait_for(lambda: held(m) == want, 60, "the topic created later")
        expected = produce(broker.bootstrap, topic, 40, 4) | produce(broker.bootstrap, later, 30, 3)
        wait_for(lambda: values(m) == expected, 60, "every record of both topics")
    finally:
        m.stop()


@pytest.mark.timeout(240)
def test_a_regex_subscription_gets_matching_topics_including_new_ones(broker_factory, topic, tmp_path):
    broker = broker_factory.start(*FAST)
    prefix = "rx-" + topic.replace(".", "-")
    first, second, unrelated = f"{prefix}-a", f"{prefix}-b", f"x{prefix}-a"
    clients.create_topic(broker.bootstrap, first, 2)
    clients.create_topic(broker.bootstrap, unrelated, 1)
    group = "regex-" + topic
    m = Member(tmp_path, "m", broker.bootstrap, group, f"^{prefix}-.*", **CONSUMER)
    try:
        wait_for(lambda: held(m) == {(first, 0), (first, 1)}, 60, "the matching topic's partitions")
        clients.create_topic(broker.bootstrap, second, 2)
        want = {(first, 0), (first, 1), (second, 0), (second, 1)}
        wait_for(lambda: held(m) == want, 60, "the matching topic created later")
        expected = produce(broker.bootstrap, first, 20, 2) | produce(broker.bootstrap, second, 20, 2)
        produce(broker.bootstrap, unrelated, 5, 1)
        wait_for(lambda: values(m) == expected, 60, "every record of the matching topics")
        # The regex matches whole names: the topic that only contains a match is never assigned.
        assert all(t != unrelated for t, _ in held(m) | values(m))
    finally:
        m.stop()


def heartbeat(bootstrap: str, group: str, **kwargs) -> dict:
    with kw.Conn(bootstrap) as conn:
        payload = conn.roundtrip(kw.consumer_group_heartbeat_v1_request(group, correlation_id=5, **kwargs))
    return kw.parse_consumer_group_heartbeat_v1(payload)


def test_an_invalid_regex_is_refused_with_kafkas_code(broker, topic):
    group = "bad-regex-" + topic
    r = heartbeat(broker.bootstrap, group, member_id="m-1", regex="orders-(")
    assert r["error_code"] == INVALID_REGULAR_EXPRESSION
    assert r["error_message"].startswith("SubscribedTopicRegex `orders-(` is not a valid regular expression")
    r = heartbeat(broker.bootstrap, group, member_id="m-1")
    assert (r["error_code"], r["error_message"]) == (
        INVALID_REQUEST,
        "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
    )
    # A valid one joins.
    r = heartbeat(broker.bootstrap, group, member_id="m-1", regex=f"{topic}.*")
    assert (r["error_code"], r["member_id"], r["member_epoch"]) == (0, "m-1", 1)


def test_a_held_instance_id_is_not_released_to_a_second_member_on_the_wire(broker, topic):
    clients.create_topic(broker.bootstrap, topic, 2)
    group = "static-wire-" + topic
    first = heartbeat(broker.bootstrap, group, member_id="a", instance_id="i", topics=[topic])
    assert first["error_code"] == 0
    second = heartbeat(broker.bootstrap, group, member_id="b", instance_id="i", topics=[topic])
    assert second["error_code"] == UNRELEASED_INSTANCE_ID
    assert "owned by member a" in second["error_message"]
    left = heartbeat(broker.bootstrap, group, member_id="a", member_epoch=-2, instance_id="i")
    assert (left["error_code"], left["member_epoch"]) == (0, -2)
    third = heartbeat(broker.bootstrap, group, member_id="b", instance_id="i", topics=[topic])
    assert (third["error_code"], third["member_epoch"]) == (0, first["member_epoch"])


@pytest.mark.timeout(240)
def test_a_static_member_is_fenced_then_taken_over_after_it_leaves(broker_factory, topic, tmp_path):
    broker = broker_factory.start(*FAST)
    clients.create_topic(broker.bootstrap, topic, 3)
    group = "static-" + topic
    static = {**CONSUMER, "group.instance.id": "inst-1"}
    a = Member(tmp_path, "a", broker.bootstrap, group, topic, **static)
    b = c = None
    try:
        everything = {(topic, p) for p in range(3)}
        wait_for(lambda: held(a) == everything, 60, "the first member to hold every partition")
        expected = produce(broker.bootstrap, topic, 30, 3)
        wait_for(lambda: values(a) == expected, 60, "the first records")

        # A second consumer with the same group.instance.id is refused; the first keeps all.
        b = Member(tmp_path, "b", broker.bootstrap, group, topic, **static)

        # librdkafka makes UNRELEASED_INSTANCE_ID (111, asserted on the wire above) a fatal error
        # with its own text for the code.
        def refused():
            errors = [e for e in b.events() if e["e"] == "error"]
            return [e for e in errors if "instance ID is still used by another member" in e["err"]]

        wait_for(refused, 60, "UNRELEASED_INSTANCE_ID for the second member")
        assert held(b) == set()
        assert held(a) == everything
        b.stop()

        # The first leaves (a static member's leave is epoch -2); a new one with the instance id
        # takes its partitions over and resumes from the committed offsets.
        a.stop()
        more = {(topic, str(n)) for n in range(30, 60)}
        produce_numbered(broker.bootstrap, topic, 30, 30, 3)
        c = Member(tmp_path, "c", broker.bootstrap, group, topic, **static)
        wait_for(lambda: held(c) == everything, 60, "the new member to take every partition")
        wait_for(lambda: values(c) >= more, 60, "the records produced meanwhile")
        assert values(c) == more, "resumed at the commits, nothing read twice"
    finally:
        for m in (a, b, c):
            if m is not None:
                m.stop()
