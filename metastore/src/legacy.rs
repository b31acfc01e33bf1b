//! The state as older snapshot versions held it, for reading them. postcard names fields by
//! position, so each version that adds a field keeps the layout before it here, with a
//! conversion to the current [`StateMachine`]. A child module of the state machine, so it can
//! build its private state.

use std::collections::{BTreeMap, VecDeque};

use imbl::{OrdMap, Vector};
use serde::Deserialize;

use super::run_index::RunIndex;
use super::users::Security;
use super::{
    Lease, ObjectEntry, PartitionState, ProducerState, SequencedBatch, StateMachine, TopicState,
};
use crate::legacy_commands::BatchLocationV1;
use crate::security::{AclBinding, AdvertisedListener, ScramCredential, ScramMechanism};
use crate::types::{
    AgentInfo, BatchLocation, BrokerConfigs, CommittedOffset, GroupPartition, ObjectId, TopicId,
    TopicMeta, TopicPartition,
};

/// Topics as versions 2 to 4 held them: producers without the time of their last write.
#[derive(Clone, Deserialize)]
pub(crate) struct TopicStateV4 {
    meta: TopicMeta,
    #[serde(deserialize_with = "crate::capped::vector")]
    partitions: Vector<PartitionStateV4>,
}

#[derive(Clone, Deserialize)]
struct PartitionStateV4 {
    log_start_offset: i64,
    high_watermark: i64,
    #[serde(deserialize_with = "crate::capped::map")]
    index: OrdMap<i64, BatchLocationV1>,
    #[serde(deserialize_with = "crate::capped::vector")]
    timestamp_highs: Vector<(i64, i64)>,
    #[serde(deserialize_with = "crate::capped::map")]
    producers: OrdMap<i64, ProducerStateV4>,
}

#[derive(Clone, Deserialize)]
struct ProducerStateV4 {
    epoch: i16,
    batches: VecDeque<SequencedBatch>,
}

/// Producers of an older snapshot have no last write: the first expiry pass starts their clock.
/// Each older version reaches the current state through version 5's layout, so the index and
/// the partitions are converted in one place.
fn topics(v: OrdMap<TopicId, TopicStateV4>) -> OrdMap<TopicId, TopicStateV5> {
    v.iter()
        .map(|(id, t)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| PartitionStateV5 {
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                    index: p.index.clone(),
                    timestamp_highs: p.timestamp_highs.clone(),
                    producers: p
                        .producers
                        .iter()
                        .map(|(pid, s)| {
                            let state = ProducerState {
                                epoch: s.epoch,
                                batches: s.batches.clone(),
                                last_write_ms: None,
                            };
                            (*pid, state)
                        })
                        .collect(),
                })
                .collect();
            let topic = TopicStateV5 {
                meta: t.meta.clone(),
                partitions,
            };
            (*id, topic)
        })
        .collect()
}

/// Per-batch entries become runs of one batch each: the same index, entry for entry.
fn runs(index: &OrdMap<i64, BatchLocationV1>) -> RunIndex {
    RunIndex::from_ascending(index.values().map(|b| BatchLocation::from(*b)))
}

/// Topics as version 5 held them: one index entry per batch.
#[derive(Clone, Deserialize)]
pub(crate) struct TopicStateV5 {
    meta: TopicMeta,
    #[serde(deserialize_with = "crate::capped::vector")]
    partitions: Vector<PartitionStateV5>,
}

#[derive(Clone, Deserialize)]
struct PartitionStateV5 {
    log_start_offset: i64,
    high_watermark: i64,
    #[serde(deserialize_with = "crate::capped::map")]
    index: OrdMap<i64, BatchLocationV1>,
    #[serde(deserialize_with = "crate::capped::vector")]
    timestamp_highs: Vector<(i64, i64)>,
    #[serde(deserialize_with = "crate::capped::map")]
    producers: OrdMap<i64, ProducerState>,
}

