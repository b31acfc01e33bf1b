"""Client quotas (KIP-13, KIP-55, KIP-546; issue 14): AlterClientQuotas and DescribeClientQuotas
(spoken here on the wire, as kafka-configs.sh does; no Python client has them), and produce and
fetch byte-rate quotas enforced with throttle_time_ms and a muted connection, as Kafka does. The
rate a throttled producer is held to is measured by bench/run, not here: these tests check that
throttling happens to whom it should, and that nothing is lost to it."""

import struct
import uuid

import pytest

import clients
import kafka_wire as kw

ALTER, DESCRIBE = 49, 48
NONE, INVALID_REQUEST = 0, 42


@pytest.fixture(scope="module")
def broker(shared_broker_factory):
    # Its own broker: a default quota set here would hold back every other test's clients.
    return shared_broker_factory.start(name="quotas")


def entity(parts) -> bytes:
    return struct.pack(">i", len(parts)) + b"".join(kw.string(t) + kw.string(n) for t, n in parts)


def alter_request(entries, validate_only=False, correlation_id=1) -> bytes:
    body = struct.pack(">i", len(entries))
    for parts, ops in entries:
        body += entity(parts) + struct.pack(">i", len(ops))
        for key, value in ops:
            remove = value is None
            body += kw.string(key) + struct.pack(">d?", 0.0 if remove else value, remove)
    body += struct.pack(">?", validate_only)
    return kw.frame(kw.header_v1(ALTER, 0, correlation_id) + body)


def parse_alter(payload: bytes) -> list[tuple[int, str | None]]:
    r = kw.Reader(payload)
    r.take(">i")  # correlation id
    r.take(">i")  # throttle
    out = []
    for _ in range(r.take(">i")):
        code = r.take(">h")
        message = r.string()
        for _ in range(r.take(">i")):
            r.string(), r.string()
        out.append((code, message))
    return out


def describe_request(components, strict=False, correlation_id=2) -> bytes:
    body = struct.pack(">i", len(components))
    for entity_type, match_type, match in components:
        body += kw.string(entity_type) + struct.pack(">b", match_type) + kw.string(match)
    body += struct.pack(">?", strict)
    return kw.frame(kw.header_v1(DESCRIBE, 0, correlation_id) + body)


def parse_describe(payload: bytes):
    r = kw.Reader(payload)
    r.take(">i")
    r.take(">i")
    code = r.take(">h")
    message = r.string()
    entries = {}
    n = r.take(">i")
    for _ in range(max(n, 0)):
        parts = tuple((r.string(), r.string()) for _ in range(r.take(">i")))
        values = {}
        for _ in range(r.take(">i")):
            key = r.string()
            values[key] = r.take(">d")
        entries[parts] = values
    return code, message, entries


def alter(broker, entries, validate_only=False):
    with kw.Conn(broker.bootstrap) as c:
        return parse_alter(c.roundtrip(alter_request(entries, validate_only)))


def describe(broker, components, strict=False):
    with kw.Conn(broker.bootstrap) as c:
        return parse_describe(c.roundtrip(describe_request(components, strict)))


def test_quotas_are_altered_and_described_as_kafka_configs_does(broker):
    alice = (("user", "alice"),)
    app = (("user", "alice"), ("client-id", "app"))
    default_client = (("client-id", None),)
    assert alter(
        broker,
        [
            (alice, [("producer_byte_rate", 1024.0), ("consumer_byte_rate", 2048.0)]),
            (app, [("producer_byte_rate", 512.0)]),
            (default_client, [("consumer_byte_rate", 4096.0)]),
        ],
    ) == [(NONE, None)] * 3
    code, _, everything = describe(broker, [])
    assert code == NONE
    assert everything[alice] == {"producer_byte_rate": 1024.0, "consumer_byte_rate": 2048.0}
    assert everything[app] == {"producer_byte_rate": 512.0}
    assert everything[default_client] == {"consumer_byte_rate": 4096.0}
    # Exact, strict: only the user alone. Not strict: also the entities with a client id too.
    _, _, exact = describe(broker, [("user", 0, "alice")], strict=True)
    assert set(exact) == {alice}
    _, _, loose = describe(broker, [("user", 0, "alice")])
    assert set(loose) == {alice, app}
    _, _, defaults = describe(broker, [("client-id", 1, None)])
    assert set(defaults) == {default_client}
    # Removing a key keeps the others; removing the last removes the entity.
    assert alter(broker, [(alice, [("consumer_byte_rate", None)]), (app, [("producer_byte_rate", None)])]) == [
        (NONE, None)
    ] * 2
    _, _, after = describe(broker, [])
    assert after[alice] == {"producer_byte_rate": 1024.0}
    assert app not in after
    # The default client id's quota would hold back this module's other clients.
    assert alter(broker, [(default_client, [("consumer_byte_rate", None)])]) == [(NONE, None)]


