//! The metastore's RPC: what agents and admin tools send to a metastore node over HTTP, and what
//! they get back. The server is `server` (feature `node`); the agents' client is
//! [`remote::RemoteMetastore`], and the admin tools' is [`admin`].
//!
//! Raft and agent bodies are postcard ([`crate::codec`]); admin bodies are JSON, for people and
//! scripts. Answers are `Result<_, NodeError>` so a follower can say who leads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::MetastoreError;
use crate::types::{
    BatchLocation, CommittedOffset, GroupPartition, IndexAnswer, IndexRead, IndexSlice, MetaError,
    PartitionOffsets, ProducerSummary, TopicMeta, TopicPartition,
};
use crate::types::{ObjectId, UnreferencedObject};

pub mod admin;
pub mod remote;
#[cfg(feature = "node")]
pub mod server;
pub mod tls;

/// A metastore node's id in the Raft group.
pub type NodeId = u64;

/// Why a node could not serve a request; the RPC layer tells remote clients where to go instead.
#[derive(Clone, Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum NodeError {
    /// This node is not the leader; `leader` is the one it knows of, with its RPC address.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// Certainly not applied.
    #[error("metastore unavailable: {0}")]
    Unavailable(String),
    /// May or may not have applied.
    #[error("metastore outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Certainly not applied, and never will be: over [`crate::limits::MAX_COMMAND_BYTES`].
    #[error("metastore command too large")]
    TooLarge,
    /// A membership change that could not complete; the membership is as it was.
    #[error("{0}")]
    Membership(String),
}

impl From<NodeError> for MetastoreError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::NotLeader { .. } | NodeError::Unavailable(_) => {
                MetastoreError::Unavailable(e.to_string())
            }
            NodeError::OutcomeUnknown(m) => MetastoreError::OutcomeUnknown(m),
            NodeError::TooLarge => MetastoreError::Rejected(MetaError::CommandTooLarge),
            NodeError::Membership(m) => MetastoreError::Unavailable(m),
        }
    }
}

pub const WRITE_PATH: &str = "/v1/write";
pub const READ_PATH: &str = "/v1/read";
pub const COMMITS_PATH: &str = "/v1/commits";
pub const INIT_PATH: &str = "/admin/init";
pub const ADD_NODE_PATH: &str = "/admin/add-node";
pub const REMOVE_NODE_PATH: &str = "/admin/remove-node";
pub const STATUS_PATH: &str = "/admin/status";

/// A linearizable read of the state machine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Read {
    Topics,
    TopicByName(String),
    Offsets(TopicPartition),
    Index {
        tp: TopicPartition,
        offset: i64,
        max_bytes: u64,
    },
    BatchForTimestamp {
        tp: TopicPartition,
        timestamp: i64,
    },
    BatchWithMaxTimestamp(TopicPartition),
    Indexes(Vec<IndexRead>),
    GroupOffsets(String),
    Groups,
    // New variants go last: RPC bodies name a variant by its position.
    UnreferencedObjects,
    ObjectsKnown(Vec<ObjectId>),
    ExportProgress(Vec<TopicPartition>),
    /// A Fetch's reads within one budget (`Indexes` bounds each read alone). A metastore older
    /// than its agents does not know it: upgrade the metastore first.
    IndexesWithin {
        reads: Vec<IndexRead>,
        total_max_bytes: u64,
    },
    /// Every dynamic broker config. Agents read it every few seconds to apply changes.
    BrokerConfigs,
    /// Each partition's bytes in the index (DescribeLogDirs); at most
    /// [`crate::limits::MAX_PARTITIONS_PER_READ`] partitions.
    PartitionSizes(Vec<TopicPartition>),
    /// Each partition's idempotent producers (DescribeProducers); at most
    /// [`crate::limits::MAX_PARTITIONS_PER_READ`] partitions.
    Producers(Vec<TopicPartition>),
    /// DescribeTransactions.
    Transactions(Vec<String>),
    ListTransactions(TransactionFilter),
    /// Whether an `ExpireTransactions` pass would do anything now.
    TransactionsDue {
        now_ms: i64,
        transactional_id_expiration_ms: i64,
    },
    /// The partitions of a group with offsets waiting in an ongoing transaction.
    PendingTxnOffsets(String),
    /// A user's SCRAM credential for one mechanism (SASL authentication).
    ScramCredential {
        user: String,
        mechanism: crate::security::ScramMechanism,
    },
    /// The users named, or all of them (DescribeUserScramCredentials).
    ScramUsers(Option<Vec<String>>),
    /// Every ACL binding; agents read it every few seconds to apply changes.
    Acls,
    /// Every client quota; agents read it every few seconds to apply changes.
    ClientQuotas,
    /// Every agent's listeners, by the agent's address.
    AgentListeners,
}

