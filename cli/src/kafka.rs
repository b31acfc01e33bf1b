//! A small blocking Kafka client for the CLI's own commands (`skiff groups`, `skiff export`):
//! requests over TCP with timeouts, and responses checked against their shape before decoding.

pub mod security;
pub mod shape;
pub mod wire;

use kafka_protocol::error::ResponseError;

/// "GroupIdNotFound (69): The group id does not exist."
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) => format!("error code {code}"),
        Some(e) => format!("{e:?} ({code}): {e}"),
        None => "no error".to_owned(),
    }
}
