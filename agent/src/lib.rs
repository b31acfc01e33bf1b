//! The Skiff agent: a stateless Kafka-protocol server.

pub mod protocol;
