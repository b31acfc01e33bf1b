//! Settings for `skiff dev`: flags, then `SKIFF_*` environment variables, then a TOML file, then
//! defaults — the first that says something wins.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

#[derive(Args, Debug, Default)]
pub struct DevArgs {
    /// TOML file with any of the settings below (keys as the flags, with underscores).
    #[arg(long, env = "SKIFF_CONFIG")]
    config: Option<PathBuf>,
    /// Where the metastore keeps its Raft log and snapshots [default: ./skiff-data]
    #[arg(long, env = "SKIFF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address the Kafka listener binds [default: 127.0.0.1:9092]
    #[arg(long, env = "SKIFF_LISTEN")]
    listen: Option<SocketAddr>,
    /// host:port clients are told to connect to [default: the listen address]
    #[arg(long, env = "SKIFF_ADVERTISE")]
    advertise: Option<String>,
    /// file:///path, memory:// or s3://bucket/prefix [default: file://<data-dir>/objects]
    #[arg(long, env = "SKIFF_OBJECT_STORE")]
    object_store: Option<String>,
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
}

/// The same settings as a TOML file holds them.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    advertise: Option<String>,
    object_store: Option<String>,
    flush_interval_ms: Option<u64>,
    flush_bytes: Option<usize>,
    metrics: Option<SocketAddr>,
    auto_create_topics: Option<bool>,
    num_partitions: Option<i32>,
    max_message_bytes: Option<usize>,
    max_pending_bytes: Option<usize>,
}

#[derive(Debug)]
pub struct DevSettings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub advertise: (String, u16),
    pub object_store: String,
    pub metrics: SocketAddr,
    pub agent: skiff_agent::config::AgentConfig,
}

impl DevSettings {
    pub fn resolve(args: DevArgs) -> anyhow::Result<Self> {
        let file: FileSettings = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./skiff-data"));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving data dir {}", data_dir.display()))?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9092)));
        let advertise = match args.advertise.or(file.advertise) {
            Some(a) => parse_host_port(&a)?,
            None => (listen.ip().to_string(), listen.port()),
        };
        let object_store = args
            .object_store
            .or(file.object_store)
            .unwrap_or_else(|| format!("file://{}", data_dir.join("objects").display()));
        let metrics = args
            .metrics
            .or(file.metrics)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9644)));

        let mut agent = skiff_agent::config::AgentConfig {
            advertised_host: advertise.0.clone(),
            advertised_port: advertise.1,
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
        if agent.max_pending_bytes < agent.flush_bytes {
            bail!("max-pending-bytes must be at least flush-bytes");
        }
        Ok(Self {
            data_dir,
            listen,
            advertise,
            object_store,
            metrics,
            agent,
        })
    }
}

fn parse_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("advertise address {s:?} is not host:port"))?;
    let port = port
        .parse()
        .with_context(|| format!("advertise port in {s:?}"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}
