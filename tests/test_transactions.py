"""Kafka transactions with real clients (confluent-kafka/librdkafka, kafka-python, aiokafka) and
over the wire: commit and abort, read_committed and read_uncommitted consumers, markers as gaps in
the offsets, send_offsets_to_transaction, zombie fencing, a producer that dies inside its
transaction, and bad transactional requests answered with Kafka's codes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition

import kafka_wire as w
from clients import create_topic
from conftest import wait_for

# Kafka's error codes the tests expect.
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REQUEST = 42
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
OPERATION_NOT_ATTEMPTED = 55
INVALID_RECORD = 87
UNSTABLE_OFFSET_COMMIT = 88
PRODUCER_FENCED = 90

PARTITIONS = 2


def confluent_producer(bootstrap: str, txn_id: str, **overrides) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(overrides)
    return Producer(conf)


def read_all(bootstrap: str, topic: str, isolation: str, partitions: int = PARTITIONS, timeout: float = 60.0):
    """Every record a consumer of `isolation` gets from each partition, read until the end
    (confluent-kafka's partition EOF): {partition: [(offset, value)]}."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
        }
    )
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got: dict[int, list] = {p: [] for p in range(partitions)}
        eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(eof) < partitions:
            assert time.monotonic() < deadline, f"no end of partition within {timeout}s: {got}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            eof.discard(m.partition())
            got[m.partition()].append((m.offset(), m.value()))
        return got
    finally:
        c.close()


def values(got) -> set[bytes]:
    return {v for records in got.values() for _, v in records}


def check_isolation(bootstrap: str, topic: str, committed: set[bytes], aborted: set[bytes]) -> None:
    """read_committed sees exactly `committed`; read_uncommitted sees both, never a marker: a
    marker takes an offset, so every transaction's end leaves a gap in the offsets."""
    rc = read_all(bootstrap, topic, "read_committed")
    assert values(rc) == committed
    ru = read_all(bootstrap, topic, "read_uncommitted")
    assert values(ru) == committed | aborted
    assert sum(len(r) for r in ru.values()) == len(committed | aborted), "a record twice, or a marker"
    for p, records in ru.items():
        offsets = [o for o, _ in records]
        assert offsets == sorted(offsets)
        if records:
            gaps = set(range(offsets[0], offsets[-1] + 1)) - set(offsets)
            assert gaps, f"partition {p}: no marker between transactions: {offsets}"
    # What read_committed skips is the aborted records and the markers: its offsets are a
    # subset of read_uncommitted's.
    for p in rc:
        assert {o for o, _ in rc[p]} <= {o for o, _ in ru[p]}


def test_confluent_commit_and_abort(shared_broker, topic):
    bootstrap = shared_broker.bootstrap
    create_topic(bootstrap, topic, PARTITIONS)
    p = confluent_producer(bootstrap, f"tx-{topic}")
    p.init_transactions(60)
    committed, aborted = set(), set()
    for n in range(4):
        p.begin_transaction()
        batch = {b"t%d-r%d" % (n, i) for i in range(10)}
        for i, v in enumerate(sorted(batch)):
            p.produce(topic, value=v, partition=i % PARTITIONS)
        if n % 2 == 0:
            p.commit_transaction(60)
            committed |= batch
        else:
            p.flush(60)
            p.abort_transaction(60)
            aborted |= batch
    p.flush(10)
    check_isolation(bootstrap, topic, committed, aborted)


def test_kafka_python_commit_and_abort(shared_broker, topic):
    bootstrap = shared_broker.bootstrap
    create_topic(bootstrap, topic, PARTITIONS)
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"kp-{topic}", request_timeout_ms=60000)
    committed, aborted = set(), set()
    try:
        p.init_transactions()
        for n in range(4):
            p.begin_transaction()
            batch = {b"t%d-r%d" % (n, i) for i in range(10)}
            for i, v in enumerate(sorted(batch)):
                p.send(topic, value=v, partition=i % PARTITIONS)
            p.flush()
            if n % 2 == 0:
                p.commit_transaction()
                committed |= batch
            else:
                p.abort_transaction()
                aborted |= batch
    finally:
        p.close(timeout=30)
    # kafka-python's own consumer, in both isolation levels.
    for isolation, expected in (("read_committed", committed), ("read_uncommitted", committed | aborted)):
        c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, consumer_timeout_ms=3000)
        try:
            tps = [KTopicPartition(topic, i) for i in range(PARTITIONS)]
            c.assign(tps)
            c.seek_to_beginning(*tps)
            seen = [m.value for m in c]
        finally:
            c.close()
        assert sorted(seen) == sorted(expected), isolation
    check_isolation(bootstrap, topic, committed, aborted)


