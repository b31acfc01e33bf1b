"""Black-box test harness: runs the real `skiff dev` binary and talks to it with real Kafka clients.

Fixtures:
  broker          a fresh broker for one test (own ports, own data dir, own object store)
  broker_factory  start(*extra_args) -> Broker, for tests that need special flags or several brokers
  shared_broker   one broker per test module, for cheap tests that use distinct topics
  topic           a topic name unique to the test

Every broker's stderr goes to a log file; when a test fails, the tail of the log of each broker it
used is attached to the failure report. At teardown a broker must still be running (not crashed),
must exit 0 on SIGTERM, and must not have logged a panic.

The binary is $SKIFF_BIN, else $CARGO_TARGET_DIR/debug/skiff, else ~/.cache/skiff/target/debug/skiff.

The object store is the local filesystem, or with SKIFF_TEST_STORE=s3 an S3 server on loopback
(tests/s3server.py, started once per session; each broker or quorum gets its own prefix).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from s3server import S3Server

READY_RE = re.compile(r"^skiff ready: bootstrap=(\S+)$")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 200


def skiff_bin() -> Path:
    if os.environ.get("SKIFF_BIN"):
        return Path(os.environ["SKIFF_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/skiff/target")
    return Path(target) / "debug" / "skiff"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """preexec_fn: the broker gets SIGKILL if the pytest process dies, so none is ever left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class BrokerError(AssertionError):
    pass


