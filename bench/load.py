"""Load for the Skiff benchmark, with librdkafka (confluent-kafka) as the client.

Three phases against one running broker (bench/run starts it):
  1. produce   --mib MiB of 1 KiB records over 16 partitions, acks=all, as fast as the producers go:
               throughput, and object-store PUTs per GiB produced
  2. consume   everything phase 1 wrote, from offset 0, with assign(): throughput, GETs per GiB read
  then a cost estimate from those request counts at S3's prices (--price-*), per GiB and per month
  at --month-rate-mib-s, next to the cross-zone replication a 3-replica Kafka pays for the same bytes
  3. latency   --rate records/s for --seconds, with a consumer tailing the topic in another process:
               produce latency (produce() to delivery report) and end-to-end latency (produce() to
               the consumer receiving it), p50 and p99
  4. transactions  the produce phase again (--txn-mib MiB) with transactional producers committing
               a transaction every --txn-ms: throughput relative to phase 1's plain acks=all; then
               one producer committing small transactions at --txn-rate/s while a read_committed
               consumer tails: EndTxn latency (commit_transaction() after the records are acked,
               which is the EndTxn round trip) and commit-to-visible latency (commit_transaction()
               returning to the consumer receiving the transaction's first record)

The object-store figures come from the broker's own counters on /metrics, read before and after a
phase. Any delivery error fails the run: a benchmark that loses records measures nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import sys
import time
import urllib.request

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

RECORD_BYTES = 1024
GIB = 1 << 30
MIB = 1 << 20


def metric(url: str, name: str, **labels) -> float:
    """Sum of a counter over the series whose labels include `labels`."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


# How S3 prices each request kind the broker counts (skiff_object_store_requests_total{op}).
WRITE_OPS = ("put", "copy", "list", "multipart_create", "multipart_part", "multipart_complete")
READ_OPS = ("get", "ranged_get", "head")
FREE_OPS = ("delete", "multipart_abort")


class StoreCounters:
    def __init__(self, url: str):
        self.url = url
        self.start = self.read()

    def read(self) -> dict[str, float]:
        requests = {
            op: metric(self.url, "skiff_object_store_requests_total", op=op) for op in WRITE_OPS + READ_OPS + FREE_OPS
        }
        return requests | {
            "writes": sum(requests[op] for op in WRITE_OPS),
            "reads": sum(requests[op] for op in READ_OPS),
            "put_bytes": metric(self.url, "skiff_object_store_bytes_total", op="put"),
            "flushes": metric(self.url, "skiff_flushes_total"),
        }

    def delta(self) -> dict[str, float]:
        now = self.read()
        return {k: now[k] - self.start[k] for k in now}


class Histograms:
    """Mean of Prometheus histograms over a phase, from their _sum and _count."""

    def __init__(self, url: str, *names: str):
        self.url, self.names = url, names
        self.start = self.read()

    def read(self) -> dict[str, tuple[float, float]]:
        return {n: (metric(self.url, n + "_sum"), metric(self.url, n + "_count")) for n in self.names}

    def mean_ms(self) -> dict[str, float]:
        now = self.read()
        out = {}
        for n in self.names:
            (s0, c0), (s1, c1) = self.start[n], now[n]
            out[n.removeprefix("skiff_").removesuffix("_seconds") + "_mean_ms"] = round(
                1000 * (s1 - s0) / max(c1 - c0, 1), 1
            )
        return out


