//! AddOffsetsToTxn: the transaction will commit offsets of a consumer group
//! (`send_offsets_to_transaction`); the TxnOffsetCommit that follows goes to the group's
//! coordinator.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use skiff_metastore::types::AddOffsetsToTxn;

use super::txn;
use crate::context::Agent;
use crate::protocol::codes;

pub async fn handle(agent: &Agent, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let response = AddOffsetsToTxnResponse::default();
    let producer = match txn::producer(
        req.transactional_id.as_str(),
        req.producer_id.0,
        req.producer_epoch,
    ) {
        Ok(p) => p,
        Err(code) => return response.with_error_code(code),
    };
    if req.group_id.is_empty() {
        return response.with_error_code(codes::INVALID_GROUP_ID);
    }
    let added = agent
        .metastore
        .add_offsets_to_txn(AddOffsetsToTxn {
            producer,
            group: req.group_id.as_str().to_owned(),
            now_ms: agent.clock.now_ms(),
        })
        .await;
    match added {
        Ok(()) => response,
        Err(e) => response.with_error_code(txn::error(&e)),
    }
}
