use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use skiff_metastore::types::InitProducerId;

use crate::context::Agent;
use crate::protocol::codes;

pub async fn handle(agent: &Agent, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        // Transactions are not implemented yet; refuse rather than pretend.
        return response.with_error_code(codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    }
    match agent
        .metastore
        .init_producer_id(InitProducerId {
            transactional_id: None,
            now_ms: agent.clock.now_ms(),
        })
        .await
    {
        Ok(p) => response
            .with_producer_id(ProducerId(p.producer_id))
            .with_producer_epoch(p.producer_epoch),
        Err(e) => response.with_error_code(codes::metastore_error(&e)),
    }
}
