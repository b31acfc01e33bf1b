"""KafkaJS (from the npm registry, tests/kafkajs_driver.js) as the third client family for what
Kafka's produce path and broker configs promise:

- dynamic broker configs: the cluster-wide default set through one agent (with KafkaJS's own
  AlterConfigs encoding: its admin API refuses the resource name "") is described by the other
  agent with Kafka's config source and enforced there; a per-agent override (KafkaJS's admin
  sends a BROKER resource to that broker itself) shadows it on that agent only;
- message.timestamp.type=LogAppendTime: the producer's RecordMetadata and the consumer's records
  carry the agent's append time, inside the test's own clock window, with the batch's
  LogAppendTime attribute; a record two hours in the future is refused at once (KIP-937);
- a compacted topic refuses keyless records with INVALID_RECORD, at once (not retried), while the
  keyed ones in the same produce request are stored;
- a subscribed group picks up partitions added later (KafkaJS's classic protocol).

KafkaJS 2.2.4 has no DescribeLogDirs (its request table marks it not implemented): the wire and
kafka-python tests cover it.
"""

from __future__ import annotations

import math
import time

import pytest

import clients
import kafkajs
from conftest import wait_for

# Agents reread the dynamic configs every session timeout / 5: 600 ms here.
AGENT_ARGS = ("--session-timeout-ms", "3000")
HOUR_MS = 3_600_000

BROKER, TOPIC = 4, 2  # ConfigResourceTypes
# KafkaJS's ConfigSource
TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, DEFAULT_CONFIG = 1, 2, 3, 5
CREATE_TIME, LOG_APPEND_TIME = 0, 1  # KafkaJS's TimestampTypes
MESSAGE_TOO_LARGE, INVALID_TIMESTAMP, INVALID_REQUEST, INVALID_RECORD = 10, 32, 42, 87
KAFKA_MESSAGE_MAX_BYTES = "1048588"


def now_floor_ms() -> int:
    return math.floor(time.time() * 1000)


def now_ceil_ms() -> int:
    return math.ceil(time.time() * 1000)


def create_topic(bootstrap: str, topic: str, partitions: int = 1, **configs: str) -> None:
    out = kafkajs.run("create_topic", bootstrap, topic=topic, partitions=partitions, configs=configs)
    assert out == {"ok": True}, out


def node_id(bootstrap: str) -> int:
    """The broker id of the agent at `bootstrap`, from DescribeCluster (KafkaJS may ask another
    agent it has learnt of, whose view may not have this one yet: ask again)."""
    port = int(bootstrap.rsplit(":", 1)[1])

    def find():
        found = [b["nodeId"] for b in kafkajs.run("cluster", bootstrap)["brokers"] if b["port"] == port]
        return (found[0],) if len(found) == 1 else None

    return wait_for(find, 30, interval=0.2, message="the agent's broker id")[0]


def error_of(out: dict) -> tuple[str, int]:
    assert out["ok"] is False, out
    return out["error"]["type"], out["error"]["code"]


def broker_configs(bootstrap: str, name: str, node: int | None = None) -> dict[str, tuple[str | None, int]]:
    """DescribeConfigs on one BROKER resource: {config: (value, source)}."""
    extra = {} if node is None else {"node": node}
    out = kafkajs.run("describe_configs", bootstrap, resources=[{"type": BROKER, "name": name}], **extra)
    assert out["ok"], out
    [r] = out["resources"]
    assert (r["name"], r["errorCode"]) == (name, 0), r
    return {k: (c["value"], c["source"]) for k, c in r["configs"].items()}


def alter_broker(bootstrap: str, name: str, configs: dict, node: int | None = None, **kw) -> dict:
    extra = {} if node is None else {"node": node}
    resources = [{"type": BROKER, "name": name, "configs": configs}]
    return kafkajs.run("alter_configs", bootstrap, resources=resources, **extra, **kw)