@pytest.mark.parametrize(
    "parts,ops,why",
    [
        ((("user", "u1"),), [("bytes_per_fortnight", 1.0)], "unknown quota key"),
        ((("user", "u1"),), [("producer_byte_rate", -5.0)], "positive"),
        ((("ip", "10.0.0.1"),), [("connection_creation_rate", 5.0)], "ip"),
        ((("user", "u1"), ("user", "u2")), [("producer_byte_rate", 5.0)], "twice"),
        ((("group", "g"),), [("producer_byte_rate", 5.0)], "unknown entity type"),
        ((), [("producer_byte_rate", 5.0)], "names a user"),
    ],
)
def test_invalid_alterations_are_refused_and_change_nothing(broker, parts, ops, why):
    good = (("user", f"ok-{uuid.uuid4().hex[:6]}"),)
    results = alter(broker, [(parts, ops), (good, [("producer_byte_rate", 10.0)])])
    assert results[0][0] == INVALID_REQUEST and why in (results[0][1] or ""), results
    # The valid entry of the same request applies.
    assert results[1] == (NONE, None)
    _, _, entries = describe(broker, [])
    assert good in entries
    assert all(p[0] != "ip" for e in entries for p in e)


def test_validate_only_stores_nothing(broker):
    who = (("user", f"v-{uuid.uuid4().hex[:6]}"),)
    assert alter(broker, [(who, [("producer_byte_rate", 10.0)])], validate_only=True) == [(NONE, None)]
    _, _, entries = describe(broker, [])
    assert who not in entries


def test_a_producer_over_its_quota_is_throttled_and_loses_nothing(broker, topic):
    slow = f"slow-{uuid.uuid4().hex[:6]}"
    assert alter(broker, [((("client-id", slow),), [("producer_byte_rate", 100_000.0)])]) == [(NONE, None)]
    throttles = []
    p = clients.producer(
        broker.bootstrap,
        **{"client.id": slow, "throttle_cb": lambda e: throttles.append(e.throttle_time), "linger.ms": 50},
    )
    d = clients.Deliveries()
    value = b"x" * 10_000
    n = 150  # 1.5 MB: half again what the quota lets through in its first ten seconds
    for i in range(n):
        clients.produce(p, topic, d, i, value=value, partition=0)
    clients.flush(p, d, n, timeout=120)
    assert not d.failed, d.failed[:3]
    assert throttles and max(throttles) > 0, "the producer was never told to slow down"
    got = clients.read_partitions(broker.bootstrap, topic, {0: n}, timeout=60)
    assert len(got[0]) == n

    # Another client id is not held back.
    fast_throttles = []
    q = clients.producer(broker.bootstrap, **{"throttle_cb": lambda e: fast_throttles.append(e.throttle_time)})
    d2 = clients.Deliveries()
    for i in range(n):
        clients.produce(q, topic, d2, i, value=value, partition=0)
    clients.flush(q, d2, n, timeout=120)
    assert not d2.failed
    assert not [t for t in fast_throttles if t > 0], fast_throttles


def test_a_consumer_over_its_quota_is_throttled_and_reads_everything(broker, topic):
    n = 300
    p = clients.producer(broker.bootstrap)
    d = clients.Deliveries()
    for i in range(n):
        clients.produce(p, topic, d, i, value=b"%05d" % i + b"y" * 5_000, partition=0)
    clients.flush(p, d, n, timeout=60)
    reader = f"reader-{uuid.uuid4().hex[:6]}"
    assert alter(broker, [((("client-id", reader),), [("consumer_byte_rate", 100_000.0)])]) == [(NONE, None)]
    throttles = []
    got = clients.read_partitions(
        broker.bootstrap,
        topic,
        {0: n},
        timeout=120,
        **{"client.id": reader, "throttle_cb": lambda e: throttles.append(e.throttle_time)},
    )
    assert [m.value()[:5] for m in got[0]] == [b"%05d" % i for i in range(n)]
    assert throttles and max(throttles) > 0, "the consumer was never throttled"
