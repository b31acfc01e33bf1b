"""The transactional history checker (tests/txn_history.py): first on hand-made histories, one per
anomaly kind, to prove it catches each; then the workload against Skiff, plain and under faults,
with 0 anomalies:

- plain: one `skiff dev`;
- kill -9 of the agent a producer bootstraps from (and restart), 3 agents on a 3-node quorum;
- kill -9 of the agent coordinating the producers' transactions (FindCoordinator, key type 1);
- kill -9 of the metastore leader of the 3-node quorum (and restart);
- 5% of object-store PUTs and GETs failing, on the S3 server (tests/s3server.py).

Each run writes for SKIFF_TXN_HISTORY_SECONDS (default 20) and then drains, bounded by timeouts.
"""

from __future__ import annotations

import os
import time

import pytest

import clients
import kafka_wire
from conftest import TEST_BUCKET, Broker, S3Store, shared_s3_server, wait_for
from txn_history import (
    ABORTED,
    COMMITTED,
    KINDS,
    TIMED_OUT,
    UNKNOWN,
    History,
    Txn,
    Workload,
    check,
    input_value,
    output_value,
)

SECONDS = float(os.environ.get("SKIFF_TXN_HISTORY_SECONDS", "20"))
PARTITIONS = 4


# --- the checker on hand-made histories ---------------------------------------------------------
def txn(tid: str, no: int, parts: list[int], outcome: str) -> Txn:
    n = len(parts)
    return Txn(tid, no, [(p, input_value(tid, no, i, n)) for i, p in enumerate(parts)], outcome)


def layout(txns: list[Txn], skip=()) -> dict[int, list[tuple[int, str]]]:
    """The records of `txns` in order, one partition each, offsets from 0 (`skip`: values left out)."""
    out: dict[int, list[tuple[int, str]]] = {p: [] for p in range(PARTITIONS)}
    for t in txns:
        for p, v in t.records:
            if v not in skip:
                out[p].append((len(out[p]), v))
    return out


def clean_history():
    """A clean run: two producers (one with two generations), transactions of every outcome over
    two partitions, and one processor transaction per partition made of its committed input.
    Returns the history and the reads: input read_committed, read_uncommitted, output."""
    h = History()
    ts = [
        txn("p0.0", 1, [0, 1, 0], COMMITTED),
        txn("p0.0", 2, [1], ABORTED),
        txn("p1.0", 1, [1, 0], COMMITTED),
        txn("p1.0", 2, [0], TIMED_OUT),
        txn("p1.1", 3, [1], UNKNOWN),  # it did commit
    ]
    h.txns += ts
    ui = layout(ts)
    hidden = {v for t in ts if t.outcome in (ABORTED, TIMED_OUT) for _, v in t.records}
    ci = {p: [(o, v) for o, v in recs if v not in hidden] for p, recs in ui.items()}
    co = {}
    for p, recs in ci.items():
        t = Txn("c0.0", p + 1, [], COMMITTED, processor=True)
        t.records = [(p, output_value(t.tid, t.no, j, len(recs), p, off, v)) for j, (off, v) in enumerate(recs)]
        if t.records:
            h.txns.append(t)
        co[p] = [(j, v) for j, (_, v) in enumerate(t.records)]
    return h, ci, ui, co


def copy(reads):
    return {p: list(r) for p, r in reads.items()}


def test_checker_passes_a_clean_history():
    h, ci, ui, co = clean_history()
    r = check(h, ci, ui, co, co, {"in": {0: (5, 5)}})
    print("\n" + r.summary())
    assert r.anomalies == []
    assert (r.outcomes[COMMITTED], r.outcomes[ABORTED], r.outcomes[TIMED_OUT], r.outcomes[UNKNOWN]) == (2, 1, 1, 1)
    assert r.records["input read_committed"] == 6 and r.records["output read_committed"] == 6


def kinds_of(r) -> set[str]:
    return set(r.by_kind())