@pytest.mark.timeout(240)
def test_kafkajs_dynamic_broker_configs_across_two_agents(broker_factory, topic):
    q = broker_factory.quorum(nodes=1, agents=2, agent_args=AGENT_ARGS)
    a, b = q.agents
    id_a, id_b = node_id(a.bootstrap), node_id(b.bootstrap)
    assert id_a != id_b
    create_topic(a.bootstrap, topic, 16)

    # Both agents lead partitions once a's view has b.
    def leaders():
        lead = {int(p): n for p, n in kafkajs.run("leaders", a.bootstrap, topic=topic)["leaders"].items()}
        return lead if {id_a, id_b} <= set(lead.values()) else None

    lead = wait_for(leaders, 30, interval=0.2, message="both agents to lead partitions")
    on_a = next(p for p, n in lead.items() if n == id_a)
    on_b = next(p for p, n in lead.items() if n == id_b)

    def send_big(bootstrap: str, partition: int) -> dict:
        return kafkajs.run("produce", bootstrap, topic=topic, messages=[{"partition": partition, "value": "x" * 5000}])

    assert broker_configs(b.bootstrap, str(id_b))["message.max.bytes"] == (KAFKA_MESSAGE_MAX_BYTES, DEFAULT_CONFIG)
    assert send_big(b.bootstrap, on_b)["ok"] is True

    # KafkaJS's admin checks names itself: the cluster-wide resource "" never leaves the client.
    out = alter_broker(a.bootstrap, "", {"message.max.bytes": "2000"})
    assert out["ok"] is False and "Invalid resource name" in out["error"]["message"], out

    # Through KafkaJS's protocol layer to agent a: AlterConfigs on "", then DescribeConfigs there.
    out = alter_broker(a.bootstrap, "", {"message.max.bytes": "2000"}, node=id_a)
    assert out["ok"] and [(r["name"], r["errorCode"]) for r in out["resources"]] == [("", 0)], out
    assert broker_configs(a.bootstrap, "", node=id_a) == {"message.max.bytes": ("2000", DYNAMIC_DEFAULT_BROKER_CONFIG)}

    # Agent b, asked through KafkaJS's admin on b alone, shows the default with its source...
    def b_sees():
        entry = broker_configs(b.bootstrap, str(id_b))["message.max.bytes"]
        return entry if entry[0] == "2000" else None

    entry = wait_for(b_sees, 30, interval=0.2, message="agent b to apply the cluster default")
    assert entry == ("2000", DYNAMIC_DEFAULT_BROKER_CONFIG)
    assert broker_configs(b.bootstrap, "", node=id_b) == {"message.max.bytes": ("2000", DYNAMIC_DEFAULT_BROKER_CONFIG)}

    # ...and enforces it: a 5,000-byte record is refused with Kafka's error, in one request
    # (MESSAGE_TOO_LARGE is not retriable); on agent a too.
    out = send_big(b.bootstrap, on_b)
    assert error_of(out) == ("MESSAGE_TOO_LARGE", MESSAGE_TOO_LARGE)
    assert out["produceRequests"] == 1, out
    assert error_of(send_big(b.bootstrap, on_a)) == ("MESSAGE_TOO_LARGE", MESSAGE_TOO_LARGE)

    # A per-agent override for b, asked of KafkaJS's admin on agent a (it sends a BROKER resource
    # to that broker), shadows the default on b alone.
    out = alter_broker(a.bootstrap, str(id_b), {"message.max.bytes": "100000"})
    assert out["ok"] and [(r["name"], r["errorCode"]) for r in out["resources"]] == [(str(id_b), 0)], out
    assert broker_configs(a.bootstrap, str(id_b))["message.max.bytes"] == ("100000", DYNAMIC_BROKER_CONFIG)
    assert send_big(a.bootstrap, on_b)["ok"] is True
    assert error_of(send_big(a.bootstrap, on_a)) == ("MESSAGE_TOO_LARGE", MESSAGE_TOO_LARGE)
    assert broker_configs(b.bootstrap, str(id_a))["message.max.bytes"] == ("2000", DYNAMIC_DEFAULT_BROKER_CONFIG)

    # validate_only and a static config change nothing; Kafka's INVALID_REQUEST for the latter.
    out = alter_broker(a.bootstrap, str(id_a), {"message.max.bytes": "1"}, validateOnly=True)
    assert out["ok"], out
    assert error_of(alter_broker(a.bootstrap, str(id_a), {"broker.id": "7"})) == ("INVALID_REQUEST", INVALID_REQUEST)
    assert broker_configs(a.bootstrap, str(id_a))["message.max.bytes"] == ("2000", DYNAMIC_DEFAULT_BROKER_CONFIG)

    # AlterConfigs replaces a resource's whole set: empty sets through b bring back the static value.
    assert alter_broker(b.bootstrap, str(id_b), {})["ok"]
    assert alter_broker(b.bootstrap, "", {}, node=id_b)["ok"]
    assert broker_configs(b.bootstrap, "", node=id_b) == {}
    static = (KAFKA_MESSAGE_MAX_BYTES, DEFAULT_CONFIG)
    wait_for(
        lambda: broker_configs(a.bootstrap, str(id_a))["message.max.bytes"] == static,
        30,
        interval=0.2,
        message="agent a to drop the default",
    )
    assert send_big(b.bootstrap, on_a)["ok"] is True


