//! Settings for each role: flags, then `SKIFF_*` environment variables, then a TOML file, then
//! defaults — the first that says something wins.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

pub mod cluster;
mod security;

/// What every agent takes, in `skiff dev` and `skiff agent` alike.
#[derive(Args, Debug, Default)]
pub struct AgentFlags {
    /// TOML file with any of these settings (keys as the flags, with underscores)
    #[arg(long, env = "SKIFF_CONFIG")]
    config: Option<PathBuf>,
    /// Broker ids the agents present to clients in total, shared out over the live agents, at
    /// least one each (all at the agent's address), so that librdkafka opens enough connections
    /// to keep every partition in the open flush window; the same on every agent [default: 32]
    #[arg(long, env = "SKIFF_BROKER_IDS")]
    broker_ids: Option<u32>,
    #[command(flatten)]
    security: security::SecurityFlags,
    #[command(flatten)]
    store: StoreFlags,
    /// $ per 1,000 PUT/COPY/POST/LIST requests, for the cost figures on /metrics [default: 0.005]
    #[arg(long, env = "SKIFF_S3_PRICE_WRITE_PER_1000")]
    s3_price_write_per_1000: Option<f64>,
    /// $ per 1,000 GET/HEAD requests, for the cost figures on /metrics [default: 0.0004]
    #[arg(long, env = "SKIFF_S3_PRICE_READ_PER_1000")]
    s3_price_read_per_1000: Option<f64>,
    /// Flush a window this long after its first batch [default: 250]
    #[arg(long, env = "SKIFF_FLUSH_INTERVAL_MS")]
    flush_interval_ms: Option<u64>,
    /// Flush a window once it holds this many bytes [default: 8388608]
    #[arg(long, env = "SKIFF_FLUSH_BYTES")]
    flush_bytes: Option<usize>,
    /// Address of the Prometheus /metrics endpoint [default: 127.0.0.1:9644]
    #[arg(long, env = "SKIFF_METRICS")]
    metrics: Option<SocketAddr>,
    /// Create unknown topics when a client's metadata request allows it [default: true]
    #[arg(long, env = "SKIFF_AUTO_CREATE_TOPICS")]
    auto_create_topics: Option<bool>,
    /// Partitions of an auto-created topic, or of one created with -1 [default: 1]
    #[arg(long, env = "SKIFF_NUM_PARTITIONS")]
    num_partitions: Option<i32>,
    /// Largest record batch accepted (Kafka's message.max.bytes) [default: 1048588]
    #[arg(long, env = "SKIFF_MAX_MESSAGE_BYTES")]
    max_message_bytes: Option<usize>,
    /// Produce bytes buffered or in flight before producers are held back [default: 268435456]
    #[arg(long, env = "SKIFF_MAX_PENDING_BYTES")]
    max_pending_bytes: Option<usize>,
    /// Client connections open at once; past it, new ones wait to be accepted
    /// (max.connections) [default: 50000]
    #[arg(long, env = "SKIFF_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Client connections open at once from one address; more are closed when accepted
    /// (max.connections.per.ip) [default: 2147483647]
    #[arg(long, env = "SKIFF_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Close a connection with nothing under way that sends nothing this long
    /// (connections.max.idle.ms) [default: 600000]
    #[arg(long, env = "SKIFF_CONNECTIONS_MAX_IDLE_MS")]
    connections_max_idle_ms: Option<u64>,
    /// Close a connection whose request, once started, has not fully arrived in this long
    /// [default: 30000]
    #[arg(long, env = "SKIFF_REQUEST_READ_TIMEOUT_MS")]
    request_read_timeout_ms: Option<u64>,
    /// Samples the client quotas' rates are measured over (quota.window.num) [default: 11]
    #[arg(long, env = "SKIFF_QUOTA_WINDOW_NUM")]
    quota_window_num: Option<u32>,
    /// Length of each sample (quota.window.size.seconds) [default: 1]
    #[arg(long, env = "SKIFF_QUOTA_WINDOW_SIZE_SECONDS")]
    quota_window_size_seconds: Option<u64>,
    /// Members a classic consumer group may have (group.max.size) [default: 2147483647]
    #[arg(long, env = "SKIFF_GROUP_MAX_SIZE")]
    group_max_size: Option<usize>,
    /// Members a KIP-848 consumer group may have (group.consumer.max.size)
    /// [default: 2147483647]
    #[arg(long, env = "SKIFF_GROUP_CONSUMER_MAX_SIZE")]
    group_consumer_max_size: Option<usize>,
    /// An agent silent this long leaves the brokers clients are given [default: 10000]
    #[arg(long, env = "SKIFF_SESSION_TIMEOUT_MS")]
    session_timeout_ms: Option<u64>,
    /// Index entries (batch locations, ~64 bytes each) the fetch path keeps; 0 turns the cache
    /// off [default: 262144]
    #[arg(long, env = "SKIFF_INDEX_CACHE_BATCHES")]
    index_cache_batches: Option<u64>,
    /// Memory for the read cache of object blocks; 0 turns the cache off [default: 536870912]
    #[arg(long, env = "SKIFF_READ_CACHE_MEMORY_BYTES")]
    read_cache_memory_bytes: Option<usize>,
    /// Local disk for the read cache, under --read-cache-dir; 0 for none [default: 0]
    #[arg(long, env = "SKIFF_READ_CACHE_DISK_BYTES")]
    read_cache_disk_bytes: Option<usize>,
    /// Directory of the read cache's disk [default: <data-dir>/read-cache under `skiff dev`]
    #[arg(long, env = "SKIFF_READ_CACHE_DIR")]
    read_cache_dir: Option<PathBuf>,
    /// Size of the read cache's blocks: objects are read a block at a time [default: 16777216]
    #[arg(long, env = "SKIFF_READ_CACHE_BLOCK_BYTES")]
    read_cache_block_bytes: Option<u64>,
    /// TESTING ONLY: the first this many objects are named as if made past the metastore's
    /// commit age bound, so their commits are refused as too old (tests/test_commit_age.py)
    #[arg(long, hide = true)]
    test_stale_objects: Option<u32>,
    /// How long the first rebalance of an empty consumer group waits for more members (Kafka's
    /// group.initial.rebalance.delay.ms) [default: 3000]
    #[arg(long, env = "SKIFF_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    group_initial_rebalance_delay_ms: Option<u64>,
    /// Shortest session timeout a group member may ask for (group.min.session.timeout.ms)
    /// [default: 6000]
    #[arg(long, env = "SKIFF_GROUP_MIN_SESSION_TIMEOUT_MS")]
    group_min_session_timeout_ms: Option<u64>,
    /// Session timeout of KIP-848 consumer-group members (group.consumer.session.timeout.ms)
    /// [default: 45000]
    #[arg(long, env = "SKIFF_GROUP_CONSUMER_SESSION_TIMEOUT_MS")]
    group_consumer_session_timeout_ms: Option<u64>,
    /// Heartbeat interval given to KIP-848 consumer-group members
    /// (group.consumer.heartbeat.interval.ms) [default: 5000]
    #[arg(long, env = "SKIFF_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS")]
    group_consumer_heartbeat_interval_ms: Option<u64>,
    /// Longest transaction.timeout.ms a transactional producer may ask for
    /// (transaction.max.timeout.ms) [default: 900000]
    #[arg(long, env = "SKIFF_TRANSACTION_MAX_TIMEOUT_MS")]
    transaction_max_timeout_ms: Option<u64>,
    /// How long an idle transactional id is kept (transactional.id.expiration.ms)
    /// [default: 604800000]
    #[arg(long, env = "SKIFF_TRANSACTIONAL_ID_EXPIRATION_MS")]
    transactional_id_expiration_ms: Option<u64>,
    /// How often transactions past their timeout are aborted
    /// (transaction.abort.timed.out.transaction.cleanup.interval.ms) [default: 10000]
    #[arg(
        long,
        env = "SKIFF_TRANSACTION_ABORT_TIMED_OUT_TRANSACTION_CLEANUP_INTERVAL_MS"
    )]
    transaction_abort_timed_out_transaction_cleanup_interval_ms: Option<u64>,
}

