use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use skiff_metastore::types::MetaError;

use super::str_bytes;
use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::protocol::codes;

pub async fn handle(
    agent: &Agent,
    caller: &Caller,
    _version: i16,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    // Kafka: CREATE on the cluster, or on the topic itself.
    let on_cluster = agent.allowed(
        caller,
        Operation::Create,
        resource::CLUSTER,
        resource::CLUSTER_NAME,
    );
    // Kafka refuses every name the request repeats, once, and goes on with the others.
    let duplicates = super::duplicates(req.topics.iter().map(|t| t.name.to_string()));
    let mut answered_duplicates = BTreeSet::new();
    for t in req.topics {
        let mut result = CreatableTopicResult::default().with_name(t.name.clone());
        if duplicates.contains(&t.name.to_string()) {
            if answered_duplicates.insert(t.name.to_string()) {
                results.push(
                    result
                        .with_error_code(codes::INVALID_REQUEST)
                        .with_error_message(Some(str_bytes("Duplicate topic name."))),
                );
            }
            continue;
        }
        if !on_cluster && !agent.allowed(caller, Operation::Create, resource::TOPIC, &t.name) {
            results.push(
                result
                    .with_error_code(codes::TOPIC_AUTHORIZATION_FAILED)
                    .with_error_message(Some(str_bytes("Authorization failed."))),
            );
            continue;
        }
        if crate::topics::is_internal_topic(&t.name) {
            let message = format!(
                "Creation of internal topic {} is prohibited.",
                t.name.as_str()
            );
            results.push(
                result
                    .with_error_code(codes::INVALID_REQUEST)
                    .with_error_message(Some(str_bytes(message))),
            );
            continue;
        }
        // Explicit assignments fix the partition count; -1 means the broker default.
        let partitions = if !t.assignments.is_empty() {
            t.assignments.len() as i32
        } else if t.num_partitions == -1 {
            agent.config.num_partitions
        } else {
            t.num_partitions
        };
        // Durability comes from the object store, so any replication factor is satisfied.
        if t.replication_factor == 0 || t.replication_factor < -1 {
            results.push(
                result
                    .with_error_code(codes::INVALID_REPLICATION_FACTOR)
                    .with_error_message(Some(str_bytes("replication factor must be -1 or >= 1"))),
            );
            continue;
        }
        let configs: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        if let Err(e) = crate::topic_config::validate_all(&configs) {
            results.push(
                result
                    .with_error_code(codes::INVALID_CONFIG)
                    .with_error_message(Some(str_bytes(e.0))),
            );
            continue;
        }
        if req.validate_only {
            let error = if partitions < 1 {
                codes::INVALID_PARTITIONS
            } else {
                match agent.metastore.topic_by_name(&t.name).await {
                    Ok(Some(_)) => codes::TOPIC_ALREADY_EXISTS,
                    _ => codes::NONE,
                }
            };
            results.push(
                result
                    .with_error_code(error)
                    .with_num_partitions(partitions),
            );
            continue;
        }
        result = match agent.create_topic(&t.name, partitions, configs).await {
            Ok(meta) => result
                .with_topic_id(meta.topic_id)
                .with_num_partitions(meta.partitions)
                .with_replication_factor(t.replication_factor.max(1)),
            Err(e) => {
                let message = match &e {
                    skiff_metastore::client::MetastoreError::Rejected(
                        MetaError::TopicAlreadyExists,
                    ) => format!("topic '{}' already exists", t.name.as_str()),
                    other => other.to_string(),
                };
                result
                    .with_error_code(codes::metastore_error(&e))
                    .with_error_message(Some(str_bytes(message)))
            }
        };
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}
