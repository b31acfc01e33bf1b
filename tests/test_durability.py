"""An acknowledged record survives a restart: after SIGTERM, and after kill -9 right after the acks.
Offsets continue from the high watermark after the restart."""

import signal

import pytest

import clients

PARTITIONS = 3
FIRST = 3000
SECOND = 500


def value_of(i: int) -> bytes:
    return b"durable-%06d" % i


def produce_range(bootstrap: str, topic: str, start: int, stop: int) -> dict[int, dict[int, int]]:
    """Produce records start..stop-1 (record i to partition i % PARTITIONS), wait for every ack.

    Returns {partition: {offset: i}}."""
    p = clients.producer(bootstrap, **{"linger.ms": 10})
    deliveries = clients.Deliveries()
    for i in range(start, stop):
        clients.produce(p, topic, deliveries, i, key=b"%d" % i, value=value_of(i), partition=i % PARTITIONS)
    clients.flush(p, deliveries, stop - start)
    assert not deliveries.failed, deliveries.failed[:3]
    return {part: {o: i for o, i in acked} for part, acked in deliveries.ok.items()}


def assert_all_present(bootstrap: str, topic: str, acked: dict[int, dict[int, int]]) -> None:
    ends = {part: max(offsets) + 1 for part, offsets in acked.items()}
    got = clients.read_partitions(bootstrap, topic, ends, timeout=120)
    for part, offsets in acked.items():
        by_offset = {m.offset(): m.value() for m in got[part]}
        missing = [o for o in offsets if o not in by_offset]
        assert not missing, f"partition {part}: {len(missing)} acknowledged records missing, first offsets {missing[:5]}"
        wrong = [o for o, i in offsets.items() if by_offset[o] != value_of(i)]
        assert not wrong, f"partition {part}: wrong value at offsets {wrong[:5]}"


@pytest.mark.parametrize("how", ["sigterm", "sigint", "kill9"])
def test_acked_records_survive_restart(broker, topic, how):
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    acked = produce_range(broker.bootstrap, topic, 0, FIRST)
    for part in range(PARTITIONS):
        assert sorted(acked[part]) == list(range(FIRST // PARTITIONS)), f"partition {part} offsets before restart"

    if how == "kill9":
        broker.kill9()
        broker.start()
    else:
        broker.restart(signal.SIGTERM if how == "sigterm" else signal.SIGINT)

    assert_all_present(broker.bootstrap, topic, acked)
    hw = {part: clients.watermarks(broker.bootstrap, topic, part)[1] for part in range(PARTITIONS)}
    # Every record was acknowledged before the stop, so nothing more and nothing less is there.
    assert hw == {part: FIRST // PARTITIONS for part in range(PARTITIONS)}

    more = produce_range(broker.bootstrap, topic, FIRST, FIRST + SECOND)
    for part in range(PARTITIONS):
        assert min(more[part]) == hw[part], f"partition {part}: new offsets start at {min(more[part])}, not at the high watermark {hw[part]}"
        assert sorted(more[part]) == list(range(hw[part], hw[part] + len(more[part])))
        acked[part].update(more[part])
    assert_all_present(broker.bootstrap, topic, acked)


def test_restart_twice_and_kill9_between_writes(broker, topic):
    """Several generations: write, kill -9, write, SIGTERM, write; every acked record at its offset."""
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    acked: dict[int, dict[int, int]] = {p: {} for p in range(PARTITIONS)}
    step = 600

    def kill9_and_start():
        broker.kill9()
        broker.start()

    for gen, restart in enumerate([kill9_and_start, broker.restart, None]):
        new = produce_range(broker.bootstrap, topic, gen * step, (gen + 1) * step)
        for part, offsets in new.items():
            assert min(offsets) == len(acked[part]), f"generation {gen} partition {part}: offsets do not continue"
            acked[part].update(offsets)
        if restart is not None:
            restart()
    assert_all_present(broker.bootstrap, topic, acked)
