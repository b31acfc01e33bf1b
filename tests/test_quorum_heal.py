"""A quorum whose state is larger than any one request heals: nodes added empty, a follower down
past the purged log and a node killed while it receives a snapshot all catch up from snapshots of
tens of MiB, and `skiff metastore add-node` makes a node a voter only once it has caught up.

The state is made large cheaply: consumer groups commit offsets with 4,000-byte metadata on
hundreds of partitions (3.2 MB a commit), next to ordinary produced records, which are read
back at the end through an agent that knows only the nodes added during the test.
"""

import json
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition

import clients
from conftest import skiff_bin, wait_for

BULK_PARTITIONS = 800
METADATA = "m" * 4000
MIB = 1 << 20


def fill_state(agent, bulk_topic: str, groups: range) -> None:
    """Commits offsets with large metadata for each group: about 3.2 MB of state a group, in
    requests under the agent's 1 MiB limit for anything but Produce."""
    for g in groups:
        c = clients.consumer(agent.bootstrap, **{"group.id": f"bulk-{g}"})
        try:
            for first in range(0, BULK_PARTITIONS, 200):
                offsets = [TopicPartition(bulk_topic, p, 1, METADATA) for p in range(first, first + 200)]
                c.commit(offsets=offsets, asynchronous=False)
        finally:
            c.close()


def produce_until(p, topic, d, n, done, limit, what):
    """Produces one record at a time to `topic` until `done()`; returns the records produced."""
    while not done():
        clients.produce(p, topic, d, n, value=b"v%d" % n, partition=n % 2)
        clients.flush(p, d, n + 1)
        n += 1
        assert n < limit, f"{what} never happened"
    return n