def test_aiokafka_commit_and_abort(shared_broker, topic):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka import TopicPartition as ATopicPartition

    bootstrap = shared_broker.bootstrap
    create_topic(bootstrap, topic, PARTITIONS)
    committed = {b"c%d" % i for i in range(6)}
    aborted = {b"a%d" % i for i in range(6)}

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"aio-{topic}")
        await p.start()
        try:
            async with p.transaction():
                for i, v in enumerate(sorted(committed)):
                    await p.send_and_wait(topic, v, partition=i % PARTITIONS)
            await p.begin_transaction()
            for i, v in enumerate(sorted(aborted)):
                await p.send_and_wait(topic, v, partition=i % PARTITIONS)
            await p.abort_transaction()
        finally:
            await p.stop()
        seen = {}
        for isolation in ("read_committed", "read_uncommitted"):
            c = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation)
            await c.start()
            try:
                tps = [ATopicPartition(topic, i) for i in range(PARTITIONS)]
                c.assign(tps)
                await c.seek_to_beginning(*tps)
                got = []
                deadline = time.monotonic() + 30
                want = len(committed) if isolation == "read_committed" else len(committed | aborted)
                while len(got) < want and time.monotonic() < deadline:
                    batch = await c.getmany(timeout_ms=500)
                    got += [m.value for ms in batch.values() for m in ms]
                # Nothing more comes after what was expected.
                batch = await c.getmany(timeout_ms=1000)
                got += [m.value for ms in batch.values() for m in ms]
                seen[isolation] = got
            finally:
                await c.stop()
        return seen

    seen = asyncio.run(run())
    assert sorted(seen["read_committed"]) == sorted(committed)
    assert sorted(seen["read_uncommitted"]) == sorted(committed | aborted)
    check_isolation(bootstrap, topic, committed, aborted)


def test_kafkajs_commit_and_abort(shared_broker, topic):
    import kafkajs

    bootstrap = shared_broker.bootstrap
    create_topic(bootstrap, topic, PARTITIONS)
    txns = [
        {"commit": True, "messages": [{"partition": i % PARTITIONS, "value": f"c1-{i}"} for i in range(4)]},
        {"commit": False, "messages": [{"partition": i % PARTITIONS, "value": f"a-{i}"} for i in range(4)]},
        {"commit": True, "messages": [{"partition": i % PARTITIONS, "value": f"c2-{i}"} for i in range(4)]},
    ]
    out = kafkajs.run("transactions", bootstrap, topic=topic, transactionalId=f"js-{topic}", transactions=txns)
    assert out == {"ok": True}, out
    committed = {m["value"].encode() for t in txns if t["commit"] for m in t["messages"]}
    aborted = {m["value"].encode() for t in txns if not t["commit"] for m in t["messages"]}
    got = kafkajs.run("consume", bootstrap, topic=topic, group=f"{topic}-rc", expect=len(committed), timeoutMs=30000)
    assert sorted(m["value"].encode() for m in got["messages"]) == sorted(committed)
    got = kafkajs.run(
        "consume", bootstrap, topic=topic, group=f"{topic}-ru", expect=len(committed | aborted), timeoutMs=30000, readUncommitted=True
    )
    assert sorted(m["value"].encode() for m in got["messages"]) == sorted(committed | aborted)
    check_isolation(bootstrap, topic, committed, aborted)