class FileStore:
    """A `file://` object store under a test's directory."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.url = f"file://{root}"

    def args(self) -> list[str]:
        return ["--object-store", self.url]

    def env(self) -> dict[str, str]:
        return {}

    def objects(self) -> list[str]:
        """Every object (the naming is not the tests' business)."""
        return sorted(str(p) for p in self.root.rglob("*") if p.is_file())

    def __str__(self) -> str:
        return self.url


class NoStore:
    """For the roles that keep no objects (metastore nodes)."""

    def args(self) -> list[str]:
        return []

    def env(self) -> dict[str, str]:
        return {}

    def objects(self) -> list[str]:
        return []


class S3Store:
    """A prefix of a bucket on an S3 server."""

    def __init__(self, server: S3Server, bucket: str, prefix: str):
        self.server, self.bucket, self.prefix = server, bucket, prefix
        self.url = f"s3://{bucket}/{prefix}"

    def args(self) -> list[str]:
        return ["--object-store", self.url, "--s3-endpoint", self.server.endpoint, "--s3-path-style", "true"]

    def env(self) -> dict[str, str]:
        return S3Server.env()

    def objects(self) -> list[str]:
        return self.server.keys(self.bucket, self.prefix + "/")

    def __str__(self) -> str:
        return f"{self.url} at {self.server.endpoint}"


STORE_KIND = os.environ.get("SKIFF_TEST_STORE", "file")
TEST_BUCKET = "skiff-tests"
_shared_s3: S3Server | None = None


def shared_s3_server(log_dir: Path) -> S3Server:
    """One S3 server for the whole session, started on first use."""
    global _shared_s3
    if _shared_s3 is None or _shared_s3.proc is None or _shared_s3.proc.poll() is not None:
        _shared_s3 = S3Server(log_dir / "s3-server.log").start()
        _shared_s3.create_bucket(TEST_BUCKET)
    return _shared_s3


def new_store(workdir: Path) -> FileStore | S3Store:
    """The store a new broker or quorum gets: of the kind SKIFF_TEST_STORE names."""
    if STORE_KIND == "s3":
        return S3Store(shared_s3_server(workdir.parent), TEST_BUCKET, f"{workdir.name}-{uuid.uuid4().hex[:8]}")
    if STORE_KIND != "file":
        raise AssertionError(f"SKIFF_TEST_STORE={STORE_KIND!r}: expected file or s3")
    return FileStore(workdir / "objects")


@pytest.fixture(scope="session", autouse=True)
def _stop_shared_s3():
    yield
    if _shared_s3 is not None:
        _shared_s3.stop()


class Broker:
    """One `skiff dev` process. Keeps its ports, data dir and object store across restarts.

    Subclasses run the other roles (`skiff metastore`, `skiff agent`) with the same lifecycle,
    logging and teardown checks: they override `args()` and `ready_re`."""

    ready_re = READY_RE

    def __init__(
        self, workdir: Path, extra_args: tuple[str, ...] = (), name: str = "skiff", store=None, protocol: str | None = None
    ):
        self.name = name
        # A listener's security protocol (SSL, SASL_PLAINTEXT, SASL_SSL), passed as --listeners;
        # several, comma-separated, are several listeners, each on a port of its own
        # (`listener_ports`), the first on `port`.
        self.protocol = protocol
        self.workdir = workdir
        self.data_dir = workdir / "data"
        workdir.mkdir(parents=True, exist_ok=True)
        self.store = store if store is not None else new_store(workdir)
        self.log_path = workdir / f"{name}.log"
        self.extra_args = tuple(extra_args)
        self.port = free_port()
        self.metrics_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self._pick_listener_ports()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._expect_exit = False
        self._stdout_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stdout_lines: list[str] = []
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def _pick_listener_ports(self) -> None:
        names = self.protocol.split(",") if self.protocol else []
        self.listener_ports = {n: (self.port if i == 0 else free_port()) for i, n in enumerate(names)}

    # --- lifecycle ---------------------------------------------------------------------------
    def args(self) -> list[str]:
        return [
            str(skiff_bin()),
            "dev",
            "--data-dir",
            str(self.data_dir),
            *(
                ["--listeners", ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.listener_ports.items())]
                if self.protocol
                else ["--listen", f"127.0.0.1:{self.port}"]
            ),
            "--metrics",
            f"127.0.0.1:{self.metrics_port}",
            *self.store.args(),
            *self.extra_args,
        ]

    def start(self) -> "Broker":
        """Start and wait for the ready line. On the first start, a port taken by someone else between
        picking it and binding it means new ports and another try."""
        for attempt in range(3):
            try:
                return self._start_once()
            except BrokerError:
                if self.starts > 1 or attempt == 2 or "in use" not in self.log_text().split("===== start")[-1]:
                    raise
                self.starts -= 1
                self.port, self.metrics_port = free_port(), free_port()
                self._pick_listener_ports()
                self.bootstrap = f"127.0.0.1:{self.port}"
                self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        raise AssertionError("unreachable")

    def _start_once(self) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        binary = skiff_bin()
        if not binary.is_file():
            pytest.fail(f"no skiff binary at {binary} (build it with `cargo build -p skiff` or set SKIFF_BIN)")
        self.starts += 1
        self._ready = threading.Event()
        self._expect_exit = False
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {' '.join(self.args())}\n".encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("SKIFF_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        env.update(self.store.env())
        self.proc = subprocess.Popen(
            self.args(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=self.workdir,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._stdout_thread = threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True)
        self._stdout_thread.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                raise BrokerError(
                    f"{self.name} exited with {self.proc.returncode} before printing its ready line\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise BrokerError(f"{self.name} printed no ready line within {READY_TIMEOUT_S}s\n" + self.log_tail())
        return self

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self._stdout_lines.append(line)
            m = self.ready_re.match(line)
            if m and not self._ready.is_set():
                if m.group(1) != self.bootstrap:
                    self._stdout_lines.append(f"(harness) ready line names {m.group(1)}, expected {self.bootstrap}")
                self._ready.set()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send `sig` and wait for the process to exit; returns its exit code (negative: killed by a signal)."""
        assert self.proc is not None
        self._expect_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BrokerError(f"{self.name} did not exit within {timeout}s of signal {sig}\n" + self.log_tail())
        if self._stdout_thread:
            self._stdout_thread.join(5)
        return self.proc.returncode

    def kill9(self) -> None:
        code = self.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL, f"expected death by SIGKILL, got exit code {code}"

    def restart(self, sig: int = signal.SIGTERM) -> "Broker":
        """Stop (SIGTERM by default, which must exit 0) and start again on the same ports and data."""
        if self.running:
            code = self.stop(sig)
            if sig in (signal.SIGTERM, signal.SIGINT):
                assert code == 0, f"{self.name} exited with {code} on signal {sig}\n" + self.log_tail()
        return self.start()

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None and not self._expect_exit:
            raise BrokerError(f"{self.name} died unexpectedly with exit code {self.proc.returncode}\n" + self.log_tail())

    def finish(self) -> list[str]:
        """Teardown: returns the problems found (crash, unclean SIGTERM exit, panics in the log)."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is not None and not self._expect_exit:
            problems.append(f"{self.name} died unexpectedly with exit code {self.proc.returncode}")
        elif self.proc.poll() is None:
            try:
                code = self.stop(signal.SIGTERM)
                if code != 0:
                    problems.append(f"{self.name} exited with code {code} on SIGTERM (expected a clean exit, 0)")
            except BrokerError as e:
                problems.append(str(e).splitlines()[0])
        log = self.log_text()
        if "panicked at" in log:
            problems.append(f"{self.name} logged a panic (see {self.log_path})")
        return problems

    # --- observation -------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text().splitlines()
        out = "\n".join(text[-lines:])
        stdout = "\n".join(self._stdout_lines[-20:])
        return f"--- {self.name} stdout (tail) ---\n{stdout}\n--- {self.name} log {self.log_path} (last {lines} lines) ---\n{out}"

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        """Scrape /metrics: {(name, frozenset(labels.items())): value}."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as resp:
            return parse_prometheus(resp.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 if there are none)."""
        return metric_value(self.metrics(), name, **labels)

    def object_files(self) -> list[str]:
        """The objects in this broker's store (the object naming is not our business)."""
        return self.store.objects()


_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset], float]:
    out: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        labels = frozenset(_LABEL_RE.findall(m.group(3) or ""))
        value = m.group(4)
        out[(m.group(1), labels)] = float(value)
    return out