/// Where the objects are, for every role that reads or writes them.
#[derive(Args, Debug, Default)]
pub struct StoreFlags {
    /// file:///path, memory:// or s3://bucket/prefix [dev default: file://<data-dir>/objects]
    #[arg(long, env = "SKIFF_OBJECT_STORE")]
    object_store: Option<String>,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 for MinIO [default: AWS]
    #[arg(long, env = "SKIFF_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The bucket's region [default: AWS_REGION, else us-east-1]
    #[arg(long, env = "SKIFF_S3_REGION")]
    s3_region: Option<String>,
    /// Path-style S3 requests (endpoint/bucket/key), as MinIO wants [default: false]
    #[arg(long, env = "SKIFF_S3_PATH_STYLE")]
    s3_path_style: Option<bool>,
    /// Deadline of one object-store request; a request past it is retried [default: 10000]
    #[arg(long, env = "SKIFF_STORE_REQUEST_TIMEOUT_MS")]
    store_request_timeout_ms: Option<u64>,
    /// Tries after the first for a failed object-store request [default: 3]
    #[arg(long, env = "SKIFF_STORE_MAX_RETRIES")]
    store_max_retries: Option<u32>,
    /// TESTING ONLY: inject object-store faults, e.g. error_rate=0.05,latency_ms=50,
    /// lost_response_rate=0.05,ops=put+get (see docs/operations.md)
    #[arg(long, env = "SKIFF_STORE_FAULTS")]
    store_faults: Option<String>,
}

