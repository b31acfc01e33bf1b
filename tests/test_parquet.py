"""Parquet export, read back with pyarrow as an analytics engine would:

- `skiff export parquet` of a topic (3 partitions, records on two UTC dates, keys, null values,
  repeated headers, JSON values) writes a Hive-style tree (topic=…/date=…/) whose rows are
  exactly the records, offsets and timestamps a consumer reads, with the JSON fields projected
  to typed columns; DuckDB reads the same tree; on a terminal the command draws a progress bar;
- a topic with skiff.parquet.enable=true is exported by the compactor as it is written, and the
  export lag on /metrics falls to zero.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import clients
from conftest import FileStore, skiff_bin, wait_for

DAY_MS = 86_400_000
# 2026-11-30 and 2026-12-01, UTC noon.
DAYS = [1_796_040_000_000, 1_796_040_000_000 + DAY_MS]


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    p = clients.producer(bootstrap, **{"linger.ms": 5})
    d = clients.Deliveries()
    n = 0
    for partition in range(partitions):
        for i in range(per_partition):
            value = None if i % 50 == 49 else json.dumps({"n": i, "name": f"item {i}", "ok": i % 2 == 0}).encode()
            clients.produce(
                p,
                topic,
                d,
                n,
                key=None if i % 10 == 3 else f"k{i}".encode(),
                value=value,
                partition=partition,
                timestamp=DAYS[i * 2 // per_partition] + i,
                headers=[("h", b"a"), ("h", f"{i}".encode())],
            )
            n += 1
    clients.flush(p, d, n)
    assert not d.failed, d.failed[:3]


def consumed(bootstrap: str, topic: str, partitions: int) -> list[tuple]:
    ends = {p: clients.watermarks(bootstrap, topic, p)[1] for p in range(partitions)}
    got = clients.read_partitions(bootstrap, topic, ends)
    rows = []
    for p, msgs in got.items():
        for m in msgs:
            rows.append((p, m.offset(), m.timestamp()[1], m.key(), m.value(), tuple(m.headers() or ())))
    return sorted(rows)


def exported(root: Path, topic: str) -> tuple[list[tuple], object]:
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    rows = []
    cols = table.to_pydict()
    for i in range(table.num_rows):
        assert cols["topic"][i] == topic
        ts = cols["timestamp"][i]
        millis = int(ts.timestamp() * 1000)
        headers = tuple((h["key"], h["value"]) for h in cols["headers"][i])
        rows.append((cols["partition"][i], cols["offset"][i], millis, cols["key"][i], cols["value"][i], headers))
    return sorted(rows), table


@pytest.mark.timeout(180)
def test_export_command_writes_what_a_consumer_reads(broker_factory, topic, tmp_path):
    broker = broker_factory.start()
    clients.create_topic(broker.bootstrap, topic, 3)
    produce(broker.bootstrap, topic, 3, 400)
    want = consumed(broker.bootstrap, topic, 3)
    assert len(want) == 1200

    out = tmp_path / "export"
    result = subprocess.run(
        [
            str(skiff_bin()), "export", "parquet",
            "--bootstrap", broker.bootstrap,
            "--topic", topic,
            "--to", f"file://{out}",
            "--json-schema", "n:int64,name:string,ok:bool",
            "--records-per-file", "250",
        ],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"exported 1200 records of {topic} (3 partitions)" in result.stdout

    dates = sorted(p.name for p in (out / f"topic={topic}").iterdir())
    assert dates == ["date=2026-11-30", "date=2026-12-01"]
    rows, table = exported(out, topic)
    assert rows == want, "the exported rows are the consumed records"

    # DuckDB reads the tree as one table, partitioned by topic and date.
    import duckdb

    by_date = duckdb.sql(
        f"select date, count(*), sum(n), min(\"offset\"), max(\"offset\") "
        f"from read_parquet('{out}/**/*.parquet', hive_partitioning = true) group by date order by date"
    ).fetchall()
    assert [(str(d), c) for d, c, *_ in by_date] == [("2026-11-30", 600), ("2026-12-01", 600)]
    live = [r for r in want if r[4] is not None]
    assert sum(s for _, _, s, _, _ in by_date) == sum(json.loads(r[4])["n"] for r in live)

    # The projection: typed columns, null where the value is null.
    cols = table.to_pydict()
    assert str(table.schema.field("n").type) == "int64"
    assert str(table.schema.field("ok").type) == "bool"
    for value, n, name, ok in zip(cols["value"], cols["n"], cols["name"], cols["ok"]):
        if value is None:
            assert (n, name, ok) == (None, None, None)
        else:
            v = json.loads(value)
            assert (n, name, ok) == (v["n"], v["name"], v["ok"])


@pytest.mark.timeout(120)
def test_export_draws_a_progress_bar_on_a_terminal(broker_factory, topic, tmp_path):
    broker = broker_factory.start()
    clients.create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 1, 200)
    # stderr on a pseudo-terminal: the bar is drawn there; stdout (a pipe) gets the summary.
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(skiff_bin()), "export", "parquet", "--bootstrap", broker.bootstrap, "--topic", topic,
         "--to", f"file://{tmp_path}/x"],
        stdout=subprocess.PIPE, stderr=follower, text=True,
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    assert "exported 200 records" in out
    assert b"records" in drawn and b"200" in drawn, drawn[-500:]


@pytest.mark.timeout(60)
def test_export_of_a_missing_topic_is_a_clear_error(broker_factory, tmp_path):
    broker = broker_factory.start()
    result = subprocess.run(
        [str(skiff_bin()), "export", "parquet", "--bootstrap", broker.bootstrap, "--topic", "nope",
         "--to", f"file://{tmp_path}/x"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "UnknownTopicOrPartition" in result.stderr


@pytest.mark.timeout(180)
def test_an_enabled_topic_is_exported_as_it_is_written(broker_factory, topic):
    broker = broker_factory.start("--compactor-interval-ms", "300", "--compactor-grace-ms", "1000")
    if not isinstance(broker.store, FileStore):
        pytest.skip("reads the export from the store's directory")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1, config={
        "skiff.parquet.enable": "true",
        "skiff.parquet.json.schema": "n:int64",
    })])
    fs[topic].result(30)
    produce(broker.bootstrap, topic, 2, 300)
    want = consumed(broker.bootstrap, topic, 2)
    root = broker.store.root / "parquet"

    def complete():
        if not root.exists():
            return None
        rows, _ = exported(root, topic)
        return rows if len(rows) >= len(want) else None

    rows = wait_for(complete, 60, interval=0.5, message="the export to catch up")
    assert rows == want
    wait_for(
        lambda: broker.metric("skiff_compactor_parquet_export_lag_records") == 0
        and broker.metric("skiff_compactor_parquet_records_exported_total") == len(want),
        30, interval=0.5, message="export lag 0",
    )
    # More records are exported after the first ones, not again with them.
    produce(broker.bootstrap, topic, 2, 10)
    want = consumed(broker.bootstrap, topic, 2)
    wait_for(lambda: len(exported(root, topic)[0]) == len(want), 60, interval=0.5, message="the new records")
    assert exported(root, topic)[0] == want
