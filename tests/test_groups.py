"""Consumer groups with real clients: confluent-kafka members in their own processes (so they can be
killed), rebalances on join, leave and crash, committed offsets that survive consumers, the broker
and a metastore leader, static membership, the cooperative-sticky assignor, and kafka-python."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient

import clients

MEMBER = Path(__file__).with_name("group_member.py")
PARTITIONS = 12
# No initial delay, so each test's first generation forms at once; the delay has its own unit test.
FAST_GROUPS = ("--group-initial-rebalance-delay-ms", "0")


def wait_for(cond, timeout, message, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Member:
    """A group_member.py process and the events it wrote."""

    def __init__(self, workdir: Path, name: str, bootstrap: str, group: str, topic: str, **config):
        self.name = name
        self.out = workdir / f"{name}.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, str(MEMBER), bootstrap, group, topic, str(self.out), json.dumps(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / f"{name}.stderr", "w"),
        )

    def events(self) -> list[dict]:
        try:
            lines = self.out.read_text().splitlines()
        except FileNotFoundError:
            return []
        # The last line may be half written by a member being killed.
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out

    def processed(self) -> list[tuple[int, int, str]]:
        return [(e["p"], e["o"], e["v"]) for e in self.events() if e["e"] == "msg"]

    def assigned(self) -> set[int]:
        """Partitions held now, from the rebalance callbacks (eager or cooperative)."""
        held: set[int] = set()
        for e in self.events():
            if e["e"] == "assign":
                held |= set(e["p"])
            elif e["e"] in ("revoke", "lost"):
                held -= set(e["p"])
        return held

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


class Load:
    """Produces a numbered record to each partition in turn, until stopped; keeps what was acked."""

    def __init__(self, bootstrap: str, topic: str, rate: float = 200.0):
        self.p = clients.producer(bootstrap, **{"linger.ms": 5})
        self.topic = topic
        self.rate = rate
        self.acked: dict[tuple[int, int], str] = {}
        self.failed = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _cb(self, err, msg):
        if err is None:
            self.acked[(msg.partition(), msg.offset())] = msg.value().decode()
        else:
            self.failed += 1

    def _run(self):
        n = 0
        while not self._stop.is_set():
            self.p.produce(self.topic, value=str(n).encode(), partition=n % PARTITIONS, on_delivery=self._cb)
            n += 1
            self.p.poll(0)
            time.sleep(1 / self.rate)
        self.p.flush(60)

    def stop(self):
        self._stop.set()
        self.thread.join(90)


def describe(admin: AdminClient, group: str):
    return admin.describe_consumer_groups([group])[group].result(timeout=15)


def stable_assignment(admin: AdminClient, group: str, members: int):
    """The broker's view once the group is Stable with `members` members: {member_id: partitions}.
    Checks that every partition is owned by exactly one member."""

    def check():
        try:
            d = describe(admin, group)
        except Exception:
            return None
        if d.state != ConsumerGroupState.STABLE or len(d.members) != members:
            return None
        owned = {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in d.members}
        every = sorted(p for ps in owned.values() for p in ps)
        if every != list(range(PARTITIONS)):
            return None
        return owned

    return wait_for(check, 60, f"a stable generation of {members} members owning each partition once")


@pytest.mark.timeout(300)
def test_members_join_leave_and_crash_and_every_record_is_processed(broker_factory, topic, tmp_path):
    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    group = "g-" + topic
    load = Load(broker.bootstrap, topic)
    start = lambda name: Member(tmp_path, name, broker.bootstrap, group, topic)  # noqa: E731

    members = [start(f"m{i}") for i in range(3)]
    stable_assignment(admin, group, 3)
    members.append(start("m3"))
    owned = stable_assignment(admin, group, 4)
    assert all(len(ps) == 3 for ps in owned.values()), owned

    # A clean close leaves the group at once.
    members[0].stop()
    stable_assignment(admin, group, 3)

    # A crash is noticed when its session times out (6 s), then its partitions move.
    killed = members[1]
    killed_held = killed.assigned()
    assert killed_held, "the member to kill owned partitions"
    killed_at = time.monotonic()
    killed.kill()
    stable_assignment(admin, group, 2)
    moved_after = time.monotonic() - killed_at
    print(f"\nkilled member's partitions moved after {moved_after:.1f} s")

    load.stop()
    assert load.failed == 0
    want = set(load.acked)
    survivors = members[2:]
    processed = lambda: {(p, o) for m in members for (p, o, _) in m.processed()}  # noqa: E731
    wait_for(lambda: want <= processed(), 60, "every acknowledged record to be processed")
    for m in survivors:
        m.stop()

    # Values are what was produced, at the offsets acknowledged.
    for m in members:
        for p, o, v in m.processed():
            if (p, o) in load.acked:
                assert load.acked[(p, o)] == v
    # Twice only where the killed member processed a record and died before committing it.
    seen: dict[tuple[int, int], list[str]] = {}
    for m in members:
        for p, o, _ in m.processed():
            seen.setdefault((p, o), []).append(m.name)
    twice = {k: who for k, who in seen.items() if len(who) > 1}
    allowed = {(p, o) for (p, o, _) in killed.processed()}
    # ...or where a rebalance took the partition before the commit (the rebalance window).
    for m in members:
        for e in m.events():
            if e["e"] == "commit_failed":
                allowed |= {tuple(x) for x in e["batch"]}
    unexplained = {k: who for k, who in twice.items() if k not in allowed}
    # Eager rebalances on join and leave commit before revoking: no duplicates from them.
    assert not unexplained, f"processed twice outside the crash: {sorted(unexplained.items())[:10]}"
    print(f"records: {len(want)} acknowledged, {len(twice)} processed twice (all by the killed member)")


def consume_and_commit(bootstrap: str, group: str, topic: str, count: int, **overrides):
    """A fresh group member: read `count` records, commit after processing, close. Returns them."""
    c = clients.consumer(
        bootstrap,
        **{
            "group.id": group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            # commit() commits the positions of what was consumed.
            "enable.auto.offset.store": True,
            **overrides,
        },
    )
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        for m in c.consume(num_messages=count - len(got), timeout=0.5):
            assert not m.error(), m.error()
            got.append((m.partition(), m.offset(), m.value()))
    c.commit(asynchronous=False)
    c.close()
    assert len(got) == count, f"read {len(got)} of {count}"
    return got


def produce_numbered(bootstrap: str, topic: str, first: int, count: int, partitions: int) -> None:
    p = clients.producer(bootstrap)
    d = clients.Deliveries()
    for n in range(first, first + count):
        clients.produce(p, topic, d, n, value=str(n).encode(), partition=n % partitions)
    clients.flush(p, d, count)
    assert not d.failed


@pytest.mark.timeout(240)
def test_committed_offsets_survive_consumers_and_a_broker_restart(broker_factory, topic):
    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, 3)
    produce_numbered(broker.bootstrap, topic, 0, 300, 3)
    group = "resume-" + topic

    first = consume_and_commit(broker.bootstrap, group, topic, 120)
    second = consume_and_commit(broker.bootstrap, group, topic, 90)
    broker.restart()
    third = consume_and_commit(broker.bootstrap, group, topic, 90)
    keys = [(p, o) for p, o, _ in first + second + third]
    assert len(set(keys)) == 300, "each record read once across the three runs"

    # The committed offsets are the ends of what was read.
    c = clients.consumer(broker.bootstrap, **{"group.id": group})
    committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
    c.close()
    assert [tp.offset for tp in committed] == [100, 100, 100]


@pytest.mark.timeout(300)
def test_committed_offsets_survive_the_metastore_leader(broker_factory, topic):
    q = broker_factory.quorum(nodes=3, agents=1, agent_args=FAST_GROUPS)
    (agent,) = q.agents
    clients.create_topic(agent.bootstrap, topic, 3)
    produce_numbered(agent.bootstrap, topic, 0, 150, 3)
    group = "quorum-" + topic
    first = consume_and_commit(agent.bootstrap, group, topic, 60)
    q.leader().kill9()
    q.leader()
    second = consume_and_commit(agent.bootstrap, group, topic, 90)
    assert len({(p, o) for p, o, _ in first + second}) == 150


@pytest.mark.timeout(240)
def test_a_restarted_static_member_keeps_its_partitions_without_a_rebalance(broker_factory, topic, tmp_path):
    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    group = "static-" + topic
    static = lambda name: Member(  # noqa: E731
        tmp_path, name, broker.bootstrap, group, topic, **{"group.instance.id": name}
    )
    a, b = static("a"), static("b")
    before = stable_assignment(admin, group, 2)
    wait_for(lambda: len(a.assigned()) + len(b.assigned()) == PARTITIONS, 30, "both to be assigned")
    a_events = len(a.events())
    b_held = b.assigned()

    # Static members send no LeaveGroup on close; the restart is well inside the 6 s session.
    b.stop()
    b2 = static("b")
    wait_for(lambda: b2.assigned(), 30, "the restarted member to get its partitions")
    after = stable_assignment(admin, group, 2)
    assert b2.assigned() == b_held
    assert sorted(after.values()) == sorted(before.values())
    time.sleep(2)
    rebalances = [e for e in a.events()[a_events:] if e["e"] in ("assign", "revoke", "lost")]
    assert not rebalances, f"the other member went through a rebalance: {rebalances}"
    a.stop()
    b2.stop()


@pytest.mark.timeout(240)
def test_cooperative_sticky_join_does_not_revoke_partitions_that_stay(broker_factory, topic, tmp_path):
    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    group = "coop-" + topic
    coop = lambda name: Member(  # noqa: E731
        tmp_path, name, broker.bootstrap, group, topic, **{"partition.assignment.strategy": "cooperative-sticky"}
    )
    a, b = coop("a"), coop("b")
    stable_assignment(admin, group, 2)
    wait_for(lambda: len(a.assigned()) + len(b.assigned()) == PARTITIONS, 30, "both to be assigned")
    held = {m.name: m.assigned() for m in (a, b)}
    marks = {m.name: len(m.events()) for m in (a, b)}

    c = coop("c")
    stable_assignment(admin, group, 3)
    wait_for(lambda: len(a.assigned()) + len(b.assigned()) + len(c.assigned()) == PARTITIONS, 30, "the third to be assigned")
    for m in (a, b):
        revoked = set()
        for e in m.events()[marks[m.name]:]:
            if e["e"] in ("revoke", "lost"):
                revoked |= set(e["p"])
        kept = m.assigned()
        assert kept <= held[m.name], f"{m.name} gained partitions it did not need"
        assert not (revoked & kept), f"{m.name} had partitions revoked that it kept: {revoked & kept}"
        assert revoked == held[m.name] - kept
    assert c.assigned() and c.assigned().isdisjoint(a.assigned() | b.assigned())
    for m in (a, b, c):
        m.stop()


@pytest.mark.timeout(180)
def test_kafka_python_group_consumer(broker_factory, topic):
    from kafka import KafkaConsumer

    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, 3)
    produce_numbered(broker.bootstrap, topic, 0, 60, 3)
    group = "kp-" + topic

    def run(count):
        c = KafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=20000,
        )
        got = []
        for m in c:
            got.append((m.partition, m.offset, m.value))
            if len(got) == count:
                break
        c.commit()
        c.close()
        return got

    first = run(30)
    second = run(30)
    assert len({(p, o) for p, o, _ in first + second}) == 60
    assert sorted(int(v) for _, _, v in first + second) == list(range(60))


@pytest.mark.timeout(240)
def test_kip_848_consumer_protocol_members_share_partitions(broker_factory, topic, tmp_path):
    broker = broker_factory.start(
        *FAST_GROUPS,
        "--group-consumer-heartbeat-interval-ms",
        "500",
        "--group-consumer-session-timeout-ms",
        "6000",
    )
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    produce_numbered(broker.bootstrap, topic, 0, 1200, PARTITIONS)
    group = "kip848-" + topic
    member = lambda name: Member(  # noqa: E731
        tmp_path, name, broker.bootstrap, group, topic, **{"group.protocol": "consumer"}
    )
    a = member("a")
    wait_for(lambda: len(a.assigned()) == PARTITIONS, 30, "the first member to get every partition")
    b = member("b")
    wait_for(
        lambda: len(a.assigned()) == len(b.assigned()) == PARTITIONS // 2,
        30,
        "the partitions to be shared evenly",
    )
    assert a.assigned().isdisjoint(b.assigned())
    # The broker's view (ConsumerGroupDescribe) agrees.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    d = describe(admin, group)
    owned = {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in d.members}
    assert sorted(p for ps in owned.values() for p in ps) == list(range(PARTITIONS)), owned

    processed = lambda: {(p, o) for m in (a, b) for (p, o, _) in m.processed()}  # noqa: E731
    wait_for(lambda: len(processed()) == 1200, 60, "every record to be processed")
    # One leaves: the other takes everything, and a restarted member resumes at the commits.
    a.stop()
    wait_for(lambda: len(b.assigned()) == PARTITIONS, 30, "the remaining member to get every partition")
    b.stop()
    produce_numbered(broker.bootstrap, topic, 1200, 120, PARTITIONS)
    c = member("c")
    wait_for(lambda: len(c.processed()) >= 120, 30, "the new records to be read")
    time.sleep(1)
    assert sorted(int(v) for _, _, v in c.processed()) == list(range(1200, 1320))
    c.stop()


@pytest.mark.timeout(180)
def test_consumer_lag_is_on_the_coordinators_metrics(broker_factory, topic):
    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, 2)
    produce_numbered(broker.bootstrap, topic, 0, 40, 2)
    group = "lag-" + topic
    consume_and_commit(broker.bootstrap, group, topic, 40)
    produce_numbered(broker.bootstrap, topic, 40, 6, 2)

    def lags():
        return {
            p: broker.metric("skiff_consumer_group_lag", group=group, topic=topic, partition=str(p))
            for p in range(2)
        }

    # Refreshed every 5 s.
    wait_for(lambda: lags() == {0: 3, 1: 3}, 30, f"lag 3 on each partition, saw {lags()}")
    assert broker.metric("skiff_consumer_group_committed_offset", group=group, topic=topic, partition="0") == 20


@pytest.mark.timeout(300)
def test_the_group_moves_when_its_coordinator_agent_dies(broker_factory, topic, tmp_path):
    q = broker_factory.quorum(nodes=1, agents=2, agent_args=(*FAST_GROUPS, "--session-timeout-ms", "3000"))
    first, second = q.agents
    clients.create_topic(first.bootstrap, topic, PARTITIONS)
    produce_numbered(first.bootstrap, topic, 0, 600, PARTITIONS)
    group = "failover-" + topic
    admin = AdminClient({"bootstrap.servers": f"{first.bootstrap},{second.bootstrap}"})
    members = [Member(tmp_path, f"m{i}", f"{first.bootstrap},{second.bootstrap}", group, topic) for i in range(2)]
    stable_assignment(admin, group, 2)
    wait_for(lambda: len({(p, o) for m in members for p, o, _ in m.processed()}) == 600, 60, "the first records")

    # Kill whichever agent coordinates the group; the members find the other one, rejoin there,
    # and carry on from the committed offsets.
    coordinator = admin.describe_consumer_groups([group])[group].result(15).coordinator
    dead = first if coordinator.port == int(first.bootstrap.split(":")[1]) else second
    alive = second if dead is first else first
    dead.kill9()
    produce_numbered(alive.bootstrap, topic, 600, 120, PARTITIONS)
    admin = AdminClient({"bootstrap.servers": alive.bootstrap})
    stable_assignment(admin, group, 2)
    wait_for(
        lambda: {int(v) for m in members for _, _, v in m.processed()} == set(range(720)),
        90,
        "every record, including those produced after the kill",
    )
    for m in members:
        m.stop()
    # Processed twice only inside the move: a member's commit refused by the new coordinator
    # (which knows no members yet) before it rejoined.
    seen: dict[tuple[int, int], int] = {}
    for m in members:
        for p, o, _ in m.processed():
            seen[(p, o)] = seen.get((p, o), 0) + 1
    refused = {tuple(x) for m in members for e in m.events() if e["e"] == "commit_failed" for x in e["batch"]}
    twice = {k for k, n in seen.items() if n > 1}
    assert twice <= refused, sorted(twice - refused)[:10]


@pytest.mark.timeout(180)
def test_admin_lists_deletes_offsets_and_deletes_groups(broker_factory, topic, tmp_path):
    from confluent_kafka import KafkaException

    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, 2)
    produce_numbered(broker.bootstrap, topic, 0, 20, 2)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    group = "admin-" + topic
    consume_and_commit(broker.bootstrap, group, topic, 20)

    listed = admin.list_consumer_groups().result(timeout=15)
    assert group in {g.group_id for g in listed.valid}

    # A group with a live member cannot be deleted.
    live = Member(tmp_path, "live", broker.bootstrap, group, topic)
    stable_assignment_of(admin, group, 1, 2)
    with pytest.raises(KafkaException) as e:
        admin.delete_consumer_groups([group])[group].result(timeout=15)
    assert "NON_EMPTY_GROUP" in str(e.value)
    live.stop()

    # One partition's offset goes (OffsetDelete, from kafka-python's admin client); then the
    # whole group.
    from kafka import TopicPartition as KpTopicPartition
    from kafka.admin import KafkaAdminClient

    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    result = kp.delete_group_offsets(group, [KpTopicPartition(topic, 0)])
    kp.close()
    assert all(err is None or getattr(err, "errno", 0) == 0 for err in result.values()), result
    c = clients.consumer(broker.bootstrap, **{"group.id": group})
    committed = c.committed([TopicPartition(topic, p) for p in range(2)], timeout=15)
    c.close()
    assert [tp.offset for tp in committed] == [-1001, 10]
    admin.delete_consumer_groups([group])[group].result(timeout=15)
    listed = admin.list_consumer_groups().result(timeout=15)
    assert group not in {g.group_id for g in listed.valid}


def stable_assignment_of(admin, group, members, partitions):
    def check():
        try:
            d = describe(admin, group)
        except Exception:
            return None
        owned = sorted(tp.partition for m in d.members for tp in m.assignment.topic_partitions)
        return d.state == ConsumerGroupState.STABLE and len(d.members) == members and owned == list(range(partitions))

    wait_for(check, 60, f"{group} stable with {members} members")
