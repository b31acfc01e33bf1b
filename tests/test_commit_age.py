"""A commit that comes too late is refused, so the garbage collector can never delete an object a
commit still lands on.

The metastore refuses a commit of an object older than its bound (60 s, by the object id's time on
the leader's clock); the agent's hidden `--test-stale-objects 1` names its first object as if made
70 s ago, which is what a commit delayed past the bound looks like to the metastore, without
waiting a minute. The idempotent producer gets a retriable error for those batches, sends them
again (into a new object), and each record is acknowledged once and reads back once, from an
object that exists.
"""

from __future__ import annotations

import clients

RECORDS = 200


def value_of(i: int) -> bytes:
    return b"late-%04d" % i


def test_a_commit_past_the_bound_is_refused_and_the_retry_acknowledged_once(broker_factory, topic):
    broker = broker_factory.start("--test-stale-objects", "1")
    clients.create_topic(broker.bootstrap, topic, 2)

    p = clients.producer(broker.bootstrap, **{"linger.ms": 20, "retry.backoff.ms": 50})
    d = clients.Deliveries()
    for i in range(RECORDS):
        clients.produce(p, topic, d, i, key=b"%d" % i, value=value_of(i), partition=i % 2)
    clients.flush(p, d, RECORDS, timeout=60)
    assert not d.failed, d.failed[:3]

    # The first object was refused as too old, and only it.
    assert broker.metric("skiff_flushes_too_late_total") == 1
    assert "refused the object as too old" in broker.log_text()

    # Every record acknowledged exactly once: one offset each, none shared, no gaps.
    for part in (0, 1):
        acked = sorted(d.ok[part])
        assert [o for o, _ in acked] == list(range(RECORDS // 2)), f"partition {part} offsets"
        assert sorted(i for _, i in acked) == list(range(part, RECORDS, 2))
        assert clients.watermarks(broker.bootstrap, topic, part) == (0, RECORDS // 2)

    # And each reads back once, at the offset it was acknowledged at: the objects the index points
    # at are in the store (the refused one is there too, unknown, for the orphan sweep).
    got = clients.read_partitions(broker.bootstrap, topic, {0: RECORDS // 2, 1: RECORDS // 2})
    for part in (0, 1):
        by_offset = {m.offset(): m.value() for m in got[part]}
        assert len(got[part]) == RECORDS // 2
        assert by_offset == {o: value_of(i) for o, i in d.ok[part]}
    assert len(broker.object_files()) >= 2
