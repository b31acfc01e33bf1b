//! What the transaction handlers share (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
//! EndTxn): the producer a request names, and how a metastore failure is answered.
//!
//! A transaction's state lives in the metastore, so any agent can serve these requests; clients
//! send them to the agent FindCoordinator names for their transactional id. Every one of them is
//! safe to retry: adding a partition or a group twice adds it once, a pending offset is
//! overwritten by the same offset, and an EndTxn retried after its answer was lost gets the same
//! answer (the metastore sees to it). So a metastore that cannot be reached, or whose answer was
//! lost, is COORDINATOR_NOT_AVAILABLE, which every client retries after looking the coordinator
//! up again, rather than REQUEST_TIMED_OUT, which some treat as abortable.

use skiff_metastore::client::MetastoreError;
use skiff_metastore::types::TxnProducer;

use crate::protocol::codes;

/// The producer a transactional request names, or INVALID_REQUEST for an empty transactional
/// id, as Kafka's coordinator answers.
pub(crate) fn producer(
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<TxnProducer, i16> {
    if transactional_id.is_empty() {
        return Err(codes::INVALID_REQUEST);
    }
    Ok(TxnProducer {
        transactional_id: transactional_id.to_owned(),
        producer_id,
        producer_epoch,
    })
}

/// The code a client sees for a metastore failure of a transactional request.
pub(crate) fn error(e: &MetastoreError) -> i16 {
    match e {
        MetastoreError::Rejected(m) => codes::meta_error(m),
        MetastoreError::Unavailable(_) | MetastoreError::OutcomeUnknown(_) => {
            codes::COORDINATOR_NOT_AVAILABLE
        }
    }
}
