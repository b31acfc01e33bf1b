"""Broker configs as Kafka's tools see them: DescribeConfigs on the BROKER resource lists Kafka's
settings, and the dynamic ones (cluster default "" or one agent's id) are changed with
IncrementalAlterConfigs / AlterConfigs, kept in the metastore, and applied by every agent without a
restart. confluent-kafka's AdminClient and kafka-python's KafkaAdminClient, over TCP."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

import clients
from conftest import wait_for

# Agents reread the dynamic configs every session timeout / 5: 600 ms here.
AGENT_ARGS = ("--session-timeout-ms", "3000")


def broker_id(bootstrap: str) -> int:
    """The broker id of the agent at `bootstrap`, from its own metadata."""
    port = int(bootstrap.rsplit(":", 1)[1])
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def find():
        # librdkafka may ask another agent, whose view may not have this one yet: ask again.
        brokers = admin.list_topics(timeout=30).brokers.values()
        # librdkafka is given every slot of the agent: its own id is the one below the stride.
        found = {clients.agent_of(b.id) for b in brokers if b.port == port}
        return found.pop() if len(found) == 1 else None

    return wait_for(lambda: (lambda i: None if i is None else (i,))(find()), 30, message="the agent's broker id")[0]


def kp_admin(bootstrap: str):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap)


def kp_send(admin, request, bootstrap: str):
    """Sends a request to the agent at `bootstrap` with kafka-python's connection manager: its
    admin client (like confluent-kafka's) refuses the cluster-wide broker resource "" that
    kafka-configs.sh --entity-default uses."""
    return admin._manager.run(admin._manager.send, request, broker_id(bootstrap))


def cluster_alter(bootstrap: str, ops: dict, validate_only: bool = False) -> tuple[int, str | None]:
    """IncrementalAlterConfigs on the cluster's defaults: {name: (op, value)}; (code, message)."""
    from kafka.protocol.admin import IncrementalAlterConfigsRequest

    admin = kp_admin(bootstrap)
    try:
        entries = [(name, op, value) for name, (op, value) in ops.items()]
        request = IncrementalAlterConfigsRequest(resources=[(4, "", entries)], validate_only=validate_only)
        (r,) = kp_send(admin, request, bootstrap).responses
        return r.error_code, r.error_message
    finally:
        admin.close()


def cluster_replace(bootstrap: str, configs: dict) -> tuple[int, str | None]:
    """AlterConfigs on the cluster's defaults: they become exactly `configs`."""
    from kafka.protocol.admin import AlterConfigsRequest

    admin = kp_admin(bootstrap)
    try:
        request = AlterConfigsRequest(resources=[(4, "", list(configs.items()))], validate_only=False)
        (r,) = kp_send(admin, request, bootstrap).responses
        return r.error_code, r.error_message
    finally:
        admin.close()


def cluster_describe(bootstrap: str) -> dict[str, tuple[str | None, int]]:
    """DescribeConfigs on the cluster's defaults: {name: (value, source)}."""
    from kafka.protocol.admin import DescribeConfigsRequest

    admin = kp_admin(bootstrap)
    try:
        request = DescribeConfigsRequest(resources=[(4, "", None)], include_synonyms=True)
        (r,) = kp_send(admin, request, bootstrap).results
        assert r.error_code == 0, r
        return {c.name: (c.value, c.config_source) for c in r.configs}
    finally:
        admin.close()


SET, DELETE, APPEND = 0, 1, 2


def describe_broker(admin: AdminClient, name: str, **kwargs) -> dict:
    fs = admin.describe_configs([ConfigResource(ResourceType.BROKER, name)], request_timeout=30, **kwargs)
    return list(fs.values())[0].result(30)


def alter(admin: AdminClient, name: str, *entries: ConfigEntry, validate_only: bool = False) -> None:
    resource = ConfigResource(ResourceType.BROKER, name, incremental_configs=list(entries))
    fs = admin.incremental_alter_configs([resource], validate_only=validate_only, request_timeout=30)
    list(fs.values())[0].result(30)


def set_(name: str, value: str) -> ConfigEntry:
    return ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)