/// ListTransactions' filters (KIP-664, KIP-994): an empty list passes everything;
/// `min_duration_ms` -1 passes every transaction, otherwise only ongoing ones that have run
/// that long by `now_ms`. At most `limit` are answered.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TransactionFilter {
    pub states: Vec<crate::types::TxnStatus>,
    pub producer_ids: Vec<i64>,
    pub min_duration_ms: i64,
    pub now_ms: i64,
    pub limit: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ReadAnswer {
    Topics(Vec<TopicMeta>),
    Topic(Option<TopicMeta>),
    Offsets(Result<PartitionOffsets, MetaError>),
    Index(Result<IndexSlice, MetaError>),
    Batch(Result<Option<BatchLocation>, MetaError>),
    Indexes(Vec<IndexAnswer>),
    GroupOffsets(Vec<(GroupPartition, CommittedOffset)>),
    Groups(Vec<String>),
    UnreferencedObjects(Vec<UnreferencedObject>),
    ObjectsKnown(Vec<bool>),
    ExportProgress(Vec<Option<i64>>),
    BrokerConfigs(crate::types::BrokerConfigs),
    PartitionSizes(Vec<Result<u64, MetaError>>),
    Producers(Vec<Result<Vec<ProducerSummary>, MetaError>>),
    Transactions(Vec<Option<crate::types::TransactionSummary>>),
    TransactionList(Vec<crate::types::TransactionSummary>),
    Due(bool),
    GroupPartitions(Vec<GroupPartition>),
    ScramCredential(Option<crate::security::ScramCredential>),
    ScramUsers(Vec<crate::security::ScramUser>),
    Acls(crate::security::Acls),
    ClientQuotas(crate::security::ClientQuotas),
    AgentListeners(BTreeMap<String, Vec<crate::security::AdvertisedListener>>),
}

/// Query of [`COMMITS_PATH`]: answer once the node's commit counter differs from `seen`, or after
/// `wait_ms` with the counter as it is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct CommitsQuery {
    pub seen: u64,
    pub wait_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitRequest {
    /// Node id → RPC address (`host:port`) of every initial member.
    pub members: BTreeMap<NodeId, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddNodeRequest {
    pub id: NodeId,
    pub addr: String,
    /// How long the new node may take to catch up before it is removed again.
    #[serde(default = "default_catch_up_secs")]
    pub timeout_secs: u64,
}

fn default_catch_up_secs() -> u64 {
    DEFAULT_CATCH_UP_SECS
}

/// How long `add-node` waits for a new node to catch up, unless told otherwise.
pub const DEFAULT_CATCH_UP_SECS: u64 = 600;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoveNodeRequest {
    pub id: NodeId,
}

/// What `skiff metastore status` prints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub state: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// Log entries up to here are purged: a node that needs them gets a snapshot instead.
    pub purged_index: Option<u64>,
    /// Voters and learners: node id → address.
    pub voters: BTreeMap<NodeId, String>,
    pub learners: BTreeMap<NodeId, String>,
    /// On the leader: each other member's last log index known to be on its disk (`None` until
    /// the first answer). Empty on other nodes.
    #[serde(default)]
    pub replication: BTreeMap<NodeId, Option<u64>>,
    /// On the leader: how long ago a quorum last acknowledged it.
    #[serde(default)]
    pub millis_since_quorum_ack: Option<u64>,
    /// On the leader: bytes of a snapshot each peer has stored so far, while one is on its way.
    #[serde(default)]
    pub snapshot_sent: BTreeMap<NodeId, u64>,
    /// Size of this node's latest snapshot file.
    #[serde(default)]
    pub snapshot_bytes: u64,
}

/// The credential every metastore RPC carries when the cluster has one: a shared secret, sent as
/// `Authorization: Bearer …` and checked before the request's body is read. Nodes, agents,
/// compactors and the CLI read it from the same file (`--cluster-secret-file`).
#[derive(Clone)]
pub struct ClusterSecret(String);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

/// The shortest secret accepted: guessing it must be hopeless.
pub const MIN_SECRET_BYTES: usize = 16;

impl ClusterSecret {
    pub fn new(secret: &str) -> Result<Self, String> {
        let secret = secret.trim();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the cluster secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the cluster secret must be printable ASCII without spaces".into());
        }
        Ok(Self(secret.to_owned()))
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::new(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The `Authorization` header that carries it.
    pub fn header(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.0))
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    /// Whether an `Authorization` header carries this secret; compared in time that does not
    /// depend on where it differs.
    pub fn admits(&self, header: &[u8]) -> bool {
        let want = format!("Bearer {}", self.0);
        let want = want.as_bytes();
        header.len() == want.len()
            && header
                .iter()
                .zip(want)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// How a process proves itself to the metastore's RPC and keeps it private: the cluster secret,
/// TLS with the cluster CA, both or neither. Nodes, agents, compactors and the CLI each hold one;
/// a node admits a caller with a certificate from the CA or with the secret.
#[derive(Clone, Debug, Default)]
pub struct ClusterAuth {
    pub secret: Option<ClusterSecret>,
    pub tls: Option<std::sync::Arc<tls::ClusterTls>>,
}

impl ClusterAuth {
    /// The URL scheme of the RPC.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `scheme://addr` of a node.
    pub fn base_url(&self, addr: &str) -> String {
        format!("{}://{addr}", self.scheme())
    }

    /// A client of the RPC: the secret on every request, and TLS with the cluster CA.
    pub fn client(&self, connect_timeout: std::time::Duration) -> Result<reqwest::Client, String> {
        // reqwest's rustls is built without a provider of its own (to stay off aws-lc): it
        // takes the process's default, ring, as the rest of Skiff's TLS does. Installing it a
        // second time is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(secret) = &self.secret {
            headers.insert(reqwest::header::AUTHORIZATION, secret.header());
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .default_headers(headers);
        if let Some(tls) = &self.tls {
            builder = builder.use_preconfigured_tls(tls.client_config());
        }
        builder.build().map_err(|e| e.to_string())
    }
}
