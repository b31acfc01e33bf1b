//! The brokers clients are given, and which partitions each leads.
//!
//! librdkafka sends one ProduceRequest per partition and, when idempotent (so always inside a
//! transaction), keeps at most five in flight per broker connection. Through one connection a
//! producer writing sixteen partitions then reaches the open flush window with five of them and
//! waits a window per five. So each agent presents several broker ids at its one address, one
//! per *slot*, and spreads its partitions over the slots: the client opens a connection per id,
//! and every partition's request reaches the same window. A client that puts all partitions in
//! one request (the Java client, per broker) sends one request per slot instead, all in the same
//! window too. See docs/architecture.md, "Broker ids".
//!
//! A slot's id is `agent + slot × SLOT_STRIDE`; slot 0 is the agent's own id, the one
//! FindCoordinator and the metastore know it by. Every agent computes the same ids and leaders
//! from the same live set.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use skiff_metastore::types::{AgentInfo, TopicId, TopicMeta};

use crate::context::Agent;
use crate::handlers::str_bytes;
use crate::membership::leader_of;

/// The distance between an agent's broker ids. Decimal so that an operator reads an id as
/// "slot 3 of agent 2" (3000002); the metastore numbers agents from 0 upwards.
pub const SLOT_STRIDE: i32 = 1_000_000;

/// Most broker ids the cluster may present in total (`--broker-ids`).
pub const MAX_BROKER_IDS: u32 = 1024;

/// The broker id of `slot` on the agent whose own id is `agent`.
pub fn slot_id(agent: i32, slot: i32) -> i32 {
    agent + slot * SLOT_STRIDE
}

/// Whether `id` is one of the ids of the agent whose own id is `agent`, in any slot.
pub fn is_id_of(id: i32, agent: i32) -> bool {
    id == agent || ((0..SLOT_STRIDE).contains(&agent) && id > 0 && id % SLOT_STRIDE == agent)
}

/// How many slots each of `agents` live agents presents: `total` ids shared out, at least one
/// each. An agent id past the stride gets one slot, since its slot ids would be ambiguous.
pub fn slots_per_agent(total: u32, agents: &[AgentInfo]) -> i32 {
    if agents.is_empty()
        || agents
            .iter()
            .any(|a| !(0..SLOT_STRIDE).contains(&a.broker_id))
    {
        return 1;
    }
    let total = total.clamp(1, MAX_BROKER_IDS) as usize;
    // At most MAX_BROKER_IDS, so it fits an i32 and every slot id stays below i32::MAX.
    total.div_ceil(agents.len()) as i32
}

/// The slot leading `partition` on whichever agent leads it: consecutive partitions of a topic
/// take consecutive slots, starting from a place the topic's id picks, so one topic's partitions
/// spread evenly and different topics start apart.
pub fn slot_of(topic: TopicId, partition: i32, slots: i32) -> i32 {
    let bytes = topic.as_bytes();
    let start = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let slots = slots.max(1) as u32;
    let p = partition.max(0) as u32;
    ((start % slots + p % slots) % slots) as i32
}

/// Whom an answer listing brokers is for: the listener its connection came in on, and whether
/// its client wants every slot (see [`crate::session::Client`]).
#[derive(Clone, Debug)]
pub struct Audience {
    pub listener: std::sync::Arc<str>,
    pub slotted: bool,
}

impl Audience {
    /// A client of the default listener, as tests are.
    pub fn plaintext(slotted: bool) -> Self {
        Self {
            listener: "PLAINTEXT".into(),
            slotted,
        }
    }
}

/// The brokers of one answer: the live agents, this one always among them (it is answering,
/// whatever the last heartbeat said). Metadata, DescribeCluster, DescribeTopicPartitions,
/// DescribeLogDirs and OffsetForLeaderEpoch all read leaders and the leader epoch from here, so
/// they agree.
pub(crate) struct Brokers {
    /// This agent's own id (slot 0).
    pub me: i32,
    /// The leader epoch of every partition: the live set's epoch, which moves forward whenever
    /// the set (and so any partition's leader) changes.
    pub epoch: i32,
    pub agents: Vec<AgentInfo>,
    pub slots: i32,
}

impl Brokers {
    /// The brokers for a connection on `listener`, at their addresses for it (agents without
    /// it are left out: any agent takes any partition, so the others lead theirs); `slotted`
    /// gives every agent's slots, for the clients that need them (see
    /// [`crate::session::Client`]), and otherwise one id per agent.
    pub fn for_audience(agent: &Agent, audience: &Audience) -> Self {
        Self::of(agent, &audience.listener, audience.slotted)
    }

    /// The brokers by the addresses the agents are known by (their first listener's), for
    /// answers that name no address.
    pub fn known(agent: &Agent, slotted: bool) -> Self {
        Self::of(agent, &agent.membership.primary(), slotted)
    }

    pub fn of(agent: &Agent, listener: &str, slotted: bool) -> Self {
        let view = agent.membership.view();
        let me = agent.broker_id();
        let mut agents = agent.membership.agents_for(listener, &view.agents);
        if !agents.iter().any(|a| a.broker_id == me) {
            let known = AgentInfo {
                broker_id: me,
                host: agent.config.advertised_host.clone(),
                port: agent.config.advertised_port,
                last_heartbeat_ms: 0,
                session_timeout_ms: 0,
            };
            let (host, port) = agent
                .membership
                .address(listener, &known)
                .unwrap_or((known.host.clone(), known.port));
            agents.push(AgentInfo {
                host,
                port,
                ..known
            });
            agents.sort_by_key(|a| a.broker_id);
        }
        let slots = if slotted {
            slots_per_agent(agent.config.broker_ids, &agents)
        } else {
            1
        };
        Self {
            me,
            epoch: leader_epoch(view.epoch),
            agents,
            slots,
        }
    }

