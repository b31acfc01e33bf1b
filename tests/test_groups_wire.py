"""The consumer-group APIs at the wire: hand-built JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit, OffsetFetch, DescribeGroups and ListGroups requests, and the exact Kafka error codes
they get. Non-flexible versions (request header v1) except ListGroups v3.

One broker for the module, with no initial rebalance delay so that a lone member's join completes
at once; every test uses its own group ids."""

from __future__ import annotations

import struct
import uuid

import pytest

import clients
import kafka_wire as kw

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79

# ConsumerProtocol Subscription v0 for topic "t", no user data: what a consumer sends as metadata.
SUBSCRIPTION = struct.pack(">hi", 0, 1) + kw.string("t") + struct.pack(">i", -1)


@pytest.fixture
def broker(shared_broker_factory):
    if not shared_broker_factory.brokers:
        shared_broker_factory.start("--group-initial-rebalance-delay-ms", "0", name="groups")
    b = shared_broker_factory.brokers[0]
    b.check_alive()
    yield b
    b.check_alive()


@pytest.fixture
def group(request) -> str:
    return f"{request.node.name[:60]}-{uuid.uuid4().hex[:8]}"


def assert_still_serving(broker) -> None:
    broker.check_alive()
    with kw.Conn(broker.bootstrap) as c:
        corr, err, apis = kw.parse_api_versions_v0(c.roundtrip(kw.api_versions_request(0, 7)))
        assert (corr, err) == (7, 0) and kw.API_JOIN_GROUP in apis
        # The group APIs still answer, too.
        probe = f"still-serving-{uuid.uuid4().hex[:8]}"
        joined = kw.parse_join_group_v5(c.roundtrip(kw.join_group_v5_request(probe, 8)))
        assert (joined["correlation_id"], joined["error_code"]) == (8, MEMBER_ID_REQUIRED), joined


def expect_closed(broker, data: bytes) -> None:
    with kw.Conn(broker.bootstrap) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # closed while we were still writing: that's a close too
        c.wait_closed(timeout=15)


def join(c: kw.Conn, group: str, correlation_id: int, **kwargs) -> dict:
    out = kw.parse_join_group_v5(c.roundtrip(kw.join_group_v5_request(group, correlation_id, **kwargs)))
    assert out["correlation_id"] == correlation_id
    return out


def join_as_leader(c: kw.Conn, group: str) -> dict:
    """The two-step join of KIP-394 for a lone member: the answer that makes it leader of generation 1."""
    first = join(c, group, 1, protocols=[("range", SUBSCRIPTION)])
    assert first["error_code"] == MEMBER_ID_REQUIRED, first
    second = join(c, group, 2, member_id=first["member_id"], protocols=[("range", SUBSCRIPTION)])
    assert second["error_code"] == NONE, second
    return second


def heartbeat(c: kw.Conn, group: str, generation: int, member_id: str, correlation_id: int) -> int:
    request = kw.heartbeat_v3_request(group, generation, member_id, correlation_id)
    corr, err = kw.parse_heartbeat_v3(c.roundtrip(request))
    assert corr == correlation_id
    return err


def describe(c: kw.Conn, group: str, correlation_id: int) -> dict:
    corr, groups = kw.parse_describe_groups_v4(c.roundtrip(kw.describe_groups_v4_request([group], correlation_id)))
    assert corr == correlation_id and len(groups) == 1, groups
    return groups[0]


def list_groups(c: kw.Conn, correlation_id: int) -> dict[str, str]:
    corr, err, groups = kw.parse_list_groups_v3(c.roundtrip(kw.list_groups_v3_request(correlation_id)))
    assert (corr, err) == (correlation_id, NONE)
    return groups


