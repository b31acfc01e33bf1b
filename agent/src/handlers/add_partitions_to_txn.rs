//! AddPartitionsToTxn (v0-3, what clients send): partitions join the producer's transaction,
//! which begins with the first of them. Every partition must exist, or none is added: the
//! unknown ones are UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as Kafka
//! answers. v4's batched, verify-only form is how Kafka's partition leaders ask the coordinator
//! (KIP-890 part 1); Skiff's metastore checks that itself on every transactional batch, so it is
//! not served.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use skiff_metastore::types::{AddPartitionsToTxn, MetaError, TopicPartition};

use super::txn;
use crate::context::Agent;
use crate::protocol::codes;

pub async fn handle(agent: &Agent, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    // Each requested partition, in request order, with the partition it names if it exists.
    let mut asked: Vec<(usize, i32, Option<TopicPartition>)> = Vec::new();
    for (t, topic) in req.v3_and_below_topics.iter().enumerate() {
        let last = topic.partitions.iter().copied().max().unwrap_or(0);
        let meta = agent
            .topic_named_covering(topic.name.as_str(), last)
            .await
            .ok()
            .flatten()
            .filter(|m| !crate::topics::is_internal_topic(&m.name));
        for &p in &topic.partitions {
            let tp = meta
                .as_ref()
                .filter(|m| (0..m.partitions).contains(&p))
                .map(|m| TopicPartition {
                    topic_id: m.topic_id,
                    partition: p,
                });
            asked.push((t, p, tp));
        }
    }
    let codes_in_order: Vec<i16> = match txn::producer(
        req.v3_and_below_transactional_id.as_str(),
        req.v3_and_below_producer_id.0,
        req.v3_and_below_producer_epoch,
    ) {
        Err(code) => vec![code; asked.len()],
        Ok(_) if asked.iter().any(|(_, _, tp)| tp.is_none()) => asked
            .iter()
            .map(|(_, _, tp)| match tp {
                None => codes::UNKNOWN_TOPIC_OR_PARTITION,
                Some(_) => codes::OPERATION_NOT_ATTEMPTED,
            })
            .collect(),
        Ok(_) if asked.is_empty() => Vec::new(),
        Ok(producer) => {
            let partitions = asked.iter().filter_map(|(_, _, tp)| *tp).collect();
            let added = agent
                .metastore
                .add_partitions_to_txn(AddPartitionsToTxn {
                    producer,
                    partitions,
                    now_ms: agent.clock.now_ms(),
                })
                .await;
            per_partition(added, asked.len())
        }
    };
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = req
        .v3_and_below_topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()))
        .collect();
    for ((t, p, _), code) in asked.into_iter().zip(codes_in_order) {
        if let Some(topic) = topics.get_mut(t) {
            topic.results_by_partition.push(
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(p)
                    .with_partition_error_code(code),
            );
        }
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}

/// The metastore's answer as one code per partition: a whole-request error for every one; if
/// any partition failed, the others were not attempted.
fn per_partition(
    added: Result<Vec<Result<(), MetaError>>, skiff_metastore::client::MetastoreError>,
    n: usize,
) -> Vec<i16> {
    match added {
        Err(e) => vec![txn::error(&e); n],
        Ok(answers) if answers.len() != n => vec![codes::UNKNOWN_SERVER_ERROR; n],
        Ok(answers) => {
            let any_failed = answers.iter().any(Result::is_err);
            answers
                .iter()
                .map(|a| match a {
                    Err(e) => codes::meta_error(e),
                    Ok(()) if any_failed => codes::OPERATION_NOT_ATTEMPTED,
                    Ok(()) => codes::NONE,
                })
                .collect()
        }
    }
}
