"""Transactions seen by operators: DescribeTransactions and ListTransactions (KIP-664, KIP-994)
through kafka-python's admin client and hand-built requests, and `skiff transactions
list|describe|abort` against a running cluster.

- DescribeTransactions: an ongoing transaction's state, producer, timeout and partitions by topic
  name; a finished one's state; an unknown id TRANSACTIONAL_ID_NOT_FOUND, an empty one
  INVALID_REQUEST.
- ListTransactions: every id once across the agents (each lists the ids it coordinates), filtered
  by state, producer id and (v1) duration; an unknown state filter is answered back and matches
  nothing.
- `skiff transactions abort` ends a hung transaction at once: the last stable offset moves past it,
  read_committed consumers proceed, and its producer is fenced.
"""

from __future__ import annotations

import subprocess

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import clients
import kafka_wire
from conftest import skiff_bin, wait_for

TRANSACTIONAL_ID_NOT_FOUND = 105
INVALID_REQUEST = 42


def txn_producer(bootstrap: str, tid: str, **conf) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5, "log_level": 0, **conf})
    p.init_transactions(30)
    return p


def open_transaction(bootstrap: str, topic: str, tid: str, partitions, **conf) -> Producer:
    """A producer of `tid` inside a transaction that wrote one record to each of `partitions`."""
    p = txn_producer(bootstrap, tid, **conf)
    p.begin_transaction()
    for part in partitions:
        p.produce(topic, value=b"v", partition=part)
    assert p.flush(30) == 0
    return p


def lso_and_hw(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    out = []
    for iso in ("read_committed", "read_uncommitted"):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso", "isolation.level": iso, "log_level": 0})
        try:
            out.append(c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1])
        finally:
            c.close()
    return out[0], out[1]


def test_describe_and_list_transactions(broker, topic):
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TransactionalIdNotFoundError

    clients.create_topic(broker.bootstrap, topic, 3)
    ongoing = open_transaction(broker.bootstrap, topic, f"{topic}-ongoing", [0, 2], **{"transaction.timeout.ms": 50000})
    done = open_transaction(broker.bootstrap, topic, f"{topic}-done", [1])
    done.commit_transaction(30)

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        d = admin.describe_transactions([f"{topic}-ongoing", f"{topic}-done"])
        o = d[f"{topic}-ongoing"]
        assert o.state == "Ongoing"
        assert o.transaction_timeout_ms == 50000
        assert o.transaction_start_time_ms > 0
        assert {(tp.topic, tp.partition) for tp in o.topic_partitions} == {(topic, 0), (topic, 2)}
        c = d[f"{topic}-done"]
        assert c.state == "CompleteCommit" and not c.topic_partitions
        assert c.producer_id != o.producer_id
        with pytest.raises(TransactionalIdNotFoundError):
            admin.describe_transactions([f"{topic}-never"])

        def listed(**kw) -> dict[str, tuple[int, str]]:
            rows = [row for per_broker in admin.list_transactions(**kw).values() for row in per_broker]
            ids = [r.transactional_id for r in rows]
            assert len(ids) == len(set(ids)), f"an id listed twice: {ids}"
            return {r.transactional_id: (r.producer_id, r.state) for r in rows if r.transactional_id.startswith(topic)}

        assert listed() == {
            f"{topic}-ongoing": (o.producer_id, "Ongoing"),
            f"{topic}-done": (c.producer_id, "CompleteCommit"),
        }
        assert set(listed(state_filters=["CompleteCommit"])) == {f"{topic}-done"}
        assert set(listed(producer_id_filters=[o.producer_id])) == {f"{topic}-ongoing"}
        # v1's duration filter: only ongoing transactions that have run longer than it.
        assert set(listed(duration_filter_ms=0)) == {f"{topic}-ongoing"}
        assert listed(duration_filter_ms=3_600_000) == {}
    finally:
        admin.close()

    # What kafka-python does not show: unknown state filters answered back, the empty id.
    with kafka_wire.Conn(broker.bootstrap) as conn:
        error, unknown, states = kafka_wire.parse_list_transactions(
            conn.roundtrip(kafka_wire.list_transactions_request(1, states=["Bogus"]))
        )
        assert (error, unknown, states) == (0, ["Bogus"], [])
        error, unknown, states = kafka_wire.parse_list_transactions(
            conn.roundtrip(kafka_wire.list_transactions_request(2, states=["Bogus", "Ongoing"], version=0))
        )
        assert error == 0 and unknown == ["Bogus"]
        assert [s for s in states if s[0].startswith(topic)] == [(f"{topic}-ongoing", o.producer_id, "Ongoing")]
        got = kafka_wire.parse_describe_transactions(
            conn.roundtrip(kafka_wire.describe_transactions_request(["", f"{topic}-never", f"{topic}-ongoing"], 3))
        )
        assert [t["error_code"] for t in got] == [INVALID_REQUEST, TRANSACTIONAL_ID_NOT_FOUND, 0]
        assert got[2]["topics"] == {topic: [0, 2]} and got[2]["state"] == "Ongoing"
    ongoing.abort_transaction(30)


