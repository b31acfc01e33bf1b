"""Merging small ingestion objects into per-partition segments, with real clients:

- the records a consumer reads after merging are exactly those it read before (offsets, keys,
  values, timestamps, headers), the object count drops to what the segment size allows, and a
  fetch of 10,000 offsets needs far fewer GETs (the figure is printed: docs/benchmarks.md quotes
  it);
- `skiff compactor` on a quorum, killed with SIGKILL in the middle of merging, loses and
  duplicates nothing; another compactor finishes the work once the dead one's leases expire,
  and everything but one segment per partition is deleted. The agent's index cache still names
  the deleted objects when the last dump runs: it reads the index again.
"""

from __future__ import annotations

import time

import pytest

import clients
from conftest import wait_for

# The broker merges only when told to: a long interval first, then a fast one after a restart.
SLOW = ("--compactor-interval-ms", "3600000")
FAST = ("--compactor-interval-ms", "300", "--compactor-grace-ms", "1000")
# Small flush windows: one object per produce call.
FLUSH = ("--flush-interval-ms", "5")


def produce_chunks(bootstrap: str, topic: str, partitions: int, chunks: int, per_chunk: int) -> int:
    """`chunks` acknowledged rounds of `per_chunk` records to every partition, so each round is its
    own object. Headers repeat a key, as Kafka allows."""
    p = clients.producer(bootstrap, **{"linger.ms": 2})
    n = 0
    for c in range(chunks):
        d = clients.Deliveries()
        for partition in range(partitions):
            for r in range(per_chunk):
                clients.produce(
                    p,
                    topic,
                    d,
                    n,
                    key=f"k{r % 17}".encode(),
                    value=f"p{partition} c{c} r{r} ".encode() * 3,
                    partition=partition,
                    headers=[("h", b"1"), ("h", f"{c}".encode())],
                )
                n += 1
        clients.flush(p, d, partitions * per_chunk)
        assert not d.failed, d.failed[:3]
    return n


def dump(bootstrap: str, topic: str, partitions: int, **overrides) -> dict[int, list[tuple]]:
    ends = {p: clients.watermarks(bootstrap, topic, p)[1] for p in range(partitions)}
    got = clients.read_partitions(bootstrap, topic, ends, **overrides)
    return {
        p: [(m.offset(), m.key(), m.value(), m.timestamp(), tuple(m.headers() or ())) for m in msgs]
        for p, msgs in got.items()
    }


def gets(broker) -> float:
    return broker.metric("skiff_object_store_requests_total", op="ranged_get") + broker.metric(
        "skiff_object_store_requests_total", op="get"
    )


@pytest.mark.timeout(300)
def test_merged_segments_read_back_exactly_and_fetches_touch_fewer_objects(broker_factory, topic):
    broker = broker_factory.start(*SLOW, *FLUSH, "--segment-bytes", "262144")
    clients.create_topic(broker.bootstrap, topic, 2)
    # Partition 0 gets 10,000 records in 100 objects; partition 1 shares those objects.
    produce_chunks(broker.bootstrap, topic, 2, chunks=100, per_chunk=100)
    objects_before = len(broker.store.objects())
    assert objects_before >= 100
    before = dump(broker.bootstrap, topic, 2)
    assert len(before[0]) == 10_000

    # A fresh process (cold index cache) reads the 10,000 offsets of partition 0.
    broker.restart()
    g = gets(broker)
    assert len(clients.read_partitions(broker.bootstrap, topic, {0: 10_000})[0]) == 10_000
    gets_before = gets(broker) - g

    broker.extra_args = (*FAST, *FLUSH, "--segment-bytes", "262144")
    broker.restart()
    # About 1.3 MB per partition in segments of up to 256 KiB: at most 7 a partition, and the
    # small objects deleted after the grace period.
    wait_for(lambda: len(broker.store.objects()) <= 14, 60, interval=0.5, message="objects merged and collected")
    after = dump(broker.bootstrap, topic, 2)
    assert after == before

    broker.extra_args = (*SLOW, *FLUSH)
    broker.restart()
    g = gets(broker)
    assert len(clients.read_partitions(broker.bootstrap, topic, {0: 10_000})[0]) == 10_000
    gets_after = gets(broker) - g
    print(
        f"\nfetch of 10,000 offsets: {gets_before:.0f} GETs over {objects_before} objects before merging, "
        f"{gets_after:.0f} GETs after ({len(broker.store.objects())} objects)"
    )
    assert gets_after * 5 <= gets_before, (gets_before, gets_after)


@pytest.mark.timeout(300)
def test_killing_a_compactor_mid_merge_loses_and_duplicates_nothing(broker_factory, topic):
    # No read cache: it would still hold the deleted objects' blocks (rightly, since objects never
    # change), and this test is about the index cache naming objects that are gone.
    q = broker_factory.quorum(nodes=1, agents=1, agent_args=(*FLUSH, "--read-cache-memory-bytes", "0"))
    agent = q.agents[0]
    partitions = 4
    clients.create_topic(agent.bootstrap, topic, partitions)
    produce_chunks(agent.bootstrap, topic, partitions, chunks=40, per_chunk=25)
    # Small fetches: the agent caches only slices as large as asked for.
    small = {"max.partition.fetch.bytes": 8192}
    before = dump(agent.bootstrap, topic, partitions, **small)
    assert sum(len(v) for v in before.values()) == 4_000

    # Every segment upload of this one takes 1.5 s: it is killed with some partitions merged and
    # one upload under way, holding the leases of the rest.
    slow = q.compactor(
        "--compactor-interval-ms", "300", "--compactor-grace-ms", "1000", "--compactor-lease-ms", "3000",
        "--store-faults", "latency_ms=1500,ops=put",
        name="slow-compactor",
    )
    wait_for(lambda: "compactor started" in slow.log_text(), 30, message="compactor started")
    time.sleep(4)
    slow.kill9()
    assert dump(agent.bootstrap, topic, partitions) == before

    # Another compactor finishes: one segment per partition, everything else deleted.
    q.compactor("--compactor-interval-ms", "300", "--compactor-grace-ms", "1000", name="compactor")
    wait_for(
        lambda: len(q.store.objects()) == partitions, 90, interval=0.5, message="one object per partition"
    )
    # The agent's index cache named the deleted objects: it went back to the index.
    assert dump(agent.bootstrap, topic, partitions, **small) == before
    assert "reading the index again" in agent.log_text()


@pytest.mark.timeout(300)
def test_two_compactors_share_the_work_without_conflicts(broker_factory, topic):
    q = broker_factory.quorum(nodes=1, agents=1, agent_args=FLUSH)
    agent = q.agents[0]
    partitions = 8
    clients.create_topic(agent.bootstrap, topic, partitions)
    produce_chunks(agent.bootstrap, topic, partitions, chunks=30, per_chunk=10)
    before = dump(agent.bootstrap, topic, partitions)

    fast = ("--compactor-interval-ms", "200", "--compactor-grace-ms", "1000")
    a = q.compactor(*fast, name="compactor-a")
    b = q.compactor(*fast, name="compactor-b")
    wait_for(
        lambda: len(q.store.objects()) == partitions, 90, interval=0.5, message="one object per partition"
    )
    assert dump(agent.bootstrap, topic, partitions) == before
    # Leases kept them off each other's partitions: no rewrite was refused.
    conflicts = sum(c.metric("skiff_compactor_rewrite_conflicts_total") for c in (a, b))
    assert conflicts == 0
    written = sum(c.metric("skiff_compactor_segments_written_total", kind="merge") for c in (a, b))
    assert written >= partitions