def test_checker_catches_each_anomaly_kind():
    found: dict[str, set[str]] = {}

    def run(kind, h, ci, ui, co=None, stable=None):
        found[kind] = kinds_of(check(h, ci, ui, co, co, stable))

    def aborted_record(h, ui):
        t = next(t for t in h.txns if t.outcome == ABORTED)
        p, v = t.records[0]
        return p, next(o for o, w in ui[p] if w == v), v

    # aborted-read: an aborted transaction's record shows to read_committed.
    h, ci, ui, co = clean_history()
    p, off, v = aborted_record(h, ui)
    bad = copy(ci)
    bad[p] = sorted(bad[p] + [(off, v)])
    run("aborted-read", h, bad, ui)

    # torn-txn: one record of a committed transaction over two partitions is missing.
    h, ci, ui, co = clean_history()
    gone = h.txns[0].records[1][1]
    run("torn-txn", h, {p: [x for x in r if x[1] != gone] for p, r in ci.items()}, ui)

    # lost-write: an acknowledged commit, nothing of it visible.
    h, ci, ui, co = clean_history()
    gone = {v for _, v in h.txns[2].records}
    run("lost-write", h, {p: [x for x in r if x[1] not in gone] for p, r in ci.items()}, ui)

    # lost-write, record by record: an acknowledged record of an aborted transaction that
    # read_uncommitted does not find where its delivery report said.
    h, ci, ui, co = clean_history()
    aborted = next(t for t in h.txns if t.outcome == ABORTED)
    p, v = aborted.records[0]
    aborted.acked[v] = (p, next(o for o, w in ui[p] if w == v))
    assert check(h, ci, ui).anomalies == []
    missing = {q: [x for x in r if x[1] != v] for q, r in ui.items()}
    assert kinds_of(check(h, ci, missing)) == {"lost-write"}

    # duplicate: a record visible twice.
    h, ci, ui, co = clean_history()
    bad = copy(ci)
    bad[0].append((99, bad[0][0][1]))
    run("duplicate", h, bad, None)

    # phantom: a record no client wrote.
    h, ci, ui, co = clean_history()
    bad = copy(ci)
    bad[2].append((0, input_value("p9.0", 1, 0, 1)))
    run("phantom", h, bad, None)

    # order: one producer's records swapped in a partition.
    h, ci, ui, co = clean_history()
    bad = copy(ci)
    (o1, v1), (o2, v2) = bad[0][0], bad[0][1]
    bad[0][0], bad[0][1] = (o1, v2), (o2, v1)
    run("order", h, bad, None)

    # unprocessed: partition 1's processor transaction never happened.
    h, ci, ui, co = clean_history()
    h.txns = [t for t in h.txns if not (t.processor and t.no == 2)]
    bad = copy(co)
    bad[1] = []
    run("unprocessed", h, ci, ui, bad)

    # processed-twice: a second processor made an output of an input already processed.
    h, ci, ui, co = clean_history()
    off, v = ci[0][0]
    again = output_value("c1.0", 1, 0, 1, 0, off, v)
    h.txns.append(Txn("c1.0", 1, [(0, again)], COMMITTED, processor=True))
    bad = copy(co)
    bad[0].append((len(bad[0]), again))
    run("processed-twice", h, ci, ui, bad)

    # bad-output: made from an input that is not committed there (an aborted record).
    h, ci, ui, co = clean_history()
    p, off, v = aborted_record(h, ui)
    made = output_value("c1.0", 1, 0, 1, p, off, v)
    h.txns.append(Txn("c1.0", 1, [(p, made)], COMMITTED, processor=True))
    bad = copy(co)
    bad[p].append((len(bad[p]), made))
    run("bad-output", h, ci, ui, bad)

    # uncommitted-missing: read_uncommitted lacks what read_committed shows.
    h, ci, ui, co = clean_history()
    run("uncommitted-missing", h, ci, {p: r[1:] if p == 0 else r for p, r in ui.items()})

    # hanging-txn: a last stable offset stuck below its high watermark.
    h, ci, ui, co = clean_history()
    run("hanging-txn", h, ci, ui, None, {"in": {0: (3, 5)}})

    assert set(found) == set(KINDS), set(KINDS) ^ set(found)
    for kind, got in found.items():
        assert kind in got, f"{kind}: the checker found {sorted(got)}"


def test_checker_judges_unknown_outcomes_all_or_nothing():
    h = History()
    u = txn("p0.0", 1, [0, 1], UNKNOWN)
    h.txns.append(u)
    none = {p: [] for p in range(PARTITIONS)}
    both = layout([u])
    half = layout([u], skip={u.records[1][1]})
    assert check(h, none, both).anomalies == []
    assert check(h, both, both).anomalies == []
    assert kinds_of(check(h, half, both)) == {"torn-txn"}


# --- the workload against Skiff -----------------------------------------------------------------
def txn_coordinator(bootstrap: str, transactional_id: str) -> str:
    """host:port of the agent FindCoordinator (key type 1) names for a transactional id."""
    with kafka_wire.Conn(bootstrap) as conn:
        payload = conn.roundtrip(kafka_wire.find_coordinator_v1_request(transactional_id, 1, 7))
    r = kafka_wire.parse_find_coordinator_v1(payload)
    assert r["error_code"] == 0, f"FindCoordinator for {transactional_id!r}: {r}"
    return f"{r['host']}:{r['port']}"


