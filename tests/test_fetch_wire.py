"""Fetch at the wire: one partition named many times in one request is read once and answered
once per occurrence, within the response's max_bytes (the metastore's bounded index read)."""

import struct

import clients
import kafka_wire as kw

OCCURRENCES = 1000
BATCHES = 20


def multi_fetch_request(topic: str, partition: int, offset: int, times: int, max_bytes: int, partition_max: int) -> bytes:
    """Fetch v4 naming `partition` of `topic` `times` times, answered at once."""
    body = struct.pack(">iiiib", -1, 0, 1, max_bytes, 0) + struct.pack(">i", 1) + kw.string(topic)
    body += struct.pack(">i", times)
    for _ in range(times):
        body += struct.pack(">iqi", partition, offset, partition_max)
    return kw.frame(kw.header_v1(kw.API_FETCH, 4, 7) + body)


def parse_fetch_v4(payload: bytes) -> list[tuple[int, int, bytes]]:
    """Every partition of a Fetch v4 response, in order: (partition, error_code, records)."""
    r = kw.Reader(payload)
    r.take(">ii")  # correlation_id, throttle_time_ms
    out = []
    for _ in range(r.take(">i")):
        r.string()
        for _ in range(r.take(">i")):
            partition, error_code, _hw, _lso = r.take(">ihqq")
            for _ in range(max(r.take(">i"), 0)):
                r.take(">qq")
            n = r.take(">i")
            out.append((partition, error_code, r.data[r.pos : r.pos + max(n, 0)]))
            r.pos += max(n, 0)
    return out


def test_a_partition_named_a_thousand_times_is_answered_within_max_bytes(shared_broker, topic):
    bootstrap = shared_broker.bootstrap
    clients.create_topic(bootstrap, topic, 1)
    p = clients.producer(bootstrap, **{"linger.ms": 0, "batch.num.messages": 10})
    deliveries = clients.Deliveries()
    for i in range(BATCHES * 10):
        clients.produce(p, topic, deliveries, i, value=b"v" * 1000, partition=0)
    clients.flush(p, deliveries, BATCHES * 10)

    with kw.Conn(bootstrap) as c:
        error_code, alone = kw.parse_fetch_v4_records(c.roundtrip(kw.fetch_request(topic, 0, 0, 1, max_bytes=1 << 20)))
        assert error_code == 0 and len(alone) > 10_000, (error_code, len(alone))
        max_bytes = 3 * len(alone) + 1
        parts = parse_fetch_v4(c.roundtrip(multi_fetch_request(topic, 0, 0, OCCURRENCES, max_bytes, 1 << 20)))

    assert len(parts) == OCCURRENCES, "one answer per occurrence, in request order"
    assert all(part == 0 and code == 0 for part, code, _ in parts), {code for _, code, _ in parts}
    # The first occurrences get what a fetch of the partition alone gets; the budget runs out
    # after about three, and the rest get no records rather than the same megabytes again.
    assert parts[0][2] == alone
    total = sum(len(records) for _, _, records in parts)
    assert total <= max_bytes + len(alone), (total, max_bytes)
    assert sum(1 for _, _, records in parts if records) <= 4
    assert all(not records for _, _, records in parts[4:])
