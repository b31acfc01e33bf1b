//! The Skiff metastore.
//!
//! Agents need only [`types`] and [`client`]: the commands they send, the answers they get and the
//! [`client::MetastoreClient`] trait. How those commands are replicated (openraft, a journal on disk,
//! snapshots) stays behind that trait, so a networked quorum can replace the embedded one without the
//! agent noticing.

pub mod client;
pub mod codec;
pub mod limits;
pub mod local;
pub mod raft;
pub mod rpc;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod commit_age_tests;
#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod rewrite_tests;

pub use local::{LocalMetastore, LocalMetastoreOptions, NodeError, OpenError};