/// What a compactor does and how often, in `skiff dev` and `skiff compactor` alike.
#[derive(Args, Debug, Default)]
pub struct CompactorFlags {
    /// Time between compactor passes (retention, merging, garbage collection), like Kafka's
    /// log.retention.check.interval.ms [default: 300000]
    #[arg(long, env = "SKIFF_COMPACTOR_INTERVAL_MS")]
    compactor_interval_ms: Option<u64>,
    /// How long an object nothing points at any more is kept before it is deleted, so fetches
    /// that read the index before the change still find it [default: 300000]
    #[arg(long, env = "SKIFF_COMPACTOR_GRACE_MS")]
    compactor_grace_ms: Option<u64>,
    /// How long an object uploaded and never committed (an orphan) is kept before it is
    /// deleted, counted from its creation; at least 120000, so that no commit in flight can
    /// land on a deleted object [default: 300000]
    #[arg(long, env = "SKIFF_COMPACTOR_ORPHAN_GRACE_MS")]
    compactor_orphan_grace_ms: Option<u64>,
    /// Size merged segments grow to; runs of batches under half of it are merged. 0 turns
    /// merging off [default: 134217728]
    #[arg(long, env = "SKIFF_SEGMENT_BYTES")]
    segment_bytes: Option<u64>,
    /// How long a compactor's claim on a partition lasts if it dies holding it [default: 300000]
    #[arg(long, env = "SKIFF_COMPACTOR_LEASE_MS")]
    compactor_lease_ms: Option<u64>,
    /// Where in the object store topics with skiff.parquet.enable=true are exported
    /// [default: parquet]
    #[arg(long, env = "SKIFF_PARQUET_PREFIX")]
    parquet_prefix: Option<String>,
    /// Retention of topics without their own retention.ms (Kafka's log.retention.ms); -1 keeps
    /// forever [default: 604800000]
    #[arg(long, env = "SKIFF_RETENTION_MS")]
    retention_ms: Option<i64>,
    /// Bytes per partition kept for topics without their own retention.bytes
    /// (log.retention.bytes); -1 for no limit [default: -1]
    #[arg(long, env = "SKIFF_RETENTION_BYTES")]
    retention_bytes: Option<i64>,
    /// A producer's idempotence state on a partition is forgotten after this long without a
    /// write from it (Kafka's producer.id.expiration.ms); -1 keeps it [default: 86400000]
    #[arg(long, env = "SKIFF_PRODUCER_ID_EXPIRATION_MS")]
    producer_id_expiration_ms: Option<i64>,
    /// A group's committed offsets are dropped once its newest commit is this old (Kafka's
    /// offsets.retention.minutes); -1 keeps them [default: 10080]
    #[arg(long, env = "SKIFF_OFFSETS_RETENTION_MINUTES")]
    offsets_retention_minutes: Option<i64>,
    /// TESTING AND OPERATIONS ONLY: offsets.retention.minutes in milliseconds; wins over it
    #[arg(long, env = "SKIFF_OFFSETS_RETENTION_MS")]
    offsets_retention_ms: Option<i64>,
    /// How long a committed object keeps the answer a retried commit gets; must stay far above
    /// any retry's delay [default: 600000]
    #[arg(long, env = "SKIFF_COMMIT_ANSWER_RETENTION_MS")]
    commit_answer_retention_ms: Option<i64>,
    /// An agent address that has not heartbeated for this long loses its broker id (a new agent
    /// there gets a new one); -1 keeps them [default: 86400000]
    #[arg(long, env = "SKIFF_BROKER_ID_RETENTION_MS")]
    broker_id_retention_ms: Option<i64>,
}

#[derive(Args, Debug, Default)]
pub struct DevArgs {
    /// Where the metastore keeps its Raft log and snapshots [default: ./skiff-data]
    #[arg(long, env = "SKIFF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    compactor: CompactorFlags,
    #[command(flatten)]
    agent: AgentFlags,
}

#[derive(Args, Debug, Default)]
pub struct AgentArgs {
    /// The metastore nodes' RPC addresses, comma-separated host:port (any subset will do; the
    /// agent finds the leader)
    #[arg(long, env = "SKIFF_METASTORE", value_delimiter = ',')]
    metastore: Vec<String>,
    #[command(flatten)]
    cluster: cluster::ClusterAuthFlags,
    #[command(flatten)]
    agent: AgentFlags,
}

#[derive(Args, Debug, Default)]
pub struct CompactorArgs {
    /// TOML file with any of these settings (keys as the flags, with underscores)
    #[arg(long, env = "SKIFF_CONFIG")]
    config: Option<PathBuf>,
    /// The metastore nodes' RPC addresses, comma-separated host:port
    #[arg(long, env = "SKIFF_METASTORE", value_delimiter = ',')]
    metastore: Vec<String>,
    #[command(flatten)]
    cluster: cluster::ClusterAuthFlags,
    /// Address of the Prometheus /metrics endpoint [default: 127.0.0.1:9645]
    #[arg(long, env = "SKIFF_METRICS")]
    metrics: Option<SocketAddr>,
    #[command(flatten)]
    store: StoreFlags,
    #[command(flatten)]
    compactor: CompactorFlags,
}

