//! How metastore nodes reach each other: not at all (the embedded single node), or over HTTP.
//!
//! Each Raft RPC is one POST of a JSON body to `http(s)://<node addr>/raft/<rpc>`, answered with the
//! JSON of openraft's own `Result`, so a remote `RaftError` reaches the local Raft unchanged. The
//! server side is [`crate::rpc::server`]. Why HTTP and JSON is in docs/architecture.md.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{NodeId, TypeConfig};
use crate::limits::APPEND_BUDGET_BYTES;

pub const APPEND_PATH: &str = "/raft/append";
pub const VOTE_PATH: &str = "/raft/vote";
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";

#[derive(Clone, Debug)]
pub enum Network {
    /// A lone voter never sends RPCs; any it does attempt fails as unreachable, which openraft
    /// retries with backoff rather than treating as fatal.
    Single,
    Http(reqwest::Client, SnapshotProgress, &'static str),
}

/// On a leader: how many bytes of a snapshot each peer has acknowledged, while one is on its
/// way to it. What `skiff metastore add-node` shows while a new node catches up.
#[derive(Clone, Debug, Default)]
pub struct SnapshotProgress(Arc<Mutex<BTreeMap<NodeId, u64>>>);

impl SnapshotProgress {
    pub fn get(&self) -> BTreeMap<NodeId, u64> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, target: NodeId, acknowledged: u64, done: bool) {
        let mut map = self.lock();
        if done {
            map.remove(&target);
        } else {
            map.insert(target, acknowledged);
        }
    }
}

impl Network {
    pub fn http(
        progress: SnapshotProgress,
        auth: &crate::rpc::ClusterAuth,
    ) -> Result<Self, String> {
        Ok(Self::Http(
            auth.client(Duration::from_secs(1))?,
            progress,
            auth.scheme(),
        ))
    }
}

pub struct Connection {
    target: NodeId,
    /// `None` for the single node, which has nobody to talk to.
    http: Option<(reqwest::Client, String)>,
    progress: SnapshotProgress,
}

#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable: this metastore runs as a single node")]
struct NoPeers(NodeId);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Transport(String);

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        match self {
            Self::Single => Connection {
                target,
                http: None,
                progress: SnapshotProgress::default(),
            },
            Self::Http(client, progress, scheme) => Connection {
                target,
                http: Some((client.clone(), format!("{scheme}://{}", node.addr))),
                progress: progress.clone(),
            },
        }
    }
}

impl Connection {
    /// One RPC: POST `req` to `path`, decode openraft's `Result` from the answer.
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        self.post(path, encode(req)?, option).await
    }

    async fn post<Resp, E>(
        &self,
        path: &str,
        body: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some((client, base)) = &self.http else {
            return Err(RPCError::Unreachable(Unreachable::new(&NoPeers(
                self.target,
            ))));
        };
        let sent = client
            .post(format!("{base}{path}"))
            .header(reqwest::header::CONTENT_TYPE, crate::codec::CONTENT_TYPE)
            .timeout(option.hard_ttl())
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // Nobody listening: openraft backs off from an unreachable node instead of retrying
            // at once.
            Err(e) if e.is_connect() => {
                return Err(RPCError::Unreachable(Unreachable::new(&Transport(
                    e.to_string(),
                ))))
            }
            Err(e) => return Err(RPCError::Network(NetworkError::new(&e))),
        };
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            return Err(RPCError::Network(NetworkError::new(&Transport(format!(
                "{path} answered {status}: {text}"
            )))));
        }
        let result: Result<Resp, E> =
            crate::codec::decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

// openraft's own error type, as its trait methods return it.
#[allow(clippy::result_large_err)]
fn encode<T: Serialize, E: std::error::Error>(
    value: &T,
) -> Result<Vec<u8>, RPCError<NodeId, BasicNode, E>> {
    crate::codec::encode(value)
        .map_err(|e| RPCError::Network(NetworkError::new(&Transport(e.to_string()))))
}

/// How many of `entries`, from the first, fit in [`APPEND_BUDGET_BYTES`]; at least one, since
/// a single entry is bounded by [`crate::limits::MAX_COMMAND_BYTES`].
fn entries_that_fit(entries: &[super::Entry]) -> u64 {
    let mut total = 0usize;
    let mut n = 0u64;
    for entry in entries {
        total = total.saturating_add(crate::codec::encoded_len(entry).unwrap_or(usize::MAX));
        if total > APPEND_BUDGET_BYTES {
            break;
        }
        n += 1;
    }
    n.max(1)
}

impl RaftNetwork<TypeConfig> for Connection {
    /// openraft bounds an append by its number of entries only; a request over the byte budget
    /// is sent back as too large with the number of entries that fit, and openraft sends that
    /// many instead.
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let body = encode(&rpc)?;
        if body.len() > APPEND_BUDGET_BYTES && rpc.entries.len() > 1 {
            let fit = entries_that_fit(&rpc.entries);
            tracing::debug!(
                target = self.target,
                bytes = body.len(),
                entries = rpc.entries.len(),
                fit,
                "append over the byte budget, sending fewer entries"
            );
            return Err(PayloadTooLarge::new_entries_hint(fit).into());
        }
        self.post(APPEND_PATH, body, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let acknowledged = rpc.offset + rpc.data.len() as u64;
        let done = rpc.done;
        let answer = self.call(SNAPSHOT_PATH, &rpc, &option).await;
        if answer.is_ok() {
            self.progress.record(self.target, acknowledged, done);
        }
        answer
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(VOTE_PATH, &rpc, &option).await
    }
}