def metric_value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def cluster_tls_context():
    """An SSL context with the cluster CA and certificate of SKIFF_CLUSTER_TLS_CA and
    SKIFF_CLUSTER_TLS_CERT, when the test set them; else None."""
    ca, cert = os.environ.get("SKIFF_CLUSTER_TLS_CA"), os.environ.get("SKIFF_CLUSTER_TLS_CERT")
    if not (ca and cert):
        return None
    import ssl

    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert)
    return context


class MetastoreNode(Broker):
    """`skiff metastore`: one node of a quorum. `bootstrap` is its RPC address."""

    ready_re = re.compile(r"^skiff metastore ready: node=\d+ rpc=(\S+)$")

    def __init__(self, workdir: Path, node_id: int, name: str, extra_args=()):
        super().__init__(workdir, tuple(extra_args), name, store=NoStore())
        self.node_id = node_id
        self.initial_members = ""

    def args(self) -> list[str]:
        args = [
            str(skiff_bin()),
            "metastore",
            "--node-id",
            str(self.node_id),
            "--listen",
            self.bootstrap,
            "--data-dir",
            str(self.data_dir),
        ]
        if self.initial_members:
            args += ["--initial-members", self.initial_members]
        return args + list(self.extra_args)

    def status(self) -> dict | None:
        """The node's /admin/status, or None when it does not answer."""
        # The cluster's RPC credentials, as every process of the test reads them too.
        context = cluster_tls_context()
        scheme = "https" if context else "http"
        request = urllib.request.Request(f"{scheme}://{self.bootstrap}/admin/status")
        secret_file = os.environ.get("SKIFF_CLUSTER_SECRET_FILE")
        if secret_file:
            secret = Path(secret_file).read_text().strip()
            request.add_header("Authorization", f"Bearer {secret}")
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as resp:
                return json.loads(resp.read())
        except OSError:
            return None


class RemoteAgent(Broker):
    """`skiff agent` against a quorum; agents of one test share one object store."""

    def __init__(self, workdir: Path, metastore: str, store, name: str, extra_args=()):
        super().__init__(workdir, tuple(extra_args), name, store=store)
        self.metastore = metastore

    def args(self) -> list[str]:
        return [
            str(skiff_bin()),
            "agent",
            "--metastore",
            self.metastore,
            "--listen",
            self.bootstrap,
            "--metrics",
            f"127.0.0.1:{self.metrics_port}",
            *self.store.args(),
            *self.extra_args,
        ]


class CompactorProcess(Broker):
    """`skiff compactor` against a quorum. It serves no Kafka: `bootstrap` is its /metrics address,
    which its ready line names."""

    ready_re = re.compile(r"^skiff compactor ready: metrics=(\S+)$")

    def __init__(self, workdir: Path, metastore: str, store, name: str, extra_args=()):
        super().__init__(workdir, tuple(extra_args), name, store=store)
        self.metastore = metastore
        self.bootstrap = f"127.0.0.1:{self.metrics_port}"

    def args(self) -> list[str]:
        return [
            str(skiff_bin()),
            "compactor",
            "--metastore",
            self.metastore,
            "--metrics",
            self.bootstrap,
            *self.store.args(),
            *self.extra_args,
        ]