/// Settings as a TOML file holds them: one file format for every role; each role refuses the
/// keys that are not its own.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    compactor_interval_ms: Option<u64>,
    compactor_grace_ms: Option<u64>,
    compactor_orphan_grace_ms: Option<u64>,
    segment_bytes: Option<u64>,
    compactor_lease_ms: Option<u64>,
    parquet_prefix: Option<String>,
    retention_ms: Option<i64>,
    retention_bytes: Option<i64>,
    producer_id_expiration_ms: Option<i64>,
    offsets_retention_minutes: Option<i64>,
    offsets_retention_ms: Option<i64>,
    commit_answer_retention_ms: Option<i64>,
    broker_id_retention_ms: Option<i64>,
    metastore: Option<Vec<String>>,
    listen: Option<SocketAddr>,
    advertise: Option<String>,
    listeners: Option<String>,
    advertised_listeners: Option<String>,
    listener_security_protocol_map: Option<String>,
    ssl_keystore_location: Option<PathBuf>,
    ssl_truststore_location: Option<PathBuf>,
    ssl_client_auth: Option<String>,
    ssl_principal_mapping_rules: Option<String>,
    ssl_reload_interval_ms: Option<u64>,
    broker_ids: Option<u32>,
    object_store: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_path_style: Option<bool>,
    store_request_timeout_ms: Option<u64>,
    store_max_retries: Option<u32>,
    store_faults: Option<String>,
    s3_price_write_per_1000: Option<f64>,
    s3_price_read_per_1000: Option<f64>,
    flush_interval_ms: Option<u64>,
    flush_bytes: Option<usize>,
    metrics: Option<SocketAddr>,
    auto_create_topics: Option<bool>,
    num_partitions: Option<i32>,
    max_message_bytes: Option<usize>,
    max_pending_bytes: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    connections_max_idle_ms: Option<u64>,
    request_read_timeout_ms: Option<u64>,
    quota_window_num: Option<u32>,
    quota_window_size_seconds: Option<u64>,
    group_max_size: Option<usize>,
    group_consumer_max_size: Option<usize>,
    sasl_enabled_mechanisms: Option<Vec<String>>,
    sasl_server_max_receive_size: Option<usize>,
    connections_max_reauth_ms: Option<u64>,
    sasl_oauthbearer_jwks_endpoint_url: Option<String>,
    sasl_oauthbearer_jwks_endpoint_refresh_ms: Option<u64>,
    sasl_oauthbearer_expected_issuer: Option<String>,
    sasl_oauthbearer_expected_audience: Option<Vec<String>>,
    sasl_oauthbearer_sub_claim_name: Option<String>,
    sasl_oauthbearer_clock_skew_seconds: Option<u64>,
    scram_users: Option<Vec<String>>,
    super_users: Option<String>,
    allow_everyone_if_no_acl_found: Option<bool>,
    session_timeout_ms: Option<u64>,
    index_cache_batches: Option<u64>,
    read_cache_memory_bytes: Option<usize>,
    read_cache_disk_bytes: Option<usize>,
    read_cache_dir: Option<PathBuf>,
    read_cache_block_bytes: Option<u64>,
    group_initial_rebalance_delay_ms: Option<u64>,
    group_min_session_timeout_ms: Option<u64>,
    group_consumer_session_timeout_ms: Option<u64>,
    group_consumer_heartbeat_interval_ms: Option<u64>,
    transaction_max_timeout_ms: Option<u64>,
    transactional_id_expiration_ms: Option<u64>,
    transaction_abort_timed_out_transaction_cleanup_interval_ms: Option<u64>,
}

fn read_file(path: Option<&Path>) -> anyhow::Result<FileSettings> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        }
        None => Ok(FileSettings::default()),
    }
}

/// One agent's settings, whichever role runs it.
#[derive(Debug)]
pub struct AgentSettings {
    /// Every listener; `listen` and `advertise` are the first's.
    pub listeners: Vec<security::ListenerSettings>,
    pub listen: SocketAddr,
    /// Users whose SCRAM credentials are set at start-up: (name, password).
    pub scram_users: Vec<(String, String)>,
    /// The listener's TLS, for SSL and SASL_SSL.
    pub tls: Option<skiff_agent::tls::TlsConfig>,
    pub advertise: (String, u16),
    pub object_store: skiff_store::StoreSettings,
    pub prices: skiff_store::RequestPrices,
    pub metrics: SocketAddr,
    pub agent: skiff_agent::config::AgentConfig,
}

#[derive(Debug)]
pub struct DevSettings {
    pub data_dir: PathBuf,
    pub compactor: skiff_compactor::CompactorConfig,
    pub agent: AgentSettings,
}

