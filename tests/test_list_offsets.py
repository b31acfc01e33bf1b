"""ListOffsets: by timestamp (the first offset whose timestamp is >= the target, or none), earliest and
latest. Timestamps are explicit and increasing, several records per batch and several batches."""

import time

import pytest
from confluent_kafka import TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

import clients

T = (int(time.time() * 1000) // 1000 - 7200) * 1000

# Partition 0: three produce calls, so at least three batches; equal timestamps inside a batch.
BATCHES_P0 = [[T + 0, T + 10, T + 10, T + 20], [T + 30, T + 40], [T + 50, T + 60, T + 70, T + 80, T + 90]]
P0 = [ts for batch in BATCHES_P0 for ts in batch]  # P0[offset] = timestamp
P1 = [T + 1000, T + 2000]

# target -> expected offset in partition 0 (-1: no record at or after the target)
CASES_P0 = {
    T - 1000: 0,
    T + 0: 0,
    T + 1: 1,
    T + 10: 1,
    T + 11: 3,
    T + 20: 3,
    T + 21: 4,  # first record of the next batch
    T + 35: 5,
    T + 41: 6,
    T + 75: 9,
    T + 90: 10,
    T + 91: -1,
    T + 10**9: -1,
}
CASES_P1 = {T: 0, T + 1000: 0, T + 1500: 1, T + 2000: 1, T + 2001: -1}


@pytest.fixture
def timed_topic(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 2)
    p = clients.producer(shared_broker.bootstrap, **{"linger.ms": 100})
    for part, batches in [(0, BATCHES_P0), (1, [P1])]:
        for batch in batches:
            d = clients.Deliveries()
            for ts in batch:
                clients.produce(p, topic, d, ts, value=b"ts=%d" % ts, partition=part, timestamp=ts)
            clients.flush(p, d, len(batch))
            assert not d.failed, d.failed
    return topic


def test_offsets_for_times_confluent(shared_broker, timed_topic):
    c = clients.consumer(shared_broker.bootstrap)
    try:
        for part, cases in [(0, CASES_P0), (1, CASES_P1)]:
            got = {}
            # One target per call: librdkafka keys its answers by partition, so one call with
            # several timestamps for the same partition is not a meaningful question.
            for target in cases:
                [a] = c.offsets_for_times([TopicPartition(timed_topic, part, target)], timeout=30)
                assert a.error is None, a.error
                got[target] = a.offset
            assert got == cases, f"partition {part}: target -> offset (T={T})"
    finally:
        c.close()


def test_offsets_for_times_kafka_python_returns_record_timestamp(shared_broker, timed_topic):
    c = KafkaConsumer(bootstrap_servers=shared_broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp0, tp1 = KTopicPartition(timed_topic, 0), KTopicPartition(timed_topic, 1)
        for target, offset in CASES_P0.items():
            found = c.offsets_for_times({tp0: target})[tp0]
            if offset == -1:
                assert found is None, f"target T+{target - T}: expected no offset, got {found}"
            else:
                assert (found.offset, found.timestamp) == (offset, P0[offset]), f"target T+{target - T}"
        assert c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1]) == {tp0: len(P0), tp1: len(P1)}
    finally:
        c.close()


def test_watermarks(shared_broker, timed_topic):
    assert clients.watermarks(shared_broker.bootstrap, timed_topic, 0) == (0, len(P0))
    assert clients.watermarks(shared_broker.bootstrap, timed_topic, 1) == (0, len(P1))


def test_empty_partition(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 1)
    assert clients.watermarks(shared_broker.bootstrap, topic, 0) == (0, 0)
    c = clients.consumer(shared_broker.bootstrap)
    try:
        [a] = c.offsets_for_times([TopicPartition(topic, 0, T)], timeout=30)
        assert a.error is None and a.offset == -1
    finally:
        c.close()
