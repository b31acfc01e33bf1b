"""The agent's index cache: a second reader of history gets its index entries from the agent, not
the metastore, and gets exactly the same records; new records after the cached range still arrive."""

import clients

ROUNDS = 20
PER_ROUND = 50


def read_all(bootstrap, topic, end):
    # One batch per fetch at most, so every fetch asks for a slice the history fills.
    got = clients.read_partitions(
        bootstrap,
        topic,
        {0: end},
        **{"max.partition.fetch.bytes": 1, "fetch.max.bytes": 1000, "message.max.bytes": 1000},
    )[0]
    return [(m.offset(), m.value()) for m in got if m.offset() < end]


def produce_rounds(p, topic, rounds, first):
    """One acknowledged flush per round, so the partition's history is many batches."""
    for r in range(rounds):
        d = clients.Deliveries()
        for i in range(PER_ROUND):
            clients.produce(p, topic, d, i, value=b"%d-%d" % (first + r, i), partition=0)
        clients.flush(p, d, PER_ROUND)
        assert not d.failed, d.failed[:3]


def test_history_read_twice_comes_from_the_cache_the_second_time(broker):
    topic = "cached-history"
    clients.create_topic(broker.bootstrap, topic, 1)
    p = clients.producer(broker.bootstrap, **{"linger.ms": 1})
    produce_rounds(p, topic, ROUNDS, 0)
    end = ROUNDS * PER_ROUND

    first = read_all(broker.bootstrap, topic, end)
    assert [o for o, _ in first] == list(range(end))
    hits_before = broker.metric("skiff_index_cache_hits_total")

    second = read_all(broker.bootstrap, topic, end)
    assert second == first
    hits = broker.metric("skiff_index_cache_hits_total") - hits_before
    # Every batch boundary the second reader fetched from was cached by the first one.
    assert hits >= ROUNDS - 1, f"only {hits} index cache hits reading {ROUNDS} batches again"

    # Records committed after the cached slices are found by the next reader, from any offset.
    produce_rounds(p, topic, 2, ROUNDS)
    third = read_all(broker.bootstrap, topic, end + 2 * PER_ROUND)
    assert third[:end] == first
    assert [o for o, _ in third] == list(range(end + 2 * PER_ROUND))
    assert third[-1][1] == b"%d-%d" % (ROUNDS + 1, PER_ROUND - 1)


def test_with_the_cache_off_every_read_goes_to_the_metastore(broker_factory):
    broker = broker_factory.start("--index-cache-batches", "0")
    topic = "uncached-history"
    clients.create_topic(broker.bootstrap, topic, 1)
    p = clients.producer(broker.bootstrap, **{"linger.ms": 1})
    produce_rounds(p, topic, 3, 0)
    end = 3 * PER_ROUND
    assert read_all(broker.bootstrap, topic, end) == read_all(broker.bootstrap, topic, end)
    assert broker.metric("skiff_index_cache_hits_total") == 0
    assert broker.metric("skiff_index_cache_misses_total") > 0
