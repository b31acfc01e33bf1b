"""A Jepsen-style transactional workload and the checker of its history.

The workload (`Workload`): several transactional producers (confluent-kafka) write transactions of
1-8 records to random partitions of an input topic, and commit (about 70%), abort (about 25%) or
abandon them (about 5%: the producer is dropped inside the transaction and never comes back, so
only the cluster's transaction timeout can end it). Meanwhile read_committed consumers of one group
consume-transform-produce the input into an output topic (output partition = input partition), each
batch in one transaction with `send_offsets_to_transaction`. Every client logs what it did: each
transaction with its records and its outcome as the client saw it (committed, aborted, timed out,
or unknown when the end's answer never came). When the producers stop, the workload waits for every
transaction to end (the last stable offsets reach the high watermarks), for the processors to have
consumed everything committed, stops them, and reads both topics back, read_committed and
read_uncommitted.

The checker (`check`) takes the history and the reads, and knows nothing of how they were made: the
records describe themselves.

  input   in|<tid>|<txn>|<i>|<n>                       record i of the n of transaction <txn> of
                                                       producer <tid> ("p<k>.<generation>")
  output  out|<tid>|<txn>|<j>|<m>|<p>|<offset>|<input>  record j of the m of a processor's
                                                       transaction, made from input <p>@<offset>

Anomalies, by kind:
  aborted-read        a read_committed reader sees a record of a transaction that was aborted (by
                      its producer, or by the cluster after its timeout)
  torn-txn            a read_committed reader sees some but not all records of a transaction
  lost-write          a transaction whose commit was acknowledged is not visible at all, or an
                      acknowledged record (a delivery report with its offset, committed or not)
                      that read_uncommitted does not find at that offset
  duplicate           a record is visible twice to read_committed readers
  phantom             a visible record that no client wrote
  order               in a partition, one producer's records (or a processor's inputs) out of order
  unprocessed         a committed input record has no output record
  processed-twice     a committed input record has more than one output record
  bad-output          an output record made from an input that is not committed at that offset, or
                      written to another partition than its input's
  uncommitted-missing a record read_committed sees that read_uncommitted does not, at that offset
  hanging-txn         after the run, a partition's last stable offset is below its high watermark
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

KINDS = (
    "aborted-read",
    "torn-txn",
    "lost-write",
    "duplicate",
    "phantom",
    "order",
    "unprocessed",
    "processed-twice",
    "bad-output",
    "uncommitted-missing",
    "hanging-txn",
)

# TIMED_OUT: abandoned by its producer inside the transaction, for the cluster to abort after
# transaction.timeout.ms.
COMMITTED, ABORTED, TIMED_OUT, UNKNOWN = "committed", "aborted", "timed-out", "unknown"
# Each abandoned transaction holds back read_committed readers of its partitions until it times
# out: a few per producer are enough to prove the timeout works.
MAX_ABANDONED = 2
OUTCOMES = (COMMITTED, ABORTED, TIMED_OUT, UNKNOWN)


# --- history -----------------------------------------------------------------------------------
@dataclass
class Txn:
    """One transaction as its client saw it. `records`: (partition, value) in produce order."""

    tid: str
    no: int
    records: list[tuple[int, str]] = field(default_factory=list)
    outcome: str = UNKNOWN
    processor: bool = False
    # value -> (partition, offset) of each record whose delivery the client reported.
    acked: dict[str, tuple[int, int]] = field(default_factory=dict)

    def on_delivery(self, err, msg) -> None:
        if err is None:
            self.acked[msg.value().decode()] = (msg.partition(), msg.offset())

    @property
    def key(self) -> tuple[str, int]:
        return (self.tid, self.no)


@dataclass
class History:
    txns: list[Txn] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, txn: Txn) -> None:
        with self.lock:
            self.txns.append(txn)


def input_value(tid: str, no: int, i: int, n: int) -> str:
    return f"in|{tid}|{no}|{i}|{n}"


def output_value(tid: str, no: int, j: int, m: int, partition: int, offset: int, value: str) -> str:
    return f"out|{tid}|{no}|{j}|{m}|{partition}|{offset}|{value}"


@dataclass(frozen=True)
class Rec:
    """A record's self-description."""

    tid: str
    no: int
    i: int
    n: int
    source: tuple[int, int, str] | None = None  # an output's input: partition, offset, value

    @property
    def txn(self) -> tuple[str, int]:
        return (self.tid, self.no)

    @property
    def writer(self) -> str:
        """The client thread: a producer's generations are one writer, in order."""
        return self.tid.split(".")[0]


