//! The Skiff metastore.
//!
//! Agents need only [`types`] and [`client`]: the commands they send, the answers they get and the
//! [`client::MetastoreClient`] trait, reached in-process or over HTTP ([`rpc::remote`]). How those
//! commands are replicated (openraft, a journal on disk, snapshots) stays behind that trait, so a
//! networked quorum can replace the embedded one without the agent noticing.
//!
//! The node itself (the state machine, Raft, the RPC server, `LocalMetastore`) is the default
//! feature `node`. Without it the crate is the client side only, and pulls in neither openraft
//! nor axum: agents and compactors depend on it that way.

#[cfg(feature = "node")]
mod capped;
pub mod client;
pub mod codec;
pub mod legacy_commands;
pub mod limits;
#[cfg(feature = "node")]
pub mod local;
pub mod placement;
#[cfg(feature = "node")]
pub mod raft;
pub mod rpc;
pub mod security;
#[cfg(feature = "node")]
pub mod state_machine;
pub mod types;

#[cfg(all(test, feature = "node"))]
mod commit_age_tests;
#[cfg(all(test, feature = "node"))]
mod retention_tests;
#[cfg(all(test, feature = "node"))]
mod rewrite_tests;

#[cfg(feature = "node")]
pub use local::{LocalMetastore, LocalMetastoreOptions, OpenError};
pub use rpc::NodeError;
