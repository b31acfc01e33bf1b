//! Agent settings: plain data, filled from flags, `SKIFF_*` variables and a TOML file by the binary.

use std::time::Duration;

/// Kafka's default `message.max.bytes` (1 MiB plus record-batch overhead).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// A listener as clients reach it: Kafka's listener name (`PLAINTEXT`, or one of
/// `listener.security.protocol.map`), its protocol and its advertised address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    pub name: String,
    pub protocol: crate::server::SecurityProtocol,
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The broker id clients see; every partition's leader, since any agent serves any partition.
    pub node_id: i32,
    pub cluster_id: String,
    /// Host and port clients are told to connect to.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// Broker ids the agents present to clients in total, shared out over the live agents (at
    /// least one each), so that librdkafka opens enough connections to keep every partition in
    /// the open window (see [`crate::brokers`]). Every agent of a cluster must have the same.
    pub broker_ids: u32,
    /// The first listener's security protocol.
    pub security_protocol: crate::server::SecurityProtocol,
    /// Every listener as clients are told of it (KIP-103), the first being the one the agent is
    /// known by in the metastore (`advertised_host`, `advertised_port`, `security_protocol`).
    /// Empty: that one only, named after its protocol.
    pub listeners: Vec<ListenerConfig>,
    /// Kafka's `quota.window.num` and `quota.window.size.seconds`: the window client quotas'
    /// rates are measured over.
    pub quota_window: crate::quotas::Window,
    /// Kafka's `super.users` and `allow.everyone.if.no.acl.found`.
    pub authorizer: crate::acl::AuthorizerConfig,
    /// SASL on the listener (SASL_PLAINTEXT, SASL_SSL); `None`: clients are `User:ANONYMOUS`.
    pub sasl: Option<std::sync::Arc<crate::sasl::SaslConfig>>,
    /// A flush starts this long after the first batch of a window arrives...
    pub flush_interval: Duration,
    /// ...or as soon as the window holds this many bytes.
    pub flush_bytes: usize,
    /// Produce bytes held in open windows and in-flight flushes; past it, produce requests wait
    /// and their connections stop being read.
    pub max_pending_bytes: usize,
    /// Largest request frame accepted (Kafka's `socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Requests read ahead on one connection while earlier ones are still being answered. Large on
    /// purpose: librdkafka sends one ProduceRequest per partition, and every one of them must reach
    /// the open window instead of waiting for the previous window's commit. Memory stays bounded by
    /// the request-memory budget, which counts every request at 1 KiB or more.
    pub max_in_flight_per_connection: usize,
    /// Of those, how many may be anything but Produce. An answer is held until the client reads
    /// it, and a Fetch answer can be megabytes that the request budget never saw: a client that
    /// pipelines fetches without reading its socket would otherwise pin thousands of them.
    pub max_in_flight_non_produce: usize,
    /// Largest frame accepted for anything but Produce. Decoding multiplies a request's size (a
    /// one-byte empty string becomes a 32-byte value, and may get an answer of its own), so only
    /// Produce, whose records stay as the bytes received, gets `max_request_bytes`. A Fetch of
    /// 20,000 partitions or a Metadata request naming 8,000 topics of 100 characters fits.
    pub max_non_produce_request_bytes: usize,
    /// Largest Fetch response, whatever the request asks (Kafka's `fetch.max.bytes`, 55 MiB):
    /// a response is held in memory until it is written.
    pub fetch_max_bytes: usize,
    /// Kafka's `max.connections`: past it, the listener stops accepting until one closes.
    pub max_connections: usize,
    /// Kafka's `max.connections.per.ip`: a connection from an address that has this many open
    /// is closed as soon as it is accepted.
    pub max_connections_per_ip: usize,
    /// Kafka's `connections.max.idle.ms`: a connection with nothing under way that sends
    /// nothing for this long is closed.
    pub connections_max_idle: Duration,
    /// Once the first byte of a request has arrived, the rest must arrive within this (time the
    /// agent spends waiting for memory does not count), or the connection is closed and what its
    /// partial request held goes back. Kafka has no such bound; without one a client could
    /// announce a large frame and send nothing more.
    pub request_read_timeout: Duration,
    /// An agent without a heartbeat for this long leaves the brokers clients are given.
    pub session_timeout: Duration,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    /// Largest record batch accepted (Kafka's `message.max.bytes`), unless a topic overrides it.
    pub max_message_bytes: usize,
    /// Batch locations kept by the fetch path's [`IndexCache`](crate::fetch::IndexCache); 0
    /// turns it off.
    pub index_cache_batches: u64,
    /// How long a cached index entry may be used. Shorter than the compactor's grace period
    /// before it deletes an object it has merged.
    pub index_cache_ttl: Duration,
    /// The read cache of object blocks (memory, optionally disk).
    pub read_cache: crate::fetch::BlockCacheConfig,
    /// Kafka's `group.min.session.timeout.ms`, `group.max.session.timeout.ms` and
    /// `group.initial.rebalance.delay.ms`.
    pub group_min_session_timeout: Duration,
    pub group_max_session_timeout: Duration,
    pub group_initial_rebalance_delay: Duration,
    /// Kafka's `group.max.size`: members a classic group may have.
    pub group_max_size: usize,
    /// Kafka's `group.consumer.session.timeout.ms` and `group.consumer.heartbeat.interval.ms`,
    /// for KIP-848 consumer groups.
    pub group_consumer_session_timeout: Duration,
    pub group_consumer_heartbeat_interval: Duration,
    /// Kafka's `group.consumer.max.size`: members a KIP-848 consumer group may have.
    pub group_consumer_max_size: usize,
    /// Kafka's `transaction.max.timeout.ms`: InitProducerId with a longer
    /// `transaction.timeout.ms` is refused (INVALID_TRANSACTION_TIMEOUT).
    pub transaction_max_timeout: Duration,
    /// Kafka's `transactional.id.expiration.ms`: a transactional id with no transaction
    /// ongoing and no request for this long is forgotten.
    pub transactional_id_expiration: Duration,
    /// Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often the
    /// agent looks for transactions past their timeout (and ids past their expiration).
    pub transaction_cleanup_interval: Duration,
    /// How long after its flush started an object may still be committed: past it the agent
    /// stops retrying and its producers send again. Not a setting: at most
    /// [`crate::batcher::MAX_COMMIT_DEADLINE`], which keeps it below the metastore's commit age
    /// bound; tests shorten it.
    pub commit_deadline: Duration,
    /// TESTING ONLY: the first this many objects are named as if made past the metastore's commit
    /// age bound, so their commits are refused as a commit delayed that long would be.
    pub test_stale_objects: u32,
}

