use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use skiff_metastore::types::{AgentInfo, TopicMeta};

use super::str_bytes;
use crate::authz::{self, Principal, Resource};
use crate::context::Agent;
use crate::membership::leader_of;
use crate::protocol::codes;
use crate::topics::is_internal_topic;

pub async fn handle(agent: &Agent, version: i16, req: MetadataRequest) -> MetadataResponse {
    let brokers = Brokers::of(agent);
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
                let entry = match agent.topic_or_create(&name, allow_create).await {
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
                        .filter(|meta| !is_internal_topic(&meta.name))
                        .map(|meta| {
                            brokers
                                .topic(meta)
                                .with_topic_authorized_operations(topic_ops)
                        }),
                );
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
        .with_controller_id(BrokerId(brokers.controller()))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}

/// The brokers a client is given: the live agents, this one always among them (it is answering,
/// whatever the last heartbeat said). Metadata, DescribeCluster, DescribeTopicPartitions and
/// OffsetForLeaderEpoch all read leaders and the leader epoch from here, so they agree.
pub(crate) struct Brokers {
    pub me: i32,
    /// The leader epoch of every partition: the live set's epoch, which moves forward whenever
    /// the set (and so any partition's leader) changes.
    pub epoch: i32,
    pub agents: Vec<AgentInfo>,
    ids: Vec<BrokerId>,
}

impl Brokers {
    pub fn of(agent: &Agent) -> Self {
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
            epoch: leader_epoch(view.epoch),
            agents,
            ids,
        }
    }

    /// The controller clients are told of: the answering agent (any agent serves admin
    /// requests, and each names itself, so a client never chases a controller elsewhere).
    pub fn controller(&self) -> i32 {
        self.me
    }

    /// Each partition is led by one live agent, chosen by rendezvous hashing so that clients
    /// spread over the agents and only a departed agent's partitions move.
    pub fn leader(&self, meta: &TopicMeta, partition: i32) -> i32 {
        leader_of(meta.topic_id, partition, &self.agents).map_or(self.me, |a| a.broker_id)
    }

    /// Any agent accepts any partition, so every live agent is listed as a replica in sync.
    pub fn replicas(&self) -> Vec<BrokerId> {
        self.ids.clone()
    }

    fn topic(&self, meta: &TopicMeta) -> MetadataResponseTopic {
        let partitions = (0..meta.partitions)
            .map(|p| {
                MetadataResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(BrokerId(self.leader(meta, p)))
                    .with_leader_epoch(self.epoch)
                    .with_replica_nodes(self.replicas())
                    .with_isr_nodes(self.replicas())
            })
            .collect();
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(str_bytes(meta.name.clone()))))
            .with_topic_id(meta.topic_id)
            .with_partitions(partitions)
    }
}

/// The live set's epoch as Kafka's 32-bit leader epoch.
pub(crate) fn leader_epoch(agents_epoch: i64) -> i32 {
    i32::try_from(agents_epoch.max(0)).unwrap_or(i32::MAX)
}
