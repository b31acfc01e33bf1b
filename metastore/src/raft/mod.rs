//! Openraft glue: the type configuration, the log store, the state-machine store and the network.
//!
//! The state machine itself ([`crate::state_machine`]) knows nothing about Raft; this module feeds
//! it committed entries and persists what Raft needs to survive a restart.

use openraft::{BasicNode, ErrorSubject, ErrorVerb, StorageError};

use crate::types::{Command, CommandResponse};

pub mod journal;
pub mod log_store;
pub mod network;
pub mod sm_store;
pub mod snapshot;
pub mod snapshot_policy;

pub use log_store::{JournalWriter, LogStore, LogStoreOptions};
pub use network::Network;
pub use sm_store::{SharedState, StateMachineStore};

pub use crate::rpc::NodeId;

openraft::declare_raft_types!(
    /// Skiff's Raft types: log entries carry a [`Command`], applying one yields a
    /// [`CommandResponse`].
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = tokio::fs::File,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;

fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: std::io::Error,
) -> StorageError<NodeId> {
    StorageError::from_io_error(subject, verb, e)
}

#[cfg(test)]
mod tests;