impl AgentConfig {
    pub fn consumer_group_limits(&self) -> crate::groups::ConsumerLimits {
        crate::groups::ConsumerLimits {
            session_timeout: self.group_consumer_session_timeout,
            heartbeat_interval: self.group_consumer_heartbeat_interval,
            max_size: self.group_consumer_max_size,
        }
    }

    pub fn group_limits(&self) -> crate::groups::GroupLimits {
        crate::groups::GroupLimits {
            min_session_timeout: self.group_min_session_timeout,
            max_session_timeout: self.group_max_session_timeout,
            initial_rebalance_delay: self.group_initial_rebalance_delay,
            max_size: self.group_max_size,
        }
    }
}

impl AgentConfig {
    /// Every listener, the agent's own first.
    pub fn all_listeners(&self) -> Vec<ListenerConfig> {
        if self.listeners.is_empty() {
            vec![ListenerConfig {
                name: self.security_protocol.name().to_owned(),
                protocol: self.security_protocol,
                host: self.advertised_host.clone(),
                port: self.advertised_port,
            }]
        } else {
            self.listeners.clone()
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            cluster_id: "skiff-cluster".to_string(),
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 9092,
            broker_ids: 32,
            sasl: None,
            quota_window: crate::quotas::Window::default(),
            authorizer: crate::acl::AuthorizerConfig {
                super_users: Vec::new(),
                allow_if_no_acl: true,
            },
            security_protocol: crate::server::SecurityProtocol::Plaintext,
            listeners: Vec::new(),
            flush_interval: Duration::from_millis(250),
            flush_bytes: 8 * 1024 * 1024,
            max_pending_bytes: 256 * 1024 * 1024,
            max_request_bytes: 100 * 1024 * 1024,
            max_in_flight_per_connection: 4096,
            max_in_flight_non_produce: 32,
            max_non_produce_request_bytes: 1024 * 1024,
            fetch_max_bytes: 55 * 1024 * 1024,
            max_connections: 50_000,
            max_connections_per_ip: usize::MAX,
            connections_max_idle: Duration::from_millis(600_000),
            request_read_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(10),
            auto_create_topics: true,
            num_partitions: 1,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            index_cache_batches: 1 << 18,
            index_cache_ttl: Duration::from_secs(60),
            read_cache: crate::fetch::BlockCacheConfig::default(),
            group_min_session_timeout: Duration::from_secs(6),
            group_max_session_timeout: Duration::from_secs(1800),
            group_initial_rebalance_delay: Duration::from_secs(3),
            group_max_size: i32::MAX as usize,
            group_consumer_session_timeout: Duration::from_secs(45),
            group_consumer_heartbeat_interval: Duration::from_secs(5),
            group_consumer_max_size: i32::MAX as usize,
            transaction_max_timeout: Duration::from_millis(900_000),
            transactional_id_expiration: Duration::from_millis(604_800_000),
            transaction_cleanup_interval: Duration::from_millis(10_000),
            commit_deadline: crate::batcher::MAX_COMMIT_DEADLINE,
            test_stale_objects: 0,
        }
    }
}
