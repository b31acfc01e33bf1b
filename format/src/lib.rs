//! Byte formats shared by agents and compactors: Kafka record batches (validated, never decoded on
//! the produce path) and the Skiff object that a flush writes.

pub mod batch;