def create_topic(args, topic: str, partitions: int, config: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": args.bootstrap, **args.client})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)
    admin.create_topics([new])[topic].result(60)
    deadline = time.monotonic() + 60
    while True:
        t = admin.list_topics(topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        if time.monotonic() > deadline:
            sys.exit(f"topic {topic} did not appear")
        time.sleep(0.1)


def producer_conf(args, **extra) -> dict:
    conf = {
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "linger.ms": args.linger_ms,
        "batch.size": 1_000_000,
        "queue.buffering.max.kbytes": 1 << 20,
        "message.timeout.ms": 120_000,
        "compression.type": args.compression,
        **args.client,
    }
    if args.idempotence:
        conf["enable.idempotence"] = True
    conf.update(extra)
    return conf


def produce_worker(args, records: int, first: int, out: mp.Queue) -> None:
    errors = []

    def on_delivery(err, _msg):
        if err is not None and len(errors) < 10:
            errors.append(str(err))

    p = Producer(producer_conf(args, on_delivery=on_delivery))
    value = bytes(range(256)) * (RECORD_BYTES // 256)
    partitions = args.partitions
    started = time.monotonic()
    for i in range(first, first + records):
        while True:
            try:
                p.produce(args.topic, value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.01)
        if i & 1023 == 0:
            p.poll(0)
    left = p.flush(180)
    out.put({"seconds": time.monotonic() - started, "unacked": left, "errors": errors})


def phase_produce(args) -> dict:
    records = args.mib * MIB // RECORD_BYTES
    share = records // args.producers
    counters = StoreCounters(args.metrics)
    out: mp.Queue = mp.Queue()
    workers = [
        mp.Process(target=produce_worker, args=(args, share, n * share, out)) for n in range(args.producers)
    ]
    started = time.monotonic()
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    seconds = time.monotonic() - started
    for w in workers:
        w.join()
    for r in results:
        if r["unacked"] or r["errors"]:
            sys.exit(f"produce failed: {r['unacked']} unacknowledged, errors: {r['errors']}")
    produced = share * args.producers
    store = counters.delta()
    gib = produced * RECORD_BYTES / GIB
    return {
        "records": produced,
        "seconds": round(seconds, 2),
        "mib_per_s": round(produced * RECORD_BYTES / MIB / seconds, 1),
        "records_per_s": round(produced / seconds),
        "puts": store["put"],
        "flushes": store["flushes"],
        "puts_per_gib": round(store["put"] / gib, 1),
        "writes_per_gib": round(store["writes"] / gib, 1),
        "mib_per_put": round(store["put_bytes"] / MIB / max(store["put"], 1), 2),
        "other_store_requests": store["writes"] - store["put"] + store["reads"],
    }


def consumer_conf(args, **extra) -> dict:
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": "skiff-bench-unused",  # assign() only: no group is joined
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": False,
        **args.client,
    }
    conf.update(extra)
    return conf


def high_watermarks(args) -> dict[int, int]:
    c = Consumer(consumer_conf(args))
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(args.topic, p), timeout=30, cached=False)[1]
            for p in range(args.partitions)
        }
    finally:
        c.close()


