//! The Kafka wire protocol, kept apart from sockets: framing, pre-decode guards, error codes and
//! the API versions this agent serves.

pub mod codes;
pub mod frame;
pub mod guard;
pub mod versions;
