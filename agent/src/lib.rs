//! The Skiff agent: a stateless Kafka-protocol server. Produce requests from every connection go
//! into one flush window ([`batcher`]); fetches read committed batches back ([`fetch`]).

pub mod acl;
pub mod authz;
pub mod batcher;
pub mod broker_config;
pub mod brokers;
pub mod clock;
pub mod config;
pub mod connection;
pub mod context;
pub mod fetch;
pub mod groups;
pub mod handlers;
pub mod membership;
pub mod metrics;
pub mod protocol;
pub mod quotas;
pub mod refresh;
pub mod sasl;
pub mod scan;
pub mod server;
pub mod session;
pub mod storage;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod topic_config;
pub mod topics;
pub mod transactions;