def parse(value: str) -> Rec | None:
    try:
        if value.startswith("in|"):
            _, tid, no, i, n = value.split("|")
            return Rec(tid, int(no), int(i), int(n))
        if value.startswith("out|"):
            _, tid, no, j, m, p, off, src = value.split("|", 7)
            return Rec(tid, int(no), int(j), int(m), (int(p), int(off), src))
    except ValueError:
        return None
    return None


# --- the checker -------------------------------------------------------------------------------
Reads = dict[int, list[tuple[int, str]]]  # partition -> [(offset, value)] in offset order


@dataclass
class Result:
    anomalies: list[tuple[str, str]] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    processor_outcomes: Counter = field(default_factory=Counter)
    records: Counter = field(default_factory=Counter)

    def add(self, kind: str, detail: str) -> None:
        assert kind in KINDS, kind
        self.anomalies.append((kind, detail))

    def by_kind(self) -> Counter:
        return Counter(k for k, _ in self.anomalies)

    def summary(self) -> str:
        kinds = self.by_kind()
        lines = [
            "transactions (producers): "
            + ", ".join(f"{o} {self.outcomes[o]}" for o in OUTCOMES),
            "transactions (processors): "
            + ", ".join(f"{o} {self.processor_outcomes[o]}" for o in OUTCOMES),
            "records: " + ", ".join(f"{k} {v}" for k, v in sorted(self.records.items())),
            f"anomalies: {len(self.anomalies)}"
            + "".join(f"\n  {k}: {kinds[k]}" for k in KINDS if kinds[k]),
        ]
        for kind, detail in self.anomalies[:20]:
            lines.append(f"  e.g. {kind}: {detail}")
        return "\n".join(lines)


def _visible(reads: Reads, result: Result, what: str) -> dict[str, list[tuple[int, int]]]:
    """value -> [(partition, offset)], with duplicates and phantoms reported."""
    seen: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for p, recs in reads.items():
        for off, value in recs:
            seen[value].append((p, off))
            if parse(value) is None:
                result.add("phantom", f"{what} {p}@{off}: {value!r} is no record of the workload")
    for value, places in seen.items():
        if len(places) > 1:
            result.add("duplicate", f"{what} {value!r} at {places}")
    return seen


def _check_txns(txns: list[Txn], seen: dict[str, list[tuple[int, int]]], result: Result, what: str) -> None:
    known = set()
    for t in txns:
        values = [v for _, v in t.records]
        known.update(values)
        visible = [v for v in values if v in seen]
        # Where each record landed: in the partition it was written to.
        for p, v in t.records:
            for q, off in seen.get(v, []):
                if q != p:
                    result.add("phantom", f"{what} {v!r} written to partition {p}, read from {q}@{off}")
        if t.outcome in (ABORTED, TIMED_OUT) and visible:
            result.add(
                "aborted-read",
                f"{what} transaction {t.key} ({t.outcome}): {len(visible)} of {len(values)} records visible",
            )
        elif visible and len(visible) != len(values):
            result.add("torn-txn", f"{what} transaction {t.key} ({t.outcome}): {len(visible)} of {len(values)} visible")
        elif t.outcome == COMMITTED and values and not visible:
            result.add("lost-write", f"{what} transaction {t.key}: committed, none of its {len(values)} records visible")
    for value, places in seen.items():
        if parse(value) is not None and value not in known:
            result.add("phantom", f"{what} {value!r} at {places}: no client wrote it")


def _check_self_described(reads: Reads, logged: set, result: Result, what: str) -> None:
    """Torn transactions from the records alone, for those the history lacks (a client that
    died before it could log): every transaction with a visible record shows all n of them."""
    shown: dict[tuple[str, int], set[int]] = defaultdict(set)
    sizes: dict[tuple[str, int], int] = {}
    for recs in reads.values():
        for _, value in recs:
            r = parse(value)
            if r is not None:
                shown[r.txn].add(r.i)
                sizes[r.txn] = r.n
    for txn, got in shown.items():
        if txn not in logged and len(got) != sizes[txn]:
            result.add("torn-txn", f"{what} transaction {txn} shows records {sorted(got)} of {sizes[txn]}")