def group_offsets(bootstrap: str, group: str, topic: str, partitions: int = PARTITIONS) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def test_confluent_consume_transform_produce(shared_broker, topic):
    """A read_committed consumer in a group feeds a transactional producer, which commits the
    consumer's offsets in its transaction (send_offsets_to_transaction): the offsets move with
    a commit and stay with an abort."""
    bootstrap = shared_broker.bootstrap
    source, sink, group = f"{topic}-in", f"{topic}-out", f"{topic}-group"
    create_topic(bootstrap, source, PARTITIONS)
    create_topic(bootstrap, sink, PARTITIONS)
    feeder = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(20):
        feeder.produce(source, value=b"in-%02d" % i, partition=i % PARTITIONS)
    assert feeder.flush(60) == 0

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    p = confluent_producer(bootstrap, f"ctp-{topic}")
    p.init_transactions(60)
    try:
        c.subscribe([source])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 20:
            assert time.monotonic() < deadline, f"read {len(got)} of 20"
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append(m)
        # First transaction: aborted, the offsets stay where they were (nothing committed).
        p.begin_transaction()
        for m in got:
            p.produce(sink, value=b"aborted-" + m.value(), partition=m.partition())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        p.abort_transaction(60)
        assert all(o < 0 for o in group_offsets(bootstrap, group, source).values())
        # Second: committed, with the offsets.
        p.begin_transaction()
        for m in got:
            p.produce(sink, value=b"out-" + m.value(), partition=m.partition())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        p.commit_transaction(60)
    finally:
        c.close()
    assert group_offsets(bootstrap, group, source) == {0: 10, 1: 10}
    out = read_all(bootstrap, sink, "read_committed")
    assert sorted(values(out)) == sorted(b"out-in-%02d" % i for i in range(20))


def test_kafka_python_and_aiokafka_send_offsets(shared_broker, topic):
    """kafka-python and aiokafka commit a group's offsets inside their transactions."""
    from aiokafka import AIOKafkaProducer
    from aiokafka import TopicPartition as ATopicPartition
    from kafka.structs import OffsetAndMetadata

    bootstrap = shared_broker.bootstrap
    create_topic(bootstrap, topic, PARTITIONS)
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"kp-off-{topic}")
    try:
        p.init_transactions()
        p.begin_transaction()
        p.send(topic, b"x", partition=0)
        p.send_offsets_to_transaction(
            {KTopicPartition(topic, 0): OffsetAndMetadata(7, "", -1)}, f"{topic}-kp"
        )
        p.commit_transaction()
    finally:
        p.close(timeout=30)
    assert group_offsets(bootstrap, f"{topic}-kp", topic)[0] == 7

    async def aio():
        ap = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"aio-off-{topic}")
        await ap.start()
        try:
            async with ap.transaction():
                await ap.send_and_wait(topic, b"y", partition=1)
                await ap.send_offsets_to_transaction({ATopicPartition(topic, 1): 5}, f"{topic}-aio")
            # Aborted offsets are dropped.
            await ap.begin_transaction()
            await ap.send_and_wait(topic, b"z", partition=1)
            await ap.send_offsets_to_transaction({ATopicPartition(topic, 1): 9}, f"{topic}-aio")
            await ap.abort_transaction()
        finally:
            await ap.stop()

    asyncio.run(aio())
    assert group_offsets(bootstrap, f"{topic}-aio", topic)[1] == 5
    assert values(read_all(bootstrap, topic, "read_committed")) == {b"x", b"y"}


def test_zombie_is_fenced(shared_broker, topic):
    """Two producers with one transactional.id: the second's InitProducerId aborts the first's
    transaction and fences it; the first gets a fatal fenced error and writes nothing more."""
    bootstrap = shared_broker.bootstrap
    create_topic(bootstrap, topic, 1)
    txn_id = f"zombie-{topic}"
    old = confluent_producer(bootstrap, txn_id)
    old.init_transactions(60)
    old.begin_transaction()
    old.produce(topic, value=b"old-before", partition=0)
    assert old.flush(60) == 0

    new = confluent_producer(bootstrap, txn_id)
    new.init_transactions(60)

    with pytest.raises(KafkaException) as fenced:
        old.produce(topic, value=b"old-after", partition=0)
        # librdkafka raises the fatal error from the first call that serves its queue.
        old.flush(30)
        old.commit_transaction(30)
    err = fenced.value.args[0]
    assert err.fatal(), err
    assert err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH), err

    new.begin_transaction()
    new.produce(topic, value=b"new", partition=0)
    new.commit_transaction(60)
    assert values(read_all(bootstrap, topic, "read_committed", partitions=1)) == {b"new"}
    # The zombie's first record is in the log, aborted; its later one never got there.
    assert values(read_all(bootstrap, topic, "read_uncommitted", partitions=1)) == {b"old-before", b"new"}

    # kafka-python's zombie likewise.
    kp_id = f"kp-zombie-{topic}"
    kp_old = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=kp_id)
    kp_old.init_transactions()
    kp_old.begin_transaction()
    kp_old.send(topic, b"kp-old", partition=0).get(30)
    kp_new = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=kp_id)
    kp_new.init_transactions()
    with pytest.raises(Exception) as kp_fenced:
        kp_old.commit_transaction()
    assert "Fenced" in type(kp_fenced.value).__name__ or "fenced" in str(kp_fenced.value).lower(), kp_fenced.value
    kp_old.close(timeout=5)
    kp_new.close(timeout=30)
    assert b"kp-old" not in values(read_all(bootstrap, topic, "read_committed", partitions=1))


