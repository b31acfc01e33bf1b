use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::str_bytes;
use crate::acl::{resource, Caller, Operation};
use crate::authz::{self, Principal, Resource};
use crate::brokers::Brokers;
use crate::context::Agent;
use crate::protocol::codes;
use crate::topics::is_internal_topic;

pub async fn handle(
    agent: &Agent,
    caller: &Caller,
    version: i16,
    req: MetadataRequest,
    audience: &crate::brokers::Audience,
) -> MetadataResponse {
    let describe = |name: &str| agent.allowed(caller, Operation::Describe, resource::TOPIC, name);
    let brokers = Brokers::for_audience(agent, audience);
    // Before v4 every metadata request may auto-create; from v4 the client says so.
    let allow_create = version < 4 || req.allow_auto_topic_creation;
    let principal = Principal;
    let topic_ops = authz::if_requested(
        version >= 8 && req.include_topic_authorized_operations,
        Resource::Topic,
        &principal,
    );
    // Asked in v8-10 only; from v11 DescribeCluster answers it.
    let cluster_ops = authz::if_requested(
        (8..=10).contains(&version) && req.include_cluster_authorized_operations,
        Resource::Cluster,
        &principal,
    );

    let mut topics = Vec::new();
    match req.topics {
        // v0 asks for every topic with an empty list; later versions with null.
        Some(requested) if !(version == 0 && requested.is_empty()) => {
            for t in requested {
                let Some(name) = t.name else {
                    // Lookup by id (v10+).
                    let known = agent.topic_with_id(t.topic_id).await.ok().flatten();
                    let known = known.filter(|m| describe(&m.name));
                    topics.push(match known.filter(|m| !is_internal_topic(&m.name)) {
                        Some(meta) => brokers
                            .topic(&meta)
                            .with_topic_authorized_operations(topic_ops),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(t.topic_id)
                            .with_error_code(codes::UNKNOWN_TOPIC_ID),
                    });
                    continue;
                };
                // Kafka's internal topics hold what Skiff keeps in the metastore: there is no
                // such log to describe, and auto-creation must not make an ordinary one.
                if is_internal_topic(&name) {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_error_code(codes::UNKNOWN_TOPIC_OR_PARTITION),
                    );
                    continue;
                }
                // Kafka: a topic the caller may not describe is TOPIC_AUTHORIZATION_FAILED,
                // and creating one takes CREATE on the cluster or the topic.
                if !describe(&name) {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_error_code(codes::TOPIC_AUTHORIZATION_FAILED),
                    );
                    continue;
                }
                let may_create = allow_create
                    && (agent.allowed(
                        caller,
                        Operation::Create,
                        resource::CLUSTER,
                        resource::CLUSTER_NAME,
                    ) || agent.allowed(caller, Operation::Create, resource::TOPIC, &name));
                let entry = match agent.topic_or_create(&name, may_create).await {
                    Ok(meta) => brokers
                        .topic(&meta)
                        .with_topic_authorized_operations(topic_ops),
                    Err(e) => MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_error_code(codes::metastore_error(&e)),
                };
                topics.push(entry);
            }
        }
        _ => {
            if let Ok(all) = agent.all_topics().await {
                topics.extend(
                    all.iter()
                        // All topics: those the caller may not describe are left out.
                        .filter(|meta| !is_internal_topic(&meta.name) && describe(&meta.name))
                        .map(|meta| {
                            brokers
                                .topic(meta)
                                .with_topic_authorized_operations(topic_ops)
                        }),
                );
            }
        }
    }

    MetadataResponse::default()
        .with_brokers(brokers.metadata_brokers())
        .with_cluster_id(Some(str_bytes(agent.config.cluster_id.clone())))
        .with_controller_id(BrokerId(brokers.controller()))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}
