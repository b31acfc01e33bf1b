use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use skiff_metastore::types::TopicMeta;

use super::str_bytes;
use crate::context::Agent;
use crate::protocol::codes;

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(agent: &Agent, version: i16, req: MetadataRequest) -> MetadataResponse {
    let node = BrokerId(agent.config.node_id);
    let broker = MetadataResponseBroker::default()
        .with_node_id(node)
        .with_host(str_bytes(agent.config.advertised_host.clone()))
        .with_port(i32::from(agent.config.advertised_port));
    // Before v4 every metadata request may auto-create; from v4 the client says so.
    let allow_create = version < 4 || req.allow_auto_topic_creation;

    let mut topics = Vec::new();
    match req.topics {
        // v0 asks for every topic with an empty list; later versions with null.
        Some(requested) if !(version == 0 && requested.is_empty()) => {
            for t in requested {
                let Some(name) = t.name else {
                    // Lookup by id (v10+).
                    let known = match agent.metastore.topics().await {
                        Ok(all) => all.into_iter().find(|m| m.topic_id == t.topic_id),
                        Err(_) => None,
                    };
                    topics.push(match known {
                        Some(meta) => topic(agent, &meta),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(t.topic_id)
                            .with_error_code(codes::UNKNOWN_TOPIC_ID)
                            .with_topic_authorized_operations(OPERATIONS_OMITTED),
                    });
                    continue;
                };
                let entry = match agent.topic_or_create(&name, allow_create).await {
                    Ok(meta) => topic(agent, &meta),
                    Err(e) => MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_error_code(codes::metastore_error(&e))
                        .with_topic_authorized_operations(OPERATIONS_OMITTED),
                };
                topics.push(entry);
            }
        }
        _ => {
            if let Ok(all) = agent.metastore.topics().await {
                topics.extend(all.iter().map(|meta| topic(agent, meta)));
            }
        }
    }

    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(str_bytes(agent.config.cluster_id.clone())))
        .with_controller_id(node)
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

/// Every partition is led by this agent: any agent accepts writes and serves reads for any
/// partition, so there is no leader to route to.
fn topic(agent: &Agent, meta: &TopicMeta) -> MetadataResponseTopic {
    let node = BrokerId(agent.config.node_id);
    let partitions = (0..meta.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(meta.name.clone()))))
        .with_topic_id(meta.topic_id)
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}
