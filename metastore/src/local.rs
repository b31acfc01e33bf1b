//! The metastore node running in this process: alone (`skiff dev`, a single-node Raft group over a
//! local data directory) or as one member of a quorum (`skiff metastore`, peers over HTTP).
//!
//! Going through Raft even alone keeps one code path for the journal, snapshots and apply, so the
//! replicated metastore differs only in its network and membership.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use crate::client::{Result, Transport};
use crate::raft::journal::JournalError;
use crate::raft::log_store::JournalWriter;
use crate::raft::network::SnapshotProgress;
use crate::raft::snapshot::SnapshotError;
use crate::raft::{
    LogStore, LogStoreOptions, Network, NodeId, Raft, SharedState, StateMachineStore,
};
pub use crate::rpc::NodeError;
use crate::rpc::{Read, ReadAnswer};
use crate::state_machine::StateMachine;
use crate::types::{Command, CommandResponse};

/// A learner counts as caught up once it holds the log up to its own addition and is at most
/// this many entries behind the leader (a busy cluster never stops appending).
const CATCH_UP_LAG: u64 = 1_000;

/// Milliseconds since the Unix epoch on this node's clock.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The node id of the embedded metastore. Fixed, because the journal records votes by node id.
pub const LOCAL_NODE_ID: NodeId = 1;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("invalid raft config: {0}")]
    Config(String),
    #[error("raft failed to start: {0}")]
    Raft(String),
    #[error("did not become leader within {0:?}")]
    NoLeadership(Duration),
}

#[derive(Clone, Debug)]
pub struct LocalMetastoreOptions {
    /// This node's id in the Raft group; fixed for the life of its data dir, since the journal
    /// records votes by node id.
    pub node_id: NodeId,
    /// `false`: a single node that initialises itself and waits to lead (`skiff dev`). `true`: one
    /// member of a quorum, reached over HTTP; the cluster is initialised by an admin call, and
    /// reads go through the leader's read index.
    pub clustered: bool,
    /// How long a write may take before its outcome is reported unknown.
    pub write_timeout: Duration,
    /// How long `open` waits for the node to elect itself and catch up.
    pub startup_timeout: Duration,
    /// Build a snapshot after at least this many applied entries...
    pub snapshot_every: u64,
    /// ...and once the commands applied since the last one amount to this share of its size
    /// (see `crate::raft::snapshot_policy`). Bounds restart replay.
    pub snapshot_log_ratio: f64,
    /// Entries kept in the journal behind a snapshot.
    pub logs_to_keep: u64,
    /// How long a peer may take to store one snapshot chunk, and to install the snapshot after
    /// the last one (which reads the whole state).
    pub snapshot_install_timeout: Duration,
    pub log_store: LogStoreOptions,
    /// The credentials its peers' RPCs must carry, and its own carry (a quorum's nodes share
    /// them).
    pub cluster_auth: crate::rpc::ClusterAuth,
}

impl Default for LocalMetastoreOptions {
    fn default() -> Self {
        Self {
            node_id: LOCAL_NODE_ID,
            clustered: false,
            write_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(30),
            snapshot_every: 2000,
            snapshot_log_ratio: 0.5,
            logs_to_keep: 500,
            snapshot_install_timeout: Duration::from_secs(120),
            log_store: LogStoreOptions::default(),
            cluster_auth: crate::rpc::ClusterAuth::default(),
        }
    }
}

pub struct LocalMetastore {
    raft: Raft,
    data_dir: PathBuf,
    node_id: NodeId,
    clustered: bool,
    state: SharedState,
    commits: watch::Receiver<u64>,
    write_timeout: Duration,
    shut_down: AtomicBool,
    journal: Arc<Mutex<Option<JournalWriter>>>,
    snapshot_progress: SnapshotProgress,
}

impl LocalMetastore {
    pub async fn open(data_dir: &Path) -> Result<Self, OpenError> {
        Self::open_with(data_dir, LocalMetastoreOptions::default()).await
    }

