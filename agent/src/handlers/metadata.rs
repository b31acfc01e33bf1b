use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use skiff_metastore::types::{AgentInfo, TopicMeta};

use super::str_bytes;
use crate::context::Agent;
use crate::membership::leader_of;
use crate::protocol::codes;

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(agent: &Agent, version: i16, req: MetadataRequest) -> MetadataResponse {
    let brokers = Brokers::of(agent);
    // Before v4 every metadata request may auto-create; from v4 the client says so.
    let allow_create = version < 4 || req.allow_auto_topic_creation;

    let mut topics = Vec::new();
    match req.topics {
        // v0 asks for every topic with an empty list; later versions with null.
        Some(requested) if !(version == 0 && requested.is_empty()) => {
            for t in requested {
                let Some(name) = t.name else {
                    // Lookup by id (v10+).
                    let known = agent.topic_with_id(t.topic_id).await.ok().flatten();
                    topics.push(match known {
                        Some(meta) => topic(&brokers, &meta),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(t.topic_id)
                            .with_error_code(codes::UNKNOWN_TOPIC_ID)
                            .with_topic_authorized_operations(OPERATIONS_OMITTED),
                    });
                    continue;
                };
                let entry = match agent.topic_or_create(&name, allow_create).await {
                    Ok(meta) => topic(&brokers, &meta),
                    Err(e) => MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_error_code(codes::metastore_error(&e))
                        .with_topic_authorized_operations(OPERATIONS_OMITTED),
                };
                topics.push(entry);
            }
        }
        _ => {
            if let Ok(all) = agent.all_topics().await {
                topics.extend(all.iter().map(|meta| topic(&brokers, meta)));
            }
        }
    }

    let broker_list = brokers
        .agents
        .iter()
        .map(|a| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(a.broker_id))
                .with_host(str_bytes(a.host.clone()))
                .with_port(i32::from(a.port))
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(broker_list)
        .with_cluster_id(Some(str_bytes(agent.config.cluster_id.clone())))
        .with_controller_id(BrokerId(brokers.me))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

/// The brokers a client is given: the live agents, this one always among them (it is answering,
/// whatever the last heartbeat said).
struct Brokers {
    me: i32,
    epoch: i32,
    agents: Vec<AgentInfo>,
    ids: Vec<BrokerId>,
}

impl Brokers {
    fn of(agent: &Agent) -> Self {
        let view = agent.membership.view();
        let me = agent.broker_id();
        let mut agents = view.agents.clone();
        if !agents.iter().any(|a| a.broker_id == me) {
            agents.push(AgentInfo {
                broker_id: me,
                host: agent.config.advertised_host.clone(),
                port: agent.config.advertised_port,
                last_heartbeat_ms: 0,
                session_timeout_ms: 0,
            });
            agents.sort_by_key(|a| a.broker_id);
        }
        let ids = agents.iter().map(|a| BrokerId(a.broker_id)).collect();
        Self {
            me,
            epoch: i32::try_from(view.epoch).unwrap_or(i32::MAX),
            agents,
            ids,
        }
    }
}

/// Each partition is led by one live agent, chosen by rendezvous hashing so that clients spread
/// over the agents and only a departed agent's partitions move. Any agent accepts any partition,
/// so "leader" only steers clients; every live agent is listed as a replica in sync.
fn topic(brokers: &Brokers, meta: &TopicMeta) -> MetadataResponseTopic {
    let partitions = (0..meta.partitions)
        .map(|p| {
            let leader =
                leader_of(meta.topic_id, p, &brokers.agents).map_or(brokers.me, |a| a.broker_id);
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(brokers.epoch)
                .with_replica_nodes(brokers.ids.clone())
                .with_isr_nodes(brokers.ids.clone())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(meta.name.clone()))))
        .with_topic_id(meta.topic_id)
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}