#[derive(Debug)]
pub struct RemoteAgentSettings {
    pub metastore: Vec<String>,
    pub cluster_auth: skiff_metastore::rpc::ClusterAuth,
    pub agent: AgentSettings,
}

impl DevSettings {
    pub fn resolve(args: DevArgs) -> anyhow::Result<Self> {
        let file = read_file(args.agent.config.as_deref())?;
        if file.metastore.is_some() {
            bail!("`metastore` is a setting of `skiff agent`; `skiff dev` runs its own");
        }
        let data_dir = args
            .data_dir
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./skiff-data"));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving data dir {}", data_dir.display()))?;
        let default_store = format!("file://{}", data_dir.join("objects").display());
        let compactor = resolve_compactor(args.compactor, &file)?;
        let mut agent = AgentSettings::resolve(args.agent, file, Some(default_store))?;
        let cache = &mut agent.agent.read_cache;
        if cache.dir.is_none() {
            cache.dir = Some(data_dir.join("read-cache"));
        }
        Ok(Self {
            data_dir,
            compactor,
            agent,
        })
    }
}

impl RemoteAgentSettings {
    pub fn resolve(args: AgentArgs) -> anyhow::Result<Self> {
        let mut file = read_file(args.agent.config.as_deref())?;
        if file.data_dir.is_some() {
            bail!("`data_dir` is a setting of `skiff dev`; an agent keeps no data");
        }
        let metastore = if args.metastore.is_empty() {
            file.metastore.take().unwrap_or_default()
        } else {
            args.metastore
        };
        if metastore.is_empty() {
            bail!("--metastore: give the metastore nodes' addresses (host:port,...)");
        }
        let cluster_auth = args.cluster.resolve()?;
        let agent = AgentSettings::resolve(args.agent, file, None)?;
        Ok(Self {
            metastore,
            cluster_auth,
            agent,
        })
    }
}

