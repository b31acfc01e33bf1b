//! Agent settings: plain data, filled from flags, `SKIFF_*` variables and a TOML file by the binary.

use std::time::Duration;

/// Kafka's default `message.max.bytes` (1 MiB plus record-batch overhead).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The broker id clients see; every partition's leader, since any agent serves any partition.
    pub node_id: i32,
    pub cluster_id: String,
    /// Host and port clients are told to connect to.
    pub advertised_host: String,
    pub advertised_port: u16,
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
    pub max_connections: usize,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    /// Largest record batch accepted (Kafka's `message.max.bytes`), unless a topic overrides it.
    pub max_message_bytes: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            cluster_id: "skiff-cluster".to_string(),
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 9092,
            flush_interval: Duration::from_millis(250),
            flush_bytes: 8 * 1024 * 1024,
            max_pending_bytes: 256 * 1024 * 1024,
            max_request_bytes: 100 * 1024 * 1024,
            max_in_flight_per_connection: 4096,
            max_connections: 10_000,
            auto_create_topics: true,
            num_partitions: 1,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}
