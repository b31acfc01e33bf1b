"""`skiff groups list` and `skiff groups describe`: the CLI's view of consumer groups (like
kafka-consumer-groups --list / --describe), through the Kafka protocol, against a broker with a
live confluent-kafka consumer that has consumed and committed and stays in its group.

- list shows the group, its type and state (Stable);
- describe shows one row per partition with the committed offset, the log end offset, the lag and
  the owning member's client id; producing more raises that partition's lag;
- the same for a KIP-848 group (group.protocol=consumer), described by ConsumerGroupDescribe;
- with two agents, each coordinating some groups, either one's bootstrap lists them all;
- an unknown group, and an unreachable broker, exit non-zero with a clear message.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException

import clients
from conftest import free_port, skiff_bin, wait_for

FAST_GROUPS = ("--group-initial-rebalance-delay-ms", "0")
PARTITIONS = 3
PER_PARTITION = 10
CLIENT_ID = "groups-cli-test-client"


def skiff_groups(bootstrap: str, sub: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(skiff_bin()), "groups", sub, "--bootstrap", bootstrap, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out.stdout


def table(stdout: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the table whose header line starts with `first_header`, as dicts by column."""
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        words = line.split()
        if words and " ".join(words[: len(first_header.split())]) == first_header:
            rows = []
            for row in lines[i + 1 :]:
                if not row.strip():
                    break
                cells = row.split()
                assert len(cells) == len(words), f"row {row!r} does not match header {line!r}"
                rows.append(dict(zip(words, cells)))
            return rows
    raise AssertionError(f"no table starting with {first_header!r} in:\n{stdout}")


def listed(bootstrap: str) -> dict[str, dict[str, str]]:
    return {r["GROUP"]: r for r in table(ok(skiff_groups(bootstrap, "list")), "GROUP TYPE STATE")}


def describe(bootstrap: str, group: str) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
    """(the group line, {partition: offsets row})."""
    out = ok(skiff_groups(bootstrap, "describe", group))
    (head,) = table(out, "GROUP TYPE STATE")
    rows = {int(r["PARTITION"]): r for r in table(out, "GROUP TOPIC PARTITION") if r["PARTITION"] != "-"}
    return head, rows


def produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    p = clients.producer(bootstrap)
    d = clients.Deliveries()
    n = 0
    for partition, count in counts.items():
        for i in range(count):
            clients.produce(p, topic, d, (partition, i), value=b"v%d" % i, partition=partition)
            n += 1
    clients.flush(p, d, n)
    assert not d.failed, d.failed


