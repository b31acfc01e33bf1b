//! The network of a single-node cluster: there is nobody to talk to.
//!
//! A lone voter never sends RPCs, but openraft still wants a factory. Any RPC it does attempt
//! (say, after someone adds a learner by mistake) fails as unreachable, which openraft retries
//! with backoff rather than treating as fatal. The replicated network replaces this.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::{NodeId, TypeConfig};

#[derive(Clone, Debug, Default)]
pub struct Network;

#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable: this metastore runs as a single node")]
struct NoPeers(NodeId);

pub struct NoConnection {
    target: NodeId,
}

impl NoConnection {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        RPCError::Unreachable(Unreachable::new(&NoPeers(self.target)))
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = NoConnection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        NoConnection { target }
    }
}

impl RaftNetwork<TypeConfig> for NoConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }
}