class Quorum:
    """A metastore quorum and its agents, all processes of this test."""

    def __init__(self, factory: "BrokerFactory", nodes: int, agents: int, agent_args=(), node_args=()):
        self.factory = factory
        self.node_args = tuple(node_args)
        self.nodes: list[MetastoreNode] = []
        for i in range(1, nodes + 1):
            node = MetastoreNode(factory.base / f"meta{i}", i, f"meta{i}", node_args)
            self.nodes.append(node)
            factory.brokers.append(node)
        members = ",".join(f"{n.node_id}={n.bootstrap}" for n in self.nodes)
        for node in self.nodes:
            node.initial_members = members
            node.start()
        self.metastore = ",".join(n.bootstrap for n in self.nodes)
        self.store = new_store(factory.base / "quorum")
        self.agents: list[RemoteAgent] = []
        for i in range(agents):
            agent = RemoteAgent(factory.base / f"agent{i}", self.metastore, self.store, f"agent{i}", agent_args)
            self.agents.append(agent)
            factory.brokers.append(agent)
            agent.start()

    def compactor(self, *extra_args: str, name: str = "compactor") -> CompactorProcess:
        """Starts a `skiff compactor` on this quorum's metastore and store."""
        c = CompactorProcess(self.factory.base / name, self.metastore, self.store, name, extra_args)
        self.factory.brokers.append(c)
        return c.start()

    def start_empty_node(self, node_id: int) -> MetastoreNode:
        """A new node with an empty data dir and no initial members: it waits to be added."""
        node = MetastoreNode(self.factory.base / f"meta{node_id}", node_id, f"meta{node_id}", self.node_args)
        self.nodes.append(node)
        self.factory.brokers.append(node)
        return node.start()

    def admin(self, *args: str) -> str:
        """Runs `skiff metastore <args>` and returns its stdout; fails on a non-zero exit."""
        out = subprocess.run(
            [str(skiff_bin()), "metastore", *args], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, f"skiff metastore {' '.join(args)}: {out.stderr[-2000:]}"
        return out.stdout

    def leader(self, timeout: float = 30.0) -> MetastoreNode:
        """The node that all running nodes agree leads."""

        def find():
            views = [(n, n.status()) for n in self.nodes if n.running]
            leaders = {v["leader"] for _, v in views if v is not None}
            if len(leaders) == 1 and None not in leaders:
                (lid,) = leaders
                return next((n for n in self.nodes if n.node_id == lid and n.running), None)
            return None

        return wait_for(find, timeout, interval=0.1, message="one metastore leader")


class BrokerFactory:
    def __init__(self, base: Path):
        self.base = base
        self.brokers: list[Broker] = []

    def quorum(self, nodes: int = 3, agents: int = 1, agent_args=(), node_args=()) -> Quorum:
        return Quorum(self, nodes, agents, agent_args, node_args)

    def start(self, *extra_args: str, name: str | None = None, protocol: str | None = None) -> Broker:
        name = name or f"skiff{len(self.brokers)}"
        b = Broker(self.base / name, extra_args, name, protocol=protocol)
        self.brokers.append(b)
        return b.start()

    def finish(self) -> list[str]:
        # Newest first: agents stop before the metastore nodes they were started against, so their
        # shutdown does not wait out a metastore that is already gone.
        problems = []
        for b in reversed(self.brokers):
            problems += b.finish()
        return problems


def _finish_or_fail(factory: BrokerFactory) -> None:
    problems = factory.finish()
    if problems:
        pytest.fail("broker problems at teardown:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def broker_factory(tmp_path):
    factory = BrokerFactory(tmp_path)
    yield factory
    _finish_or_fail(factory)


@pytest.fixture
def broker(broker_factory) -> Broker:
    return broker_factory.start()


@pytest.fixture(scope="module")
def shared_broker_factory(tmp_path_factory):
    factory = BrokerFactory(tmp_path_factory.mktemp("shared"))
    yield factory
    _finish_or_fail(factory)


@pytest.fixture
def shared_broker(shared_broker_factory) -> Broker:
    if not shared_broker_factory.brokers:
        shared_broker_factory.start(name="shared")
    b = shared_broker_factory.brokers[0]
    b.check_alive()
    yield b
    b.check_alive()


@pytest.fixture
def topic(request) -> str:
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name).strip("-")[:80]
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    seen = set()
    for value in getattr(item, "funcargs", {}).values():
        candidates = value.brokers if isinstance(value, BrokerFactory) else [value] if isinstance(value, Broker) else []
        for b in candidates:
            if id(b) not in seen:
                seen.add(id(b))
                rep.sections.append((f"{b.name} log ({rep.when})", b.log_tail()))
