//! DescribeTransactions (KIP-664): each transactional id's state as Kafka's coordinator shows it
//! (`kafka-transactions.sh describe`). The metastore holds every id's state, so any agent can
//! answer for any id: no NOT_COORDINATOR. An id the metastore does not know (never used, or
//! expired after `transactional.id.expiration.ms`) is TRANSACTIONAL_ID_NOT_FOUND, an empty one
//! INVALID_REQUEST, as in Kafka. The partitions are those of the ongoing transaction, by topic
//! name; a topic deleted since it joined the transaction is left out.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
    TransactionalId,
};
use skiff_metastore::limits::MAX_PARTITIONS_PER_READ;
use skiff_metastore::types::{TopicId, TransactionSummary};

use super::str_bytes;
use crate::context::Agent;
use crate::protocol::codes;

/// The most ids asked of the metastore in one read: each answer names its transaction's
/// partitions, so a read of many ids is split to keep every answer small.
const IDS_PER_READ: usize = 1024;
const _: () = assert!(IDS_PER_READ <= MAX_PARTITIONS_PER_READ);

pub async fn handle(
    agent: &Agent,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let ids: Vec<String> = req
        .transactional_ids
        .iter()
        .map(|id| id.0.as_str().to_owned())
        .collect();
    let mut states: Vec<TransactionState> = ids
        .iter()
        .map(|id| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(id.clone())))
                .with_transaction_state(str_bytes(""))
                .with_transaction_start_time_ms(-1)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        })
        .collect();
    // The ids worth asking for, with their place in the answer.
    let asked: Vec<(usize, String)> = ids
        .into_iter()
        .enumerate()
        .filter(|(i, id)| {
            if id.is_empty() {
                if let Some(s) = states.get_mut(*i) {
                    s.error_code = codes::INVALID_REQUEST;
                }
                false
            } else {
                true
            }
        })
        .collect();
    let mut names: BTreeMap<TopicId, Option<TopicName>> = BTreeMap::new();
    for chunk in asked.chunks(IDS_PER_READ) {
        let read = chunk.iter().map(|(_, id)| id.clone()).collect();
        match agent.metastore.describe_transactions(read).await {
            Ok(answers) => {
                for ((i, _), answer) in chunk.iter().zip(answers) {
                    let topics = match &answer {
                        Some(summary) => topics_of(agent, summary, &mut names).await,
                        None => Vec::new(),
                    };
                    if let Some(s) = states.get_mut(*i) {
                        match answer {
                            Some(summary) => fill(s, &summary, topics),
                            None => s.error_code = codes::TRANSACTIONAL_ID_NOT_FOUND,
                        }
                    }
                }
            }
            Err(e) => {
                let code = codes::coordinator_error(&e);
                for (i, _) in chunk {
                    if let Some(s) = states.get_mut(*i) {
                        s.error_code = code;
                    }
                }
            }
        }
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn fill(s: &mut TransactionState, t: &TransactionSummary, topics: Vec<TopicData>) {
    s.transaction_state = str_bytes(t.status.kafka_name());
    s.transaction_timeout_ms = t.timeout_ms;
    s.transaction_start_time_ms = t.start_ms;
    s.producer_id = ProducerId(t.producer_id);
    s.producer_epoch = t.producer_epoch;
    s.topics = topics;
}

/// The transaction's partitions grouped by topic name, in the order of the topic ids.
async fn topics_of(
    agent: &Agent,
    t: &TransactionSummary,
    names: &mut BTreeMap<TopicId, Option<TopicName>>,
) -> Vec<TopicData> {
    let mut by_topic: BTreeMap<TopicId, Vec<i32>> = BTreeMap::new();
    for tp in &t.partitions {
        by_topic.entry(tp.topic_id).or_default().push(tp.partition);
    }
    let mut topics = Vec::with_capacity(by_topic.len());
    for (id, partitions) in by_topic {
        let name = match names.get(&id) {
            Some(n) => n.clone(),
            None => match agent.topic_with_id(id).await {
                Ok(meta) => {
                    let n = meta.map(|m| TopicName(str_bytes(m.name)));
                    names.insert(id, n.clone());
                    n
                }
                // Not remembered: the next transaction's lookup may succeed.
                Err(_) => None,
            },
        };
        if let Some(name) = name {
            topics.push(
                TopicData::default()
                    .with_topic(name)
                    .with_partitions(partitions),
            );
        }
    }
    topics
}

#[cfg(test)]
#[path = "txn_admin_tests.rs"]
mod tests;