    pub async fn open_with(
        data_dir: &Path,
        options: LocalMetastoreOptions,
    ) -> Result<Self, OpenError> {
        std::fs::create_dir_all(data_dir).map_err(|source| OpenError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let config = Config {
            cluster_name: "skiff-metastore".into(),
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            // Snapshots are asked for by `snapshot_policy::run`, which weighs bytes, not just
            // entries.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: options.logs_to_keep,
            // Purging in batches saves journal records; never wait longer than a fraction of
            // the snapshot interval to purge.
            purge_batch_size: (options.snapshot_every / 4).clamp(1, 64),
            // Bounds that keep every request under the body limit (see `crate::limits`).
            snapshot_max_chunk_size: crate::limits::SNAPSHOT_CHUNK_BYTES as u64,
            max_payload_entries: 300,
            install_snapshot_timeout: u64::try_from(options.snapshot_install_timeout.as_millis())
                .unwrap_or(u64::MAX),
            ..Default::default()
        }
        .validate()
        .map_err(|e| OpenError::Config(e.to_string()))?;

        let dir = data_dir.to_owned();
        let log_options = options.log_store.clone();
        let (log_store, journal, sm_store) = tokio::task::spawn_blocking(move || {
            let (log_store, journal) = LogStore::open(&dir, log_options)?;
            let sm_store = StateMachineStore::open(&dir)?;
            Ok::<_, OpenError>((log_store, journal, sm_store))
        })
        .await
        .map_err(|e| OpenError::Raft(e.to_string()))??;
        let journal = Arc::new(Mutex::new(Some(journal)));
        let state = sm_store.state();
        let applied_bytes = sm_store.applied_bytes();
        let commits = sm_store.commits();

        let snapshot_progress = SnapshotProgress::default();
        let network = if options.clustered {
            Network::http(snapshot_progress.clone(), &options.cluster_auth)
                .map_err(|e| OpenError::Config(format!("metastore RPC client: {e}")))?
        } else {
            Network::Single
        };
        let raft = Raft::new(
            options.node_id,
            Arc::new(config),
            network,
            log_store,
            sm_store,
        )
        .await
        .map_err(|e| OpenError::Raft(e.to_string()))?;
        let policy = crate::raft::snapshot_policy::SnapshotPolicy {
            min_entries: options.snapshot_every,
            log_ratio: options.snapshot_log_ratio,
        };
        let snapshot_file = data_dir.join(crate::raft::snapshot::SNAPSHOT_FILE);
        // Ends by itself when Raft shuts down.
        tokio::spawn(crate::raft::snapshot_policy::run(
            raft.clone(),
            applied_bytes,
            policy,
            move || std::fs::metadata(&snapshot_file).map_or(0, |m| m.len()),
        ));
        let ms = Self {
            raft,
            data_dir: data_dir.to_owned(),
            node_id: options.node_id,
            clustered: options.clustered,
            state,
            commits,
            write_timeout: options.write_timeout,
            shut_down: AtomicBool::new(false),
            journal,
            snapshot_progress,
        };
        if !ms.clustered {
            if let Err(e) = ms.start(options.startup_timeout).await {
                ms.shutdown().await;
                return Err(e);
            }
        }
        Ok(ms)
    }

    /// Makes `members` the first membership of a new cluster. Calling it on every initial member
    /// with the same map is safe; on a cluster that is already initialised it changes nothing.
    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), NodeError> {
        let members: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(NodeError::Unavailable(e.to_string())),
        }
    }

    /// Adds a node as a voter: first as a learner, which catches up (from a snapshot if the log
    /// it needs is purged), then, once it has, into the voters. A voter that cannot catch up
    /// would count towards the quorum while unable to vote for anything, so a learner still
    /// behind after `timeout` is removed again and the membership stays as it was. Leader only;
    /// adding a voter again changes nothing.
    pub async fn add_node(
        &self,
        id: NodeId,
        addr: String,
        timeout: Duration,
    ) -> Result<(), NodeError> {
        if self.voters().contains(&id) {
            return Ok(());
        }
        let added = self
            .raft
            .add_learner(id, BasicNode::new(addr), false)
            .await
            .map_err(|e| self.membership_error(e))?;
        let since = added.log_id.index;
        tracing::info!(
            node = id,
            since,
            "learner added; waiting for it to catch up"
        );
        // Stop waiting as soon as this node no longer leads: it cannot promote the learner, and
        // the next leader goes on replicating to it (add-node again promotes it).
        let waited = self
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| m.state != ServerState::Leader || learner_caught_up(m, id, since),
                "learner caught up",
            )
            .await;
        if let Ok(m) = &waited {
            if m.state != ServerState::Leader {
                return Err(NodeError::NotLeader {
                    leader: self.leader(),
                });
            }
        }
        if waited.is_err() {
            let behind = describe_catch_up(&self.raft.metrics().borrow(), id);
            let removed = self
                .raft
                .change_membership(ChangeMembers::RemoveNodes([id].into()), false)
                .await;
            let outcome = match removed {
                Ok(_) => "it was removed again and the membership is as before".to_owned(),
                Err(e) => format!("removing it again failed ({e}): it is still a learner"),
            };
            return Err(NodeError::Membership(format!(
                "node {id} did not catch up within {timeout:?} ({behind}); {outcome}"
            )));
        }
        let mut voters = self.voters();
        voters.insert(id);
        self.raft
            .change_membership(voters, false)
            .await
            .map_err(|e| self.membership_error(e))?;
        tracing::info!(node = id, "learner caught up and promoted to voter");
        Ok(())
    }

    /// Removes a node from the voters or the learners (and so from the cluster). Leader only.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), NodeError> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let membership = membership.membership();
        let change = if membership.voter_ids().any(|v| v == id) {
            ChangeMembers::ReplaceAllVoters(membership.voter_ids().filter(|v| *v != id).collect())
        } else if membership.learner_ids().any(|l| l == id) {
            ChangeMembers::RemoveNodes([id].into())
        } else {
            return Ok(());
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.membership_error(e))?;
        Ok(())
    }

    /// On a leader: bytes of a snapshot each peer has stored, while one is on its way.
    pub fn snapshot_progress(&self) -> std::collections::BTreeMap<NodeId, u64> {
        self.snapshot_progress.get()
    }

    fn voters(&self) -> std::collections::BTreeSet<NodeId> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    fn membership_error(
        &self,
        e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
    ) -> NodeError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => NodeError::NotLeader {
                leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
            },
            other => NodeError::Unavailable(other.to_string()),
        }
    }

    /// The leader this node knows of, with its RPC address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let id = metrics.current_leader?;
        let addr = metrics
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())?;
        Some((id, addr))
    }

    /// Bytes of the snapshot this node would send a lagging peer (0 before the first one).
    pub fn snapshot_bytes(&self) -> u64 {
        std::fs::metadata(self.data_dir.join(crate::raft::snapshot::SNAPSHOT_FILE))
            .map_or(0, |m| m.len())
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    async fn start(&self, timeout: Duration) -> Result<(), OpenError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| OpenError::Raft(e.to_string()))?;
        if !initialized {
            let members = BTreeMap::from([(self.node_id, BasicNode::default())]);
            self.raft
                .initialize(members)
                .await
                .map_err(|e| OpenError::Raft(e.to_string()))?;
        }
        self.raft
            .wait(Some(timeout))
            .metrics(
                |m| m.state == ServerState::Leader && m.current_leader == Some(self.node_id),
                "become leader",
            )
            .await
            .map_err(|_| OpenError::NoLeadership(timeout))?;
        // Leadership alone does not mean the state machine has re-applied the journal; readers
        // must not see a state older than what was acknowledged before the restart.
        tokio::time::timeout(timeout, self.raft.ensure_linearizable())
            .await
            .map_err(|_| OpenError::NoLeadership(timeout))?
            .map_err(|e| OpenError::Raft(e.to_string()))?;
        Ok(())
    }

    /// Stops Raft and waits until the journal is closed, so the directory can be reopened at once.
    /// Later calls return `Unavailable`.
    pub async fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft task ended abnormally");
        }
        let journal = self.journal.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let writer = journal
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(writer) = writer {
                writer.join();
            }
        })
        .await;
        if let Err(e) = joined {
            tracing::warn!(error = %e, "waiting for the journal writer failed");
        }
    }

    /// Proposes `cmd` and waits for it to apply, for at most the write timeout.
    pub async fn write_command(&self, mut cmd: Command) -> Result<CommandResponse, NodeError> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(NodeError::Unavailable("metastore is shut down".into()));
        }
        // A commit's age is judged by the clock of the node that proposes it, the leader (a
        // follower's proposal is refused as NotLeader), not by the agent's: every replica then
        // applies the same stamp, and an agent's clock cannot make an old object look young.
        // Agents' liveness likewise: a heartbeat is stamped here, so that which agents are live
        // (and so which agent coordinates a group) is judged by one clock, not by each sender's.
        // And transactions: when one began and when it times out are one clock's readings, so
        // an agent's skew can neither keep a transaction open nor abort it early.
        let now = wall_clock_ms();
        match &mut cmd {
            Command::CommitObject(commit) => commit.now_ms = now,
            Command::AgentHeartbeat(hb) => hb.now_ms = now,
            Command::InitTransactionalProducer(req) => req.now_ms = now,
            Command::AddPartitionsToTxn(req) => req.now_ms = now,
            Command::AddOffsetsToTxn(req) => req.now_ms = now,
            Command::EndTxn(req) => req.now_ms = now,
            Command::ExpireTransactions(pass) => pass.now_ms = now,
            Command::AbortTransaction { now_ms, .. } => *now_ms = now,
            _ => {}
        }
        if crate::limits::check_command(&cmd).is_err() {
            // Clients check before sending; only one that does not can get here.
            return Err(NodeError::TooLarge);
        }
        let res = tokio::time::timeout(self.write_timeout, self.raft.client_write(cmd))
            .await
            .map_err(|_| {
                NodeError::OutcomeUnknown(format!("write timed out after {:?}", self.write_timeout))
            })?;
        match res {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(NodeError::NotLeader {
                    leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                })
            }
            Err(e) => Err(NodeError::OutcomeUnknown(e.to_string())),
        }
    }

    /// Runs `f` on a state that includes every write acknowledged before the call: in a quorum the
    /// leader first confirms it still leads and waits until it has applied its commit index
    /// (openraft's read index); a single node is always that leader.
    pub async fn read_linearizable<T>(
        &self,
        f: impl FnOnce(&StateMachine) -> T,
    ) -> Result<T, NodeError> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(NodeError::Unavailable("metastore is shut down".into()));
        }
        if self.clustered {
            let read = tokio::time::timeout(self.write_timeout, self.raft.ensure_linearizable())
                .await
                .map_err(|_| NodeError::Unavailable("read index timed out".into()))?;
            match read {
                Ok(_) => {}
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    return Err(NodeError::NotLeader {
                        leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                    })
                }
                Err(e) => return Err(NodeError::Unavailable(e.to_string())),
            }
        }
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Ok(f(&state))
    }

    /// Runs `f` on this node's applied state as it is, leader or not: for metrics and status,
    /// never for answers to clients.
    pub fn read_local<T>(&self, f: impl FnOnce(&StateMachine) -> T) -> Option<T> {
        if self.shut_down.load(Ordering::SeqCst) {
            return None;
        }
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Some(f(&state))
    }

    /// The Raft handle, for metrics and for tests that force snapshots.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }
}