impl AgentSettings {
    fn resolve(
        args: AgentFlags,
        file: FileSettings,
        default_store: Option<String>,
    ) -> anyhow::Result<Self> {
        let file = &file;
        let security::Security {
            listeners,
            protocol,
            listen,
            advertise,
            tls,
            sasl,
            authorizer,
            scram_users,
        } = security::Security::resolve(&args.security, file)?;
        let object_store = resolve_store(args.store, file, default_store)?;
        let mut prices = skiff_store::RequestPrices::default();
        if let Some(p) = args
            .s3_price_write_per_1000
            .or(file.s3_price_write_per_1000)
        {
            prices.write_per_1000 = p;
        }
        if let Some(p) = args.s3_price_read_per_1000.or(file.s3_price_read_per_1000) {
            prices.read_per_1000 = p;
        }
        let metrics = args
            .metrics
            .or(file.metrics)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9644)));

        let mut agent = skiff_agent::config::AgentConfig {
            advertised_host: advertise.0.clone(),
            advertised_port: advertise.1,
            security_protocol: protocol,
            listeners: listeners
                .iter()
                .map(|l| skiff_agent::config::ListenerConfig {
                    name: l.name.clone(),
                    protocol: l.protocol,
                    host: l.advertised.0.clone(),
                    port: l.advertised.1,
                })
                .collect(),
            sasl,
            authorizer,
            ..Default::default()
        };
        if let Some(ms) = args.flush_interval_ms.or(file.flush_interval_ms) {
            agent.flush_interval = std::time::Duration::from_millis(ms);
        }
        if let Some(b) = args.flush_bytes.or(file.flush_bytes) {
            agent.flush_bytes = b;
        }
        if let Some(v) = args.auto_create_topics.or(file.auto_create_topics) {
            agent.auto_create_topics = v;
        }
        if let Some(n) = args.num_partitions.or(file.num_partitions) {
            if n < 1 {
                bail!("num-partitions must be at least 1");
            }
            agent.num_partitions = n;
        }
        if let Some(b) = args.max_message_bytes.or(file.max_message_bytes) {
            agent.max_message_bytes = b;
        }
        if let Some(b) = args.max_pending_bytes.or(file.max_pending_bytes) {
            agent.max_pending_bytes = b;
        }
        if let Some(n) = args.max_connections.or(file.max_connections) {
            if n < 1 {
                bail!("max-connections must be at least 1");
            }
            agent.max_connections = n;
        }
        if let Some(n) = args.max_connections_per_ip.or(file.max_connections_per_ip) {
            agent.max_connections_per_ip = n;
        }
        if let Some(ms) = args
            .connections_max_idle_ms
            .or(file.connections_max_idle_ms)
        {
            if ms < 1 {
                bail!("connections-max-idle-ms must be at least 1");
            }
            agent.connections_max_idle = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = args
            .request_read_timeout_ms
            .or(file.request_read_timeout_ms)
        {
            if ms < 1 {
                bail!("request-read-timeout-ms must be at least 1");
            }
            agent.request_read_timeout = std::time::Duration::from_millis(ms);
        }
        if let Some(n) = args.quota_window_num.or(file.quota_window_num) {
            if n < 2 {
                bail!("quota-window-num must be at least 2");
            }
            agent.quota_window.samples = n;
        }
        if let Some(s) = args
            .quota_window_size_seconds
            .or(file.quota_window_size_seconds)
        {
            if s < 1 {
                bail!("quota-window-size-seconds must be at least 1");
            }
            agent.quota_window.size = std::time::Duration::from_secs(s);
        }
        if let Some(n) = args.group_max_size.or(file.group_max_size) {
            if n < 1 {
                bail!("group-max-size must be at least 1");
            }
            agent.group_max_size = n;
        }
        if let Some(n) = args
            .group_consumer_max_size
            .or(file.group_consumer_max_size)
        {
            if n < 1 {
                bail!("group-consumer-max-size must be at least 1");
            }
            agent.group_consumer_max_size = n;
        }
        if let Some(ms) = args.session_timeout_ms.or(file.session_timeout_ms) {
            if ms < 500 {
                bail!("session-timeout-ms must be at least 500");
            }
            agent.session_timeout = std::time::Duration::from_millis(ms);
        }
        if let Some(n) = args.broker_ids.or(file.broker_ids) {
            let max = skiff_agent::brokers::MAX_BROKER_IDS;
            if !(1..=max).contains(&n) {
                bail!("broker-ids must be between 1 and {max}");
            }
            agent.broker_ids = n;
        }
        if let Some(n) = args.index_cache_batches.or(file.index_cache_batches) {
            agent.index_cache_batches = n;
        }
        let cache = &mut agent.read_cache;
        if let Some(n) = args
            .read_cache_memory_bytes
            .or(file.read_cache_memory_bytes)
        {
            cache.memory_bytes = n;
        }
        if let Some(n) = args.read_cache_disk_bytes.or(file.read_cache_disk_bytes) {
            cache.disk_bytes = n;
        }
        cache.dir = args.read_cache_dir.clone().or(file.read_cache_dir.clone());
        if let Some(n) = args.read_cache_block_bytes.or(file.read_cache_block_bytes) {
            if n < 64 << 10 {
                bail!("read-cache-block-bytes must be at least 65536");
            }
            cache.block_bytes = n;
        }
        if cache.disk_bytes > 0 && cache.memory_bytes == 0 {
            bail!(
                "read-cache-disk-bytes needs a read cache in memory too (read-cache-memory-bytes)"
            );
        }
        let least = cache.block_bytes.saturating_mul(4);
        if cache.disk_bytes > 0 && (cache.disk_bytes as u64) < least {
            bail!("read-cache-disk-bytes must hold at least 4 blocks ({least} bytes), or be 0");
        }
        let ms = std::time::Duration::from_millis;
        if let Some(d) = args
            .group_initial_rebalance_delay_ms
            .or(file.group_initial_rebalance_delay_ms)
        {
            agent.group_initial_rebalance_delay = ms(d);
        }
        if let Some(d) = args
            .group_min_session_timeout_ms
            .or(file.group_min_session_timeout_ms)
        {
            agent.group_min_session_timeout = ms(d);
        }
        if let Some(d) = args
            .group_consumer_session_timeout_ms
            .or(file.group_consumer_session_timeout_ms)
        {
            agent.group_consumer_session_timeout = ms(d);
        }
        if let Some(d) = args
            .group_consumer_heartbeat_interval_ms
            .or(file.group_consumer_heartbeat_interval_ms)
        {
            agent.group_consumer_heartbeat_interval = ms(d);
        }
        if let Some(d) = args
            .transaction_max_timeout_ms
            .or(file.transaction_max_timeout_ms)
        {
            if d < 1 || d > i32::MAX as u64 {
                bail!(
                    "transaction-max-timeout-ms must be between 1 and {}",
                    i32::MAX
                );
            }
            agent.transaction_max_timeout = ms(d);
        }
        if let Some(d) = args
            .transactional_id_expiration_ms
            .or(file.transactional_id_expiration_ms)
        {
            if d < 1 || d > i32::MAX as u64 {
                bail!(
                    "transactional-id-expiration-ms must be between 1 and {}",
                    i32::MAX
                );
            }
            agent.transactional_id_expiration = ms(d);
        }
        if let Some(d) = args
            .transaction_abort_timed_out_transaction_cleanup_interval_ms
            .or(file.transaction_abort_timed_out_transaction_cleanup_interval_ms)
        {
            if d < 1 {
                bail!("transaction-abort-timed-out-transaction-cleanup-interval-ms must be at least 1");
            }
            agent.transaction_cleanup_interval = ms(d);
        }
        if let Some(n) = args.test_stale_objects {
            agent.test_stale_objects = n;
        }
        if agent.max_pending_bytes < agent.flush_bytes {
            bail!("max-pending-bytes must be at least flush-bytes");
        }
        Ok(Self {
            listeners,
            listen,
            advertise,
            object_store,
            prices,
            scram_users,
            tls,
            metrics,
            agent,
        })
    }
}

