"""What the produce path checks and rewrites, as Kafka's LogValidator does, seen by real clients:

- message.timestamp.type=LogAppendTime: consumers (confluent-kafka, kafka-python) read every
  record with timestamp type LogAppendTime and the agent's time of append, inside the test's
  own clock window; the producer's delivery report says the same; ListOffsets by timestamp and
  retention go by that time, not by the records' old CreateTime;
- KIP-937: a record timestamped too far in the future (past Kafka 4's default of an hour) or
  in the past (message.timestamp.before.max.ms) is refused with INVALID_TIMESTAMP, while a
  normal one succeeds;
- a compacted topic refuses keyless records with INVALID_RECORD and KIP-467 record errors
  naming each one, while keyed records in the same produce request succeed.
"""

from __future__ import annotations

import math
import time

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.errors import InvalidRecordError, InvalidTimestampError

import clients
import kafka_wire as kw
from conftest import wait_for

FAST = ("--compactor-interval-ms", "200", "--compactor-grace-ms", "1000")
HOUR_MS = 3_600_000
INVALID_TIMESTAMP = 32
INVALID_RECORD = 87
LOG_APPEND_TIME = 1  # kafka-python's timestamp_type


def create(bootstrap: str, topic: str, partitions: int = 1, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)])
    fs[topic].result(30)


def now_floor_ms() -> int:
    return math.floor(time.time() * 1000)


def now_ceil_ms() -> int:
    return math.ceil(time.time() * 1000)


def produce_confluent(bootstrap: str, topic: str, messages: list[dict], **conf) -> list:
    """Each message in its own acknowledged produce; the delivery reports' (error, Message)."""
    p = clients.producer(bootstrap, **conf)
    out = []
    for m in messages:
        got = []
        p.produce(topic, on_delivery=lambda err, msg: got.append((err, msg)), **m)
        assert p.flush(60) == 0
        out.extend(got)
    return out


def offsets_for_times(bootstrap: str, topic: str, ts: int) -> int:
    c = clients.consumer(bootstrap)
    try:
        [a] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=30)
        assert a.error is None, a.error
        return a.offset
    finally:
        c.close()


@pytest.mark.timeout(120)
def test_log_append_time_is_what_consumers_see(broker_factory, topic):
    broker = broker_factory.start(*FAST)
    bootstrap = broker.bootstrap
    # Retention of an hour, records created two hours ago: kept, since their time is the append.
    create(bootstrap, topic, **{"message.timestamp.type": "LogAppendTime", "retention.ms": str(HOUR_MS)})
    created = now_floor_ms() - 2 * HOUR_MS

    before = now_floor_ms()
    reports = produce_confluent(
        bootstrap,
        topic,
        [dict(key=b"a", value=b"one", partition=0, timestamp=created)],
        **{"compression.type": "lz4"},
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=30000)
    try:
        meta = producer.send(topic, key=b"b", value=b"two", partition=0, timestamp_ms=created + 1).get(timeout=60)
    finally:
        producer.close(timeout=30)
    after = now_ceil_ms()

    [(err, msg)] = reports
    assert err is None, err
    # The delivery report carries the broker's time, from the answer's log_append_time_ms.
    kind, ts = msg.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME, msg.timestamp()
    assert before <= ts <= after, (before, ts, after)
    assert meta.offset == 1
    assert before <= meta.timestamp <= after, (before, meta.timestamp, after)

    got = clients.read_partitions(bootstrap, topic, {0: 2})[0]
    times = [m.timestamp() for m in got]
    assert [k for k, _ in times] == [TIMESTAMP_LOG_APPEND_TIME] * 2, times
    assert before <= times[0][1] <= times[1][1] <= after, (before, times, after)
    assert times[0][1] == ts

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=20000)
    try:
        tp = KTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        records = []
        deadline = time.monotonic() + 30
        while len(records) < 2 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    assert [(r.timestamp_type, r.timestamp) for r in records] == [(LOG_APPEND_TIME, t) for _, t in times]

    # The index has the append times: by CreateTime nothing would be at or after `created + 2`.
    assert offsets_for_times(bootstrap, topic, created + 2) == 0
    assert offsets_for_times(bootstrap, topic, times[1][1]) == (0 if times[0][1] == times[1][1] else 1)
    assert offsets_for_times(bootstrap, topic, after + 1) == -1

    # Retention goes by the append time: two compactor passes later, both records are still there.
    target = broker.metric("skiff_compactor_passes_total") + 2
    wait_for(lambda: broker.metric("skiff_compactor_passes_total") >= target, 60, message="compactor passes")
    assert clients.watermarks(bootstrap, topic, 0) == (0, 2)