def _check_order(reads: Reads, result: Result, what: str) -> None:
    for p, recs in reads.items():
        last: dict[str, tuple] = {}
        for off, value in recs:
            r = parse(value)
            if r is None:
                continue
            key = (r.no, r.i)
            prev = last.get(r.writer)
            if prev is not None and key <= prev[0]:
                result.add("order", f"{what} partition {p}: {value!r}@{off} after {prev[1]!r}")
            last[r.writer] = (key, value)
        # A partition's outputs follow their inputs' offsets, whichever processor wrote them.
        last_src = None
        for off, value in recs:
            r = parse(value)
            if r is None or r.source is None:
                continue
            if last_src is not None and r.source[1] <= last_src[0]:
                result.add("order", f"{what} partition {p}: output of input @{r.source[1]} after that of @{last_src[0]}")
            last_src = (r.source[1], value)


def check(
    history: History,
    committed_in: Reads,
    uncommitted_in: Reads,
    committed_out: Reads | None = None,
    uncommitted_out: Reads | None = None,
    stable: dict[str, dict[int, tuple[int, int]]] | None = None,
) -> Result:
    """Checks a run. `stable`: per topic, partition -> (last stable offset, high watermark) once
    the run was over."""
    result = Result()
    producers = [t for t in history.txns if not t.processor]
    processors = [t for t in history.txns if t.processor]
    result.outcomes.update(t.outcome for t in producers)
    result.processor_outcomes.update(t.outcome for t in processors)
    sides = [("input", producers, committed_in, uncommitted_in)]
    if committed_out is not None:
        sides.append(("output", processors, committed_out, uncommitted_out))
    for what, txns, committed, uncommitted in sides:
        result.records[f"{what} written"] += sum(len(t.records) for t in txns)
        result.records[f"{what} acknowledged"] += sum(len(t.acked) for t in txns)
        result.records[f"{what} read_committed"] += sum(len(r) for r in committed.values())
        result.records[f"{what} read_uncommitted"] += sum(len(r) for r in (uncommitted or {}).values())
        seen = _visible(committed, result, what)
        _check_txns(txns, seen, result, what)
        _check_self_described(committed, {t.key for t in txns}, result, what)
        _check_order(committed, result, what)
        if uncommitted is not None:
            raw = {(p, off): v for p, recs in uncommitted.items() for off, v in recs}
            for t in txns:
                for v, (p, off) in sorted(t.acked.items()):
                    if raw.get((p, off)) != v:
                        result.add("lost-write", f"{what} {v!r} acknowledged at {p}@{off}; read_uncommitted has {raw.get((p, off))!r}")
            for p, recs in committed.items():
                for off, v in recs:
                    if raw.get((p, off)) != v:
                        result.add("uncommitted-missing", f"{what} {p}@{off} {v!r}: read_uncommitted has {raw.get((p, off))!r}")
    if committed_out is not None:
        inputs = {(p, off): v for p, recs in committed_in.items() for off, v in recs}
        made: Counter = Counter()
        for p, recs in committed_out.items():
            for off, value in recs:
                r = parse(value)
                if r is None or r.source is None:
                    continue
                sp, soff, sval = r.source
                if inputs.get((sp, soff)) != sval:
                    result.add("bad-output", f"output {p}@{off} made from {sp}@{soff} {sval!r}, which is not committed there")
                elif sp != p:
                    result.add("bad-output", f"output {p}@{off} made from input partition {sp}")
                made[(sp, soff)] += 1
        for place, value in sorted(inputs.items()):
            if made[place] == 0:
                result.add("unprocessed", f"input {place[0]}@{place[1]} {value!r} has no output")
            elif made[place] > 1:
                result.add("processed-twice", f"input {place[0]}@{place[1]} {value!r} has {made[place]} outputs")
    for topic, ends in (stable or {}).items():
        for p, (lso, hw) in sorted(ends.items()):
            if lso < hw:
                result.add("hanging-txn", f"{topic} partition {p}: last stable offset {lso} < high watermark {hw}")
    return result