# --- 1. JoinGroup: the KIP-394 member id, then generation 1 -------------------------------------
def test_join_with_empty_member_id_then_with_the_given_id(broker, group):
    with kw.Conn(broker.bootstrap) as c:
        first = join(c, group, 1, protocols=[("range", SUBSCRIPTION)])
        assert first["error_code"] == MEMBER_ID_REQUIRED, first
        assert first["generation_id"] == -1
        member_id = first["member_id"]
        assert member_id, first

        second = join(c, group, 2, member_id=member_id, protocols=[("range", SUBSCRIPTION)])
        assert second["error_code"] == NONE, second
        assert second["generation_id"] == 1
        assert second["member_id"] == member_id
        assert second["leader"] == member_id
        assert second["protocol_name"] == "range"
        assert second["members"] == [(member_id, None, SUBSCRIPTION)]
    assert_still_serving(broker)


# --- 2. JoinGroup refusals ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"session_timeout_ms": 1}, INVALID_SESSION_TIMEOUT),
        ({"group_id": ""}, INVALID_GROUP_ID),
        ({"member_id": "nobody-ever-issued-this"}, UNKNOWN_MEMBER_ID),
        ({"protocol_type": "consumer", "protocols": []}, INCONSISTENT_GROUP_PROTOCOL),
    ],
    ids=["session-timeout-1ms", "empty-group-id", "unknown-member-id", "no-protocols"],
)
def test_join_refused(broker, group, kwargs, code):
    kwargs = dict(kwargs)
    group_id = kwargs.pop("group_id", group)
    with kw.Conn(broker.bootstrap) as c:
        out = join(c, group_id, 3, **kwargs)
        assert out["error_code"] == code, out
        assert out["generation_id"] == -1
        assert out["members"] == []
        # The connection stays open for the next request.
        assert heartbeat(c, group, 1, "x", 4) == UNKNOWN_MEMBER_ID
    assert_still_serving(broker)


# --- 3. SyncGroup and Heartbeat checks ---------------------------------------------------------
def test_sync_from_an_unknown_member(broker, group):
    with kw.Conn(broker.bootstrap) as c:
        # A group this agent has never heard of.
        corr, err, assignment = kw.parse_sync_group_v3(c.roundtrip(kw.sync_group_v3_request(group, 1, "ghost", 1)))
        assert (corr, err) == (1, UNKNOWN_MEMBER_ID)
        assert assignment == b""
        # A group with a member, completing its rebalance: a stranger's sync is still refused.
        leader = join_as_leader(c, group)
        corr, err, _ = kw.parse_sync_group_v3(
            c.roundtrip(kw.sync_group_v3_request(group, leader["generation_id"], "ghost", 5, [("ghost", b"x")]))
        )
        assert (corr, err) == (5, UNKNOWN_MEMBER_ID)
    assert_still_serving(broker)


def test_heartbeat_before_any_join_is_unknown_member(broker, group):
    with kw.Conn(broker.bootstrap) as c:
        assert heartbeat(c, group, 0, "", 1) == UNKNOWN_MEMBER_ID
        assert heartbeat(c, group, 1, "someone", 2) == UNKNOWN_MEMBER_ID
    assert_still_serving(broker)


def test_heartbeat_with_a_wrong_generation_is_illegal_generation(broker, group):
    with kw.Conn(broker.bootstrap) as c:
        leader = join_as_leader(c, group)
        member_id, generation = leader["member_id"], leader["generation_id"]
        assert heartbeat(c, group, generation + 1, member_id, 3) == ILLEGAL_GENERATION
        assert heartbeat(c, group, generation - 1, member_id, 4) == ILLEGAL_GENERATION
        # The leader's assignment makes the group stable; then the right generation is fine.
        corr, err, assignment = kw.parse_sync_group_v3(
            c.roundtrip(kw.sync_group_v3_request(group, generation, member_id, 5, [(member_id, b"assigned")]))
        )
        assert (corr, err, assignment) == (5, NONE, b"assigned")
        assert heartbeat(c, group, generation, member_id, 6) == NONE
        assert heartbeat(c, group, generation + 1, member_id, 7) == ILLEGAL_GENERATION
        assert heartbeat(c, group, generation, "someone-else", 8) == UNKNOWN_MEMBER_ID
    assert_still_serving(broker)