def test_list_transactions_once_across_agents(broker_factory, topic):
    from kafka.admin import KafkaAdminClient

    q = broker_factory.quorum(nodes=1, agents=2)
    bootstrap = ",".join(a.bootstrap for a in q.agents)
    clients.create_topic(bootstrap, topic, 2)
    ids = [f"{topic}-{i}" for i in range(8)]
    for tid in ids:
        p = open_transaction(bootstrap, topic, tid, [0])
        p.commit_transaction(30)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        def every_id_once():
            per_broker = admin.list_transactions()
            got = sorted(r.transactional_id for rows in per_broker.values() for r in rows if r.transactional_id.startswith(topic))
            return per_broker if got == ids else None

        # Each agent lists the ids it coordinates: all of them once, spread over both.
        per_broker = wait_for(every_id_once, 30, message="every id listed once")
        assert sum(1 for rows in per_broker.values() if rows) == 2, per_broker
    finally:
        admin.close()


def skiff_transactions(metastore: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(skiff_bin()), "transactions", *args, "--metastore", metastore],
        capture_output=True, text=True, timeout=60,
    )


def test_cli_lists_describes_and_aborts_a_hung_transaction(broker_factory, topic):
    q = broker_factory.quorum(nodes=1, agents=1)
    bootstrap = q.agents[0].bootstrap
    clients.create_topic(bootstrap, topic, 2)
    tid = f"{topic}-hung"
    # A transaction that would hold read_committed readers back for 10 minutes.
    hung = open_transaction(bootstrap, topic, tid, [1], **{"transaction.timeout.ms": 600000})
    after = clients.producer(bootstrap)
    after.produce(topic, value=b"after", partition=1)
    assert after.flush(30) == 0
    lso, hw = lso_and_hw(bootstrap, topic, 1)
    assert (lso, hw) == (0, 2)
    # The agent's cleanup pass (every 10 s by default) reports the open transaction and the
    # records read_committed consumers wait behind on the partition it wrote to.
    agent = q.agents[0]
    wait_for(
        lambda: agent.metric("skiff_transactions_open") == 1
        and agent.metric("skiff_partition_lso_lag_records", topic=topic, partition="1") == 2,
        30, interval=0.5, message="the open transaction and its LSO lag on /metrics",
    )

    out = skiff_transactions(q.metastore, "list")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert rows[0] == ["TransactionalId", "ProducerId", "TransactionState", "TransactionDurationMs"]
    row = next(r for r in rows[1:] if r[0] == tid)
    assert row[2] == "Ongoing" and int(row[3]) >= 0

    out = skiff_transactions(q.metastore, "describe", "--transactional-id", tid)
    assert out.returncode == 0, out.stderr
    described = out.stdout.splitlines()[1].split()
    assert described[0] == tid and described[3] == "Ongoing" and described[4] == "600000"
    assert described[7] == f"{topic}-1"

    out = skiff_transactions(q.metastore, "abort", "--transactional-id", tid)
    assert out.returncode == 0, out.stderr
    assert "aborted" in out.stdout
    # The last stable offset moves past the marker at once, and a read_committed reader gets the
    # record after the transaction and nothing of it.
    lso, hw = lso_and_hw(bootstrap, topic, 1)
    assert lso == hw == 3
    wait_for(
        lambda: agent.metric("skiff_transactions_open") == 0
        and not any(n == "skiff_partition_lso_lag_records" for n, _ in agent.metrics()),
        30, interval=0.5, message="no open transaction on /metrics",
    )
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "isolation.level": "read_committed",
                  "enable.partition.eof": True, "log_level": 0})
    c.assign([TopicPartition(topic, 1, 0)])
    values = []
    while True:
        m = c.poll(10)
        assert m is not None, "no end of partition"
        if m.error():
            break
        values.append(m.value())
    c.close()
    assert values == [b"after"]
    # The producer is fenced: its commit fails, fatally.
    with pytest.raises(KafkaException) as e:
        hung.commit_transaction(30)
    assert e.value.args[0].fatal() or e.value.args[0].txn_requires_abort(), e.value

    out = skiff_transactions(q.metastore, "describe", "--transactional-id", tid)
    assert out.stdout.splitlines()[1].split()[3] == "CompleteAbort"
    out = skiff_transactions(q.metastore, "abort", "--transactional-id", tid)
    assert out.returncode == 1 and "no ongoing transaction" in out.stderr
    out = skiff_transactions(q.metastore, "describe", "--transactional-id", f"{topic}-never")
    assert out.returncode == 1 and "not found" in out.stderr