/// The state as snapshot version 5 (and the JSON version 1, with its defaults) held it, before
/// index runs.
#[derive(Deserialize)]
pub(crate) struct StateMachineV5 {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicStateV5>,
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    #[serde(default)]
    agents: BTreeMap<String, AgentInfo>,
    #[serde(default)]
    broker_ids: BTreeMap<String, i32>,
    #[serde(default)]
    agents_epoch: i64,
    #[serde(default)]
    #[serde(deserialize_with = "crate::capped::map_of_maps")]
    groups: OrdMap<String, OrdMap<GroupPartition, CommittedOffset>>,
    #[serde(default)]
    leases: BTreeMap<String, Lease>,
    #[serde(default)]
    exports: BTreeMap<TopicPartition, i64>,
    #[serde(default)]
    broker_last_seen: BTreeMap<String, i64>,
    #[serde(default)]
    next_broker_id: i32,
}

/// Version 5 reaches the current state through version 7's layout: per-batch entries become
/// runs, and the rest is as version 7 converts it.
impl From<StateMachineV5> for StateMachine {
    fn from(v: StateMachineV5) -> Self {
        let topics = v
            .topics
            .iter()
            .map(|(id, t)| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| PartitionStateV7 {
                        log_start_offset: p.log_start_offset,
                        high_watermark: p.high_watermark,
                        index: runs(&p.index),
                        timestamp_highs: p.timestamp_highs.clone(),
                        producers: p.producers.clone(),
                    })
                    .collect();
                let topic = TopicStateV7 {
                    meta: t.meta.clone(),
                    partitions,
                };
                (*id, topic)
            })
            .collect();
        StateMachineV7 {
            topics_by_name: v.topics_by_name,
            topics,
            objects: v.objects,
            next_producer_id: v.next_producer_id,
            agents: v.agents,
            broker_ids: v.broker_ids,
            agents_epoch: v.agents_epoch,
            groups: v.groups,
            leases: v.leases,
            exports: v.exports,
            broker_last_seen: v.broker_last_seen,
            next_broker_id: v.next_broker_id,
            broker_configs: Default::default(),
        }
        .into()
    }
}

/// The state as snapshot version 6 held it, before dynamic broker configs.
#[derive(Deserialize)]
pub(crate) struct StateMachineV6 {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicStateV7>,
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    agents: BTreeMap<String, AgentInfo>,
    broker_ids: BTreeMap<String, i32>,
    agents_epoch: i64,
    #[serde(deserialize_with = "crate::capped::map_of_maps")]
    groups: OrdMap<String, OrdMap<GroupPartition, CommittedOffset>>,
    leases: BTreeMap<String, Lease>,
    exports: BTreeMap<TopicPartition, i64>,
    broker_last_seen: BTreeMap<String, i64>,
    next_broker_id: i32,
}

impl From<StateMachineV6> for StateMachine {
    fn from(v: StateMachineV6) -> Self {
        StateMachineV7 {
            topics_by_name: v.topics_by_name,
            topics: v.topics,
            objects: v.objects,
            next_producer_id: v.next_producer_id,
            agents: v.agents,
            broker_ids: v.broker_ids,
            agents_epoch: v.agents_epoch,
            groups: v.groups,
            leases: v.leases,
            exports: v.exports,
            broker_last_seen: v.broker_last_seen,
            next_broker_id: v.next_broker_id,
            broker_configs: Default::default(),
        }
        .into()
    }
}

/// Topics as versions 6 and 7 held them, before transactions.
#[derive(Clone, Deserialize)]
pub(crate) struct TopicStateV7 {
    meta: TopicMeta,
    #[serde(deserialize_with = "crate::capped::vector")]
    partitions: Vector<PartitionStateV7>,
}

#[derive(Clone, Deserialize)]
struct PartitionStateV7 {
    log_start_offset: i64,
    high_watermark: i64,
    index: RunIndex,
    #[serde(deserialize_with = "crate::capped::vector")]
    timestamp_highs: Vector<(i64, i64)>,
    #[serde(deserialize_with = "crate::capped::map")]
    producers: OrdMap<i64, ProducerState>,
}

