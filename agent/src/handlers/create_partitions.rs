//! CreatePartitions: grows topics, with Kafka's checks and messages.
//!
//! Every agent serves every partition from the object store, so there is nothing to place: a
//! request's replica assignments are checked as Kafka checks them (one per new partition, known
//! brokers, none named twice), so tools get the errors they expect, and then ignored, as
//! CreateTopics ignores them.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, TopicName};
use skiff_metastore::client::MetastoreError;
use skiff_metastore::limits::MAX_PARTITIONS_PER_TOPIC;
use skiff_metastore::types::{CreatePartitions, MetaError, TopicMeta};

use super::str_bytes;
use crate::context::Agent;
use crate::protocol::codes;

/// Why one topic is not grown: its code and Kafka's message.
type Refusal = (i16, String);

pub async fn handle(agent: &Agent, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    // Kafka answers a name given twice once, with INVALID_REQUEST, and grows neither.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &req.topics {
        *seen.entry(t.name.as_str()).or_default() += 1;
    }
    let dupes: BTreeSet<&str> = seen
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(name, _)| name)
        .collect();
    let brokers = known_brokers(agent);
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req
        .topics
        .iter()
        .filter(|t| !dupes.contains(t.name.as_str()))
    {
        let outcome = grow(agent, t, &brokers, req.validate_only).await;
        results.push(result(&t.name, outcome));
    }
    for name in dupes {
        let refusal = (
            codes::INVALID_REQUEST,
            "Duplicate topic in request.".to_owned(),
        );
        results.push(result(&TopicName(str_bytes(name)), Err(refusal)));
    }
    CreatePartitionsResponse::default().with_results(results)
}

fn result(name: &TopicName, outcome: Result<(), Refusal>) -> CreatePartitionsTopicResult {
    let r = CreatePartitionsTopicResult::default().with_name(name.clone());
    match outcome {
        Ok(()) => r.with_error_code(codes::NONE),
        Err((code, message)) => r
            .with_error_code(code)
            .with_error_message(Some(str_bytes(message))),
    }
}

/// The broker ids clients know: every slot of the live agents and of this one.
fn known_brokers(agent: &Agent) -> BTreeSet<i32> {
    crate::brokers::Brokers::known(agent, true)
        .ids()
        .map(|(id, _)| id)
        .collect()
}

async fn grow(
    agent: &Agent,
    t: &CreatePartitionsTopic,
    brokers: &BTreeSet<i32>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let name = t.name.as_str();
    // Read past the cache: the count must be the metastore's, not one a second old.
    let topic = agent
        .metastore
        .topic_by_name(name)
        .await
        .map_err(|e| (codes::metastore_error(&e), e.to_string()))?
        .ok_or_else(|| unknown(name))?;
    check(&topic, t, brokers)?;
    if validate_only {
        return Ok(());
    }
    let grown = agent
        .create_partitions(CreatePartitions {
            name: name.to_owned(),
            topic_id: topic.topic_id,
            count: t.count,
        })
        .await;
    match grown {
        Ok(_) => Ok(()),
        Err(MetastoreError::Rejected(MetaError::UnknownTopicOrPartition)) => Err(unknown(name)),
        // Grown (or deleted) by someone else since it was read: say how it stands now.
        Err(MetastoreError::Rejected(MetaError::InvalidPartitions)) => {
            match agent.metastore.topic_by_name(name).await {
                Ok(Some(now)) => Err(check(&now, t, brokers).err().unwrap_or_else(|| {
                    (
                        codes::INVALID_PARTITIONS,
                        count_message(now.partitions, t.count),
                    )
                })),
                _ => Err(unknown(name)),
            }
        }
        Err(e) => Err((codes::metastore_error(&e), e.to_string())),
    }
}

fn unknown(name: &str) -> Refusal {
    (
        codes::UNKNOWN_TOPIC_OR_PARTITION,
        format!("The topic '{name}' does not exist."),
    )
}

fn count_message(current: i32, requested: i32) -> String {
    if requested == current {
        format!("Topic already has {current} partitions.")
    } else {
        format!(
            "Topic currently has {current} partitions, which is higher than the requested {requested}."
        )
    }
}

/// Kafka's checks, in Kafka's order: the count, then the assignments.
fn check(
    topic: &TopicMeta,
    t: &CreatePartitionsTopic,
    brokers: &BTreeSet<i32>,
) -> Result<(), Refusal> {
    let current = topic.partitions;
    if t.count <= current {
        return Err((codes::INVALID_PARTITIONS, count_message(current, t.count)));
    }
    if t.count > MAX_PARTITIONS_PER_TOPIC {
        return Err((
            codes::INVALID_PARTITIONS,
            format!(
                "A topic may have at most {MAX_PARTITIONS_PER_TOPIC} partitions; {} were requested.",
                t.count
            ),
        ));
    }
    // Null is "no assignments"; an empty list is taken the same way (some clients send one).
    match t.assignments.as_deref() {
        None | Some([]) => Ok(()),
        Some(assignments) => check_assignments(current, t.count, assignments, brokers),
    }
}

fn check_assignments(
    current: i32,
    count: i32,
    assignments: &[CreatePartitionsAssignment],
    brokers: &BTreeSet<i32>,
) -> Result<(), Refusal> {
    let invalid = |message: String| Err((codes::INVALID_REPLICA_ASSIGNMENT, message));
    let increase = i64::from(count) - i64::from(current);
    if assignments.len() as i64 != increase {
        return invalid(format!(
            "Increasing the number of partitions by {increase} but {} assignments provided.",
            assignments.len()
        ));
    }
    let unknown: BTreeSet<i32> = assignments
        .iter()
        .flat_map(|a| a.broker_ids.iter().map(|b| b.0))
        .filter(|b| !brokers.contains(b))
        .collect();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(i32::to_string).collect();
        return invalid(format!(
            "Unknown broker(s) in replica assignment: {}.",
            list.join(", ")
        ));
    }
    for (a, partition) in assignments.iter().zip(current..) {
        if a.broker_ids.is_empty() {
            return invalid(format!(
                "The manual partition assignment includes an empty replica list for partition id {partition}."
            ));
        }
        let distinct: BTreeSet<i32> = a.broker_ids.iter().map(|b| b.0).collect();
        if distinct.len() != a.broker_ids.len() {
            let list: Vec<String> = a.broker_ids.iter().map(|b| b.0.to_string()).collect();
            return invalid(format!(
                "Duplicate brokers not allowed in replica assignment: {} for partition id {partition}.",
                list.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "create_partitions_tests.rs"]
mod tests;