    /// The controller clients are told of: the answering agent (any agent serves admin
    /// requests, and each names itself, so a client never chases a controller elsewhere).
    pub fn controller(&self) -> i32 {
        self.me
    }

    /// Every broker id with its agent, slot by slot, so that the first `agents.len()` are the
    /// agents' own ids.
    pub fn ids(&self) -> impl Iterator<Item = (i32, &AgentInfo)> + '_ {
        (0..self.slots).flat_map(move |slot| {
            self.agents
                .iter()
                .map(move |a| (slot_id(a.broker_id, slot), a))
        })
    }

    /// The agent leading a partition (its own id), chosen by rendezvous hashing so that
    /// clients spread over the agents and only a departed agent's partitions move.
    pub fn leader_agent(&self, meta: &TopicMeta, partition: i32) -> i32 {
        leader_of(meta.topic_id, partition, &self.agents).map_or(self.me, |a| a.broker_id)
    }

    /// The broker id leading a partition: a slot of its leading agent.
    pub fn leader(&self, meta: &TopicMeta, partition: i32) -> i32 {
        let slot = slot_of(meta.topic_id, partition, self.slots);
        slot_id(self.leader_agent(meta, partition), slot)
    }

    /// Any agent accepts any partition, so every live agent is listed as a replica in sync, by
    /// its id in the partition's slot.
    pub fn replicas(&self, meta: &TopicMeta, partition: i32) -> Vec<BrokerId> {
        let slot = slot_of(meta.topic_id, partition, self.slots);
        self.agents
            .iter()
            .map(|a| BrokerId(slot_id(a.broker_id, slot)))
            .collect()
    }

    pub fn metadata_brokers(&self) -> Vec<MetadataResponseBroker> {
        self.ids()
            .map(|(id, a)| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(id))
                    .with_host(str_bytes(a.host.clone()))
                    .with_port(i32::from(a.port))
            })
            .collect()
    }

    pub fn topic(&self, meta: &TopicMeta) -> MetadataResponseTopic {
        let partitions = (0..meta.partitions)
            .map(|p| {
                let replicas = self.replicas(meta, p);
                MetadataResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(BrokerId(self.leader(meta, p)))
                    .with_leader_epoch(self.epoch)
                    .with_isr_nodes(replicas.clone())
                    .with_replica_nodes(replicas)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(ids: &[i32]) -> Vec<AgentInfo> {
        ids.iter()
            .map(|&id| AgentInfo {
                broker_id: id,
                host: "h".into(),
                port: 9092,
                last_heartbeat_ms: 0,
                session_timeout_ms: 0,
            })
            .collect()
    }

    #[test]
    fn slot_ids_belong_to_their_agent_only() {
        for agent in [0, 1, 7, 999_999] {
            for slot in 0..32 {
                let id = slot_id(agent, slot);
                assert!(is_id_of(id, agent), "{id} of {agent}");
                assert!(!is_id_of(id, agent + 1), "{id} not of {}", agent + 1);
            }
        }
        assert!(!is_id_of(-1, 0));
        assert!(!is_id_of(-1_000_000, 0));
        // An agent past the stride has one id, and no other agent's id is taken for it.
        assert!(is_id_of(1_000_005, 1_000_005));
        assert!(!is_id_of(2_000_005, 1_000_005));
    }

    #[test]
    fn the_total_is_shared_out_with_one_each_at_least() {
        assert_eq!(slots_per_agent(32, &agents(&[0])), 32);
        assert_eq!(slots_per_agent(32, &agents(&[0, 1, 2])), 11);
        assert_eq!(
            slots_per_agent(32, &agents(&(0..40).collect::<Vec<_>>())),
            1
        );
        assert_eq!(slots_per_agent(0, &agents(&[0])), 1);
        assert_eq!(
            slots_per_agent(u32::MAX, &agents(&[0])),
            MAX_BROKER_IDS as i32
        );
        assert_eq!(slots_per_agent(32, &agents(&[0, SLOT_STRIDE])), 1);
        assert_eq!(slots_per_agent(32, &[]), 1);
        // The largest slot id of the largest agent fits an i32.
        let top = slot_id(SLOT_STRIDE - 1, MAX_BROKER_IDS as i32 - 1);
        assert!(top > 0);
    }

    #[test]
    fn a_topics_partitions_take_consecutive_slots() {
        let topic = TopicId::from_u128(0xdead_beef << 96);
        let slots: Vec<i32> = (0..16).map(|p| slot_of(topic, p, 32)).collect();
        let mut distinct = slots.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 16, "{slots:?}");
        // More partitions than slots: each slot leads as many as any other, give or take one.
        let mut load = [0; 5];
        for p in 0..23 {
            load[slot_of(topic, p, 5) as usize] += 1;
        }
        assert!(load.iter().all(|&n| n == 4 || n == 5), "{load:?}");
        assert_eq!(slot_of(topic, 3, 1), 0);
        assert_eq!(slot_of(topic, -1, 0), 0);
    }
}