#[derive(Debug)]
pub struct CompactorSettings {
    pub metastore: Vec<String>,
    pub cluster_auth: skiff_metastore::rpc::ClusterAuth,
    pub metrics: SocketAddr,
    pub object_store: skiff_store::StoreSettings,
    pub compactor: skiff_compactor::CompactorConfig,
}

impl CompactorSettings {
    pub fn resolve(args: CompactorArgs) -> anyhow::Result<Self> {
        let file = read_file(args.config.as_deref())?;
        if file.data_dir.is_some() {
            bail!("`data_dir` is a setting of `skiff dev`; a compactor keeps no data");
        }
        let metastore = if args.metastore.is_empty() {
            file.metastore.clone().unwrap_or_default()
        } else {
            args.metastore
        };
        if metastore.is_empty() {
            bail!("--metastore: give the metastore nodes' addresses (host:port,...)");
        }
        let Some(_) = args
            .store
            .object_store
            .as_ref()
            .or(file.object_store.as_ref())
        else {
            bail!(
                "--object-store: the store the agents write to (file:///path, s3://bucket/prefix)"
            );
        };
        Ok(Self {
            cluster_auth: args.cluster.resolve()?,
            metastore,
            metrics: args
                .metrics
                .or(file.metrics)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9645))),
            object_store: resolve_store(args.store, &file, None)?,
            compactor: resolve_compactor(args.compactor, &file)?,
        })
    }
}

fn resolve_compactor(
    args: CompactorFlags,
    file: &FileSettings,
) -> anyhow::Result<skiff_compactor::CompactorConfig> {
    let mut compactor = skiff_compactor::CompactorConfig::default();
    let ms = std::time::Duration::from_millis;
    if let Some(v) = args.compactor_interval_ms.or(file.compactor_interval_ms) {
        if v < 10 {
            bail!("compactor-interval-ms must be at least 10");
        }
        compactor.interval = ms(v);
    }
    if let Some(v) = args.compactor_grace_ms.or(file.compactor_grace_ms) {
        compactor.grace = ms(v);
    }
    if let Some(v) = args
        .compactor_orphan_grace_ms
        .or(file.compactor_orphan_grace_ms)
    {
        compactor.orphan_grace = ms(v);
    }
    compactor.validate().context("compactor-orphan-grace-ms")?;
    if let Some(v) = args.segment_bytes.or(file.segment_bytes) {
        if v != 0 && v < 1024 {
            bail!("segment-bytes must be 0 (no merging) or at least 1024");
        }
        compactor.merge.target_bytes = v;
        compactor.merge.job_bytes = v.saturating_mul(2);
    }
    if let Some(v) = args.parquet_prefix.or(file.parquet_prefix.clone()) {
        let v = v.trim_matches('/').to_owned();
        if v.is_empty() || v == "objects" || v.starts_with("objects/") {
            bail!("parquet-prefix must be a non-empty path outside objects/");
        }
        compactor.export.prefix = v;
    }
    if let Some(v) = args.compactor_lease_ms.or(file.compactor_lease_ms) {
        compactor.merge.lease_ttl = ms(v.max(1));
    }
    if let Some(v) = args.retention_ms.or(file.retention_ms) {
        compactor.default_retention_ms = v;
    }
    if let Some(v) = args.retention_bytes.or(file.retention_bytes) {
        compactor.default_retention_bytes = v;
    }
    let bounds = &mut compactor.bounds;
    if let Some(v) = args
        .producer_id_expiration_ms
        .or(file.producer_id_expiration_ms)
    {
        bounds.producer_id_expiration_ms = v;
    }
    if let Some(v) = args
        .offsets_retention_minutes
        .or(file.offsets_retention_minutes)
    {
        bounds.offsets_retention_ms = if v < 0 { -1 } else { v.saturating_mul(60_000) };
    }
    if let Some(v) = args.offsets_retention_ms.or(file.offsets_retention_ms) {
        bounds.offsets_retention_ms = v;
    }
    if let Some(v) = args
        .commit_answer_retention_ms
        .or(file.commit_answer_retention_ms)
    {
        // Commits of objects older than a minute are refused; an answer must outlive that.
        if (0..120_000).contains(&v) {
            bail!("commit-answer-retention-ms must be -1 or at least 120000");
        }
        bounds.commit_answer_retention_ms = v;
    }
    if let Some(v) = args.broker_id_retention_ms.or(file.broker_id_retention_ms) {
        bounds.broker_id_retention_ms = v;
    }
    Ok(compactor)
}

