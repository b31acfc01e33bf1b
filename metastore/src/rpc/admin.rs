//! Admin calls to a running quorum, as `skiff metastore init|add-node|remove-node|status` makes
//! them. Membership changes must reach the leader: a follower's answer names it, and the call is
//! sent there.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    AddNodeRequest, InitRequest, NodeError, NodeId, RemoveNodeRequest, Status, ADD_NODE_PATH,
    INIT_PATH, REMOVE_NODE_PATH, STATUS_PATH,
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{addr}: {source}")]
    Http {
        addr: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{addr} answered {status}: {body}")]
    Status {
        addr: String,
        status: u16,
        body: String,
    },
    #[error("{addr}: undecodable answer: {source}")]
    Decode {
        addr: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// Admin calls other than adding a node answer at once, or as soon as a membership change
/// commits.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Admin {
    http: reqwest::Client,
    auth: super::ClusterAuth,
}

impl Admin {
    /// An admin client whose calls carry the cluster's RPC credentials.
    pub fn with_auth(auth: super::ClusterAuth) -> Result<Self, String> {
        Ok(Self {
            http: auth.client(Duration::from_secs(2))?,
            auth,
        })
    }

    async fn post<Req: Serialize, T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Result<T, NodeError>, AdminError> {
        let http = |source| AdminError::Http {
            addr: addr.to_owned(),
            source,
        };
        let response = self
            .http
            .post(format!("{}{path}", self.auth.base_url(addr)))
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(
                serde_json::to_vec(req).map_err(|source| AdminError::Decode {
                    addr: addr.to_owned(),
                    source,
                })?,
            )
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(http)?;
        if !status.is_success() {
            return Err(AdminError::Status {
                addr: addr.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| AdminError::Decode {
            addr: addr.to_owned(),
            source,
        })
    }

    /// `post` to the leader: follows one "not the leader" answer to the node it names.
    async fn to_leader<Req: Serialize, T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<T, AdminError> {
        match self.post(addr, path, req, timeout).await? {
            Err(NodeError::NotLeader {
                leader: Some((_, leader)),
            }) if leader != addr => Ok(self.post::<Req, T>(&leader, path, req, timeout).await??),
            other => Ok(other?),
        }
    }

    pub async fn init(
        &self,
        addr: &str,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), AdminError> {
        Ok(self
            .post::<_, ()>(addr, INIT_PATH, &InitRequest { members }, CALL_TIMEOUT)
            .await??)
    }

    pub async fn add_node(
        &self,
        addr: &str,
        id: NodeId,
        node_addr: String,
        timeout: Duration,
    ) -> Result<(), AdminError> {
        let req = AddNodeRequest {
            id,
            addr: node_addr,
            timeout_secs: timeout.as_secs().max(1),
        };
        // The leader answers once the node has caught up or its time is up.
        let wait = timeout + CALL_TIMEOUT;
        self.to_leader(addr, ADD_NODE_PATH, &req, wait).await
    }

    pub async fn remove_node(&self, addr: &str, id: NodeId) -> Result<(), AdminError> {
        let req = RemoveNodeRequest { id };
        self.to_leader(addr, REMOVE_NODE_PATH, &req, CALL_TIMEOUT)
            .await
    }

    pub async fn status(&self, addr: &str) -> Result<Status, AdminError> {
        let http = |source| AdminError::Http {
            addr: addr.to_owned(),
            source,
        };
        let response = self
            .http
            .get(format!("{}{STATUS_PATH}", self.auth.base_url(addr)))
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(http)?;
        let bytes = response.bytes().await.map_err(http)?;
        serde_json::from_slice(&bytes).map_err(|source| AdminError::Decode {
            addr: addr.to_owned(),
            source,
        })
    }
}
