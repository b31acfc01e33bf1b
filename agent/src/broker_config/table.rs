//! Kafka's broker settings as DescribeConfigs shows them, one row each: data, not code. The rows
//! are what kafka-configs.sh, AKHQ and kafka-ui read, the broker-wide defaults of every topic
//! config Skiff knows, and the settings Skiff has of its own (listeners, limits, group timeouts).

/// Kafka's `ConfigEntry.ConfigType`, as DescribeConfigs v3+ sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum Type {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
}

/// Whether a setting can change at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Set by flags or the config file only; DescribeConfigs says `read_only`, and an alter is
    /// refused as Kafka refuses its static settings.
    Static,
    /// Set in the metastore, at the cluster level or for one agent; every agent applies it
    /// without a restart.
    Dynamic,
}

/// One of the agent's settings a row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    BrokerId,
    Listeners,
    AutoCreateTopics,
    NumPartitions,
    MessageMaxBytes,
    SocketRequestMaxBytes,
    MaxConnections,
    MaxConnectionsPerIp,
    ConnectionsMaxIdleMs,
    GroupMaxSize,
    GroupConsumerMaxSize,
    FetchMaxBytes,
    GroupMinSessionTimeoutMs,
    GroupMaxSessionTimeoutMs,
    GroupInitialRebalanceDelayMs,
    GroupConsumerSessionTimeoutMs,
    GroupConsumerHeartbeatIntervalMs,
    TransactionMaxTimeoutMs,
    TransactionalIdExpirationMs,
    TransactionCleanupIntervalMs,
}