def refused(admin: AdminClient, name: str, *entries: ConfigEntry) -> KafkaError:
    with pytest.raises(KafkaException) as e:
        alter(admin, name, *entries)
    return e.value.args[0]


@pytest.mark.timeout(60)
def test_describe_lists_kafkas_broker_settings(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    me = str(broker_id(broker.bootstrap))
    configs = describe_broker(admin, me)
    for name in (
        "num.partitions",
        "default.replication.factor",
        "log.retention.hours",
        "log.retention.bytes",
        "log.segment.bytes",
        "log.flush.interval.messages",
        "log.flush.interval.ms",
        "message.max.bytes",
        "auto.create.topics.enable",
        "offsets.retention.minutes",
        "group.initial.rebalance.delay.ms",
        "transaction.max.timeout.ms",
        "min.insync.replicas",
        "unclean.leader.election.enable",
        "log.cleanup.policy",
        "compression.type",
        "offset.metadata.max.bytes",
    ):
        assert name in configs, name
    assert len(configs) > 60
    assert configs["log.flush.interval.messages"].value == "9223372036854775807"
    assert configs["log.retention.hours"].value == "168"
    assert configs["log.retention.ms"].value is None
    assert configs["offset.metadata.max.bytes"].value == "4096"
    assert configs["broker.id"].value == me
    assert configs["broker.id"].is_read_only
    assert not configs["log.retention.ms"].is_read_only
    assert configs["log.segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["broker.id"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    # The dev broker's message.max.bytes is Kafka's default.
    assert configs["message.max.bytes"].value == "1048588"
    synonyms = configs["log.retention.hours"].synonyms
    assert "log.retention.hours" in synonyms


@pytest.mark.timeout(60)
def test_static_unknown_and_bad_configs_are_refused(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    me = str(broker_id(broker.bootstrap))
    code, message = cluster_alter(broker.bootstrap, {"broker.id": (SET, "7"), "log.dirs": (SET, "/x")})
    assert code == KafkaError.INVALID_REQUEST
    assert message == "Cannot update these configs dynamically: Set(broker.id, log.dirs)"
    err = refused(admin, me, set_("num.network.threads", "4"))
    assert err.code() == KafkaError.INVALID_REQUEST
    assert "Cannot update these configs dynamically" in err.str()
    err = refused(admin, me, set_("log.retention.msx", "1"))
    assert err.code() == KafkaError.INVALID_CONFIG
    assert "Unknown config name: log.retention.msx" in err.str()
    err = refused(admin, me, set_("log.retention.ms", "soon"))
    assert err.code() == KafkaError.INVALID_REQUEST
    assert "log.retention.ms" in err.str()
    err = refused(admin, me, set_("log.message.timestamp.type", "Now"))
    assert err.code() == KafkaError.INVALID_REQUEST
    append = ConfigEntry("log.retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)
    err = refused(admin, me, append)
    assert err.code() == KafkaError.INVALID_CONFIG
    assert "append is not allowed" in err.str()
    # validate_only checks and changes nothing.
    alter(admin, me, set_("log.retention.ms", "1234"), validate_only=True)
    assert cluster_alter(broker.bootstrap, {"log.retention.ms": (SET, "1234")}, validate_only=True) == (0, None)
    assert cluster_describe(broker.bootstrap) == {}
    # Nothing refused was stored.
    assert describe_broker(admin, me)["log.retention.ms"].value is None


@pytest.mark.timeout(180)
def test_a_change_through_one_agent_is_applied_by_the_other(broker_factory, topic):
    q = broker_factory.quorum(nodes=1, agents=2, agent_args=AGENT_ARGS)
    a, b = q.agents
    id_a, id_b = broker_id(a.bootstrap), broker_id(b.bootstrap)
    admin_a = AdminClient({"bootstrap.servers": a.bootstrap})
    admin_b = AdminClient({"bootstrap.servers": b.bootstrap})
    clients.create_topic(a.bootstrap, topic, 16)

    def leaders() -> dict[int, int]:
        md = admin_a.list_topics(topic, timeout=30).topics[topic].partitions
        return {p.id: clients.agent_of(p.leader) for p in md.values()}

    # Both agents lead partitions once a's view has b.
    lead = wait_for(lambda: (lambda m: m if {id_a, id_b} <= set(m.values()) else None)(leaders()), 30)
    on_a = next(p for p, leader in lead.items() if leader == id_a)
    on_b = next(p for p, leader in lead.items() if leader == id_b)

    # A cluster-wide default, set through agent a.
    assert cluster_alter(a.bootstrap, {"message.max.bytes": (SET, "2000"), "log.retention.ms": (SET, "3600000")}) == (
        0,
        None,
    )
    assert cluster_describe(a.bootstrap) == {
        "message.max.bytes": ("2000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
        "log.retention.ms": ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
    }

    # Agent b sees it within its refresh interval, in DescribeConfigs on the broker and the topic...
    def b_sees():
        entry = describe_broker(admin_b, str(id_b))["message.max.bytes"]
        return entry if entry.value == "2000" else None

    entry = wait_for(b_sees, 30, interval=0.2, message="agent b to apply the cluster default")
    assert entry.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert not entry.is_read_only
    fs = admin_b.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=30)
    topic_configs = list(fs.values())[0].result(30)
    assert topic_configs["retention.ms"].value == "3600000"
    assert topic_configs["retention.ms"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert topic_configs["max.message.bytes"].value == "2000"

    # ...and in what it accepts: a 5,000-byte batch is now too large on both agents.
    def produce_to(partition: int) -> KafkaError | None:
        p = Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "message.timeout.ms": 30000})
        errors = []
        p.produce(topic, b"x" * 5000, partition=partition, on_delivery=lambda err, msg: errors.append(err))
        assert p.flush(60) == 0
        return errors[0]

    assert produce_to(on_b).code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert produce_to(on_a).code() == KafkaError.MSG_SIZE_TOO_LARGE

    # A per-agent override, made through that agent (Kafka's rule), shadows the default there only.
    alter(admin_b, str(id_b), set_("message.max.bytes", "100000"))
    override = describe_broker(admin_b, str(id_b))["message.max.bytes"]
    assert (override.value, override.source) == ("100000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert produce_to(on_b) is None
    assert produce_to(on_a).code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert describe_broker(admin_a, str(id_a))["message.max.bytes"].value == "2000"

    # Deleting the default and the override brings back the static value everywhere.
    assert cluster_alter(b.bootstrap, {"message.max.bytes": (DELETE, None)}) == (0, None)
    alter(admin_b, str(id_b), ConfigEntry("message.max.bytes", None, incremental_operation=AlterConfigOpType.DELETE))
    wait_for(
        lambda: describe_broker(admin_a, str(id_a))["message.max.bytes"].value == "1048588",
        30,
        interval=0.2,
        message="agent a to drop the default",
    )
    assert produce_to(on_a) is None
    assert cluster_describe(a.bootstrap) == {
        "log.retention.ms": ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
    }


@pytest.mark.timeout(180)
def test_offset_metadata_max_bytes_is_dynamic(broker_factory, topic):
    from kafka import KafkaConsumer
    from kafka.errors import OffsetMetadataTooLargeError
    from kafka.structs import OffsetAndMetadata, TopicPartition

    q = broker_factory.quorum(nodes=1, agents=2, agent_args=AGENT_ARGS)
    a, b = q.agents
    clients.create_topic(a.bootstrap, topic, 2)
    group = "meta-" + topic
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = KafkaConsumer(bootstrap_servers=[a.bootstrap, b.bootstrap], group_id=group, enable_auto_commit=False)
    try:
        # Kafka's default: 4,096 bytes of metadata pass.
        consumer.commit({tp0: OffsetAndMetadata(3, "m" * 4096, -1)})
        assert consumer.committed(tp0) == 3

        # Set through agent a; the group's coordinator may be either agent: wait until both apply it.
        assert cluster_alter(a.bootstrap, {"offset.metadata.max.bytes": (SET, "16")}) == (0, None)
        for agent in (a, b):
            admin_x = AdminClient({"bootstrap.servers": agent.bootstrap})
            me = str(broker_id(agent.bootstrap))
            wait_for(
                lambda: describe_broker(admin_x, me)["offset.metadata.max.bytes"].value == "16",
                30,
                interval=0.2,
                message=f"{agent.name} to apply offset.metadata.max.bytes",
            )

        # One partition's metadata is too long: it alone is refused, the other commits.
        with pytest.raises(OffsetMetadataTooLargeError):
            consumer.commit({tp0: OffsetAndMetadata(5, "m" * 17, -1), tp1: OffsetAndMetadata(7, "short", -1)})
        assert consumer.committed(tp0) == 3
        assert consumer.committed(tp1) == 7
        consumer.commit({tp0: OffsetAndMetadata(5, "m" * 16, -1)})
        assert consumer.committed(tp0) == 5
    finally:
        consumer.close(autocommit=False)


@pytest.mark.timeout(60)
def test_kafka_python_alter_and_describe_configs(broker, topic):
    from kafka.admin import ConfigResource as KConfigResource
    from kafka.admin import ConfigResourceType

    me = str(broker_id(broker.bootstrap))
    # AlterConfigs replaces the resource's whole set.
    assert cluster_replace(broker.bootstrap, {"log.retention.ms": "1000", "log.segment.bytes": "1048576"}) == (0, None)
    assert cluster_replace(broker.bootstrap, {"log.cleanup.policy": "compact"}) == (0, None)
    code, message = cluster_replace(broker.bootstrap, {"listeners": "PLAINTEXT://:1"})
    assert code == KafkaError.INVALID_REQUEST, message
    assert cluster_describe(broker.bootstrap) == {
        "log.cleanup.policy": ("compact", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    }

    admin = kp_admin(broker.bootstrap)
    try:
        # kafka-python's own calls on this agent's resource: a per-agent override, then all settings.
        resource = KConfigResource(ConfigResourceType.BROKER, me, configs={"log.retention.ms": "7200000"})
        result = admin.alter_configs([resource])
        assert result == {"broker": {me: "OK"}}, result
        described = admin.describe_configs(
            [KConfigResource(ConfigResourceType.BROKER, me)], include_synonyms=True, config_filter="all"
        )
        configs = described["broker"][me]
        assert configs["log.retention.ms"]["value"] == "7200000"
        assert configs["log.retention.ms"]["config_source"] == "DYNAMIC_BROKER_CONFIG"
        assert configs["log.cleanup.policy"]["value"] == "compact"
        assert configs["log.cleanup.policy"]["config_source"] == "DYNAMIC_DEFAULT_BROKER_CONFIG"
        assert [s["source"] for s in configs["log.cleanup.policy"]["synonyms"]] == [
            "DYNAMIC_DEFAULT_BROKER_CONFIG",
            "DEFAULT_CONFIG",
        ]
        assert configs["log.segment.bytes"]["config_source"] == "DEFAULT_CONFIG"
        assert configs["broker.id"]["read_only"] is True
        assert configs["log.flush.interval.messages"]["config_type"] == "LONG"
    finally:
        admin.close()

    # A topic without its own settings gets the ones in force: the agent's override, the cluster's default.
    clients.create_topic(broker.bootstrap, topic, 1)
    c_admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = c_admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=30)
    configs = list(fs.values())[0].result(30)
    assert (configs["cleanup.policy"].value, configs["cleanup.policy"].source) == (
        "compact",
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value,
    )
    assert (configs["retention.ms"].value, configs["retention.ms"].source) == (
        "7200000",
        ConfigSource.DYNAMIC_BROKER_CONFIG.value,
    )
