//! InitProducerId: a producer id for an idempotent producer, or, with a `transactional.id`, the
//! id's producer id at a new epoch, which fences every older producer of the id and aborts its
//! open transaction (KIP-98); with the producer id and epoch it had (v3+, KIP-360), a producer
//! recovers its id after an abortable error.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use skiff_metastore::limits::MAX_TRANSACTIONAL_ID_BYTES;
use skiff_metastore::types::{InitProducerId, InitTransactionalProducer};

use crate::context::Agent;
use crate::protocol::codes;

pub async fn handle(agent: &Agent, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let now_ms = agent.clock.now_ms();
    let answer = match req.transactional_id.as_ref().map(|t| t.as_str()) {
        // Kafka treats an empty transactional id as none (an idempotent producer).
        None | Some("") => agent
            .metastore
            .init_producer_id(InitProducerId {
                transactional_id: None,
                now_ms,
            })
            .await
            .map_err(|e| codes::metastore_error(&e)),
        // Kafka bounds it only by the string's i16 length; the metastore keeps every id, so it
        // bounds them tighter. A request that can never work gets a non-retriable error.
        Some(id) if id.len() > MAX_TRANSACTIONAL_ID_BYTES => {
            return response.with_error_code(codes::INVALID_REQUEST)
        }
        Some(id) => {
            let timeout = req.transaction_timeout_ms;
            let max = agent.broker_view().transaction_max_timeout_ms();
            if timeout <= 0 || i64::from(timeout) > max {
                return response.with_error_code(codes::INVALID_TRANSACTION_TIMEOUT);
            }
            agent
                .metastore
                .init_transactional_producer(InitTransactionalProducer {
                    transactional_id: id.to_owned(),
                    transaction_timeout_ms: timeout,
                    // v0-2 have neither; kafka-protocol answers their defaults, -1 and -1.
                    producer_id: req.producer_id.0,
                    producer_epoch: req.producer_epoch,
                    now_ms,
                })
                .await
                .map_err(|e| super::txn::error(&e))
        }
    };
    match answer {
        Ok(p) => response
            .with_producer_id(ProducerId(p.producer_id))
            .with_producer_epoch(p.producer_epoch),
        Err(code) => response.with_error_code(code),
    }
}