# --- 4. OffsetCommit and OffsetFetch -----------------------------------------------------------
def commit(c: kw.Conn, group: str, generation: int, member_id: str, offsets, correlation_id: int) -> dict:
    corr, out = kw.parse_offset_commit_v7(
        c.roundtrip(kw.offset_commit_v7_request(group, generation, member_id, offsets, correlation_id))
    )
    assert corr == correlation_id
    return out


def fetch_offsets(c: kw.Conn, group: str, topics, correlation_id: int) -> dict:
    corr, err, out = kw.parse_offset_fetch_v5(c.roundtrip(kw.offset_fetch_v5_request(group, topics, correlation_id)))
    assert (corr, err) == (correlation_id, NONE)
    return out


def test_commit_from_an_unknown_member_of_a_memberless_group(broker, group, topic):
    clients.create_topic(broker.bootstrap, topic, 2)
    with kw.Conn(broker.bootstrap) as c:
        out = commit(c, group, 5, "not-a-member", {topic: [(0, 10, "m"), (1, 11, None)]}, 1)
        assert out == {(topic, 0): UNKNOWN_MEMBER_ID, (topic, 1): UNKNOWN_MEMBER_ID}
        # Nothing was stored.
        assert fetch_offsets(c, group, {topic: [0, 1]}, 2) == {
            (topic, 0): (-1, -1, "", NONE),
            (topic, 1): (-1, -1, "", NONE),
        }
    assert_still_serving(broker)


def test_admin_commit_then_fetch(broker, group, topic):
    clients.create_topic(broker.bootstrap, topic, 2)
    with kw.Conn(broker.bootstrap) as c:
        out = commit(c, group, -1, "", {topic: [(0, 42, "the metadata"), (1, 7, None)]}, 1)
        assert out == {(topic, 0): NONE, (topic, 1): NONE}
        assert fetch_offsets(c, group, {topic: [0, 1]}, 2) == {
            (topic, 0): (42, -1, "the metadata", NONE),
            (topic, 1): (7, -1, "", NONE),
        }
        # All of the group's offsets (a null topic array).
        assert fetch_offsets(c, group, None, 3) == {
            (topic, 0): (42, -1, "the metadata", NONE),
            (topic, 1): (7, -1, "", NONE),
        }
        # A group with committed offsets and no members is listed, and described as Empty.
        assert list_groups(c, 4).get(group) == "consumer"
        d = describe(c, group, 5)
        assert (d["error_code"], d["group_id"], d["group_state"], d["members"]) == (NONE, group, "Empty", [])
    assert_still_serving(broker)


def test_commit_for_a_nonexistent_topic_is_unknown_topic(broker, group, topic):
    clients.create_topic(broker.bootstrap, topic, 1)
    missing = f"{topic}-missing"
    with kw.Conn(broker.bootstrap) as c:
        out = commit(c, group, -1, "", {missing: [(0, 5, None)]}, 1)
        assert out == {(missing, 0): UNKNOWN_TOPIC_OR_PARTITION}
        # Mixed with good partitions, only the bad ones are refused.
        out = commit(c, group, -1, "", {topic: [(0, 9, "ok"), (3, 9, None)], missing: [(0, 5, None)]}, 2)
        assert out == {
            (topic, 0): NONE,
            (topic, 3): UNKNOWN_TOPIC_OR_PARTITION,
            (missing, 0): UNKNOWN_TOPIC_OR_PARTITION,
        }
        assert fetch_offsets(c, group, None, 3) == {(topic, 0): (9, -1, "ok", NONE)}
    assert_still_serving(broker)


