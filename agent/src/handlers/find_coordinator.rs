//! FindCoordinator, answered before consumer groups and transactions exist: no coordinator is
//! available, for every key. It is served anyway because librdkafka decides from this API's
//! presence in ApiVersions whether the broker is recent enough for LZ4 (Kafka ≥ 0.10), and would
//! otherwise send lz4-configured batches uncompressed. COORDINATOR_NOT_AVAILABLE is what Kafka
//! itself answers while its coordinator is loading: retriable, so a client using groups waits
//! instead of failing.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::protocol::codes;

static WHY: &str = "consumer groups and transactions are not available on this broker yet";

/// Borrows [`WHY`] instead of copying it: a request may name a million keys.
fn why() -> StrBytes {
    StrBytes::from_static_str(WHY)
}

pub fn handle(version: i16, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let response = FindCoordinatorResponse::default();
    if version >= 4 {
        // KIP-699: one answer per key.
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(codes::COORDINATOR_NOT_AVAILABLE)
                    .with_error_message(Some(why()))
            })
            .collect();
        return response.with_coordinators(coordinators);
    }
    response
        .with_error_code(codes::COORDINATOR_NOT_AVAILABLE)
        .with_error_message(Some(why()))
        .with_node_id(BrokerId(-1))
        .with_port(-1)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;

    use super::*;

    #[test]
    fn every_key_gets_the_message_without_a_copy_of_it() {
        let keys = vec![StrBytes::new(), StrBytes::from_static_str("g")];
        let response = handle(
            4,
            FindCoordinatorRequest::default().with_coordinator_keys(keys),
        );
        assert_eq!(response.coordinators.len(), 2);
        for c in &response.coordinators {
            assert_eq!(c.error_code, codes::COORDINATOR_NOT_AVAILABLE);
            let message = c.error_message.as_ref().expect("a message");
            assert_eq!(message.as_str().as_ptr(), WHY.as_ptr());
        }
        let v3 = handle(3, FindCoordinatorRequest::default());
        let message = v3.error_message.expect("a message");
        assert_eq!(message.as_str().as_ptr(), WHY.as_ptr());
    }
}
