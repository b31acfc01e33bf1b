"""A metastore quorum of three `skiff metastore` processes and agents (`skiff agent`) sharing one
object store. Every kill here is SIGKILL.

- The metastore leader dies while an idempotent producer writes to 8 partitions: producing
  resumes after an election, and every acknowledged record is there exactly once, in order.
- With two of three nodes down a produce fails with a retriable error (no hang, no ack), and
  succeeds once a quorum is back.
- A killed node restarted on its data dir catches up.
- An agent dies while producing through two agents: Metadata stops listing it after its session
  timeout, clients carry on through the other, nothing acknowledged is lost.
"""

import json
import time

import pytest


import clients
from conftest import wait_for
from load import PARTITIONS, Load, check_exactly_once


@pytest.mark.timeout(300)
def test_metastore_leader_killed_while_producing(broker_factory, topic):
    q = broker_factory.quorum(nodes=3, agents=2)
    writer, reader = q.agents
    clients.create_topic(writer.bootstrap, topic, PARTITIONS)

    load = Load(writer.bootstrap, topic)
    load.start()
    wait_for(lambda: len(load.ack_times) > 2000, 60, message="records acknowledged before the kill")
    leader = q.leader()
    killed_at = time.monotonic()
    leader.kill9()
    new_leader = q.leader()
    assert new_leader is not leader
    wait_for(lambda: len([t for t in load.ack_times if t > killed_at]) > 2000, 60, message="producing to resume")
    gap = load.largest_gap_after(killed_at)
    load.stop()
    print(f"\nmetastore leader killed: longest time without an acknowledgement {gap:.2f} s")
    assert gap < 30, f"producing stalled {gap:.1f} s after the leader died"

    # Read back through the other agent: it shares the object store and the metastore.
    check_exactly_once(reader.bootstrap, topic, load)

    # The new leader's /metrics says so, and lists both agents with fresh heartbeats.
    import urllib.request

    from conftest import cluster_tls_context, metric_value, parse_prometheus

    context = cluster_tls_context()  # set when tests/test_metastore_auth.py runs this over TLS
    scheme = "https" if context else "http"
    with urllib.request.urlopen(f"{scheme}://{new_leader.bootstrap}/metrics", timeout=10, context=context) as resp:
        samples = parse_prometheus(resp.read().decode())
    assert metric_value(samples, "skiff_metastore_raft_role", role="leader") == 1
    assert metric_value(samples, "skiff_metastore_raft_term") >= 2
    assert metric_value(samples, "skiff_metastore_agents_live") == 2
    ages = [v for (n, _), v in samples.items() if n == "skiff_metastore_agent_heartbeat_age_seconds"]
    assert len(ages) == 2 and all(0 <= a < 10 for a in ages), ages

    # The leader reports both other members' replication: the killed one far behind.
    lags = {dict(l)["node"]: v for (n, l), v in samples.items() if n == "skiff_metastore_raft_replication_lag"}
    assert set(lags) == {str(n.node_id) for n in q.nodes if n is not new_leader}, lags
    assert lags[str(leader.node_id)] > 0, lags

    # The killed node comes back on its data dir and catches up with the leader.
    leader.start()
    target = new_leader.status()["last_applied"]
    wait_for(
        lambda: (leader.status() or {}).get("last_applied", -1) >= target,
        60,
        message="the restarted node to catch up",
    )
    wait_for(
        lambda: (new_leader.status()["replication"].get(str(leader.node_id)) or -1) >= target,
        60,
        message="the leader to see the restarted node caught up",
    )


@pytest.mark.timeout(300)
def test_without_a_quorum_produce_fails_retriably_then_recovers(broker_factory, topic):
    q = broker_factory.quorum(nodes=3, agents=1)
    (agent,) = q.agents
    clients.create_topic(agent.bootstrap, topic, 1)
    p = clients.producer(agent.bootstrap, **{"message.timeout.ms": 120000})
    d = clients.Deliveries()
    clients.produce(p, topic, d, 0, value=b"before", partition=0)
    clients.flush(p, d, 1)
    assert not d.failed

    leader = q.leader()
    down = [n for n in q.nodes if n is not leader]
    for n in down:
        n.kill9()

    # librdkafka retries a retriable error until message.timeout.ms: with a short one, the
    # record must fail (never be acknowledged) and the request must be answered, not hang.
    short = clients.producer(
        agent.bootstrap, **{"message.timeout.ms": 20000, "request.timeout.ms": 15000, "enable.idempotence": False}
    )
    d2 = clients.Deliveries()
    started = time.monotonic()
    clients.produce(short, topic, d2, 1, value=b"no quorum", partition=0)
    short.flush(60)
    assert d2.count == 1 and not d2.ok and d2.failed, "a record was acknowledged without a quorum"
    assert time.monotonic() - started < 45

    # A quorum again: the record that was retried all along is acknowledged, once.
    down[0].start()
    clients.produce(p, topic, d, 2, value=b"after", partition=0)
    clients.flush(p, d, 2, timeout=60)
    assert not d.failed, d.failed
    got = clients.read_partitions(agent.bootstrap, topic, {0: clients.watermarks(agent.bootstrap, topic, 0)[1]})[0]
    values = [m.value() for m in got]
    assert values[0] == b"before" and values[-1] == b"after"
    # The record that failed was never acknowledged, but its proposals were in the old leader's
    # log and commit once a quorum is back: like Kafka, an unacknowledged record of a
    # non-idempotent producer may be written, once per retry. Nothing else may appear.
    assert set(values[1:-1]) <= {b"no quorum"}, values