fn resolve_store(
    args: StoreFlags,
    file: &FileSettings,
    default_store: Option<String>,
) -> anyhow::Result<skiff_store::StoreSettings> {
    let Some(url) = args
        .object_store
        .or(file.object_store.clone())
        .or(default_store)
    else {
        bail!("--object-store: agents share one object store; say which (file:///path, s3://bucket/prefix)");
    };
    let mut object_store = skiff_store::StoreSettings::new(url);
    object_store.s3 = skiff_store::S3Settings {
        endpoint: args.s3_endpoint.or(file.s3_endpoint.clone()),
        region: args.s3_region.or(file.s3_region.clone()),
        path_style: args.s3_path_style.or(file.s3_path_style).unwrap_or(false),
    };
    if let Some(ms) = args
        .store_request_timeout_ms
        .or(file.store_request_timeout_ms)
    {
        if ms < 100 {
            bail!("store-request-timeout-ms must be at least 100");
        }
        object_store.retry.attempt_timeout = std::time::Duration::from_millis(ms);
    }
    if let Some(n) = args.store_max_retries.or(file.store_max_retries) {
        object_store.retry.max_retries = n;
    }
    if let Some(spec) = args.store_faults.or(file.store_faults.clone()) {
        object_store.faults = Some(spec.parse()?);
    }
    Ok(object_store)
}

#[derive(Args, Debug)]
pub struct MetastoreArgs {
    /// This node's id in the quorum: a positive number, fixed for the life of its data dir
    #[arg(long, env = "SKIFF_NODE_ID")]
    pub node_id: Option<u64>,
    /// Address the node's RPC (peers, agents, admin) binds [default: 127.0.0.1:7001]
    #[arg(long, env = "SKIFF_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// host:port other nodes and agents reach this node at [default: the listen address]
    #[arg(long, env = "SKIFF_ADVERTISE")]
    pub advertise: Option<String>,
    /// Where the node keeps its Raft log and snapshots [default: ./skiff-metastore]
    #[arg(long, env = "SKIFF_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: cluster::ClusterAuthFlags,
    /// Initialise a new cluster with these members, id=host:port comma-separated (give the same
    /// list to every initial member; ignored once the cluster exists)
    #[arg(long, env = "SKIFF_INITIAL_MEMBERS", value_delimiter = ',')]
    pub initial_members: Vec<String>,
    /// Take a snapshot after at least this many log entries; the journal behind it is purged
    /// [default: 2000]
    #[arg(long, env = "SKIFF_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// ...and once the commands applied since the last snapshot amount to this share of its
    /// size, so that snapshot work stays in proportion to what is written [default: 0.5]
    #[arg(long, env = "SKIFF_SNAPSHOT_LOG_RATIO")]
    pub snapshot_log_ratio: Option<f64>,
}

#[derive(Debug)]
pub struct MetastoreSettings {
    pub cluster_auth: skiff_metastore::rpc::ClusterAuth,
    pub node_id: u64,
    pub listen: SocketAddr,
    pub advertise: String,
    pub data_dir: PathBuf,
    pub initial_members: BTreeMap<u64, String>,
    pub snapshot_every: Option<u64>,
    pub snapshot_log_ratio: Option<f64>,
}

impl MetastoreSettings {
    pub fn resolve(args: MetastoreArgs) -> anyhow::Result<Self> {
        let Some(node_id) = args.node_id.filter(|&id| id > 0) else {
            bail!("--node-id: a positive number, unique in the quorum");
        };
        let listen = args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7001)));
        let advertise = match args.advertise {
            Some(a) => {
                let (host, port) = parse_host_port(&a)?;
                format!("{host}:{port}")
            }
            None => listen.to_string(),
        };
        let data_dir = args
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./skiff-metastore"));
        let initial_members = parse_members(&args.initial_members)?;
        if !initial_members.is_empty() && initial_members.get(&node_id) != Some(&advertise) {
            bail!("--initial-members must list this node as {node_id}={advertise}");
        }
        if args.snapshot_every == Some(0) {
            bail!("--snapshot-every must be at least 1");
        }
        if let Some(r) = args
            .snapshot_log_ratio
            .filter(|r| !(r.is_finite() && *r >= 0.0))
        {
            bail!("--snapshot-log-ratio must be a number of at least 0, not {r}");
        }
        Ok(Self {
            cluster_auth: args.cluster.resolve()?,
            snapshot_every: args.snapshot_every,
            snapshot_log_ratio: args.snapshot_log_ratio,
            node_id,
            listen,
            advertise,
            data_dir,
            initial_members,
        })
    }
}

/// `1=host:port,2=host:port` into a map.
pub fn parse_members(items: &[String]) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut members = BTreeMap::new();
    for item in items {
        let (id, addr) = item
            .split_once('=')
            .with_context(|| format!("member {item:?} is not id=host:port"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("member id in {item:?}"))?;
        let (host, port) = parse_host_port(addr.trim())?;
        if members.insert(id, format!("{host}:{port}")).is_some() {
            bail!("member id {id} given twice");
        }
    }
    Ok(members)
}

pub(crate) fn parse_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("address {s:?} is not host:port"))?;
    let port = port.parse().with_context(|| format!("port in {s:?}"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}