/// The state as snapshot version 7 held it, before transactions.
#[derive(Deserialize)]
pub(crate) struct StateMachineV7 {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicStateV7>,
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    agents: BTreeMap<String, AgentInfo>,
    broker_ids: BTreeMap<String, i32>,
    agents_epoch: i64,
    #[serde(deserialize_with = "crate::capped::map_of_maps")]
    groups: OrdMap<String, OrdMap<GroupPartition, CommittedOffset>>,
    leases: BTreeMap<String, Lease>,
    exports: BTreeMap<TopicPartition, i64>,
    broker_last_seen: BTreeMap<String, i64>,
    next_broker_id: i32,
    broker_configs: BrokerConfigs,
}

impl From<StateMachineV7> for StateMachine {
    fn from(v: StateMachineV7) -> Self {
        let topics = v
            .topics
            .iter()
            .map(|(id, t)| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| PartitionState {
                        log_start_offset: p.log_start_offset,
                        high_watermark: p.high_watermark,
                        index: p.index.clone(),
                        timestamp_highs: p.timestamp_highs.clone(),
                        producers: p.producers.clone(),
                        open_txns: OrdMap::new(),
                        aborted: Vector::new(),
                        bytes: Default::default(),
                    })
                    .collect();
                let topic = TopicState {
                    meta: t.meta.clone(),
                    partitions,
                };
                (*id, topic)
            })
            .collect();
        Self {
            topics_by_name: v.topics_by_name,
            topics,
            objects: v.objects,
            next_producer_id: v.next_producer_id,
            agents: v.agents,
            broker_ids: v.broker_ids,
            agents_epoch: v.agents_epoch,
            groups: v.groups,
            leases: v.leases,
            exports: v.exports,
            broker_last_seen: v.broker_last_seen,
            next_broker_id: v.next_broker_id,
            broker_configs: v.broker_configs,
            transactions: Default::default(),
            security: Default::default(),
            refs: Default::default(),
        }
    }
}

/// The state as snapshot version 8 held it, before the security state (users, ACLs).
#[derive(Deserialize)]
pub(crate) struct StateMachineV8 {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicState>,
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    agents: BTreeMap<String, AgentInfo>,
    broker_ids: BTreeMap<String, i32>,
    agents_epoch: i64,
    #[serde(deserialize_with = "crate::capped::map_of_maps")]
    groups: OrdMap<String, OrdMap<GroupPartition, CommittedOffset>>,
    leases: BTreeMap<String, Lease>,
    exports: BTreeMap<TopicPartition, i64>,
    broker_last_seen: BTreeMap<String, i64>,
    next_broker_id: i32,
    broker_configs: BrokerConfigs,
    transactions: super::transactions::Transactions,
}

impl From<StateMachineV8> for StateMachine {
    fn from(v: StateMachineV8) -> Self {
        Self {
            topics_by_name: v.topics_by_name,
            topics: v.topics,
            objects: v.objects,
            next_producer_id: v.next_producer_id,
            agents: v.agents,
            broker_ids: v.broker_ids,
            agents_epoch: v.agents_epoch,
            groups: v.groups,
            leases: v.leases,
            exports: v.exports,
            broker_last_seen: v.broker_last_seen,
            next_broker_id: v.next_broker_id,
            broker_configs: v.broker_configs,
            transactions: v.transactions,
            security: Default::default(),
            refs: Default::default(),
        }
    }
}

/// The state as snapshot version 9 held it, before client quotas: the layout of version 10 with
/// a smaller security state.
#[derive(Deserialize)]
pub(crate) struct StateMachineV9 {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicState>,
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    agents: BTreeMap<String, AgentInfo>,
    broker_ids: BTreeMap<String, i32>,
    agents_epoch: i64,
    #[serde(deserialize_with = "crate::capped::map_of_maps")]
    groups: OrdMap<String, OrdMap<GroupPartition, CommittedOffset>>,
    leases: BTreeMap<String, Lease>,
    exports: BTreeMap<TopicPartition, i64>,
    broker_last_seen: BTreeMap<String, i64>,
    next_broker_id: i32,
    broker_configs: BrokerConfigs,
    transactions: super::transactions::Transactions,
    security: SecurityV9,
}

