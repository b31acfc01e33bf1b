//! FindCoordinator, answered before consumer groups and transactions exist: no coordinator is
//! available, for every key. It is served anyway because librdkafka decides from this API's
//! presence in ApiVersions whether the broker is recent enough for LZ4 (Kafka ≥ 0.10), and would
//! otherwise send lz4-configured batches uncompressed. COORDINATOR_NOT_AVAILABLE is what Kafka
//! itself answers while its coordinator is loading: retriable, so a client using groups waits
//! instead of failing.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use crate::handlers::str_bytes;
use crate::protocol::codes;

const WHY: &str = "consumer groups and transactions are not available on this broker yet";

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
                    .with_error_message(Some(str_bytes(WHY)))
            })
            .collect();
        return response.with_coordinators(coordinators);
    }
    response
        .with_error_code(codes::COORDINATOR_NOT_AVAILABLE)
        .with_error_message(Some(str_bytes(WHY)))
        .with_node_id(BrokerId(-1))
        .with_port(-1)
}
