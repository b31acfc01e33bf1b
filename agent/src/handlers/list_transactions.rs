//! ListTransactions (KIP-664; v1's duration filter, KIP-994): the transactional ids this agent
//! coordinates, filtered by state and producer id (`kafka-transactions.sh list`).
//!
//! Kafka's brokers each list the ids of their slice of `__transaction_state`, and clients ask
//! every broker and concatenate; so each agent lists the ids it would name in FindCoordinator,
//! and every id is listed once across the cluster. State filters are Kafka's state names,
//! case-sensitive as there: a name Kafka does not know is answered in `unknown_state_filters`
//! and matches nothing, and a Kafka state Skiff never rests in (`PrepareCommit`, `PrepareAbort`,
//! `PrepareEpochFence`, `Dead`) matches nothing either. The duration filter passes the ongoing
//! transactions that have run longer than it.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::limits::MAX_PARTITIONS_PER_READ;
use skiff_metastore::rpc::TransactionFilter;
use skiff_metastore::types::TxnStatus;

use super::str_bytes;
use crate::context::Agent;
use crate::protocol::codes;

/// The most ids one answer lists.
const MAX_LISTED: u32 = MAX_PARTITIONS_PER_READ as u32;

/// What a state filter's name means.
#[derive(Debug, PartialEq, Eq)]
enum StateName {
    Skiff(TxnStatus),
    /// A state of Kafka's coordinator that no Skiff transaction is ever in.
    NeverHeld,
    Unknown,
}

fn state_named(name: &str) -> StateName {
    const SKIFF: [TxnStatus; 4] = [
        TxnStatus::Empty,
        TxnStatus::Ongoing,
        TxnStatus::CompleteCommit,
        TxnStatus::CompleteAbort,
    ];
    if let Some(s) = SKIFF.iter().find(|s| s.kafka_name() == name) {
        return StateName::Skiff(*s);
    }
    match name {
        "PrepareCommit" | "PrepareAbort" | "PrepareEpochFence" | "Dead" => StateName::NeverHeld,
        _ => StateName::Unknown,
    }
}

pub async fn handle(
    agent: &Agent,
    version: i16,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let mut states = Vec::new();
    for name in &req.state_filters {
        match state_named(name.as_str()) {
            StateName::Skiff(s) => {
                if !states.contains(&s) {
                    states.push(s)
                }
            }
            StateName::NeverHeld => {}
            StateName::Unknown => response.unknown_state_filters.push(name.clone()),
        }
    }
    if !req.state_filters.is_empty() && states.is_empty() {
        // Filtered by states no transaction is in: an empty filter would pass everything.
        return response;
    }
    let duration = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let filter = TransactionFilter {
        states,
        producer_ids: req.producer_id_filters.iter().map(|p| p.0).collect(),
        // Kafka passes a transaction that has run longer than the filter; the metastore's
        // filter passes those that have run at least as long.
        min_duration_ms: if duration < 0 {
            -1
        } else {
            duration.saturating_add(1)
        },
        now_ms: agent.clock.now_ms(),
        limit: MAX_LISTED,
    };
    match agent.metastore.list_transactions(filter).await {
        Ok(listed) => {
            response.transaction_states = listed
                .into_iter()
                .filter(|t| agent.coordinates(&t.transactional_id))
                .map(|t| {
                    TransactionState::default()
                        .with_transactional_id(TransactionalId(str_bytes(t.transactional_id)))
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_transaction_state(StrBytes::from_static_str(t.status.kafka_name()))
                })
                .collect();
        }
        Err(e) => response.error_code = codes::coordinator_error(&e),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_kafkas() {
        assert_eq!(state_named("Ongoing"), StateName::Skiff(TxnStatus::Ongoing));
        assert_eq!(
            state_named("CompleteAbort"),
            StateName::Skiff(TxnStatus::CompleteAbort)
        );
        assert_eq!(state_named("PrepareCommit"), StateName::NeverHeld);
        assert_eq!(state_named("ongoing"), StateName::Unknown);
        assert_eq!(state_named(""), StateName::Unknown);
    }
}
