//! The Kafka wire protocol, kept apart from sockets: framing, pre-decode guards, and the
//! supported API versions.

pub mod guard;