/// The security state of snapshot version 9: users, ACLs and listeners, no quotas.
#[derive(Deserialize)]
struct SecurityV9 {
    #[serde(deserialize_with = "crate::capped::map")]
    users: OrdMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    #[serde(deserialize_with = "crate::capped::map")]
    acls: OrdMap<AclBinding, ()>,
    acls_version: u64,
    listeners: BTreeMap<String, Vec<AdvertisedListener>>,
}

impl From<StateMachineV9> for StateMachine {
    fn from(v: StateMachineV9) -> Self {
        let s = v.security;
        Self {
            topics_by_name: v.topics_by_name,
            topics: v.topics,
            objects: v.objects,
            next_producer_id: v.next_producer_id,
            agents: v.agents,
            broker_ids: v.broker_ids,
            agents_epoch: v.agents_epoch,
            groups: v.groups,
            leases: v.leases,
            exports: v.exports,
            broker_last_seen: v.broker_last_seen,
            next_broker_id: v.next_broker_id,
            broker_configs: v.broker_configs,
            transactions: v.transactions,
            security: Security::from_v9(s.users, s.acls, s.acls_version, s.listeners),
            refs: Default::default(),
        }
    }
}

/// The state as snapshot version 4 held it, before the bounds on what it keeps (producers'
/// last writes, addresses' last heartbeats).
#[derive(Deserialize)]
pub(crate) struct StateMachineV4 {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicStateV4>,
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    agents: BTreeMap<String, AgentInfo>,
    broker_ids: BTreeMap<String, i32>,
    agents_epoch: i64,
    #[serde(deserialize_with = "crate::capped::map_of_maps")]
    groups: OrdMap<String, OrdMap<GroupPartition, CommittedOffset>>,
    leases: BTreeMap<String, Lease>,
    exports: BTreeMap<TopicPartition, i64>,
}

impl From<StateMachineV4> for StateMachine {
    fn from(v: StateMachineV4) -> Self {
        StateMachineV5 {
            topics_by_name: v.topics_by_name,
            topics: topics(v.topics),
            objects: v.objects,
            next_producer_id: v.next_producer_id,
            agents: v.agents,
            broker_ids: v.broker_ids,
            agents_epoch: v.agents_epoch,
            groups: v.groups,
            leases: v.leases,
            exports: v.exports,
            broker_last_seen: BTreeMap::new(),
            next_broker_id: 0,
        }
        .into()
    }
}

/// The state as snapshot version 3 held it, before compactor leases.
#[derive(Deserialize)]
pub(crate) struct StateMachineV3 {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicStateV4>,
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    agents: BTreeMap<String, AgentInfo>,
    broker_ids: BTreeMap<String, i32>,
    agents_epoch: i64,
    #[serde(deserialize_with = "crate::capped::map_of_maps")]
    groups: OrdMap<String, OrdMap<GroupPartition, CommittedOffset>>,
}

impl From<StateMachineV3> for StateMachine {
    fn from(v: StateMachineV3) -> Self {
        StateMachineV4 {
            topics_by_name: v.topics_by_name,
            topics: v.topics,
            objects: v.objects,
            next_producer_id: v.next_producer_id,
            agents: v.agents,
            broker_ids: v.broker_ids,
            agents_epoch: v.agents_epoch,
            groups: v.groups,
            leases: BTreeMap::new(),
            exports: BTreeMap::new(),
        }
        .into()
    }
}

/// The state as snapshot version 2 held it, before consumer groups.
#[derive(Deserialize)]
pub(crate) struct StateMachineV2 {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicStateV4>,
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    agents: BTreeMap<String, AgentInfo>,
    broker_ids: BTreeMap<String, i32>,
    agents_epoch: i64,
}

impl From<StateMachineV2> for StateMachine {
    fn from(v: StateMachineV2) -> Self {
        StateMachineV3 {
            topics_by_name: v.topics_by_name,
            topics: v.topics,
            objects: v.objects,
            next_producer_id: v.next_producer_id,
            agents: v.agents,
            broker_ids: v.broker_ids,
            agents_epoch: v.agents_epoch,
            groups: OrdMap::new(),
        }
        .into()
    }
}
