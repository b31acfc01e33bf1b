"""The agents' read cache of object blocks (agent/src/fetch/blocks.rs), seen from its GETs.

- A consumer tailing what its agent wrote makes no GET: the agent put each object it flushed into
  its cache.
- After a restart (memory only: empty), a catch-up read makes about one GET per object, and three
  more consumers of the same data (other groups) make none.
- With a disk, the cache survives a restart: the same read again makes no GET.
- With the cache off, the same read makes GETs again (the figures above are the cache's doing).
- Its settings, and --broker-ids, refuse values past their bounds."""

from __future__ import annotations

import subprocess

import pytest

import clients
from conftest import skiff_bin

PARTITIONS = 8
FLUSH = ("--flush-interval-ms", "100")


def gets(broker) -> float:
    return broker.metric("skiff_object_store_requests_total", op="ranged_get") + broker.metric(
        "skiff_object_store_requests_total", op="get"
    )


def produce(bootstrap: str, topic: str, rounds: int = 5, per_round: int = 400) -> int:
    p = clients.producer(bootstrap, **{"linger.ms": 20})
    sent = 0
    for _ in range(rounds):
        d = clients.Deliveries()
        for i in range(per_round):
            clients.produce(p, topic, d, sent + i, value=b"%06d" % (sent + i) * 50, partition=(sent + i) % PARTITIONS)
        clients.flush(p, d, per_round)
        assert not d.failed, d.failed[:3]
        sent += per_round
    return sent


def read_all(bootstrap: str, topic: str, total: int) -> list[bytes]:
    ends = {p: total // PARTITIONS for p in range(PARTITIONS)}
    got = clients.read_partitions(bootstrap, topic, ends, timeout=120)
    return sorted(m.value() for msgs in got.values() for m in msgs)


@pytest.mark.timeout(300)
def test_tailing_reads_make_no_get_and_catch_up_reads_one_per_object(broker_factory, topic):
    broker = broker_factory.start(*FLUSH)
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    before = gets(broker)
    total = produce(broker.bootstrap, topic)
    expected = sorted(b"%06d" % i * 50 for i in range(total))
    assert read_all(broker.bootstrap, topic, total) == expected
    assert gets(broker) - before == 0, "a consumer of what this agent wrote made GETs"
    assert broker.metric("skiff_read_cache_inserted_bytes_total") > 0

    # Restarted, the memory cache starts empty: the first reader fetches each object once...
    broker.restart()
    objects = len(broker.object_files())
    before = gets(broker)
    assert read_all(broker.bootstrap, topic, total) == expected
    first = gets(broker) - before
    assert 0 < first <= objects, (first, objects)
    # ...and three more read from memory.
    for _ in range(3):
        assert read_all(broker.bootstrap, topic, total) == expected
    assert gets(broker) - before == first
    assert broker.metric("skiff_read_cache_hits_total") > 0


@pytest.mark.timeout(300)
def test_a_disk_cache_survives_a_restart(broker_factory, topic, tmp_path):
    disk = ("--read-cache-disk-bytes", str(64 << 20), "--read-cache-dir", str(tmp_path / "cache"))
    broker = broker_factory.start(*FLUSH, *disk)
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    total = produce(broker.bootstrap, topic)
    expected = sorted(b"%06d" % i * 50 for i in range(total))
    broker.restart()
    before = gets(broker)
    assert read_all(broker.bootstrap, topic, total) == expected
    assert gets(broker) - before == 0, "the disk cache did not survive the restart"


@pytest.mark.timeout(300)
def test_without_the_cache_every_reader_makes_gets(broker_factory, topic):
    broker = broker_factory.start(*FLUSH, "--read-cache-memory-bytes", "0")
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    total = produce(broker.bootstrap, topic)
    expected = sorted(b"%06d" % i * 50 for i in range(total))
    before = gets(broker)
    assert read_all(broker.bootstrap, topic, total) == expected
    first = gets(broker) - before
    assert read_all(broker.bootstrap, topic, total) == expected
    assert gets(broker) - before >= 2 * first > 0


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--read-cache-block-bytes", "65535"), "read-cache-block-bytes must be at least 65536"),
        (("--read-cache-disk-bytes", str((64 << 20) - 1)), "read-cache-disk-bytes must hold at least 4 blocks"),
        (("--read-cache-memory-bytes", "0", "--read-cache-disk-bytes", str(64 << 20)), "needs a read cache in memory"),
        (("--broker-ids", "0"), "broker-ids must be between 1 and 1024"),
        (("--broker-ids", "1025"), "broker-ids must be between 1 and 1024"),
    ],
)
def test_settings_past_their_bounds_are_refused(tmp_path, flags, message):
    proc = subprocess.run(
        [skiff_bin(), "dev", "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0", *flags],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert message in proc.stderr.decode(), proc.stderr.decode()
