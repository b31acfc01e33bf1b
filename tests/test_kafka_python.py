"""kafka-python (a pure-Python client with its own protocol code): 10,000 records round trip."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

RECORDS = 10_000
PARTITIONS = 3
BASE_TS = (int(time.time() * 1000) // 1000 - 600) * 1000


def record(i: int):
    return (
        b"k%05d" % i,
        b"v%05d-" % i + b"kafka-python " * (i % 9),
        [("n", b"%d" % i), ("dup", b"a"), ("dup", b"b")],
        BASE_TS + i,
    )


@pytest.mark.parametrize("compression,idempotent", [(None, False), ("gzip", True)])
def test_roundtrip_10k_records(shared_broker, topic, compression, idempotent):
    bootstrap = shared_broker.bootstrap
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        admin.close()

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=idempotent,
        compression_type=compression,
        linger_ms=10,
        request_timeout_ms=60000,
    )
    try:
        futures = []
        for i in range(RECORDS):
            key, value, headers, ts = record(i)
            futures.append(producer.send(topic, value=value, key=key, headers=headers, partition=i % PARTITIONS, timestamp_ms=ts))
        producer.flush(timeout=120)
        metas = [f.get(timeout=60) for f in futures]
    finally:
        producer.close(timeout=30)

    # Records sent to one partition are acknowledged at consecutive offsets, in send order.
    where = {}
    for part in range(PARTITIONS):
        offsets = [m.offset for m in metas[part::PARTITIONS]]
        assert offsets == list(range(len(offsets))), f"partition {part}: acked offsets {offsets[:10]}..."
        for i, m in zip(range(part, RECORDS, PARTITIONS), metas[part::PARTITIONS]):
            where[(part, m.offset)] = i
    assert len(where) == RECORDS

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got = {p: [] for p in range(PARTITIONS)}
        deadline = time.monotonic() + 120
        while sum(len(v) for v in got.values()) < RECORDS:
            assert time.monotonic() < deadline, f"timed out; got {[len(v) for v in got.values()]} records"
            for tp, recs in consumer.poll(timeout_ms=500, max_records=5000).items():
                got[tp.partition].extend(recs)
        end = consumer.end_offsets(tps)
    finally:
        consumer.close()

    for part in range(PARTITIONS):
        recs = got[part]
        assert [r.offset for r in recs] == list(range(len(recs))), f"partition {part}: offsets not 0.. exactly once"
        assert end[TopicPartition(topic, part)] == len(recs)
        for r in recs:
            key, value, headers, ts = record(where[(part, r.offset)])
            assert (r.key, r.value, r.timestamp, r.timestamp_type) == (key, value, ts, 0), f"partition {part} offset {r.offset}"
            assert list(r.headers) == headers, f"partition {part} offset {r.offset}"