DYING_PRODUCER = textwrap.dedent(
    """
    import sys, time
    from confluent_kafka import Producer
    bootstrap, topic, txn_id = sys.argv[1:4]
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 3000, "linger.ms": 5})
    p.init_transactions(60)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value=b"doomed-%d" % i, partition=0)
    assert p.flush(60) == 0
    print("inside", flush=True)
    time.sleep(600)
    """
)


def end_offset(bootstrap: str, topic: str, isolation: str) -> int:
    """ListOffsets LATEST for partition 0, as kafka-python asks it for `isolation`."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation)
    try:
        tp = KTopicPartition(topic, 0)
        return c.end_offsets([tp])[tp]
    finally:
        c.close()


def test_producer_dying_inside_a_transaction_is_aborted_after_its_timeout(broker_factory, topic):
    broker = broker_factory.start("--transaction-abort-timed-out-transaction-cleanup-interval-ms", "200")
    bootstrap = broker.bootstrap
    create_topic(bootstrap, topic, 1)
    proc = subprocess.Popen(
        [sys.executable, "-c", DYING_PRODUCER, bootstrap, topic, f"dying-{topic}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "inside"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Records after the open transaction are committed, but held behind it.
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(3):
        plain.produce(topic, value=b"after-%d" % i, partition=0)
    assert plain.flush(60) == 0
    assert end_offset(bootstrap, topic, "read_uncommitted") >= 8
    # The timeout aborts the transaction, its abort marker takes offset 8, and the LSO moves on.
    wait_for(
        lambda: end_offset(bootstrap, topic, "read_committed") == 9,
        timeout=60,
        interval=0.5,
        message="the last stable offset past the timed-out transaction",
    )
    assert values(read_all(bootstrap, topic, "read_committed", partitions=1)) == {b"after-%d" % i for i in range(3)}
    assert broker.metric("skiff_transactions_timed_out_total") == 1
    # The transactional id goes on with a new producer; the dead one's epoch is fenced.
    p = confluent_producer(bootstrap, f"dying-{topic}")
    p.init_transactions(60)
    p.begin_transaction()
    p.produce(topic, value=b"revived", partition=0)
    p.commit_transaction(60)
    assert b"revived" in values(read_all(bootstrap, topic, "read_committed", partitions=1))


def txn_batch(pid: int, epoch: int, seq: int = 0, control: bool = False, value: bytes = b"v") -> bytes:
    ts = int(time.time() * 1000)
    return w.record_batch([(None, value, (), ts)], ts, producer=(pid, epoch, seq), transactional=True, control=control)


def produce_code(conn: w.Conn, topic: str, partition: int, batch: bytes, cid: int, txn_id: str | None) -> int:
    payload = conn.roundtrip(w.produce_request(topic, partition, batch, cid, transactional_id=txn_id))
    _, results = w.parse_produce_response(payload, 3)
    return results[(topic, partition)][0]


def test_bad_transactional_requests_get_kafkas_codes(shared_broker, topic):
    bootstrap = shared_broker.bootstrap
    create_topic(bootstrap, topic, 2)
    txn_id = f"wire-{topic}"
    with w.Conn(bootstrap) as conn:
        # FindCoordinator for a transactional id names an agent; an unknown key type is refused.
        found = w.parse_find_coordinator_v1(conn.roundtrip(w.find_coordinator_v1_request(txn_id, 1, 1)))
        assert found["error_code"] == NONE and found["node_id"] >= 0 and found["port"] > 0, found
        found = w.parse_find_coordinator_v1(conn.roundtrip(w.find_coordinator_v1_request(txn_id, 7, 2)))
        assert found["error_code"] == INVALID_REQUEST, found
        # transaction.timeout.ms must be positive and at most transaction.max.timeout.ms.
        for timeout in (0, -5, 900_001):
            answer = w.parse_init_producer_id_v1(conn.roundtrip(w.init_producer_id_v1_request(txn_id, timeout, 3)))
            assert answer[0] == INVALID_TRANSACTION_TIMEOUT, (timeout, answer)
        code, pid, epoch = w.parse_init_producer_id_v1(conn.roundtrip(w.init_producer_id_v1_request(txn_id, 60_000, 4)))
        assert code == NONE and pid >= 0 and epoch >= 0

        # Before AddPartitionsToTxn a transactional batch has no transaction to go into.
        assert produce_code(conn, topic, 0, txn_batch(pid, epoch), 5, txn_id) == INVALID_TXN_STATE
        # An unknown partition: nothing is added, the others are not attempted.
        added = w.parse_add_partitions_to_txn_v1(
            conn.roundtrip(w.add_partitions_to_txn_v1_request(txn_id, pid, epoch, {topic: [0, 9], "no-such-topic": [0]}, 6))
        )
        assert added == {
            (topic, 0): OPERATION_NOT_ATTEMPTED,
            (topic, 9): UNKNOWN_TOPIC_OR_PARTITION,
            ("no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION,
        }
        assert produce_code(conn, topic, 0, txn_batch(pid, epoch), 7, txn_id) == INVALID_TXN_STATE
        # An older epoch is fenced, an unknown producer id has no transactional id.
        added = w.parse_add_partitions_to_txn_v1(
            conn.roundtrip(w.add_partitions_to_txn_v1_request(txn_id, pid, epoch - 1, {topic: [0]}, 8))
        )
        assert added == {(topic, 0): PRODUCER_FENCED}
        added = w.parse_add_partitions_to_txn_v1(
            conn.roundtrip(w.add_partitions_to_txn_v1_request(txn_id, pid + 1000, epoch, {topic: [0]}, 9))
        )
        assert added == {(topic, 0): INVALID_PRODUCER_ID_MAPPING}
        added = w.parse_add_partitions_to_txn_v1(
            conn.roundtrip(w.add_partitions_to_txn_v1_request(txn_id, pid, epoch, {topic: [0]}, 10))
        )
        assert added == {(topic, 0): NONE}

        # Into the transaction: the right epoch only, the added partition only, never a marker.
        assert produce_code(conn, topic, 0, txn_batch(pid, epoch + 1), 11, txn_id) == INVALID_PRODUCER_EPOCH
        assert produce_code(conn, topic, 1, txn_batch(pid, epoch), 12, txn_id) == INVALID_TXN_STATE
        assert produce_code(conn, topic, 0, txn_batch(pid + 1000, 0), 13, txn_id) == INVALID_PRODUCER_ID_MAPPING
        assert produce_code(conn, topic, 0, txn_batch(pid, epoch, control=True), 14, txn_id) == INVALID_RECORD
        assert produce_code(conn, topic, 0, txn_batch(pid, epoch, value=b"kept"), 15, txn_id) == NONE

        # EndTxn: for an id nobody initialised, and with a wrong producer id.
        code = w.parse_error_code_v1(conn.roundtrip(w.end_txn_v1_request(f"never-{topic}", pid, epoch, True, 16)))
        assert code == INVALID_PRODUCER_ID_MAPPING
        code = w.parse_error_code_v1(conn.roundtrip(w.end_txn_v1_request(txn_id, pid + 1000, epoch, True, 17)))
        assert code == INVALID_PRODUCER_ID_MAPPING
        code = w.parse_error_code_v1(conn.roundtrip(w.end_txn_v1_request(txn_id, pid, epoch, True, 18)))
        assert code == NONE
        # A retry of the same EndTxn gets the same answer; the opposite outcome does not.
        code = w.parse_error_code_v1(conn.roundtrip(w.end_txn_v1_request(txn_id, pid, epoch, True, 19)))
        assert code == NONE
        code = w.parse_error_code_v1(conn.roundtrip(w.end_txn_v1_request(txn_id, pid, epoch, False, 20)))
        assert code == INVALID_TXN_STATE
        # The transaction ended: no late write into it (KIP-890 part 1).
        assert produce_code(conn, topic, 0, txn_batch(pid, epoch, seq=1), 21, txn_id) == INVALID_TXN_STATE

        # A malformed AddPartitionsToTxn (2^31 topics in a few bytes) closes the connection...
        body = w.string(txn_id) + w.struct.pack(">qhi", pid, epoch, 0x7FFFFFFF)
        conn.send(w.frame(w.header_v1(w.API_ADD_PARTITIONS_TO_TXN, 1, 22) + body))
        conn.wait_closed()
    # ...and the broker goes on: the committed record is there, read_committed.
    assert values(read_all(bootstrap, topic, "read_committed")) == {b"kept"}
    shared_broker.check_alive()


def join_member(conn: w.Conn, group: str) -> tuple[str, int]:
    """A one-member classic group: (member id, generation)."""
    joined = w.parse_join_group_v5(conn.roundtrip(w.join_group_v5_request(group, 1)))
    if joined["error_code"] == 79:  # MEMBER_ID_REQUIRED: join again with the id given
        joined = w.parse_join_group_v5(conn.roundtrip(w.join_group_v5_request(group, 2, member_id=joined["member_id"])))
    assert joined["error_code"] == NONE, joined
    member, generation = joined["member_id"], joined["generation_id"]
    _, code, _ = w.parse_sync_group_v3(
        conn.roundtrip(w.sync_group_v3_request(group, generation, member, 3, assignments=[(member, b"")]))
    )
    assert code == NONE
    return member, generation


def test_txn_offset_commit_checks_the_member_and_offset_fetch_waits_for_it(broker_factory, topic):
    broker = broker_factory.start("--group-initial-rebalance-delay-ms", "0")
    bootstrap = broker.bootstrap
    create_topic(bootstrap, topic, 1)
    group, txn_id = f"{topic}-group", f"{topic}-txn"
    with w.Conn(bootstrap) as conn:
        member, generation = join_member(conn, group)
        code, pid, epoch = w.parse_init_producer_id_v1(conn.roundtrip(w.init_producer_id_v1_request(txn_id, 60_000, 10)))
        assert code == NONE
        assert w.parse_error_code_v1(conn.roundtrip(w.add_offsets_to_txn_v1_request(txn_id, pid, epoch, group, 11))) == NONE

        def commit(gen, mid, cid):
            request = w.txn_offset_commit_v3_request(txn_id, group, pid, epoch, gen, mid, {topic: [(0, 42)]}, cid)
            return w.parse_txn_offset_commit_v3(conn.roundtrip(request))[(topic, 0)]

        assert commit(generation + 1, member, 12) == ILLEGAL_GENERATION
        assert commit(generation, "not-a-member", 13) == UNKNOWN_MEMBER_ID
        assert commit(generation, member, 14) == NONE

        # While the transaction holds the offset, a consumer asking for stable offsets waits.
        def fetch(require_stable, cid):
            return w.parse_offset_fetch_v7(conn.roundtrip(w.offset_fetch_v7_request(group, {topic: [0]}, require_stable, cid)))

        assert fetch(True, 15) == (NONE, {(topic, 0): (-1, UNSTABLE_OFFSET_COMMIT)})
        assert fetch(False, 16) == (NONE, {(topic, 0): (-1, NONE)})
        assert w.parse_error_code_v1(conn.roundtrip(w.end_txn_v1_request(txn_id, pid, epoch, True, 17))) == NONE
        assert fetch(True, 18) == (NONE, {(topic, 0): (42, NONE)})
    assert broker.metric("skiff_transactions_committed_total") == 1
    assert broker.metric("skiff_end_txn_latency_seconds_count") == 1


def test_api_versions_advertise_the_transaction_apis(shared_broker):
    with w.Conn(shared_broker.bootstrap) as conn:
        _, code, apis = w.parse_api_versions_v0(conn.roundtrip(w.api_versions_request(0, 1)))
    assert code == NONE
    assert apis[w.API_ADD_PARTITIONS_TO_TXN] == (0, 3)
    assert apis[w.API_ADD_OFFSETS_TO_TXN] == (0, 4)
    assert apis[w.API_TXN_OFFSET_COMMIT] == (0, 5)
    assert apis[w.API_END_TXN] == (0, 5)