def test_commit_checks_membership_of_a_group_with_members(broker, group, topic):
    clients.create_topic(broker.bootstrap, topic, 1)
    with kw.Conn(broker.bootstrap) as c:
        leader = join_as_leader(c, group)
        member_id, generation = leader["member_id"], leader["generation_id"]
        offsets = {topic: [(0, 3, None)]}
        # An admin commit is refused while the group has members.
        assert commit(c, group, -1, "", offsets, 3) == {(topic, 0): UNKNOWN_MEMBER_ID}
        # The member itself, before the assignment is in.
        assert commit(c, group, generation, member_id, offsets, 4) == {(topic, 0): REBALANCE_IN_PROGRESS}
        corr, err, _ = kw.parse_sync_group_v3(
            c.roundtrip(kw.sync_group_v3_request(group, generation, member_id, 5, [(member_id, b"")]))
        )
        assert (corr, err) == (5, NONE)
        assert commit(c, group, generation + 1, member_id, offsets, 6) == {(topic, 0): ILLEGAL_GENERATION}
        assert commit(c, group, generation, "stranger", offsets, 7) == {(topic, 0): UNKNOWN_MEMBER_ID}
        assert commit(c, group, generation, member_id, offsets, 8) == {(topic, 0): NONE}
        assert fetch_offsets(c, group, {topic: [0]}, 9) == {(topic, 0): (3, -1, "", NONE)}
    assert_still_serving(broker)


# --- 5. LeaveGroup -----------------------------------------------------------------------------
def test_leave_of_an_unknown_member(broker, group):
    with kw.Conn(broker.bootstrap) as c:
        request = kw.leave_group_v3_request(group, [("ghost", None)], 1)
        corr, err, members = kw.parse_leave_group_v3(c.roundtrip(request))
        assert (corr, err) == (1, NONE)
        assert members == [("ghost", None, UNKNOWN_MEMBER_ID)]

        # In a group with a member: the stranger is refused, the member leaves.
        leader = join_as_leader(c, group)
        member_id = leader["member_id"]
        corr, err, members = kw.parse_leave_group_v3(
            c.roundtrip(kw.leave_group_v3_request(group, [("ghost", None), (member_id, None)], 3))
        )
        assert (corr, err) == (3, NONE)
        assert members == [("ghost", None, UNKNOWN_MEMBER_ID), (member_id, None, NONE)]
        assert heartbeat(c, group, leader["generation_id"], member_id, 4) == UNKNOWN_MEMBER_ID
    assert_still_serving(broker)


# --- 6. malformed requests close the connection ------------------------------------------------
def _requests() -> dict[str, tuple[int, int, bytes]]:
    """(api_key, version, body) of valid requests, to cut short."""
    g = "a-group-with-a-longish-name"
    return {
        "join": (kw.API_JOIN_GROUP, 5, kw.join_group_v5_body(g, protocols=[("range", SUBSCRIPTION)])),
        "sync": (kw.API_SYNC_GROUP, 3, kw.sync_group_v3_body(g, 1, "member", [("member", b"assignment")])),
        "commit": (kw.API_OFFSET_COMMIT, 7, kw.offset_commit_v7_body(g, -1, "", {"topic": [(0, 1, "meta")]})),
    }


MALFORMED = {}
for _name, (_key, _version, _body) in _requests().items():
    MALFORMED[f"{_name}-first-10-bytes"] = kw.frame(kw.header_v1(_key, _version, 1) + _body[:10])
    MALFORMED[f"{_name}-last-byte-missing"] = kw.frame(kw.header_v1(_key, _version, 1) + _body[:-1])
    MALFORMED[f"{_name}-empty-body"] = kw.frame(kw.header_v1(_key, _version, 1))