# --- the workload ------------------------------------------------------------------------------
def _err(e: Exception):
    """The KafkaError of a KafkaException, if it is one."""
    args = getattr(e, "args", ())
    return args[0] if args and hasattr(args[0], "retriable") else None


class TxnProducer(threading.Thread):
    """Writes transactions until `stop` is set. A fatal error or an abandoned transaction means a
    new producer: the same transactional id after a fatal error (whose InitProducerId fences the
    old one and aborts what it left open), a new id after an abandoned one (so that only the
    transaction timeout ends it)."""

    def __init__(self, k: int, bootstrap: str, topic: str, partitions: int, history: History, stop: threading.Event,
                 seed: int, timeout_ms: int, abandon: float):
        super().__init__(name=f"txn-producer-{k}", daemon=True)
        self.k, self.bootstrap, self.topic, self.partitions = k, bootstrap, topic, partitions
        self.history, self.stop, self.rng = history, stop, random.Random(seed)
        self.timeout_ms, self.abandon = timeout_ms, abandon
        self.gen, self.no = 0, 0
        self.errors: list[str] = []
        self.inits = 0
        self.abandoned = 0

    def tid(self) -> str:
        return f"p{self.k}.{self.gen}"

    def new_producer(self):
        from confluent_kafka import Producer

        while not self.stop.is_set():
            p = Producer({
                "bootstrap.servers": self.bootstrap,
                "transactional.id": f"txn-history-{self.tid()}",
                "transaction.timeout.ms": self.timeout_ms,
                "linger.ms": 5,
                "message.timeout.ms": self.timeout_ms,
                "log_level": 0,
            })
            try:
                p.init_transactions(30)
                self.inits += 1
                return p
            except Exception as e:  # noqa: BLE001 - anything: try again while the run lasts
                self.errors.append(f"init_transactions: {e}")
                time.sleep(0.5)
        return None

    def run(self) -> None:
        p = self.new_producer()
        while p is not None and not self.stop.is_set():
            self.no += 1
            txn = Txn(self.tid(), self.no)
            n = self.rng.randint(1, 8)
            txn.records = [(self.rng.randrange(self.partitions), input_value(txn.tid, txn.no, i, n)) for i in range(n)]
            self.history.add(txn)
            roll = self.rng.random()
            try:
                p.begin_transaction()
                for part, value in txn.records:
                    while True:
                        try:
                            p.produce(self.topic, value=value.encode(), partition=part, on_delivery=txn.on_delivery)
                            break
                        except BufferError:
                            p.poll(0.05)
                if roll < self.abandon and self.abandoned < MAX_ABANDONED:
                    self.abandoned += 1
                    p.flush(10)
                    txn.outcome = TIMED_OUT
                    # Dropped inside its transaction, never to return under this id.
                    del p
                    self.gen += 1
                    p = self.new_producer()
                    continue
                if roll < self.abandon + 0.25:
                    if roll < self.abandon + 0.15:
                        # Sent before the abort, so that the log holds them (an abort purges what
                        # the client has not sent yet).
                        p.flush(30)
                    p.abort_transaction(30)
                    txn.outcome = ABORTED
                else:
                    self.commit(p, txn)
            except Exception as e:  # noqa: BLE001
                p = self.recover(p, txn, e)
        if p is not None:
            p.flush(10)  # the last delivery reports

    def commit(self, p, txn: Txn) -> None:
        for _ in range(5):
            try:
                p.commit_transaction(30)
                txn.outcome = COMMITTED
                return
            except Exception as e:  # noqa: BLE001
                err = _err(e)
                if err is not None and err.retriable() and not err.txn_requires_abort() and not err.fatal():
                    continue
                raise
        raise TimeoutError("commit_transaction kept failing")

    def recover(self, p, txn: Txn, e: Exception):
        self.errors.append(f"{txn.key}: {e}")
        err = _err(e)
        if err is not None and err.txn_requires_abort() and not err.fatal():
            try:
                p.abort_transaction(30)
                txn.outcome = ABORTED
                return p
            except Exception as e2:  # noqa: BLE001
                self.errors.append(f"{txn.key} abort: {e2}")
        # Whether it committed is unknown; a new producer of the same id ends what is left open.
        txn.outcome = UNKNOWN
        return self.new_producer()