/// What a row shows when no dynamic config sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Static {
    /// Kafka's default (`None`: null), where Skiff has no setting of its own.
    Kafka(Option<&'static str>),
    /// The agent's setting, and Kafka's default for it: a value equal to Kafka's default is
    /// shown as DEFAULT_CONFIG, any other as STATIC_BROKER_CONFIG.
    Agent(Setting, Option<&'static str>),
}

/// One broker setting.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub name: &'static str,
    pub ty: Type,
    pub mode: Mode,
    pub value: Static,
    /// The topic config this is the broker-wide default of, and how many of the topic
    /// config's units one of this setting's is (`log.retention.hours` is 3,600,000 ms of
    /// `retention.ms`). Synonyms of one topic config are listed in Kafka's precedence order.
    pub topic: Option<(&'static str, i64)>,
}

const fn fixed(name: &'static str, ty: Type, default: Option<&'static str>) -> Row {
    Row {
        name,
        ty,
        mode: Mode::Static,
        value: Static::Kafka(default),
        topic: None,
    }
}

const fn agent(
    name: &'static str,
    ty: Type,
    setting: Setting,
    default: Option<&'static str>,
) -> Row {
    Row {
        name,
        ty,
        mode: Mode::Static,
        value: Static::Agent(setting, default),
        topic: None,
    }
}

/// The broker-wide default of a topic config, in the topic config's unit.
const fn topic(name: &'static str, ty: Type, topic: &'static str, default: &'static str) -> Row {
    topic_scaled(name, ty, topic, 1, Some(default))
}

const fn topic_scaled(
    name: &'static str,
    ty: Type,
    topic: &'static str,
    scale: i64,
    default: Option<&'static str>,
) -> Row {
    Row {
        name,
        ty,
        mode: Mode::Dynamic,
        value: Static::Kafka(default),
        topic: Some((topic, scale)),
    }
}

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;
const LONG_MAX: &str = "9223372036854775807";
const INT_MAX: &str = "2147483647";

/// Every broker setting shown, sorted by name within its group.
pub const ROWS: &[Row] = &[
    // ---- The broker-wide defaults of topic configs: dynamic. ----
    topic(
        "compression.gzip.level",
        Type::Int,
        "compression.gzip.level",
        "-1",
    ),
    topic(
        "compression.lz4.level",
        Type::Int,
        "compression.lz4.level",
        "9",
    ),
    topic(
        "compression.type",
        Type::String,
        "compression.type",
        "producer",
    ),
    topic(
        "compression.zstd.level",
        Type::Int,
        "compression.zstd.level",
        "3",
    ),
    topic(
        "log.cleaner.delete.retention.ms",
        Type::Long,
        "delete.retention.ms",
        "86400000",
    ),
    topic(
        "log.cleaner.max.compaction.lag.ms",
        Type::Long,
        "max.compaction.lag.ms",
        LONG_MAX,
    ),
    topic(
        "log.cleaner.min.cleanable.ratio",
        Type::Double,
        "min.cleanable.dirty.ratio",
        "0.5",
    ),
    topic(
        "log.cleaner.min.compaction.lag.ms",
        Type::Long,
        "min.compaction.lag.ms",
        "0",
    ),
    topic("log.cleanup.policy", Type::List, "cleanup.policy", "delete"),
    topic(
        "log.flush.interval.messages",
        Type::Long,
        "flush.messages",
        LONG_MAX,
    ),
    topic_scaled("log.flush.interval.ms", Type::Long, "flush.ms", 1, None),
    topic(
        "log.index.interval.bytes",
        Type::Int,
        "index.interval.bytes",
        "4096",
    ),
    topic(
        "log.index.size.max.bytes",
        Type::Int,
        "segment.index.bytes",
        "10485760",
    ),
    topic(
        "log.local.retention.bytes",
        Type::Long,
        "local.retention.bytes",
        "-2",
    ),
    topic(
        "log.local.retention.ms",
        Type::Long,
        "local.retention.ms",
        "-2",
    ),
    topic(
        "log.message.downconversion.enable",
        Type::Boolean,
        "message.downconversion.enable",
        "true",
    ),
    // Kafka 4.0's default (KIP-1030): an hour ahead at most, so one far-future timestamp
    // cannot hold time-based retention back.
    topic(
        "log.message.timestamp.after.max.ms",
        Type::Long,
        "message.timestamp.after.max.ms",
        "3600000",
    ),
    topic(
        "log.message.timestamp.before.max.ms",
        Type::Long,
        "message.timestamp.before.max.ms",
        LONG_MAX,
    ),
    topic(
        "log.message.timestamp.difference.max.ms",
        Type::Long,
        "message.timestamp.difference.max.ms",
        LONG_MAX,
    ),
    topic(
        "log.message.timestamp.type",
        Type::String,
        "message.timestamp.type",
        "CreateTime",
    ),
    topic("log.preallocate", Type::Boolean, "preallocate", "false"),
    topic("log.retention.bytes", Type::Long, "retention.bytes", "-1"),
    topic_scaled("log.retention.ms", Type::Long, "retention.ms", 1, None),
    topic_scaled(
        "log.retention.minutes",
        Type::Int,
        "retention.ms",
        MS_PER_MINUTE,
        None,
    ),
    topic_scaled(
        "log.retention.hours",
        Type::Int,
        "retention.ms",
        MS_PER_HOUR,
        Some("168"),
    ),
    topic_scaled("log.roll.ms", Type::Long, "segment.ms", 1, None),
    topic_scaled(
        "log.roll.hours",
        Type::Int,
        "segment.ms",
        MS_PER_HOUR,
        Some("168"),
    ),
    topic_scaled(
        "log.roll.jitter.ms",
        Type::Long,
        "segment.jitter.ms",
        1,
        None,
    ),
    topic_scaled(
        "log.roll.jitter.hours",
        Type::Int,
        "segment.jitter.ms",
        MS_PER_HOUR,
        Some("0"),
    ),
    topic(
        "log.segment.bytes",
        Type::Int,
        "segment.bytes",
        "1073741824",
    ),
    topic(
        "log.segment.delete.delay.ms",
        Type::Long,
        "file.delete.delay.ms",
        "60000",
    ),
    Row {
        value: Static::Agent(Setting::MessageMaxBytes, Some("1048588")),
        ..topic("message.max.bytes", Type::Int, "max.message.bytes", "")
    },
    topic("min.insync.replicas", Type::Int, "min.insync.replicas", "1"),
    topic(
        "unclean.leader.election.enable",
        Type::Boolean,
        "unclean.leader.election.enable",
        "false",
    ),
    // ---- Skiff's own dynamic settings. ----
    Row {
        name: "offset.metadata.max.bytes",
        ty: Type::Int,
        mode: Mode::Dynamic,
        value: Static::Kafka(Some("4096")),
        topic: None,
    },
    // ---- Static: the agent's settings. ----
    agent(
        "advertised.listeners",
        Type::String,
        Setting::Listeners,
        None,
    ),
    agent(
        "auto.create.topics.enable",
        Type::Boolean,
        Setting::AutoCreateTopics,
        Some("true"),
    ),
    agent("broker.id", Type::Int, Setting::BrokerId, Some("-1")),
    agent(
        "fetch.max.bytes",
        Type::Int,
        Setting::FetchMaxBytes,
        Some("57671680"),
    ),
    agent(
        "group.consumer.heartbeat.interval.ms",
        Type::Int,
        Setting::GroupConsumerHeartbeatIntervalMs,
        Some("5000"),
    ),
    agent(
        "group.consumer.session.timeout.ms",
        Type::Int,
        Setting::GroupConsumerSessionTimeoutMs,
        Some("45000"),
    ),
    agent(
        "group.initial.rebalance.delay.ms",
        Type::Int,
        Setting::GroupInitialRebalanceDelayMs,
        Some("3000"),
    ),
    agent(
        "group.max.session.timeout.ms",
        Type::Int,
        Setting::GroupMaxSessionTimeoutMs,
        Some("1800000"),
    ),
    agent(
        "group.min.session.timeout.ms",
        Type::Int,
        Setting::GroupMinSessionTimeoutMs,
        Some("6000"),
    ),
    agent("listeners", Type::String, Setting::Listeners, None),
    agent(
        "max.connections",
        Type::Int,
        Setting::MaxConnections,
        Some(INT_MAX),
    ),
    agent("node.id", Type::Int, Setting::BrokerId, Some("-1")),
    agent(
        "num.partitions",
        Type::Int,
        Setting::NumPartitions,
        Some("1"),
    ),
    agent(
        "socket.request.max.bytes",
        Type::Int,
        Setting::SocketRequestMaxBytes,
        Some("104857600"),
    ),
    agent(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Type::Int,
        Setting::TransactionCleanupIntervalMs,
        Some("10000"),
    ),
    agent(
        "transaction.max.timeout.ms",
        Type::Int,
        Setting::TransactionMaxTimeoutMs,
        Some("900000"),
    ),
    agent(
        "transactional.id.expiration.ms",
        Type::Int,
        Setting::TransactionalIdExpirationMs,
        Some("604800000"),
    ),
    // ---- Static: Kafka's defaults, for settings Skiff has no equivalent of. ----
    fixed("auto.leader.rebalance.enable", Type::Boolean, Some("true")),
    fixed("background.threads", Type::Int, Some("10")),
    fixed("broker.rack", Type::String, None),
    agent(
        "connections.max.idle.ms",
        Type::Long,
        Setting::ConnectionsMaxIdleMs,
        Some("600000"),
    ),
    fixed("controlled.shutdown.enable", Type::Boolean, Some("true")),
    fixed("default.replication.factor", Type::Int, Some("1")),
    fixed("delete.topic.enable", Type::Boolean, Some("true")),
    fixed(
        "group.consumer.max.session.timeout.ms",
        Type::Int,
        Some("60000"),
    ),
    fixed(
        "group.consumer.min.session.timeout.ms",
        Type::Int,
        Some("45000"),
    ),
    fixed(
        "group.coordinator.rebalance.protocols",
        Type::List,
        Some("classic,consumer"),
    ),
    agent(
        "group.max.size",
        Type::Int,
        Setting::GroupMaxSize,
        Some(INT_MAX),
    ),
    agent(
        "group.consumer.max.size",
        Type::Int,
        Setting::GroupConsumerMaxSize,
        Some(INT_MAX),
    ),
    fixed("inter.broker.listener.name", Type::String, None),
    fixed(
        "listener.security.protocol.map",
        Type::String,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
    ),
    fixed("log.cleaner.enable", Type::Boolean, Some("true")),
    fixed("log.cleaner.threads", Type::Int, Some("1")),
    fixed("log.dirs", Type::String, None),
    fixed(
        "log.flush.scheduler.interval.ms",
        Type::Long,
        Some(LONG_MAX),
    ),
    fixed(
        "log.retention.check.interval.ms",
        Type::Long,
        Some("300000"),
    ),
    agent(
        "max.connections.per.ip",
        Type::Int,
        Setting::MaxConnectionsPerIp,
        Some(INT_MAX),
    ),
    fixed("num.io.threads", Type::Int, Some("8")),
    fixed("num.network.threads", Type::Int, Some("3")),
    fixed("num.recovery.threads.per.data.dir", Type::Int, Some("1")),
    fixed("num.replica.fetchers", Type::Int, Some("1")),
    fixed("offsets.commit.timeout.ms", Type::Int, Some("5000")),
    fixed(
        "offsets.retention.check.interval.ms",
        Type::Long,
        Some("600000"),
    ),
    fixed("offsets.retention.minutes", Type::Int, Some("10080")),
    fixed("offsets.topic.num.partitions", Type::Int, Some("50")),
    fixed("offsets.topic.replication.factor", Type::Int, Some("3")),
    fixed("principal.builder.class", Type::Class, None),
    fixed("process.roles", Type::List, Some("broker")),
    fixed("producer.id.expiration.ms", Type::Int, Some("86400000")),
    fixed("queued.max.requests", Type::Int, Some("500")),
    fixed("replica.fetch.max.bytes", Type::Int, Some("1048576")),
    fixed("replica.lag.time.max.ms", Type::Long, Some("30000")),
    fixed("socket.receive.buffer.bytes", Type::Int, Some("102400")),
    fixed("socket.send.buffer.bytes", Type::Int, Some("102400")),
    fixed("transaction.state.log.min.isr", Type::Int, Some("2")),
    fixed(
        "transaction.state.log.num.partitions",
        Type::Int,
        Some("50"),
    ),
    fixed(
        "transaction.state.log.replication.factor",
        Type::Short,
        Some("3"),
    ),
];

/// The row of a setting.
pub fn row(name: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.name == name)
}

/// The broker settings that default a topic config, in precedence order.
pub fn synonyms_of(topic_config: &str) -> impl Iterator<Item = &'static Row> + '_ {
    ROWS.iter()
        .filter(move |r| r.topic.is_some_and(|(t, _)| t == topic_config))
}