def run_and_check(bootstrap: str, topic: str, during=None, **kw) -> None:
    clients.create_topic(bootstrap, f"{topic}-in", PARTITIONS)
    clients.create_topic(bootstrap, f"{topic}-out", PARTITIONS)
    w = Workload(bootstrap, f"{topic}-in", f"{topic}-out", partitions=PARTITIONS, seconds=SECONDS, **kw)
    result = w.run(during)
    print("\n" + result.summary())
    if w.producer_errors or w.processor_errors:
        print(f"client errors (producers {len(w.producer_errors)}, processors {len(w.processor_errors)}), first: "
              f"{(w.producer_errors + w.processor_errors)[:5]}")
    assert result.outcomes[COMMITTED] > 10, "too few transactions committed: the run tested little"
    assert result.outcomes[ABORTED] > 0
    assert result.processor_outcomes[COMMITTED] > 0
    assert result.anomalies == [], result.summary()
    return result


class Fault:
    """Kills `victim()` with SIGKILL at `at` seconds into the run and starts it again `down` seconds
    later. Both from the test's main thread (the workload calls it there): a process started by
    another thread would die with that thread (conftest's PR_SET_PDEATHSIG)."""

    def __init__(self, victim, at: float = SECONDS / 3, down: float = 3.0):
        assert at + down < SECONDS, "the victim must be back before the run ends"
        self.victim, self.at, self.down = victim, at, down
        self.killed = None
        self.restarted = False

    def __call__(self, elapsed: float) -> None:
        if self.killed is None and elapsed >= self.at:
            self.killed = self.victim()
            self.killed.kill9()
        elif self.killed is not None and not self.restarted and elapsed >= self.at + self.down:
            self.killed.start()
            self.restarted = True


@pytest.mark.timeout(int(SECONDS) + 300)
def test_history_plain(broker, topic):
    run_and_check(broker.bootstrap, topic)


def cluster(broker_factory, agents: int = 3):
    q = broker_factory.quorum(nodes=3, agents=agents, agent_args=("--session-timeout-ms", "3000"))
    wait_for(lambda: len(clients_brokers(q.agents[0].bootstrap)) == agents, 30, message=f"{agents} brokers")
    return q


def clients_brokers(bootstrap: str) -> set[int]:
    """The agents librdkafka is told of."""
    return clients.agents_listed(bootstrap)


@pytest.mark.timeout(int(SECONDS) + 400)
def test_history_kill_producer_agent(broker_factory, topic):
    q = cluster(broker_factory)
    # Every client bootstraps from agent 0 first: the one killed.
    bootstrap = ",".join(a.bootstrap for a in q.agents)
    fault = Fault(lambda: q.agents[0])
    run_and_check(bootstrap, topic, fault)
    assert fault.killed is not None and fault.restarted


@pytest.mark.timeout(int(SECONDS) + 400)
def test_history_kill_transaction_coordinator(broker_factory, topic):
    q = cluster(broker_factory)
    bootstrap = ",".join(a.bootstrap for a in q.agents)

    def coordinator():
        # The coordinator of the first producer's transactional id (as tests/txn_history.py names it).
        at = txn_coordinator(q.agents[0].bootstrap, "txn-history-p0.0")
        return next(a for a in q.agents if a.bootstrap == at)

    fault = Fault(coordinator)
    run_and_check(bootstrap, topic, fault)
    assert fault.killed is not None and fault.restarted


@pytest.mark.timeout(int(SECONDS) + 400)
def test_history_kill_metastore_leader(broker_factory, topic):
    q = cluster(broker_factory, agents=2)
    bootstrap = ",".join(a.bootstrap for a in q.agents)
    fault = Fault(q.leader, down=5.0)
    run_and_check(bootstrap, topic, fault)
    assert fault.killed is not None and fault.restarted


@pytest.mark.timeout(int(SECONDS) + 400)
def test_history_object_store_faults(broker_factory, topic, tmp_path):
    server = shared_s3_server(tmp_path)
    store = S3Store(server, TEST_BUCKET, f"txn-faults-{time.monotonic_ns()}")
    name = f"skiff{len(broker_factory.brokers)}"
    b = Broker(broker_factory.base / name, ("--store-faults", "error_rate=0.05,latency_ms=20,ops=put+get",
                                            "--flush-interval-ms", "50"), name, store=store)
    broker_factory.brokers.append(b)
    b.start()
    run_and_check(b.bootstrap, topic)
    assert b.metric("skiff_object_store_failures_total") > 0, "no fault was injected: the test tested nothing"