def join_consume_commit(bootstrap: str, group: str, topic: str, total: int, **conf) -> Consumer:
    """A consumer in `group` that has read `total` records and committed synchronously. It is
    left open (librdkafka heartbeats from its own thread), so it stays a member."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": CLIENT_ID,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
            **conf,
        }
    )
    c.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 60
    while got < total:
        assert time.monotonic() < deadline, f"consumed {got} of {total} records in 60 s"
        for m in c.consume(num_messages=100, timeout=0.5):
            if m.error():
                raise KafkaException(m.error())
            got += 1
    assert got == total
    c.commit(asynchronous=False)
    return c


def check_group(bootstrap: str, group: str, topic: str, kind: str) -> None:
    groups = wait_for(
        lambda: (lambda g: g if g.get(group, {}).get("STATE") == "Stable" else None)(listed(bootstrap)),
        30,
        message=f"{group} listed as Stable",
    )
    assert groups[group]["TYPE"] == kind

    head, rows = describe(bootstrap, group)
    assert head["GROUP"] == group and head["TYPE"] == kind and head["STATE"] == "Stable", head
    assert head["MEMBERS"] == "1", head
    assert sorted(rows) == list(range(PARTITIONS)), rows
    for p, r in rows.items():
        assert r["TOPIC"] == topic
        assert (r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"]) == ("10", "10", "0"), r
        assert r["CLIENT-ID"] == CLIENT_ID, r
        assert r["CONSUMER-ID"] != "-" and r["HOST"] != "-", r
    assert len({r["CONSUMER-ID"] for r in rows.values()}) == 1

    produce(bootstrap, topic, {0: 5})
    _, rows = describe(bootstrap, group)
    assert (rows[0]["CURRENT-OFFSET"], rows[0]["LOG-END-OFFSET"], rows[0]["LAG"]) == ("10", "15", "5"), rows[0]
    for p in (1, 2):
        assert rows[p]["LAG"] == "0", rows[p]
    assert rows[0]["CLIENT-ID"] == CLIENT_ID


@pytest.mark.timeout(180)
def test_list_and_describe_a_classic_group(broker_factory, topic):
    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    produce(broker.bootstrap, topic, {p: PER_PARTITION for p in range(PARTITIONS)})
    group = "cli-" + topic
    c = join_consume_commit(broker.bootstrap, group, topic, PARTITIONS * PER_PARTITION)
    try:
        check_group(broker.bootstrap, group, topic, "classic")
    finally:
        c.close()

    # Gone from the group, its offsets stay: Empty, no owners.
    head, rows = wait_for(
        lambda: (lambda d: d if d[0]["STATE"] == "Empty" else None)(describe(broker.bootstrap, group)),
        30,
        message="the group to be Empty",
    )
    assert head["MEMBERS"] == "0"
    assert [rows[p]["LAG"] for p in range(PARTITIONS)] == ["5", "0", "0"]
    assert {rows[p]["CONSUMER-ID"] for p in range(PARTITIONS)} == {"-"}


@pytest.mark.timeout(180)
def test_list_and_describe_a_kip_848_group(broker_factory, topic):
    broker = broker_factory.start(*FAST_GROUPS)
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    produce(broker.bootstrap, topic, {p: PER_PARTITION for p in range(PARTITIONS)})
    group = "cli848-" + topic
    c = join_consume_commit(
        broker.bootstrap, group, topic, PARTITIONS * PER_PARTITION, **{"group.protocol": "consumer"}
    )
    try:
        check_group(broker.bootstrap, group, topic, "consumer")
    finally:
        c.close()


@pytest.mark.timeout(240)
def test_list_asks_every_agent(broker_factory, topic):
    """Two agents: each coordinates some of the groups, and either one lists them all."""
    q = broker_factory.quorum(nodes=1, agents=2, agent_args=FAST_GROUPS)
    a0, a1 = q.agents
    # Coordinators are spread over the agents each one sees: wait until both see both, or a group
    # joined meanwhile moves (and its commit fails).
    for a in (a0, a1):
        wait_for(lambda: len(clients.agents_listed(a.bootstrap)) == 2, 30, message=f"{a.name} to see both agents")
    clients.create_topic(a0.bootstrap, topic, PARTITIONS)
    produce(a0.bootstrap, topic, {p: PER_PARTITION for p in range(PARTITIONS)})
    groups = [f"cliq{i}-{topic}" for i in range(6)]
    consumers = [join_consume_commit(a0.bootstrap, g, topic, PARTITIONS * PER_PARTITION) for g in groups]
    try:
        for a in (a0, a1):
            wait_for(
                lambda: all(listed(a.bootstrap).get(g, {}).get("STATE") == "Stable" for g in groups),
                30,
                message=f"every group listed as Stable through {a.name}",
            )
        out = ok(skiff_groups(a1.bootstrap, "describe", *groups))
        heads = table(out, "GROUP TYPE STATE")  # the first group's
        assert heads[0]["GROUP"] == groups[0]
        assert out.count("CURRENT-OFFSET") == len(groups)
    finally:
        for c in consumers:
            c.close()


def test_unknown_group_and_unreachable_broker(broker):
    out = skiff_groups(broker.bootstrap, "describe", "no-such-group")
    assert out.returncode != 0
    assert "group no-such-group does not exist" in out.stderr, out.stderr
    assert "panicked" not in out.stderr

    # One unknown among known-or-not groups: still non-zero, each failure named.
    out = skiff_groups(broker.bootstrap, "describe", "no-such-group", "nor-this-one")
    assert out.returncode != 0
    assert "no-such-group does not exist" in out.stderr and "nor-this-one does not exist" in out.stderr

    assert "no-such-group" not in listed(broker.bootstrap)

    dead = f"127.0.0.1:{free_port()}"
    for sub, args in (("list", ()), ("describe", ("g",))):
        out = skiff_groups(dead, sub, *args)
        assert out.returncode != 0
        assert "cannot connect" in out.stderr, out.stderr
        assert "panicked" not in out.stderr and "backtrace" not in out.stderr.lower()