# Array counts of 2^31 - 1 with nothing after them.
MALFORMED["join-protocols-2^31"] = kw.frame(
    kw.header_v1(kw.API_JOIN_GROUP, 5, 1)
    + kw.string("g")
    + struct.pack(">ii", 30000, 30000)
    + kw.string("")
    + kw.string(None)
    + kw.string("consumer")
    + struct.pack(">i", 0x7FFFFFFF)
)
MALFORMED["sync-assignments-2^31"] = kw.frame(
    kw.header_v1(kw.API_SYNC_GROUP, 3, 1)
    + kw.string("g")
    + struct.pack(">i", 1)
    + kw.string("m")
    + kw.string(None)
    + struct.pack(">i", 0x7FFFFFFF)
)
MALFORMED["commit-topics-2^31"] = kw.frame(
    kw.header_v1(kw.API_OFFSET_COMMIT, 7, 1)
    + kw.string("g")
    + struct.pack(">i", -1)
    + kw.string("")
    + kw.string(None)
    + struct.pack(">i", 0x7FFFFFFF)
)
MALFORMED["commit-partitions-2^31"] = kw.frame(
    kw.header_v1(kw.API_OFFSET_COMMIT, 7, 1)
    + kw.string("g")
    + struct.pack(">i", -1)
    + kw.string("")
    + kw.string(None)
    + struct.pack(">i", 1)
    + kw.string("t")
    + struct.pack(">i", 0x7FFFFFFF)
)
# A negative group id length that is not -1, and a null group id (not nullable).
MALFORMED["join-group-id-length-minus-2"] = kw.frame(
    kw.header_v1(kw.API_JOIN_GROUP, 5, 1) + struct.pack(">h", -2) + b"\x00" * 40
)
MALFORMED["join-null-group-id"] = kw.frame(
    kw.header_v1(kw.API_JOIN_GROUP, 5, 1) + kw.join_group_v5_body("g").replace(kw.string("g"), kw.string(None), 1)
)


def test_valid_versions_of_the_malformed_requests_are_answered(broker):
    # So that the closes below are about the damage, not the request.
    with kw.Conn(broker.bootstrap) as c:
        for i, (key, version, body) in enumerate(_requests().values()):
            payload = c.roundtrip(kw.frame(kw.header_v1(key, version, 100 + i) + body))
            assert struct.unpack(">i", payload[:4]) == (100 + i,)
    assert_still_serving(broker)


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_group_request_closes_connection(broker, name):
    expect_closed(broker, MALFORMED[name])
    assert_still_serving(broker)


# --- 7. DescribeGroups and ListGroups ----------------------------------------------------------
def test_describe_an_unknown_group_is_dead(broker, group):
    with kw.Conn(broker.bootstrap) as c:
        d = describe(c, group, 1)
        assert (d["error_code"], d["group_id"], d["group_state"], d["members"]) == (NONE, group, "Dead", [])
        assert group not in list_groups(c, 2)
    assert_still_serving(broker)


def test_list_and_describe_a_group_with_a_member(broker, group):
    with kw.Conn(broker.bootstrap) as c:
        leader = join_as_leader(c, group)
        member_id = leader["member_id"]
        groups = list_groups(c, 3)
        assert groups.get(group) == "consumer", groups

        d = describe(c, group, 4)
        assert (d["error_code"], d["group_id"]) == (NONE, group)
        assert d["group_state"] == "CompletingRebalance"
        assert (d["protocol_type"], d["protocol_data"]) == ("consumer", "range")
        [m] = d["members"]
        assert (m["member_id"], m["group_instance_id"], m["client_id"]) == (member_id, None, "skiff-tests")
        assert m["client_host"] == "/127.0.0.1"
        assert m["metadata"] == SUBSCRIPTION

        corr, err, _ = kw.parse_sync_group_v3(
            c.roundtrip(kw.sync_group_v3_request(group, leader["generation_id"], member_id, 5, [(member_id, b"a")]))
        )
        assert (corr, err) == (5, NONE)
        d = describe(c, group, 6)
        assert d["group_state"] == "Stable"
        assert d["members"][0]["assignment"] == b"a"

        # Once its last member leaves, the group is Empty and, having no offsets, gone.
        _, _, left = kw.parse_leave_group_v3(c.roundtrip(kw.leave_group_v3_request(group, [(member_id, None)], 7)))
        assert left == [(member_id, None, NONE)]
        assert describe(c, group, 8)["group_state"] == "Dead"
        assert group not in list_groups(c, 9)
    assert_still_serving(broker)