/// Whether the leader's metrics show `id` holding the log up to `since` and close behind.
fn learner_caught_up(m: &RaftMetrics<NodeId, BasicNode>, id: NodeId, since: u64) -> bool {
    let matched = m
        .replication
        .as_ref()
        .and_then(|r| r.get(&id))
        .and_then(|l| l.map(|l| l.index));
    matched.is_some_and(|i| {
        i >= since && m.last_log_index.unwrap_or(0).saturating_sub(i) <= CATCH_UP_LAG
    })
}

fn describe_catch_up(m: &RaftMetrics<NodeId, BasicNode>, id: NodeId) -> String {
    let matched = m
        .replication
        .as_ref()
        .and_then(|r| r.get(&id))
        .and_then(|l| l.map(|l| l.index));
    match (matched, m.last_log_index) {
        (Some(i), Some(last)) => format!("it holds the log to {i} of {last}"),
        (None, Some(last)) => format!("it holds none of the log to {last}"),
        (_, None) => "this node no longer leads".to_owned(),
    }
}

/// The node in this process as a client: commands are proposed here, reads served from its state.
#[async_trait]
impl Transport for LocalMetastore {
    async fn write(&self, cmd: Command) -> Result<CommandResponse> {
        crate::limits::check_command(&cmd)?;
        Ok(self.write_command(cmd).await?)
    }

    async fn read(&self, read: Read) -> Result<ReadAnswer> {
        Ok(self.read_linearizable(|s| s.answer(read)).await?)
    }

    fn commit_counter(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
