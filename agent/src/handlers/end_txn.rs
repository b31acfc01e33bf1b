//! EndTxn: commits or aborts the producer's transaction in one metastore command, which writes
//! a marker at the end of every partition the transaction wrote to and moves its pending
//! offsets into their groups (commit) or drops them (abort). v5 (KIP-890 part 2) ends every
//! transaction with a new epoch, answered with the producer id to go on with.

use std::time::Instant;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use skiff_metastore::types::EndTxn;

use super::txn;
use crate::context::Agent;

/// The first EndTxn version whose transaction ends with an epoch bump.
const BUMPS_EPOCH: i16 = 5;

pub async fn handle(agent: &Agent, version: i16, req: EndTxnRequest) -> EndTxnResponse {
    let started = Instant::now();
    let response = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let producer = match txn::producer(
        req.transactional_id.as_str(),
        req.producer_id.0,
        req.producer_epoch,
    ) {
        Ok(p) => p,
        Err(code) => return response.with_error_code(code),
    };
    let ended = agent
        .metastore
        .end_txn(EndTxn {
            producer,
            commit: req.committed,
            bump_epoch: version >= BUMPS_EPOCH,
            now_ms: agent.clock.now_ms(),
        })
        .await;
    let m = &agent.metrics;
    m.end_txn_latency.observe(started.elapsed().as_secs_f64());
    match ended {
        Ok(next) => {
            // A retry whose first answer was lost counts twice; the metastore's answer does
            // not tell the two apart.
            if req.committed {
                m.txn_committed.inc();
            } else {
                m.txn_aborted.inc();
            }
            if version >= BUMPS_EPOCH {
                response
                    .with_producer_id(ProducerId(next.producer_id))
                    .with_producer_epoch(next.producer_epoch)
            } else {
                response
            }
        }
        Err(e) => response.with_error_code(txn::error(&e)),
    }
}