@pytest.mark.timeout(120)
def test_kafkajs_log_append_time(broker, topic):
    plain = topic + "-create-time"
    create_topic(broker.bootstrap, topic, **{"message.timestamp.type": "LogAppendTime"})
    create_topic(broker.bootstrap, plain)
    out = kafkajs.run("describe_configs", broker.bootstrap, resources=[{"type": TOPIC, "name": topic}])
    configs = out["resources"][0]["configs"]
    assert (configs["message.timestamp.type"]["value"], configs["message.timestamp.type"]["source"]) == (
        "LogAppendTime",
        TOPIC_CONFIG,
    )

    created = now_floor_ms() - 2 * HOUR_MS
    messages = [
        {"partition": 0, "key": "a", "value": "one", "timestamp": created},
        {"partition": 0, "key": "b", "value": "two", "timestamp": created + 1},
    ]
    before = now_floor_ms()
    out = kafkajs.run("produce", broker.bootstrap, topic=topic, messages=messages)
    after = now_ceil_ms()
    assert out["ok"], out
    [result] = out["results"]
    assert (result["partition"], result["baseOffset"]) == (0, 0)
    # The producer's RecordMetadata carries the broker's time of append.
    appended = result["logAppendTime"]
    assert before <= appended <= after, (before, appended, after)

    # The consumer reads the batch's LogAppendTime attribute and its time, for both records.
    got = kafkajs.run("consume", broker.bootstrap, topic=topic, group="lat-" + topic, expect=2)["messages"]
    assert [(m["offset"], m["value"], m["timestampType"], m["timestamp"]) for m in got] == [
        (0, "one", LOG_APPEND_TIME, appended),
        (1, "two", LOG_APPEND_TIME, appended),
    ]

    # Without the setting, the producer's own timestamps stay and there is no append time.
    out = kafkajs.run("produce", broker.bootstrap, topic=plain, messages=messages)
    assert out["ok"] and out["results"][0]["logAppendTime"] == -1, out
    got = kafkajs.run("consume", broker.bootstrap, topic=plain, group="ct-" + topic, expect=2)["messages"]
    assert [(m["timestampType"], m["timestamp"]) for m in got] == [(CREATE_TIME, created), (CREATE_TIME, created + 1)]


def test_kafkajs_far_future_timestamp_is_refused_at_once(broker, topic):
    create_topic(broker.bootstrap, topic)
    now = now_floor_ms()
    future = [{"partition": 0, "value": "future", "timestamp": now + 2 * HOUR_MS}]
    out = kafkajs.run("produce", broker.bootstrap, topic=topic, messages=future)
    assert error_of(out) == ("INVALID_TIMESTAMP", INVALID_TIMESTAMP)
    assert out["produceRequests"] == 1, out
    current = [{"partition": 0, "value": "now", "timestamp": now}]
    out = kafkajs.run("produce", broker.bootstrap, topic=topic, messages=current)
    assert out["ok"] and out["results"][0]["baseOffset"] == 0, out


@pytest.mark.timeout(120)
def test_kafkajs_keyless_records_on_a_compacted_topic_fail_and_keyed_ones_in_the_request_succeed(broker, topic):
    compacted, keyless_target, plain = topic + "-keyed", topic + "-keyless", topic + "-plain"
    create_topic(broker.bootstrap, compacted, **{"cleanup.policy": "compact"})
    create_topic(broker.bootstrap, keyless_target, **{"cleanup.policy": "compact"})
    create_topic(broker.bootstrap, plain)

    # One broker: KafkaJS's sendBatch makes one ProduceRequest of the three topics.
    batch = [
        {"topic": compacted, "messages": [{"partition": 0, "key": f"k{i}", "value": f"v{i}"} for i in range(3)]},
        {
            "topic": keyless_target,
            "messages": [{"partition": 0, "key": "k", "value": "v"}, {"partition": 0, "value": "no key"}],
        },
        {"topic": plain, "messages": [{"partition": 0, "value": "no key, not compacted"}]},
    ]
    out = kafkajs.run("produce", broker.bootstrap, topicMessages=batch)
    assert error_of(out) == ("INVALID_RECORD", INVALID_RECORD)
    # INVALID_RECORD is not retriable: KafkaJS sent the request once (a retry would store the
    # keyed records twice, see below).
    assert out["produceRequests"] == 1, out

    assert clients.watermarks(broker.bootstrap, compacted, 0) == (0, 3)
    assert clients.watermarks(broker.bootstrap, plain, 0) == (0, 1)
    # The whole batch with a keyless record is refused, its keyed record too.
    assert clients.watermarks(broker.bootstrap, keyless_target, 0) == (0, 0)
    got = kafkajs.run("consume", broker.bootstrap, topic=compacted, group="c-" + topic, expect=3)["messages"]
    assert [(m["offset"], m["key"], m["value"]) for m in got] == [(i, f"k{i}", f"v{i}") for i in range(3)]

    # A keyed record to the refusing topic is taken afterwards.
    keyed = [{"partition": 0, "key": "k", "value": "v"}]
    out = kafkajs.run("produce", broker.bootstrap, topic=keyless_target, messages=keyed)
    assert out["ok"] and out["results"][0]["baseOffset"] == 0, out


@pytest.mark.timeout(180)
def test_kafkajs_subscribed_group_picks_up_new_partitions(broker, topic):
    create_topic(broker.bootstrap, topic, 2)
    out = kafkajs.run(
        "grow_subscribed",
        broker.bootstrap,
        timeout=150,
        topic=topic,
        group="grow-" + topic,
        count=4,
        perPartition=2,
        metadataMaxAge=500,
        timeoutMs=90000,
    )
    assert out["failed"] is None, out
    assert out["assignments"][0] == [0, 1], out["assignments"]
    assert out["assignments"][-1] == [0, 1, 2, 3], out["assignments"]
    got = sorted((m["partition"], m["offset"], m["value"]) for m in out["messages"])
    assert got == [(p, i, f"{p}-{i}") for p in range(4) for i in range(2)]