def test_a_far_future_record_is_refused_and_a_normal_one_succeeds(broker, topic):
    bootstrap = broker.bootstrap
    create(bootstrap, topic, partitions=2)
    now = now_floor_ms()
    reports = produce_confluent(
        bootstrap,
        topic,
        [
            dict(value=b"future", partition=0, timestamp=now + 2 * HOUR_MS),
            dict(value=b"now", partition=1, timestamp=now),
            dict(value=b"last year", partition=1, timestamp=now - 365 * 24 * HOUR_MS),
        ],
        **{"enable.idempotence": False, "retries": 0},
    )
    (err, _), (ok1, m1), (ok2, m2) = reports
    assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP, err
    assert ok1 is None and ok2 is None, (ok1, ok2)
    assert (m1.offset(), m2.offset()) == (0, 1)
    assert clients.watermarks(bootstrap, topic, 0) == (0, 0)

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0, request_timeout_ms=30000)
    try:
        future = producer.send(topic, value=b"future", partition=0, timestamp_ms=now + 2 * HOUR_MS)
        with pytest.raises(InvalidTimestampError):
            future.get(timeout=60)
        assert producer.send(topic, value=b"now", partition=0, timestamp_ms=now).get(timeout=60).offset == 0
    finally:
        producer.close(timeout=30)


def test_before_max_ms_refuses_old_records_on_the_wire(broker, topic):
    create(broker.bootstrap, topic, **{"message.timestamp.before.max.ms": str(HOUR_MS)})
    now = now_floor_ms()
    # The header's base and max timestamps are now; the second record is two hours old.
    old_inside = kw.record_batch([(b"k", b"v", [], now), (b"k", b"v", [], now - 2 * HOUR_MS)], now, max_timestamp=now)
    fine = kw.record_batch([(b"k", b"v", [], now - HOUR_MS + 60_000)], now - HOUR_MS + 60_000)
    with kw.Conn(broker.bootstrap) as c:
        payload = c.roundtrip(kw.produce_request_v8([(topic, [(0, old_inside)])], correlation_id=3))
        _, parts = kw.parse_produce_response_v8(payload)
        refused = parts[(topic, 0)]
        assert refused["error_code"] == INVALID_TIMESTAMP, refused
        assert [i for i, _ in refused["record_errors"]] == [1], refused
        assert "is out of range" in refused["record_errors"][0][1], refused
        payload = c.roundtrip(kw.produce_request_v8([(topic, [(0, fine)])], correlation_id=4))
        _, parts = kw.parse_produce_response_v8(payload)
        assert parts[(topic, 0)]["error_code"] == 0, parts
        assert parts[(topic, 0)]["log_append_time_ms"] == -1, "CreateTime: no append time"


def test_keyless_records_on_a_compacted_topic_are_refused_while_keyed_ones_succeed(broker, topic):
    bootstrap = broker.bootstrap
    create(bootstrap, topic, partitions=2, **{"cleanup.policy": "compact"})
    other = topic + "-plain"
    create(bootstrap, other)
    now = now_floor_ms()
    keyed = kw.record_batch([(b"k0", b"v", [], now), (b"k1", b"v", [], now)], now)
    keyless = kw.record_batch([(b"k", b"v", [], now), (None, b"v", [], now), (None, None, [], now)], now, compression="gzip")
    # One request: keyed to partition 0, keyless to partition 1, keyless to a topic that is not compacted.
    request = kw.produce_request_v8([(topic, [(0, keyed), (1, keyless)]), (other, [(0, keyless)])], correlation_id=9)
    with kw.Conn(bootstrap) as c:
        corr, parts = kw.parse_produce_response_v8(c.roundtrip(request))
    assert corr == 9
    assert parts[(topic, 0)]["error_code"] == 0, parts
    assert parts[(other, 0)]["error_code"] == 0, parts
    refused = parts[(topic, 1)]
    assert refused["error_code"] == INVALID_RECORD, refused
    each = f"Compacted topic cannot accept message without key in topic partition {topic}-1"
    assert refused["record_errors"] == [(1, each), (2, each)], refused
    assert refused["error_message"].startswith("One or more records have been rejected due to 2 record errors"), refused
    assert refused["base_offset"] == -1
    assert clients.watermarks(bootstrap, topic, 0) == (0, 2)
    assert clients.watermarks(bootstrap, topic, 1) == (0, 0)

    # confluent-kafka: the keyless message's delivery report has the error, the keyed one none.
    reports = produce_confluent(
        bootstrap,
        topic,
        [dict(key=b"k", value=b"v", partition=0), dict(value=b"no key", partition=1)],
        **{"enable.idempotence": False, "retries": 0},
    )
    (ok, m), (err, _) = reports
    assert ok is None and m.offset() == 2
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err

    # kafka-python shows the record's own message (KIP-467).
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0, request_timeout_ms=30000)
    try:
        with pytest.raises(InvalidRecordError) as e:
            producer.send(topic, value=b"no key", partition=1).get(timeout=60)
        assert "Compacted topic cannot accept message without key" in str(e.value), e.value
        assert producer.send(topic, key=b"k", value=b"v", partition=1).get(timeout=60).offset == 0
    finally:
        producer.close(timeout=30)