def add_node(q, node, *extra) -> subprocess.Popen:
    at = next(x for x in q.nodes if x.running and x is not node)
    return subprocess.Popen(
        [str(skiff_bin()), "metastore", "add-node", "--at", at.bootstrap,
         "--id", str(node.node_id), "--addr", node.bootstrap, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"add-node failed ({proc.returncode}): {err[-2000:]}"
    return out


def lead(q):
    """The leader, as the running members see it; nodes started but not added yet know of none,
    and nodes removed from the membership are not asked."""

    def find():
        views = [x.status() for x in q.nodes if x.running]
        views = [v for v in views if v is not None and str(v["id"]) in v["voters"]]
        leaders = {v["leader"] for v in views if v["leader"] is not None}
        if len(leaders) == 1:
            (lid,) = leaders
            return next((x for x in q.nodes if x.node_id == lid and x.running), None)
        return None

    return wait_for(find, 30, interval=0.1, message="one metastore leader")


def voters(q) -> set[str]:
    return set(lead(q).status()["voters"])


@pytest.mark.timeout(600)
def test_quorum_heals_with_a_state_larger_than_a_request(broker_factory, topic):
    # Snapshots after 50 entries and 10% of the state's size in new commands, so a few MB of
    # writes move the log past a snapshot.
    q = broker_factory.quorum(
        nodes=3, agents=1, node_args=("--snapshot-every", "50", "--snapshot-log-ratio", "0.1")
    )
    (agent,) = q.agents
    clients.create_topic(agent.bootstrap, topic, 2)
    bulk = f"{topic}-bulk"
    clients.create_topic(agent.bootstrap, bulk, BULK_PARTITIONS)
    fill_state(agent, bulk, range(7))

    # Enough commits after the bulk for a snapshot that holds it, and a purged log behind it.
    p = clients.producer(agent.bootstrap, **{"linger.ms": 0, "enable.idempotence": False})
    d = clients.Deliveries()
    leader = lead(q)
    n = produce_until(
        p, topic, d, 0,
        lambda: (leader.status() or {}).get("snapshot_bytes", 0) >= 20 * MIB
        and (leader.status() or {}).get("purged_index") is not None,
        3000, "a snapshot of 20 MiB with a purged log",
    )
    snapshot_bytes = leader.status()["snapshot_bytes"]
    print(f"\nstate: snapshot of {snapshot_bytes / MIB:.1f} MiB")

    # An empty node added with add-node: it returns once the node has caught up, and says how far
    # it got on the way.
    before = lead(q).status()["last_log_index"]
    four = q.start_empty_node(4)
    started = time.monotonic()
    out = finished(add_node(q, four))
    print(f"node 4 added in {time.monotonic() - started:.1f} s:\n{out}")
    assert "node 4 added: caught up and promoted to voter" in out, out
    assert "4" in voters(q)
    assert (lead(q).status()["replication"].get("4") or -1) >= before
    status = four.status()
    assert status["snapshot_index"] is not None, status
    assert status["snapshot_bytes"] >= 20 * MIB, status

    # A follower down while the log moves past a snapshot and is purged comes back from one.
    leader = lead(q)
    follower = next(x for x in q.nodes[:3] if x is not leader)
    follower.kill9()
    down_at = leader.status()["last_log_index"]
    fill_state(agent, bulk, range(7, 9))
    n = produce_until(
        p, topic, d, n,
        lambda: (lead(q).status() or {}).get("purged_index", -1) > down_at,
        3000, "a purge past the stopped follower",
    )
    follower.start()
    target = lead(q).status()["last_applied"]
    wait_for(lambda: ((follower.status() or {}).get("last_applied") or -1) >= target, 120,
             message="the follower down past the purge to catch up")
    assert follower.status()["snapshot_index"] > down_at

    # A node killed while it receives a snapshot retries once restarted; add-node is still
    # waiting for it and returns once it has caught up.
    five = q.start_empty_node(5)
    proc = add_node(q, five)
    wait_for(lambda: "5" in (lead(q).status() or {}).get("snapshot_sent", {}), 60, interval=0.01,
             message="a snapshot on its way to node 5")
    five.kill9()
    five.start()
    out = finished(proc)
    assert "receiving a snapshot" in out, out
    assert "5" in voters(q)

    # The leader killed while a snapshot is on its way: the new leader carries on sending to the
    # learner, and add-node run again promotes it.
    six = q.start_empty_node(6)
    proc = add_node(q, six)
    old = lead(q)
    wait_for(lambda: "6" in (old.status() or {}).get("snapshot_sent", {}), 60, interval=0.01,
             message="a snapshot on its way to node 6")
    old.kill9()
    proc.wait(timeout=60)
    new = lead(q)
    assert new is not old
    target = new.status()["last_applied"]
    wait_for(lambda: ((six.status() or {}).get("last_applied") or -1) >= target, 120,
             message="node 6 to catch up from the new leader")
    finished(add_node(q, six))
    assert "6" in voters(q)

    # The three original nodes leave: the quorum is now only nodes that joined empty. Every
    # record produced reads back through an agent that knows only them, and the groups' offsets
    # are there with their metadata.
    for original in q.nodes[:3]:
        q.admin("remove-node", "--at", lead(q).bootstrap, "--id", str(original.node_id))
    assert voters(q) == {"4", "5", "6"}
    # The first agent knows only the original nodes: an operator replacing them all points the
    # agents at the new ones; here a new agent takes its place.
    agent.stop()
    from conftest import RemoteAgent

    via = ",".join(x.bootstrap for x in (four, five, six))
    reader = RemoteAgent(q.factory.base / "reader", via, q.store, "reader")
    q.factory.brokers.append(reader)
    reader.start()
    ends = {0: (n + 1) // 2, 1: n // 2}
    got = clients.read_partitions(reader.bootstrap, topic, ends)
    assert [m.value() for m in got[0]] == [b"v%d" % i for i in range(0, n, 2)]
    assert [m.value() for m in got[1]] == [b"v%d" % i for i in range(1, n, 2)]
    c = clients.consumer(reader.bootstrap, **{"group.id": "bulk-8"})
    try:
        committed = c.committed([TopicPartition(bulk, 0), TopicPartition(bulk, 799)], timeout=30)
    finally:
        c.close()
    assert [(t.offset, t.metadata) for t in committed] == [(1, METADATA), (1, METADATA)]
