"""One consumer-group member as its own process, so a test can SIGKILL it like a crashed consumer.

    python group_member.py BOOTSTRAP GROUP TOPIC OUT_FILE [CONFIG_JSON]

Subscribes to TOPIC in GROUP with confluent-kafka (several topics separated by commas; a name
starting with ^ is a regex, as librdkafka has it), and appends one JSON line to OUT_FILE per event:
  {"e": "assign"|"revoke"|"lost", "p": [partitions], "tp": [[topic, partition]], "t": time}
                                                                  rebalance callbacks
  {"e": "msg", "p": partition, "o": offset, "v": value, "topic": topic}  a record processed
  {"e": "error", "err": text, "code": code, "fatal": bool}        a consumer error
  {"e": "commit", "p": {partition: next offset}}                  offsets committed after processing
  {"e": "commit_failed", "batch": [[partition, offset], ...]}     a rebalance came first
Every poll's records are processed (written and flushed) before their offsets are committed
synchronously, so a record is processed twice only if its member dies between the two.
SIGTERM closes the consumer (a LeaveGroup, unless it is a static member) and exits 0.
"""

import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException

bootstrap, group, topic, out_path = sys.argv[1:5]
extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}

out = open(out_path, "a", buffering=1)


def emit(event: dict) -> None:
    out.write(json.dumps(event) + "\n")
    out.flush()


stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)

conf = {
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "fetch.wait.max.ms": 100,
}
conf.update(extra)
if conf.get("group.protocol") == "consumer":
    # KIP-848: the broker decides timeouts and assignment; librdkafka refuses these.
    for key in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
        conf.pop(key, None)
consumer = Consumer(conf)


def parts(ps):
    return sorted(p.partition for p in ps)


def tps(ps):
    return sorted([p.topic, p.partition] for p in ps)


def on(kind):
    return lambda c, ps: emit({"e": kind, "p": parts(ps), "tp": tps(ps), "t": time.time()})


consumer.subscribe(topic.split(","), on_assign=on("assign"), on_revoke=on("revoke"), on_lost=on("lost"))
emit({"e": "start", "t": time.time()})
while not stopping:
    msgs = consumer.consume(num_messages=200, timeout=0.2)
    done = {}
    batch = []
    for m in msgs:
        if m.error():
            err = m.error()
            emit({"e": "error", "err": str(err), "code": err.code(), "fatal": err.fatal()})
            if err.fatal():
                stopping = True
            continue
        emit({"e": "msg", "p": m.partition(), "o": m.offset(), "v": m.value().decode(), "topic": m.topic()})
        done[m.partition()] = m.offset() + 1
        batch.append([m.partition(), m.offset()])
    if done:
        try:
            consumer.commit(asynchronous=False)
            emit({"e": "commit", "p": done})
        except KafkaException as e:
            # A rebalance took the partitions away meanwhile: their records will be processed
            # again by their next owner, which is what a rebalance window allows.
            emit({"e": "commit_failed", "err": str(e), "batch": batch})
consumer.close()
emit({"e": "closed", "t": time.time()})
