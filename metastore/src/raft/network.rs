//! How metastore nodes reach each other: not at all (the embedded single node), or over HTTP.
//!
//! Each Raft RPC is one POST of a JSON body to `http://<node addr>/raft/<rpc>`, answered with the
//! JSON of openraft's own `Result`, so a remote `RaftError` reaches the local Raft unchanged. The
//! server side is [`crate::rpc::server`]. Why HTTP and JSON is in docs/architecture.md.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
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

pub const APPEND_PATH: &str = "/raft/append";
pub const VOTE_PATH: &str = "/raft/vote";
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";

#[derive(Clone, Debug)]
pub enum Network {
    /// A lone voter never sends RPCs; any it does attempt fails as unreachable, which openraft
    /// retries with backoff rather than treating as fatal.
    Single,
    Http(reqwest::Client),
}

impl Network {
    pub fn http() -> Self {
        Self::Http(
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(1))
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        )
    }
}

pub struct Connection {
    target: NodeId,
    /// `None` for the single node, which has nobody to talk to.
    http: Option<(reqwest::Client, String)>,
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
        Connection {
            target,
            http: match self {
                Self::Single => None,
                Self::Http(client) => Some((client.clone(), format!("http://{}", node.addr))),
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
        let Some((client, base)) = &self.http else {
            return Err(RPCError::Unreachable(Unreachable::new(&NoPeers(
                self.target,
            ))));
        };
        let body = crate::codec::encode(req)
            .map_err(|e| RPCError::Network(NetworkError::new(&Transport(e.to_string()))))?;
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

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(APPEND_PATH, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(SNAPSHOT_PATH, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(VOTE_PATH, &rpc, &option).await
    }
}