def phase_consume(args) -> dict:
    ends = high_watermarks(args)
    total = sum(ends.values())
    counters = StoreCounters(args.metrics)
    c = Consumer(consumer_conf(args, **{"fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 8 * MIB}))
    try:
        c.assign([TopicPartition(args.topic, p, 0) for p in ends])
        seen = 0
        started = time.monotonic()
        while seen < total:
            for msg in c.consume(num_messages=10_000, timeout=1.0):
                if msg.error():
                    raise KafkaException(msg.error())
                seen += 1
            if time.monotonic() - started > 600:
                sys.exit(f"consume timed out: {seen} of {total} records")
        seconds = time.monotonic() - started
    finally:
        c.close()
    store = counters.delta()
    gib = total * RECORD_BYTES / GIB
    return {
        "records": total,
        "seconds": round(seconds, 2),
        "mib_per_s": round(total * RECORD_BYTES / MIB / seconds, 1),
        "gets": store["reads"],
        "gets_per_gib": round(store["reads"] / gib, 1),
    }


def cost(args, pr: dict, co: dict) -> dict:
    """$ per GiB and per month from the measured requests per GiB, at the given prices; and what a
    3-replica Kafka spread over 3 zones pays to replicate the same bytes (each byte is copied to
    two other zones). Prices are per GB as AWS bills them (GiB here); requests per 1,000."""
    put_per_gib = pr["writes_per_gib"] * args.price_put / 1000
    get_per_gib = co["gets_per_gib"] * args.price_get / 1000 * args.fanout
    gib_month = args.month_rate_mib_s * 86400 * 30 / 1024
    stored_gib = args.month_rate_mib_s * 86400 * args.retention_days / 1024
    requests_month = gib_month * (put_per_gib + get_per_gib)
    storage_month = stored_gib * args.price_storage
    kafka_replication_month = gib_month * 2 * args.price_cross_az
    return {
        "put_dollars_per_gib": round(put_per_gib, 6),
        "get_dollars_per_gib": round(get_per_gib, 6),
        "dollars_per_gib": round(put_per_gib + get_per_gib, 6),
        "gib_per_month": round(gib_month),
        "requests_dollars_per_month": round(requests_month, 2),
        "storage_dollars_per_month": round(storage_month, 2),
        "skiff_dollars_per_month": round(requests_month + storage_month, 2),
        "kafka_replication_dollars_per_gib": round(2 * args.price_cross_az, 4),
        "kafka_replication_dollars_per_month": round(kafka_replication_month, 2),
    }


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def tail_worker(args, starts: dict[int, int], expected: int, ready, out: mp.Queue) -> None:
    c = Consumer(consumer_conf(args, **{"fetch.wait.max.ms": 500}))
    latencies = []
    try:
        c.assign([TopicPartition(args.topic, p, o) for p, o in starts.items()])
        c.consume(num_messages=1, timeout=1.0)  # connects and sends the first fetches
        ready.set()
        deadline = time.monotonic() + args.seconds + 120
        # poll(), not consume(n): consume waits for n records or its timeout, which would add up
        # to that timeout to every latency measured here.
        while len(latencies) < expected and time.monotonic() < deadline:
            msg = c.poll(0.1)
            if msg is None:
                continue
            now = time.time_ns()
            if msg.error():
                raise KafkaException(msg.error())
            latencies.append((now - int(msg.key())) / 1e6)
    finally:
        c.close()
    out.put(latencies)


def phase_latency(args) -> dict:
    starts = high_watermarks(args)
    expected = args.rate * args.seconds
    flushes = Histograms(args.metrics, "skiff_flush_duration_seconds", "skiff_metastore_commit_latency_seconds")
    out: mp.Queue = mp.Queue()
    ready = mp.Event()
    tail = mp.Process(target=tail_worker, args=(args, starts, expected, ready, out))
    tail.start()
    ready.wait(60)

    produce_ms: list[float] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            produce_ms.append((time.time_ns() - int(msg.key())) / 1e6)

    p = Producer(producer_conf(args, **{"linger.ms": 5}))
    value = b"x" * (RECORD_BYTES - 19)
    started = time.monotonic()
    for i in range(expected):
        due = started + i / args.rate
        while (wait := due - time.monotonic()) > 0:
            p.poll(min(wait, 0.001))
        p.produce(args.topic, value, key=str(time.time_ns()).encode(), partition=i % args.partitions, on_delivery=on_delivery)
        p.poll(0)
    p.flush(120)
    end_to_end = out.get()
    tail.join()
    if errors or len(produce_ms) != expected or len(end_to_end) != expected:
        sys.exit(f"latency phase lost records: {len(produce_ms)} acked, {len(end_to_end)} consumed of {expected}; {errors[:5]}")
    produce_ms.sort()
    end_to_end.sort()
    return {
        "records": expected,
        "rate": args.rate,
        "produce_p50_ms": round(percentile(produce_ms, 0.50), 1),
        "produce_p99_ms": round(percentile(produce_ms, 0.99), 1),
        "produce_max_ms": round(produce_ms[-1], 1),
        "e2e_p50_ms": round(percentile(end_to_end, 0.50), 1),
        "e2e_p99_ms": round(percentile(end_to_end, 0.99), 1),
        "e2e_max_ms": round(end_to_end[-1], 1),
    } | flushes.mean_ms()


def txn_produce_worker(args, records: int, first: int, n: int, out: mp.Queue) -> None:
    errors = []

    def on_delivery(err, _msg):
        if err is not None and len(errors) < 10:
            errors.append(str(err))

    p = Producer(producer_conf(args, **{
        "on_delivery": on_delivery,
        "transactional.id": f"skiff-bench-{n}",
        "enable.idempotence": True,
        "message.timeout.ms": 60_000,
        "transaction.timeout.ms": 60_000,
    }))
    p.init_transactions(60)
    value = bytes(range(256)) * (RECORD_BYTES // 256)
    partitions = args.partitions
    commits = 0
    started = time.monotonic()
    p.begin_transaction()
    txn_started = time.monotonic()
    for i in range(first, first + records):
        while True:
            try:
                p.produce(args.txn_topic, value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.01)
        if i & 1023 == 0:
            p.poll(0)
        if time.monotonic() - txn_started >= args.txn_ms / 1000:
            p.commit_transaction(60)
            commits += 1
            p.begin_transaction()
            txn_started = time.monotonic()
    p.commit_transaction(60)
    commits += 1
    out.put({"seconds": time.monotonic() - started, "commits": commits, "errors": errors})


def txn_tail_worker(args, expected: int, ready, out: mp.Queue) -> None:
    c = Consumer(consumer_conf(args, **{"fetch.wait.max.ms": 500, "isolation.level": "read_committed"}))
    seen: dict[int, int] = {}
    try:
        c.assign([TopicPartition(args.txn_topic + "-latency", 0, 0)])
        c.consume(num_messages=1, timeout=1.0)
        ready.set()
        deadline = time.monotonic() + expected / args.txn_rate + 120
        while len(seen) < expected and time.monotonic() < deadline:
            msg = c.poll(0.1)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            seen.setdefault(int(msg.key()), time.time_ns())
    finally:
        c.close()
    out.put(seen)


def phase_transactions(args, plain: dict) -> dict:
    records = args.txn_mib * MIB // RECORD_BYTES
    share = records // args.producers
    out: mp.Queue = mp.Queue()
    workers = [
        mp.Process(target=txn_produce_worker, args=(args, share, n * share, n, out)) for n in range(args.producers)
    ]
    started = time.monotonic()
    for w in workers:
        w.start()
    try:
        results = [out.get(timeout=900) for _ in workers]
    except Exception:
        sys.exit("a transactional producer did not finish (see its traceback above)")
    seconds = time.monotonic() - started
    for w in workers:
        w.join()
    for r in results:
        if r["errors"]:
            sys.exit(f"transactional produce failed: {r['errors']}")
    produced = share * args.producers
    mib_s = produced * RECORD_BYTES / MIB / seconds

    # EndTxn and commit-to-visible latency: small transactions, one at a time.
    expected = args.txn_rate * args.seconds
    tail_out: mp.Queue = mp.Queue()
    ready = mp.Event()
    tail = mp.Process(target=txn_tail_worker, args=(args, expected, ready, tail_out))
    tail.start()
    ready.wait(60)
    p = Producer(producer_conf(args, **{"transactional.id": "skiff-bench-latency", "linger.ms": 0,
                                        "message.timeout.ms": 60_000, "transaction.timeout.ms": 60_000}))
    p.init_transactions(60)
    end_txn_ms: list[float] = []
    committed_ns: dict[int, int] = {}
    t0 = time.monotonic()
    for i in range(expected):
        due = t0 + i / args.txn_rate
        while (wait := due - time.monotonic()) > 0:
            time.sleep(min(wait, 0.001))
        p.begin_transaction()
        for _ in range(args.txn_records):
            p.produce(args.txn_topic + "-latency", b"x" * 100, key=str(i).encode(), partition=0)
        if p.flush(60):
            sys.exit("transactional records not acknowledged")
        before = time.monotonic_ns()
        p.commit_transaction(60)
        end_txn_ms.append((time.monotonic_ns() - before) / 1e6)
        committed_ns[i] = time.time_ns()
    seen = tail_out.get()
    tail.join()
    if len(seen) != expected:
        sys.exit(f"read_committed consumer saw {len(seen)} of {expected} transactions")
    visible_ms = sorted((seen[i] - committed_ns[i]) / 1e6 for i in range(expected))
    end_txn_ms.sort()
    return {
        "records": produced,
        "seconds": round(seconds, 2),
        "mib_per_s": round(mib_s, 1),
        "relative_to_plain": round(mib_s / plain["mib_per_s"], 3),
        "transactions": sum(r["commits"] for r in results),
        "txn_ms": args.txn_ms,
        "latency_transactions": expected,
        "end_txn_p50_ms": round(percentile(end_txn_ms, 0.50), 2),
        "end_txn_p99_ms": round(percentile(end_txn_ms, 0.99), 2),
        "visible_p50_ms": round(percentile(visible_ms, 0.50), 1),
        "visible_p99_ms": round(percentile(visible_ms, 0.99), 1),
    }


def alter_quota(args, client_id: str, key: str, value: float) -> None:
    """AlterClientQuotas v0 on the wire (no Python client has it), over a plain connection."""
    import socket
    import struct

    def string(v: str) -> bytes:
        b = v.encode()
        return struct.pack(">h", len(b)) + b

    body = struct.pack(">i", 1) + struct.pack(">i", 1) + string("client-id") + string(client_id)
    body += struct.pack(">i", 1) + string(key) + struct.pack(">d?", value, False) + struct.pack(">?", False)
    header = struct.pack(">hhi", 49, 0, 1) + string("skiff-bench")
    host, port = args.bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        msg = header + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", s.recv(4))[0]
        data = b""
        while len(data) < size:
            data += s.recv(size - len(data))
    code = struct.unpack(">h", data[12:14])[0]
    if code != 0:
        sys.exit(f"AlterClientQuotas failed with error code {code}")


def phase_quota(args) -> dict:
    """One producer with a producer_byte_rate quota, producing as fast as it can for a while:
    the rate it gets after the quota's window, against the quota."""
    client_id = "skiff-bench-quota"
    quota = args.quota_mib_s * MIB
    alter_quota(args, client_id, "producer_byte_rate", quota)
    time.sleep(3)  # the agents' copies of the quotas are refreshed every few seconds
    throttles: list[int] = []
    acked: list[float] = []

    def on_delivery(err, _msg):
        if err is None:
            acked.append(time.monotonic())

    p = Producer(producer_conf(args, **{"client.id": client_id, "on_delivery": on_delivery,
                                        # confluent-kafka gives the throttle time in seconds.
                                        "throttle_cb": lambda e: throttles.append(round(e.throttle_time * 1000))}))
    value = bytes(range(256)) * (RECORD_BYTES // 256)
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < args.quota_seconds:
        try:
            p.produce(args.topic, value, partition=i % args.partitions)
            i += 1
        except BufferError:
            p.poll(0.05)
        if i & 255 == 0:
            p.poll(0)
    p.purge(in_queue=True)
    p.flush(60)
    # The quota's window (11 samples of 1 s) lets the first ten seconds' worth through at once;
    # the rate it holds a client to is the one after that.
    window_s = 11
    later = [t for t in acked if t - started >= window_s]
    seconds = (later[-1] - (started + window_s)) if len(later) > 1 else float("nan")
    mib_s = len(later) * RECORD_BYTES / MIB / seconds if later else 0.0
    return {
        "client_id": client_id,
        "quota_mib_s": args.quota_mib_s,
        "records": len(later),
        "seconds": round(seconds, 1),
        "mib_per_s": round(mib_s, 2),
        "relative_to_quota": mib_s / args.quota_mib_s,
        "window_s": window_s,
        "max_throttle_ms": max(throttles, default=0),
        "throttle_events": len([t for t in throttles if t > 0]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--metrics", required=True, help="the broker's /metrics URL")
    ap.add_argument("--topic", default="bench")
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--mib", type=int, default=2048, help="MiB to produce in the throughput phase")
    ap.add_argument("--producers", type=int, default=2, help="producer processes in the throughput phase")
    ap.add_argument("--linger-ms", type=int, default=50)
    ap.add_argument("--idempotence", action="store_true", help="enable.idempotence (at most 5 requests in flight)")
    ap.add_argument("--compression", default="none", help="the producers' compression.type")
    ap.add_argument("--topic-config", action="append", default=[], metavar="NAME=VALUE",
                    help="a config of the topic the load creates (repeat for more)")
    ap.add_argument("--rate", type=int, default=2000, help="records/s in the latency phase")
    ap.add_argument("--seconds", type=int, default=20, help="length of the latency phase")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--json-out", default=None, metavar="FILE", help="also write the report's JSON to FILE")
    ap.add_argument("--client-config", action="append", default=[], metavar="NAME=VALUE",
                    help="a librdkafka setting for every client (security.protocol, sasl.*, ssl.*; repeat)")
    ap.add_argument("--only", choices=["produce-consume-latency", "quota"], default=None,
                    help="run only these phases (bench/run's SASL_SSL and quota runs)")
    ap.add_argument("--quota-mib-s", type=float, default=2.0, help="the producer_byte_rate the quota phase sets")
    ap.add_argument("--quota-seconds", type=int, default=30, help="how long the quota phase produces")
    txn = ap.add_argument_group("transactions phase")
    txn.add_argument("--txn-mib", type=int, default=None, help="MiB produced transactionally (default: --mib)")
    txn.add_argument("--txn-ms", type=int, default=100, help="how long each throughput transaction runs")
    txn.add_argument("--txn-rate", type=int, default=50, help="small transactions/s in the latency part")
    txn.add_argument("--txn-records", type=int, default=4, help="records per small transaction")
    txn.add_argument("--no-transactions", action="store_true", help="skip the transactions phase")
    costs = ap.add_argument_group("cost report (S3 list prices in us-east-1 by default)")
    costs.add_argument("--price-put", type=float, default=0.005, help="$ per 1,000 PUT/COPY/POST/LIST requests")
    costs.add_argument("--price-get", type=float, default=0.0004, help="$ per 1,000 GET/HEAD requests")
    costs.add_argument("--price-storage", type=float, default=0.023, help="$ per GB-month stored")
    costs.add_argument("--price-cross-az", type=float, default=0.02, help="$ per GB sent across zones (both ends)")
    costs.add_argument("--month-rate-mib-s", type=float, default=10, help="produce rate the monthly figures assume")
    costs.add_argument("--retention-days", type=float, default=7, help="retention the storage figure assumes")
    costs.add_argument("--fanout", type=int, default=1, help="consumer groups reading every byte")
    args = ap.parse_args()

    args.client = dict(kv.split("=", 1) for kv in args.client_config)
    config = dict(kv.split("=", 1) for kv in args.topic_config)
    create_topic(args, args.topic, args.partitions, config)
    if args.only == "quota":
        q = phase_quota(args)
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump({"quota": q}, f)
        if args.json:
            print(json.dumps({"quota": q}))
            return
        print(f"quota     producer_byte_rate {q['quota_mib_s']} MiB/s for client.id {q['client_id']}: "
              f"{q['records']:,} x 1 KiB in {q['seconds']} s = {q['mib_per_s']} MiB/s "
              f"({q['relative_to_quota']:.0%} of the quota; the first {q['window_s']} s measured out); "
              f"throttle_time_ms seen: max {q['max_throttle_ms']} ms in {q['throttle_events']} answers")
        return
    if args.only == "produce-consume-latency":
        args.no_transactions = True
    report = {
        "produce": phase_produce(args),
        "consume": phase_consume(args),
        "latency": phase_latency(args),
    }
    if not args.no_transactions:
        args.txn_topic = args.topic + "-txn"
        args.txn_mib = args.txn_mib or args.mib
        create_topic(args, args.txn_topic, args.partitions, config)
        create_topic(args, args.txn_topic + "-latency", 1, {})
        report["transactions"] = phase_transactions(args, report["produce"])
    report["cost"] = cost(args, report["produce"], report["consume"])
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f)
    if args.json:
        print(json.dumps(report))
        return
    pr, co, la = report["produce"], report["consume"], report["latency"]
    idem = ", idempotent" if args.idempotence else ""
    print(f"produce   {pr['records']:,} x 1 KiB over {args.partitions} partitions, acks=all{idem}, "
          f"{args.producers} producer(s), linger.ms={args.linger_ms}, compression {args.compression}"
          + "".join(f", {kv}" for kv in args.topic_config))
    print(f"          {pr['mib_per_s']} MiB/s, {pr['records_per_s']:,} records/s ({pr['seconds']} s)")
    print(f"          {pr['puts']:.0f} PUTs for {pr['flushes']:.0f} flushes = {pr['puts_per_gib']} PUTs/GiB, "
          f"{pr['mib_per_put']} MiB per PUT; "
          f"other object-store requests: {pr['other_store_requests']:.0f}")
    print(f"consume   {co['records']:,} records from offset 0: {co['mib_per_s']} MiB/s ({co['seconds']} s)")
    print(f"          {co['gets']:.0f} GETs = {co['gets_per_gib']} GETs/GiB")
    c = report["cost"]
    print(f"cost      S3 at ${args.price_put}/1k writes, ${args.price_get}/1k reads, ${args.price_storage}/GB-month: "
          f"{pr['writes_per_gib']} write requests/GiB produced = ${c['put_dollars_per_gib']}/GiB, "
          f"{co['gets_per_gib']} read requests/GiB consumed x {args.fanout} = ${c['get_dollars_per_gib']}/GiB")
    print(f"          at {args.month_rate_mib_s:g} MiB/s ({c['gib_per_month']:,} GiB/month), {args.retention_days:g} days kept: "
          f"requests ${c['requests_dollars_per_month']:,}/month + storage ${c['storage_dollars_per_month']:,}/month "
          f"= ${c['skiff_dollars_per_month']:,}/month")
    print(f"          a 3-replica Kafka over 3 zones pays ${c['kafka_replication_dollars_per_gib']}/GiB to replicate "
          f"the same bytes: ${c['kafka_replication_dollars_per_month']:,}/month (before clients crossing zones)")
    print(f"latency   {la['records']:,} records at {la['rate']:,}/s, linger.ms=5")
    print(f"          produce  p50 {la['produce_p50_ms']} ms  p99 {la['produce_p99_ms']} ms  max {la['produce_max_ms']} ms")
    print(f"          e2e      p50 {la['e2e_p50_ms']} ms  p99 {la['e2e_p99_ms']} ms  max {la['e2e_max_ms']} ms")
    print(f"          broker: window close to commit {la['flush_duration_mean_ms']} ms mean, "
          f"of which metastore commit {la['metastore_commit_latency_mean_ms']} ms")
    if "transactions" in report:
        tx = report["transactions"]
        print(f"txn       {tx['records']:,} x 1 KiB in {tx['transactions']:,} transactions of {tx['txn_ms']} ms, "
              f"{args.producers} producer(s): {tx['mib_per_s']} MiB/s = {tx['relative_to_plain']:.0%} of plain acks=all")
        print(f"          {tx['latency_transactions']:,} transactions of {args.txn_records} records at {args.txn_rate}/s: "
              f"EndTxn p50 {tx['end_txn_p50_ms']} ms p99 {tx['end_txn_p99_ms']} ms; "
              f"commit to visible (read_committed) p50 {tx['visible_p50_ms']} ms p99 {tx['visible_p99_ms']} ms")


if __name__ == "__main__":
    main()