class Processor(threading.Thread):
    """Consume-transform-produce, read_committed, one transaction per polled batch, offsets sent
    to the transaction. On an abortable error: abort and rewind to the group's committed offsets;
    on anything else: a new producer and the same rewind."""

    def __init__(self, k: int, bootstrap: str, src: str, dst: str, group: str, history: History,
                 stop: threading.Event, timeout_ms: int):
        super().__init__(name=f"txn-processor-{k}", daemon=True)
        self.k, self.bootstrap, self.src, self.dst, self.group = k, bootstrap, src, dst, group
        self.history, self.stop, self.timeout_ms = history, stop, timeout_ms
        self.gen, self.no = 0, 0
        self.errors: list[str] = []
        self.consumer = None
        self.replace = False

    def tid(self) -> str:
        return f"c{self.k}.{self.gen}"

    def new_producer(self):
        from confluent_kafka import Producer

        while not self.stop.is_set():
            p = Producer({
                "bootstrap.servers": self.bootstrap,
                "transactional.id": f"txn-history-{self.tid()}",
                "transaction.timeout.ms": self.timeout_ms,
                "linger.ms": 5,
                "message.timeout.ms": self.timeout_ms,
                "log_level": 0,
            })
            try:
                p.init_transactions(30)
                return p
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"init_transactions: {e}")
                time.sleep(0.5)
        return None

    def rewind(self, partitions) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        try:
            committed = self.consumer.committed([TopicPartition(self.src, p) for p in partitions], timeout=30)
            for tp in committed:
                off = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                self.consumer.seek(TopicPartition(self.src, tp.partition, off))
        except Exception as e:  # noqa: BLE001 - an unassigned partition: its next owner reads from the commit
            self.errors.append(f"rewind: {e}")

    def run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "log_level": 0,
        })
        self.consumer.subscribe([self.src])
        p = self.new_producer()
        try:
            while p is not None and not self.stop.is_set():
                msgs = [m for m in self.consumer.consume(num_messages=50, timeout=0.2) if m.error() is None]
                if not msgs:
                    continue
                self.transact(p, msgs, TopicPartition)
                if self.replace:
                    self.replace = False
                    self.gen += 1
                    p = self.new_producer()
        finally:
            try:
                self.consumer.close()
            except Exception:  # noqa: BLE001
                pass

    def transact(self, p, msgs, TopicPartition) -> None:
        self.no += 1
        txn = Txn(self.tid(), self.no, processor=True)
        m_count = len(msgs)
        txn.records = [
            (m.partition(), output_value(txn.tid, txn.no, j, m_count, m.partition(), m.offset(), m.value().decode()))
            for j, m in enumerate(msgs)
        ]
        self.history.add(txn)
        ends: dict[int, int] = {}
        for m in msgs:
            ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
        try:
            p.begin_transaction()
            for part, value in txn.records:
                while True:
                    try:
                        p.produce(self.dst, value=value.encode(), partition=part, on_delivery=txn.on_delivery)
                        break
                    except BufferError:
                        p.poll(0.05)
            offsets = [TopicPartition(self.src, part, off) for part, off in ends.items()]
            p.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(), 30)
            for attempt in range(5):
                try:
                    p.commit_transaction(30)
                    txn.outcome = COMMITTED
                    return
                except Exception as e:  # noqa: BLE001
                    err = _err(e)
                    if attempt < 4 and err is not None and err.retriable() and not err.txn_requires_abort() and not err.fatal():
                        continue
                    raise
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"{txn.key}: {e}")
            err = _err(e)
            txn.outcome = UNKNOWN
            if err is not None and err.txn_requires_abort() and not err.fatal():
                try:
                    p.abort_transaction(30)
                    txn.outcome = ABORTED
                except Exception as e2:  # noqa: BLE001
                    self.errors.append(f"{txn.key} abort: {e2}")
                    self.replace = True
            else:
                self.replace = True
            self.rewind(list(ends))


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str, timeout: float = 60.0) -> Reads:
    """Every record of the topic, from the start to the end (the last stable offset for
    read_committed), per partition in offset order."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "txn-history-reader",
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "log_level": 0,
    })
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: Reads = {p: [] for p in range(partitions)}
        done: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(done) < partitions:
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {topic} ({isolation}): partitions {sorted(set(range(partitions)) - done)} never reached their end")
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        done.add(m.partition())
                    continue
                out[m.partition()].append((m.offset(), m.value().decode(errors="replace")))
                done.discard(m.partition())
        return out
    finally:
        c.close()


def ends(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """partition -> (last stable offset, high watermark)."""
    from confluent_kafka import Consumer, TopicPartition

    out = {}
    cs = {
        iso: Consumer({"bootstrap.servers": bootstrap, "group.id": "txn-history-ends", "isolation.level": iso, "log_level": 0})
        for iso in ("read_committed", "read_uncommitted")
    }
    try:
        for p in range(partitions):
            tp = TopicPartition(topic, p)
            lso = cs["read_committed"].get_watermark_offsets(tp, timeout=10, cached=False)[1]
            hw = cs["read_uncommitted"].get_watermark_offsets(tp, timeout=10, cached=False)[1]
            out[p] = (lso, hw)
    finally:
        for c in cs.values():
            c.close()
    return out


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - a broker being restarted: ask again
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


@dataclass
class Workload:
    bootstrap: str
    input_topic: str
    output_topic: str
    partitions: int = 4
    producers: int = 3
    processors: int = 2
    seconds: float = 20.0
    txn_timeout_ms: int = 6000
    abandon: float = 0.05
    seed: int = 1
    group: str = "txn-history-processors"
    history: History = field(default_factory=History)

    def run(self, during=None) -> Result:
        """Runs the workload for `seconds` (calling `during(elapsed)` about every 0.2 s, where
        faults are injected), drains it, reads everything back and checks it."""
        stop_producers, stop_processors = threading.Event(), threading.Event()
        producers = [
            TxnProducer(k, self.bootstrap, self.input_topic, self.partitions, self.history, stop_producers,
                        self.seed * 1000 + k, self.txn_timeout_ms, self.abandon)
            for k in range(self.producers)
        ]
        processors = [
            Processor(k, self.bootstrap, self.input_topic, self.output_topic, self.group, self.history,
                      stop_processors, self.txn_timeout_ms)
            for k in range(self.processors)
        ]
        for t in producers + processors:
            t.start()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < self.seconds:
            if during is not None:
                during(elapsed)
            time.sleep(0.2)
        stop_producers.set()
        for t in producers:
            t.join(90)
        self.producer_errors = [e for t in producers for e in t.errors]
        # Every transaction ends: committed, aborted, or aborted by the cluster after its timeout.
        wait_until(lambda: all(lso == hw for lso, hw in ends(self.bootstrap, self.input_topic, self.partitions).values()),
                   self.txn_timeout_ms / 1000 + 60, "every input transaction to end")
        committed_in = read_all(self.bootstrap, self.input_topic, self.partitions, "read_committed")
        want = {p: (recs[-1][0] + 1 if recs else 0) for p, recs in committed_in.items()}

        def drained():
            got = committed_offsets(self.bootstrap, self.group, self.input_topic, self.partitions)
            return all(got.get(p, -1) >= off for p, off in want.items() if off > 0)

        wait_until(drained, 90, "the processors to consume every committed input record")
        stop_processors.set()
        for t in processors:
            t.join(90)
        self.processor_errors = [e for t in processors for e in t.errors]
        wait_until(lambda: all(lso == hw for lso, hw in ends(self.bootstrap, self.output_topic, self.partitions).values()),
                   self.txn_timeout_ms / 1000 + 60, "every output transaction to end")
        stable = {
            self.input_topic: ends(self.bootstrap, self.input_topic, self.partitions),
            self.output_topic: ends(self.bootstrap, self.output_topic, self.partitions),
        }
        return check(
            self.history,
            committed_in,
            read_all(self.bootstrap, self.input_topic, self.partitions, "read_uncommitted"),
            read_all(self.bootstrap, self.output_topic, self.partitions, "read_committed"),
            read_all(self.bootstrap, self.output_topic, self.partitions, "read_uncommitted"),
            stable,
        )
