"""kcat (librdkafka's command-line client): metadata listing, produce from lines, consume to the end."""

import shutil
import subprocess

import clients

KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def kcat(bootstrap: str, *args: str, stdin: bytes | None = None, timeout: float = 60) -> bytes:
    assert KCAT, "kcat is not installed (tests/run installs it)"
    proc = subprocess.run(
        [KCAT, "-b", bootstrap, *args],
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout


def test_metadata_lists_broker_and_topics(shared_broker, topic):
    clients.create_topic(shared_broker.bootstrap, topic, 3)
    out = kcat(shared_broker.bootstrap, "-L").decode()
    # Debian's kcat is built on librdkafka 2.0, which matches brokers by address: it gets one id
    # per agent, where librdkafka 2.10 and later get the agent's slots (agent/src/session.rs).
    assert "1 brokers:" in out, out
    assert f"at {shared_broker.bootstrap}" in out, out
    assert f'topic "{topic}" with 3 partitions:' in out, out

    only = kcat(shared_broker.bootstrap, "-L", "-t", topic).decode()
    assert f'topic "{topic}" with 3 partitions:' in only, only
    for p in range(3):
        assert f"partition {p}," in only, only


def test_produce_lines_then_consume_them_in_order(shared_broker, topic, tmp_path):
    lines = [f"line {i}: {'x' * (i % 50)} ünïcödé ✓" for i in range(2000)]
    src = tmp_path / "lines.txt"
    src.write_text("\n".join(lines) + "\n")

    # Auto-created topic (one partition by default), so the order is total.
    with open(src, "rb") as f:
        kcat(shared_broker.bootstrap, "-P", "-t", topic, stdin=f.read())
    out = kcat(shared_broker.bootstrap, "-C", "-t", topic, "-e", "-q").decode()
    assert out.splitlines() == lines


def test_keys_and_offsets(shared_broker, topic):
    records = [f"k{i % 7}:value {i}" for i in range(300)]
    kcat(shared_broker.bootstrap, "-P", "-t", topic, "-K", ":", stdin=("\n".join(records) + "\n").encode())
    out = kcat(shared_broker.bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%p %o %k=%s\n").decode()
    assert out.splitlines() == [f"0 {i} {r.replace(':', '=', 1)}" for i, r in enumerate(records)]

    # Start in the middle: -o 250 returns offsets 250.. only.
    tail = kcat(shared_broker.bootstrap, "-C", "-t", topic, "-o", "250", "-e", "-q", "-f", "%o\n").decode()
    assert tail.split() == [str(i) for i in range(250, 300)]
