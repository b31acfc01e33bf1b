"""Slow and idle clients must not stop the others (issue 14, "no cheap denial of service").

A connection that announces a large frame and then sends nothing used to reserve the whole frame's
memory at once and keep it for ever: three of them froze the agent for every client. Now memory is
reserved as the bytes arrive, and a request that does not arrive within --request-read-timeout-ms
closes its connection. Idle connections cost little: ten thousand of them leave room for real
clients."""

import resource
import socket
import struct
import time

import clients
import kafka_wire as kw
from conftest import wait_for

HUNDRED_MIB = 100 * 1024 * 1024


def _raise_fd_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def _round_trip(bootstrap: str, topic: str, n: int = 50) -> None:
    """Produce `n` records and read them back, with the clients' usual timeouts."""
    clients.create_topic(bootstrap, topic, 1)
    p = clients.producer(bootstrap)
    d = clients.Deliveries()
    for i in range(n):
        clients.produce(p, topic, d, i, value=b"v%d" % i, partition=0)
    clients.flush(p, d, n, timeout=30)
    assert not d.failed, d.failed
    got = clients.read_partitions(bootstrap, topic, {0: n}, timeout=30)
    assert [m.value() for m in got[0]] == [b"v%d" % i for i in range(n)]


def _stalled(bootstrap: str) -> socket.socket:
    """A connection that announces a 100 MiB Produce and sends only its first bytes."""
    host, port = bootstrap.split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(struct.pack(">i", HUNDRED_MIB - 1) + struct.pack(">hhi", 0, 3, 1) + b"\x00" * 100)
    return s


def _closed(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def test_stalled_requests_hold_nothing_and_are_closed_after_the_deadline(broker_factory, topic):
    broker = broker_factory.start("--request-read-timeout-ms", "8000")
    _raise_fd_limit(4096)
    stalled = [_stalled(broker.bootstrap) for _ in range(100)]
    try:
        # While all 100 are open, another client produces and consumes as usual.
        _round_trip(broker.bootstrap, topic)
        assert not any(_closed(s, 0.01) for s in stalled), "closed before the deadline"
        # Then the deadline closes every one of them, and says so.
        for s in stalled:
            assert _closed(s, 30), "a stalled connection outlived the read deadline"
        wait_for(
            lambda: broker.metric("skiff_connections_closed_total", reason="read_timeout") >= 100,
            10,
            message="100 read timeouts counted",
        )
    finally:
        for s in stalled:
            s.close()
    _round_trip(broker.bootstrap, topic + "-after")


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_ten_thousand_idle_connections_leave_room_for_real_clients(broker_factory, topic):
    broker = broker_factory.start()
    _raise_fd_limit(12_000)
    before = _rss_bytes(broker.proc.pid)
    host, port = broker.bootstrap.split(":")
    idle = []
    try:
        for _ in range(10_000):
            idle.append(socket.create_connection((host, int(port)), timeout=10))
        wait_for(
            lambda: broker.metric("skiff_connections_open") >= 10_000,
            60,
            message="10,000 connections accepted",
        )
        _round_trip(broker.bootstrap, topic)
        grown = _rss_bytes(broker.proc.pid) - before
        # About 10 KiB a connection (its read buffer, two tasks, its channels): a budget of 50 KiB
        # each still fails a return to the 64 KiB buffers of before.
        assert grown < 10_000 * 50 * 1024, f"10,000 idle connections cost {grown >> 20} MiB"
    finally:
        for s in idle:
            s.close()


def test_an_idle_connection_is_closed_after_connections_max_idle_ms(broker_factory):
    broker = broker_factory.start("--connections-max-idle-ms", "1500")
    host, port = broker.bootstrap.split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    started = time.monotonic()
    assert _closed(s, 20), "the idle connection stayed open"
    assert time.monotonic() - started >= 1.0, "closed before it had been idle that long"
    assert broker.metric("skiff_connections_closed_total", reason="idle") >= 1


def test_connections_past_max_connections_per_ip_are_closed(broker_factory):
    broker = broker_factory.start("--max-connections-per-ip", "3")
    host, port = broker.bootstrap.split(":")
    held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
    try:
        extra = socket.create_connection((host, int(port)), timeout=10)
        assert _closed(extra, 10), "a fourth connection from the address was kept"
        extra.close()
        assert broker.metric("skiff_connections_closed_total", reason="per_ip_limit") >= 1
    finally:
        for s in held:
            s.close()
    # Once they close, the address may connect again.
    wait_for(lambda: broker.metric("skiff_connections_open") == 0, 10, message="connections closed")
    with kw.Conn(broker.bootstrap) as c:
        corr, err, _ = kw.parse_api_versions_v0(c.roundtrip(kw.api_versions_request(0, 7)))
        assert (corr, err) == (7, 0)


def test_a_client_that_stops_reading_its_fetch_answers_is_closed_and_holds_one(broker_factory, topic):
    """Fetch answers are built one at a time per connection, as the client takes them, and count
    against the memory budget while written; a client that stops reading is closed after the
    request timeout, and the others carry on."""
    broker = broker_factory.start("--request-read-timeout-ms", "3000")
    clients.create_topic(broker.bootstrap, topic, 1)
    p = clients.producer(broker.bootstrap)
    d = clients.Deliveries()
    value = b"z" * 100_000
    for i in range(100):  # 10 MB: more than the socket buffers between them hold
        clients.produce(p, topic, d, i, value=value, partition=0)
    clients.flush(p, d, 100, timeout=60)
    assert not d.failed
    # Ask for all of it, many times over, and read nothing.
    hogs = []
    for _ in range(5):
        host, port = broker.bootstrap.split(":")
        s = socket.create_connection((host, int(port)), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for c in range(20):
            s.sendall(kw.fetch_request(topic, 0, 0, c, max_bytes=16 << 20))
        hogs.append(s)
    # Everyone else is served meanwhile.
    _round_trip(broker.bootstrap, topic + "-other")
    wait_for(
        lambda: broker.metric("skiff_connections_closed_total", reason="write_timeout") >= len(hogs),
        30,
        message="the connections that stopped reading closed",
    )
    for s in hogs:
        # What was sent before the close is still there to read; then the end.
        s.settimeout(10)
        try:
            while s.recv(1 << 16):
                pass
        except socket.timeout:
            raise AssertionError("a connection that stopped reading is still open")
        except OSError:
            pass  # reset: closed as well
    _round_trip(broker.bootstrap, topic + "-after")
