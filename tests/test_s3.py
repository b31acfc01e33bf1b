"""Skiff on an S3 server (tests/s3server.py) when S3 misbehaves. Every test here uses S3 whatever
SKIFF_TEST_STORE says; the core tests run against S3 too (tests/run's second pytest pass).

- With 5% of PUTs and GETs failing and 50 ms added to each, and separately with 5% of responses
  lost after the write happened: an idempotent producer writing for SKIFF_S3_FAULT_SECONDS
  (default 60) has every record acknowledged exactly once, in order, and a consumer reads them
  all back through the same faults.
- `skiff s3 init` creates a missing bucket and adds the rule that aborts incomplete multipart
  uploads, keeping rules already there; run again it changes nothing.
- With the S3 server frozen for 10 s: a produce fails with a retriable error within its request
  timeout (no hang, no acknowledgement), a producer that keeps retrying succeeds once S3 is
  back, and nothing acknowledged is lost or duplicated.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from confluent_kafka import KafkaError

import clients
from conftest import TEST_BUCKET, Broker, S3Store, free_port, shared_s3_server, skiff_bin, wait_for
from load import PARTITIONS, Load, check_exactly_once
from s3server import S3Server

FAULT_SECONDS = float(os.environ.get("SKIFF_S3_FAULT_SECONDS", "60"))


def s3_broker(broker_factory, server: S3Server, *args: str) -> Broker:
    store = S3Store(server, TEST_BUCKET, f"faults-{time.monotonic_ns()}")
    name = f"skiff{len(broker_factory.brokers)}"
    b = Broker(broker_factory.base / name, args, name, store=store)
    broker_factory.brokers.append(b)
    return b.start()


@pytest.mark.timeout(int(FAULT_SECONDS) + 240)
@pytest.mark.parametrize(
    "faults",
    [
        "error_rate=0.05,latency_ms=50,ops=put+get",
        "lost_response_rate=0.05,latency_ms=50,ops=put+get",
    ],
    ids=["errors-and-latency", "lost-responses"],
)
def test_faults_lose_nothing_and_duplicate_nothing(broker_factory, topic, tmp_path, faults):
    server = shared_s3_server(tmp_path)
    # 50 ms windows: 20 PUTs a second, so a 5% fault rate hits dozens of them. No read cache: the
    # read-back must go through the faulty store, not the memory the agent flushed into.
    broker = s3_broker(
        broker_factory, server, "--store-faults", faults, "--flush-interval-ms", "50", "--read-cache-memory-bytes", "0"
    )
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)

    load = Load(broker.bootstrap, topic)
    load.start()
    time.sleep(FAULT_SECONDS)
    load.stop()
    assert load.sent > 1000, f"only {load.sent} records in {FAULT_SECONDS} s"
    fatal = [e for e in load.errors if e.fatal()]
    assert not fatal, f"the producer hit fatal errors: {fatal}"

    # Read back through the same faulty store: every acknowledged record once, nothing else.
    check_exactly_once(broker.bootstrap, topic, load)

    failed = broker.metric("skiff_object_store_failures_total")
    retried = broker.metric("skiff_object_store_retries_total")
    puts = broker.metric("skiff_object_store_requests_total", op="put")
    gets = broker.metric("skiff_object_store_requests_total", op="ranged_get")
    print(
        f"\n{faults}: {load.sent} records acknowledged; {puts:.0f} PUTs, {gets:.0f} ranged GETs, "
        f"{failed:.0f} failed requests, {retried:.0f} retries"
    )
    assert failed > 0 and retried > 0, "no fault was injected: the test tested nothing"
    # The cost figures follow the counts: write requests per GiB produced, read per GiB fetched.
    per_gib = broker.metric("skiff_object_store_requests_per_gib", direction="produce")
    produced_gib = broker.metric("skiff_produced_bytes_total") / (1 << 30)
    writes = puts + broker.metric("skiff_object_store_requests_total", op="list")
    assert produced_gib > 0 and abs(per_gib - writes / produced_gib) <= 0.01 * per_gib, (per_gib, writes, produced_gib)
    assert broker.metric("skiff_object_store_requests_per_gib", direction="consume") > 0
    dollars = broker.metric("skiff_object_store_cost_dollars_total", **{"class": "write"})
    assert abs(dollars - writes * 0.005 / 1000) < 1e-9, (dollars, writes)
    assert broker.metric("skiff_object_store_failures_total", op="put") > 0
    assert broker.metric("skiff_object_store_failures_total", op="ranged_get") > 0


@pytest.mark.timeout(300)
def test_s3_frozen_for_10s(broker_factory, topic, tmp_path):
    server = S3Server(tmp_path / "own-s3.log").start()
    try:
        server.create_bucket(TEST_BUCKET)
        # Short store deadlines, so a PUT gives up well inside the producer's request timeout.
        broker = s3_broker(
            broker_factory, server, "--store-request-timeout-ms", "1000", "--store-max-retries", "2"
        )
        clients.create_topic(broker.bootstrap, topic, PARTITIONS)
        load = Load(broker.bootstrap, topic)
        load.start()
        wait_for(lambda: len(load.ack_times) > 2000, 60, message="records acknowledged before the freeze")

        server.pause()
        frozen_at = time.monotonic()
        # A producer that does not retry hears a retriable error, in time, and no ack.
        probe = clients.producer(
            broker.bootstrap,
            **{"enable.idempotence": False, "retries": 0, "request.timeout.ms": 8000, "message.timeout.ms": 9000},
        )
        d = clients.Deliveries()
        clients.produce(probe, topic, d, "probe", value=b"while frozen", partition=0)
        assert probe.flush(30) == 0, "the probe's produce hung"
        answered_in = time.monotonic() - frozen_at
        assert d.count == 1 and not d.ok, "a record was acknowledged while S3 was frozen"
        (_, err), = d.failed
        # Both are retriable in Kafka's protocol: a client that retries will succeed later.
        assert err.code() in (KafkaError.KAFKA_STORAGE_ERROR, KafkaError.REQUEST_TIMED_OUT), err
        print(f"\nS3 frozen: the probe got {err.name()} after {answered_in:.1f} s")

        time.sleep(max(0.0, 10 - (time.monotonic() - frozen_at)))
        server.resume()
        resumed_at = time.monotonic()
        wait_for(
            lambda: len([t for t in load.ack_times if t > resumed_at]) > 2000,
            90,
            message="producing to resume after S3 is back",
        )
        load.stop()
        gap = load.largest_gap_after(frozen_at)
        print(f"S3 frozen for 10 s: longest time without an acknowledgement {gap:.1f} s")
        assert not [e for e in load.errors if e.fatal()], load.errors
        check_exactly_once(broker.bootstrap, topic, load)
        assert broker.metric("skiff_object_store_failures_total", op="put") > 0
    finally:
        server.stop()


def skiff_s3_init(server: S3Server, bucket: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(skiff_bin()), "s3", "init", "--object-store", f"s3://{bucket}/some/prefix",
         "--s3-endpoint", server.endpoint, "--s3-path-style"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **S3Server.env()},
    )


def test_s3_init_creates_the_bucket_and_the_abort_rule(tmp_path):
    server = shared_s3_server(tmp_path)
    s3 = server.client()
    bucket = f"init-{uuid.uuid4().hex[:12]}"

    out = skiff_s3_init(server, bucket)
    assert out.returncode == 0, out.stderr
    assert f"bucket {bucket}: created in us-east-1" in out.stdout, out.stdout
    assert "skiff-abort-incomplete-multipart-uploads: added" in out.stdout, out.stdout
    s3.head_bucket(Bucket=bucket)
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["ID"] == "skiff-abort-incomplete-multipart-uploads" and rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}

    # Again: nothing to do, and it says so.
    out = skiff_s3_init(server, bucket)
    assert out.returncode == 0, out.stderr
    assert f"bucket {bucket}: exists" in out.stdout and "already there" in out.stdout, out.stdout
    assert len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]) == 1

    # A bucket with a rule of its own keeps it.
    other = f"init-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=other)
    theirs = {"ID": "theirs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}}
    s3.put_bucket_lifecycle_configuration(Bucket=other, LifecycleConfiguration={"Rules": [theirs]})
    out = skiff_s3_init(server, other)
    assert out.returncode == 0, out.stderr
    assert "1 existing rule(s) kept" in out.stdout, out.stdout
    ids = sorted(r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=other)["Rules"])
    assert ids == ["skiff-abort-incomplete-multipart-uploads", "theirs"]


def test_s3_init_reports_a_clear_error(tmp_path):
    out = subprocess.run(
        [str(skiff_bin()), "s3", "init", "--object-store", "file:///tmp/x"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0 and "expected s3://bucket/prefix" in out.stderr, out.stderr
    # Nothing listening: the error names the step, no panic.
    out = subprocess.run(
        [str(skiff_bin()), "s3", "init", "--object-store", "s3://b", "--s3-endpoint",
         f"http://127.0.0.1:{free_port()}", "--s3-path-style"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **S3Server.env()},
    )
    assert out.returncode != 0 and "looking for the bucket" in out.stderr, out.stderr
    assert "panicked" not in out.stderr