def brokers_listed(bootstrap: str) -> set[int]:
    """The agents one agent's Metadata lists (asked of that agent alone)."""
    return clients.agents_listed(bootstrap)


@pytest.mark.timeout(300)
def test_agent_killed_while_producing(broker_factory, topic):
    q = broker_factory.quorum(nodes=3, agents=2, agent_args=("--session-timeout-ms", "3000"))
    a0, a1 = q.agents
    # Both agents are brokers, whichever one is asked.
    wait_for(lambda: brokers_listed(a0.bootstrap) == brokers_listed(a1.bootstrap) == {0, 1}, 30, message="2 brokers")
    clients.create_topic(a0.bootstrap, topic, PARTITIONS)

    load = Load(f"{a0.bootstrap},{a1.bootstrap}", topic)
    load.start()
    wait_for(lambda: len(load.ack_times) > 2000, 60, message="records acknowledged before the kill")
    killed_at = time.monotonic()
    a1.kill9()
    # The survivor stops listing the dead agent once its session is over...
    wait_for(lambda: brokers_listed(a0.bootstrap) == {0}, 30, message="the dead agent to leave the brokers")
    # ...and every partition, those the dead agent led included, is written again.
    def acked_everywhere_after_kill():
        seen = {p for p, acked in load.d.ok.items() for o, i in acked if i >= load.sent_at_kill}
        return seen == set(range(PARTITIONS))

    load.sent_at_kill = load.sent
    wait_for(acked_everywhere_after_kill, 90, interval=0.1, message="every partition to be written after the kill")
    every_partition_after = time.monotonic() - killed_at
    gap = load.largest_gap_after(killed_at)
    load.stop()
    print(
        f"\nagent killed (session timeout 3 s): every partition written again {every_partition_after:.2f} s later; "
        f"longest time without any acknowledgement {gap:.2f} s"
    )
    check_exactly_once(a0.bootstrap, topic, load)


@pytest.mark.timeout(300)
def test_a_node_added_empty_catches_up_from_a_snapshot(broker_factory, topic):
    q = broker_factory.quorum(nodes=3, agents=1, node_args=("--snapshot-every", "100"))
    (agent,) = q.agents
    clients.create_topic(agent.bootstrap, topic, 2)
    p = clients.producer(agent.bootstrap, **{"linger.ms": 0, "enable.idempotence": False})
    # Enough log entries (one commit per flush window, plus heartbeats) for snapshots and purges.
    leader = q.leader()
    d = clients.Deliveries()
    n = 0
    while (leader.status() or {}).get("purged_index") is None:
        clients.produce(p, topic, d, n, value=b"v%d" % n, partition=n % 2)
        clients.flush(p, d, n + 1)
        n += 1
        assert n < 2000, "the leader never purged its log"
    purged = leader.status()["purged_index"]

    new = q.start_empty_node(4)
    q.admin("add-node", "--at", q.nodes[0].bootstrap, "--id", "4", "--addr", new.bootstrap)
    assert "4" in json.loads(q.admin("status", "--at", q.leader().bootstrap))["voters"]
    target = leader.status()["last_applied"]
    wait_for(
        lambda: (new.status() or {}).get("last_applied", -1) >= target,
        60,
        message="the new node to catch up",
    )
    status = json.loads(q.admin("status", "--at", new.bootstrap))
    assert status["snapshot_index"] is not None and status["snapshot_index"] >= purged, (
        f"the new node must have been sent a snapshot covering the purged log: {status}"
    )

    q.admin("remove-node", "--at", q.nodes[0].bootstrap, "--id", "4")
    assert "4" not in json.loads(q.admin("status", "--at", q.leader().bootstrap))["voters"]
    # Still serving with three voters.
    clients.produce(p, topic, d, n, value=b"after", partition=0)
    clients.flush(p, d, n + 1)
    assert not d.failed, d.failed
