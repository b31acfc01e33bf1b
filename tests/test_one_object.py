"""The point of a diskless broker: one flush window, however many partitions it touches, is one object.
1,000 partitions each get one record inside one window, and the object store sees exactly one PUT.

Two producers: librdkafka sends one ProduceRequest per partition (1,000 requests pipelined on one
connection, so the broker must take them in while earlier ones wait for the flush), kafka-python one
request holding every partition."""

import pytest
from kafka import KafkaProducer

import clients

PARTITIONS = 1000
FLUSH_INTERVAL_MS = 2000  # long enough for all 1,000 records to arrive inside one window
FLUSH_BYTES = 64 << 20  # far more than the records, so only the timer closes the window


def value_of(part: int) -> bytes:
    return b"one record for partition %d" % part


class Confluent:
    def __init__(self, bootstrap):
        # Not idempotent: that would cap librdkafka at 5 requests in flight, i.e. 5 partitions per window.
        self.p = clients.producer(bootstrap, **{"linger.ms": 50, "enable.idempotence": False})

    def send(self, topic, items):
        """items: [(partition, value)]; waits for every ack and checks it succeeded."""
        d = clients.Deliveries()
        for part, value in items:
            clients.produce(self.p, topic, d, part, value=value, partition=part)
        clients.flush(self.p, d, len(items))
        assert not d.failed, f"{len(d.failed)} failed, first: {d.failed[:3]}"
        assert sorted(d.ok) == sorted({part for part, _ in items})

    def close(self):
        pass


class KafkaPython:
    def __init__(self, bootstrap):
        # A linger longer than the send loop: flush() then sends every partition in one request,
        # however long a loaded machine takes to queue the 1,000 records.
        self.p = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=30_000, request_timeout_ms=60000
        )

    def send(self, topic, items):
        futures = [self.p.send(topic, value=value, partition=part) for part, value in items]
        self.p.flush(timeout=120)
        metas = [f.get(timeout=60) for f in futures]
        assert sorted(m.partition for m in metas) == sorted(part for part, _ in items)

    def close(self):
        self.p.close(timeout=30)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("client", [Confluent, KafkaPython], ids=["confluent-kafka", "kafka-python"])
def test_one_record_per_partition_for_1000_partitions_is_one_object(broker_factory, topic, client):
    broker = broker_factory.start("--flush-interval-ms", str(FLUSH_INTERVAL_MS), "--flush-bytes", str(FLUSH_BYTES))
    clients.create_topic(broker.bootstrap, topic, PARTITIONS, timeout=120)

    def puts() -> float:
        return broker.metric("skiff_object_store_requests_total", op="put")

    producer = client(broker.bootstrap)
    try:
        # Warm up: connection, metadata for all partitions, and one flushed window, so the window
        # measured below opens with the first of the 1,000 records.
        producer.send(topic, [(0, b"warm-up")])
        puts_before = puts()
        files_before = len(broker.object_files())
        assert puts_before >= 1, "a record was acknowledged, so at least one PUT must have been counted"
        assert files_before >= 1, f"no object in {broker.store} after an acknowledged record"

        producer.send(topic, [(part, value_of(part)) for part in range(PARTITIONS)])

        assert puts() - puts_before == 1, "1,000 partitions in one flush window must make exactly one PUT"
        assert len(broker.object_files()) - files_before == 1, "and exactly one new object file"
    finally:
        producer.close()

    # Each partition reads back its record (partition 0 has the warm-up record first).
    ends = {part: 2 if part == 0 else 1 for part in range(PARTITIONS)}
    got = clients.read_partitions(broker.bootstrap, topic, ends, timeout=120)
    for part in range(PARTITIONS):
        assert [m.value() for m in got[part]] == ([b"warm-up"] if part == 0 else []) + [value_of(part)]
