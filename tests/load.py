"""A steady idempotent load for failure tests, and the check that follows it: every acknowledged
record present exactly once, in produce order, at contiguous offsets, and nothing else."""

from __future__ import annotations

import threading
import time

import clients

PARTITIONS = 8


class Load:
    """An idempotent acks=all producer writing numbered records round-robin over the partitions
    from a thread, recording when each acknowledgement arrived."""

    def __init__(self, bootstrap: str, topic: str, **conf):
        self.topic = topic
        self.errors: list = []
        self.p = clients.producer(
            bootstrap,
            **{"linger.ms": 5, "message.timeout.ms": 120000, "error_cb": self.errors.append, **conf},
        )
        self.d = clients.Deliveries()
        self.ack_times: list[float] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _callback(self, i):
        inner = self.d.callback(i)

        def cb(err, msg):
            if err is None:
                self.ack_times.append(time.monotonic())
            inner(err, msg)

        return cb

    def _run(self):
        while not self._stop.is_set():
            for _ in range(50):
                i = self.sent
                while True:
                    try:
                        self.p.produce(
                            self.topic, value=b"record-%d" % i, partition=i % PARTITIONS, on_delivery=self._callback(i)
                        )
                        break
                    except BufferError:
                        self.p.poll(0.05)
                self.sent += 1
            self.p.poll(0.01)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        assert self.p.flush(180) == 0, "records still unacknowledged"

    def largest_gap_after(self, t: float) -> float:
        """The longest time without an acknowledgement from `t` on."""
        times = sorted(x for x in self.ack_times if x >= t)
        points = [t] + times
        return max((b - a for a, b in zip(points, points[1:])), default=float("inf"))


def check_exactly_once(bootstrap: str, topic: str, load: Load) -> None:
    assert not load.d.failed, f"{len(load.d.failed)} deliveries failed, first: {load.d.failed[:3]}"
    assert load.d.count == load.sent
    ends = {}
    for part, acked in load.d.ok.items():
        in_order = [o for o, _ in sorted(acked, key=lambda oi: oi[1])]
        assert in_order == list(range(len(acked))), f"partition {part}: acked offsets not contiguous in produce order"
        ends[part] = len(acked)
    got = clients.read_partitions(bootstrap, topic, ends, timeout=120)
    for part, msgs in got.items():
        by_offset = {o: i for o, i in load.d.ok[part]}
        assert [m.offset() for m in msgs] == list(range(ends[part])), f"partition {part}: offsets"
        assert [m.value() for m in msgs] == [b"record-%d" % by_offset[m.offset()] for m in msgs], f"partition {part}"
        assert clients.watermarks(bootstrap, topic, part) == (0, ends[part]), f"partition {part}: nothing extra"
