//! The metastore's state and the one function that changes it.
//!
//! Everything here is pure: no clock, no randomness, no IO. Every replica applies the same
//! commands in the same order and must reach the same state, so anything that varies (time, ids)
//! arrives inside the [`Command`].

use std::collections::{BTreeMap, VecDeque};

use imbl::{OrdMap, Vector};
use serde::{Deserialize, Serialize};

use crate::types::{
    AgentHeartbeat, AgentInfo, AlterBrokerConfigs, AlterTopicConfigs, BatchAppend, BatchLocation,
    BrokerConfigs, Command, CommandResponse, CommitOffsets, CommittedOffset, ConfigOp,
    CreatePartitions, CreateTopic, GroupPartition, LiveAgents, MetaError, ObjectId,
    PartitionOffsets, TopicId, TopicMeta, TopicPartition,
};

/// Kafka's limit: longer names do not fit in the file names Kafka derives from them.
const MAX_TOPIC_NAME_LEN: usize = 249;

pub use crate::limits::MAX_PARTITIONS_PER_TOPIC;

/// Kafka keeps the last five batches per producer and partition: a producer has at most five
/// requests in flight with idempotence on, so any retry it can send is among them.
const PRODUCER_BATCHES_KEPT: usize = 5;

/// The whole replicated state. Serialized as is into snapshots, so changing a field means a new
/// snapshot version.
///
/// What grows with the data (topics and their partitions' indexes, objects, producers, groups'
/// offsets) is held in persistent maps and vectors (imbl), which share structure between
/// copies: a clone costs O(1), so a snapshot is written from a clone taken under the state lock
/// in an instant, while applies go on changing the original (each change copies only the path
/// to what it touches). imbl's maps and vectors serialize exactly as `BTreeMap` and `Vec` do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    topics_by_name: BTreeMap<String, TopicId>,
    #[serde(deserialize_with = "crate::capped::map")]
    topics: OrdMap<TopicId, TopicState>,
    /// Kept after their topics are deleted: the compactor decides when the bytes can go.
    #[serde(deserialize_with = "crate::capped::map")]
    objects: OrdMap<ObjectId, ObjectEntry>,
    next_producer_id: i64,
    /// Live agents by address (`host:port`). Older snapshots have none: `default`.
    #[serde(default)]
    agents: BTreeMap<String, AgentInfo>,
    /// Every address ever seen keeps its broker id, so a restarted agent is the same broker.
    #[serde(default)]
    broker_ids: BTreeMap<String, i32>,
    #[serde(default)]
    agents_epoch: i64,
    /// Consumer groups' committed offsets. Membership lives in the coordinating agent's memory;
    /// only what must survive it is here.
    #[serde(default)]
    #[serde(deserialize_with = "crate::capped::map_of_maps")]
    groups: OrdMap<String, OrdMap<GroupPartition, CommittedOffset>>,
    /// Compactors' claims on units of work, by key (snapshot version 4 on).
    #[serde(default)]
    leases: BTreeMap<String, Lease>,
    /// How far each partition's Parquet export has got (exclusive), for topics that export.
    #[serde(default)]
    exports: BTreeMap<TopicPartition, i64>,
    /// When each address in `broker_ids` last heartbeated (snapshot version 5 on), so that
    /// departed ones can be forgotten. An address missing here (from an older snapshot) gets
    /// the time of the first expiry pass.
    #[serde(default)]
    broker_last_seen: BTreeMap<String, i64>,
    /// The broker id the next new address gets: ids are never reused, even once forgotten.
    /// At least one above every id in `broker_ids` (older snapshots: 0, and that rule decides).
    #[serde(default)]
    next_broker_id: i32,
    /// Dynamic broker configs (snapshot version 7 on), bounded by
    /// [`crate::limits::MAX_BROKER_CONFIGS`].
    #[serde(default)]
    broker_configs: BrokerConfigs,
    /// The transaction coordinator's state (snapshot version 8 on).
    #[serde(default)]
    transactions: transactions::Transactions,
    /// SCRAM credentials, ACLs, agents' listeners (snapshot version 9 on), client quotas
    /// (snapshot version 10 on).
    #[serde(default)]
    security: users::Security,
    /// How many index entries point at each object, kept with every change of an index so
    /// that GC asks in O(unreferenced objects), not O(index). Derived: not in snapshots.
    #[serde(skip)]
    refs: Derived<ObjectRefs>,
}

/// Who holds a unit of compactor work, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    holder: String,
    expires_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TopicState {
    meta: TopicMeta,
    #[serde(deserialize_with = "crate::capped::vector")]
    partitions: Vector<PartitionState>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PartitionState {
    log_start_offset: i64,
    high_watermark: i64,
    /// Runs of batches, in offset order.
    index: RunIndex,
    /// The batches that raised the running maximum of `max_timestamp`, in offset order, so their
    /// timestamps strictly increase. The first batch with `max_timestamp >= t` always sets a new
    /// maximum, which turns both timestamp lookups into a binary search instead of a scan.
    /// Whatever changes the index other than by appending (trims, rewrites) must repair it
    /// (`PartitionState::repair_timestamp_highs`).
    #[serde(deserialize_with = "crate::capped::vector")]
    timestamp_highs: Vector<(i64, i64)>,
    #[serde(deserialize_with = "crate::capped::map")]
    producers: OrdMap<i64, ProducerState>,
    /// The transactions open on the partition (snapshot version 8 on): each producer's first
    /// offset in it. The last stable offset is the least of them.
    #[serde(default, deserialize_with = "crate::capped::map")]
    open_txns: OrdMap<i64, i64>,
    /// The aborted transactions whose records are in the log, in marker order (snapshot
    /// version 8 on). Trimmed with the log: one entry per abort marker in the index, so it
    /// grows with the index, not beyond it.
    #[serde(default, deserialize_with = "crate::capped::vector")]
    aborted: Vector<transactions::AbortedEntry>,
    /// The bytes of the batches in `index`, for `retention.bytes`. Derived: not in snapshots.
    #[serde(skip)]
    bytes: Derived<u64>,
}

/// What idempotence needs to know about one producer on one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerState {
    epoch: i16,
    /// Oldest first; never empty.
    batches: VecDeque<SequencedBatch>,
    /// The time of the last commit that wrote to the partition for this producer; the state
    /// expires `producer.id.expiration.ms` after it. `None`: from a snapshot before version 5,
    /// until the first expiry pass starts the clock.
    #[serde(default)]
    last_write_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SequencedBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

/// One committed object, and the answer its commit got so that a retry gets it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub size: u64,
    pub created_ms: i64,
    pub answer: Vec<Result<BatchAppend, MetaError>>,
}

impl StateMachine {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply(&mut self, cmd: &Command) -> CommandResponse {
        self.ensure_derived();
        match cmd {
            Command::CreateTopic(req) => CommandResponse::TopicCreated(self.create_topic(req)),
            Command::DeleteTopic { name, .. } => {
                CommandResponse::TopicDeleted(self.delete_topic(name))
            }
            Command::CommitObject(commit) => {
                let answer = self.commit_object(commit);
                self.note_producer_writes(commit, &answer);
                CommandResponse::Committed(answer)
            }
            Command::CommitObjectV6(commit) => {
                let commit = commit.into();
                let answer = self.commit_object(&commit);
                self.note_producer_writes(&commit, &answer);
                CommandResponse::Committed(answer)
            }
            Command::InitTransactionalProducer(req) => {
                CommandResponse::ProducerId(self.init_transactional_producer(req))
            }
            Command::AddPartitionsToTxn(req) => {
                CommandResponse::PartitionsAddedToTxn(self.add_partitions_to_txn(req))
            }
            Command::AddOffsetsToTxn(req) => {
                CommandResponse::TxnUpdated(self.add_offsets_to_txn(req))
            }
            Command::TxnCommitOffsets(req) => {
                CommandResponse::OffsetsCommitted(self.txn_commit_offsets(req))
            }
            Command::EndTxn(req) => CommandResponse::TxnEnded(self.end_txn(req)),
            Command::ExpireTransactions(pass) => {
                CommandResponse::TransactionsExpired(self.expire_transactions(pass))
            }
            Command::AbortTransaction {
                transactional_id,
                now_ms,
            } => CommandResponse::TxnUpdated(self.abort_transaction(transactional_id, *now_ms)),
            Command::InitProducerId(req) => CommandResponse::ProducerId(self.init_producer_id(req)),
            Command::AgentHeartbeat(hb) => CommandResponse::Agents(self.agent_heartbeat(hb)),
            Command::CommitOffsets(req) => {
                CommandResponse::OffsetsCommitted(self.commit_offsets(req))
            }
            Command::CommitGroupOffsets(c) => CommandResponse::OffsetsCommitted(
                if self.coordinates(c.coordinator, &c.commit.group) {
                    self.commit_offsets(&c.commit)
                } else {
                    vec![Err(MetaError::NotCoordinator); c.commit.offsets.len()]
                },
            ),
            Command::DeleteGroup { group } => {
                let found = self.groups.remove(group).is_some();
                CommandResponse::GroupDeleted(if found {
                    Ok(())
                } else {
                    Err(MetaError::GroupIdNotFound)
                })
            }
            Command::DeleteRecords { tp, offset } => {
                CommandResponse::RecordsDeleted(self.delete_records(*tp, *offset))
            }
            Command::EnforceRetention(pass) => {
                CommandResponse::Retained(self.enforce_retention(pass))
            }
            Command::ForgetObjects { objects } => {
                CommandResponse::ObjectsForgotten(self.forget_objects(objects))
            }
            Command::ReplaceBatches(req) => CommandResponse::Replaced(self.replace_batches(req)),
            Command::ReplaceBatchesDroppingAborts { rewrite, aborts } => {
                CommandResponse::Replaced(self.replace_dropping_aborts(rewrite, aborts))
            }
            Command::ReplaceBatchesV4(req) => {
                CommandResponse::Replaced(self.replace_batches(&req.into()))
            }
            Command::AcquireLeases(req) => CommandResponse::Leases(self.acquire_leases(req)),
            Command::ReleaseLeases { holder, keys } => {
                CommandResponse::Leases(self.release_leases(holder, keys))
            }
            Command::AlterTopicConfigs(req) => {
                CommandResponse::ConfigsAltered(self.alter_topic_configs(req))
            }
            Command::AdvanceExport { tp, from, to } => {
                CommandResponse::ExportAdvanced(self.advance_export(*tp, *from, *to))
            }
            Command::DeleteOffsets { group, partitions } => {
                CommandResponse::OffsetsDeleted(match self.groups.get_mut(group) {
                    Some(offsets) => {
                        for p in partitions {
                            offsets.remove(p);
                        }
                        if offsets.is_empty() {
                            self.groups.remove(group);
                        }
                        Ok(())
                    }
                    None => Err(MetaError::GroupIdNotFound),
                })
            }
            Command::ExpireState(pass) => CommandResponse::StateExpired(self.expire_state(pass)),
            Command::CreatePartitions(req) => {
                CommandResponse::PartitionsCreated(self.create_partitions(req))
            }
            Command::AlterBrokerConfigs(req) => {
                CommandResponse::BrokerConfigsAltered(self.alter_broker_configs(req))
            }
            Command::AlterScramCredentials(req) => {
                CommandResponse::ScramCredentialsAltered(self.alter_scram_credentials(req))
            }
            Command::CreateAcls(bindings) => {
                CommandResponse::AclsCreated(self.create_acls(bindings))
            }
            Command::DeleteAcls(filters) => CommandResponse::AclsDeleted(self.delete_acls(filters)),
            Command::AlterClientQuotas(alterations) => {
                CommandResponse::ClientQuotasAltered(self.alter_client_quotas(alterations))
            }
            Command::SetAgentListeners { agent, listeners } => {
                CommandResponse::AgentListenersSet(self.set_agent_listeners(agent, listeners))
            }
        }
    }

    /// Stores each offset whose partition exists; the others are refused one by one, as Kafka's
    /// OffsetCommit does.
    fn commit_offsets(&mut self, req: &CommitOffsets) -> Vec<Result<(), MetaError>> {
        let mut answers = Vec::with_capacity(req.offsets.len());
        for (gp, committed) in &req.offsets {
            let exists = self
                .topics_by_name
                .get(&gp.topic)
                .and_then(|id| self.topics.get(id))
                .is_some_and(|t| (0..t.meta.partitions).contains(&gp.partition));
            if !exists {
                answers.push(Err(MetaError::UnknownTopicOrPartition));
                continue;
            }
            self.groups
                .entry(req.group.clone())
                .or_default()
                .insert(gp.clone(), committed.clone());
            answers.push(Ok(()));
        }
        answers
    }

    /// Whether the agent `broker_id` coordinates `group` among the live agents. With none live
    /// (a metastore no agent has heartbeat to yet) there is nothing to fence against.
    fn coordinates(&self, broker_id: i32, group: &str) -> bool {
        let live = self.live_agents();
        match crate::placement::coordinator_of(group, &live.agents) {
            Some(a) => a.broker_id == broker_id,
            None => true,
        }
    }

    /// A group's committed offsets, by partition.
    pub fn group_offsets(&self, group: &str) -> Vec<(GroupPartition, CommittedOffset)> {
        self.groups
            .get(group)
            .map(|o| o.iter().map(|(p, c)| (p.clone(), c.clone())).collect())
            .unwrap_or_default()
    }

    /// The groups that have committed offsets.
    pub fn groups(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// Expires the agents whose session ran out by the heartbeat's time, then records the
    /// sender. Liveness changes only here, in the log, so every replica and every reader agrees
    /// on the live set and on its epoch.
    fn agent_heartbeat(&mut self, hb: &AgentHeartbeat) -> LiveAgents {
        let before = self.agents.len();
        self.agents
            .retain(|_, a| hb.now_ms.saturating_sub(a.last_heartbeat_ms) <= a.session_timeout_ms);
        let mut changed = self.agents.len() != before;
        let address = format!("{}:{}", hb.host, hb.port);
        let broker_id = match self.broker_ids.get(&address) {
            Some(&id) => id,
            None => {
                let id = self
                    .broker_ids
                    .values()
                    .max()
                    .map_or(0, |m| m.saturating_add(1));
                let id = id.max(self.next_broker_id);
                self.next_broker_id = id.saturating_add(1);
                self.broker_ids.insert(address.clone(), id);
                id
            }
        };
        let seen = self
            .broker_last_seen
            .entry(address.clone())
            .or_insert(hb.now_ms);
        *seen = (*seen).max(hb.now_ms);
        let agent = self.agents.entry(address).or_insert_with(|| {
            changed = true;
            AgentInfo {
                broker_id,
                host: hb.host.clone(),
                port: hb.port,
                last_heartbeat_ms: hb.now_ms,
                session_timeout_ms: hb.session_timeout_ms,
            }
        });
        agent.last_heartbeat_ms = agent.last_heartbeat_ms.max(hb.now_ms);
        agent.session_timeout_ms = hb.session_timeout_ms;
        if changed {
            self.agents_epoch += 1;
        }
        self.live_agents()
    }

    /// The agents no heartbeat has expired yet, by broker id.
    pub fn live_agents(&self) -> LiveAgents {
        let mut agents: Vec<AgentInfo> = self.agents.values().cloned().collect();
        agents.sort_by_key(|a| a.broker_id);
        LiveAgents {
            epoch: self.agents_epoch,
            agents,
        }
    }

    /// A retry of a create that already happened (same name, same topic id) gets the same answer
    /// instead of `TopicAlreadyExists`, so a commit of unknown outcome can simply be resent.
    /// Partitions over all topics. Counted when a topic is created or grown, which is rare next
    /// to everything else: a pass over the topics, not a counter to keep right.
    fn partition_count(&self) -> u64 {
        self.topics
            .values()
            .map(|t| u64::try_from(t.meta.partitions).unwrap_or(0))
            .sum()
    }

    fn create_topic(&mut self, req: &CreateTopic) -> Result<TopicMeta, MetaError> {
        validate_topic_name(&req.name)?;
        if let Some(id) = self.topics_by_name.get(&req.name) {
            return match self.topics.get(id) {
                Some(t) if *id == req.topic_id => Ok(t.meta.clone()),
                _ => Err(MetaError::TopicAlreadyExists),
            };
        }
        if self.topics.contains_key(&req.topic_id) {
            return Err(MetaError::TopicAlreadyExists);
        }
        if req.partitions < 1 || req.partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(MetaError::InvalidPartitions);
        }
        if self.partition_count() + req.partitions as u64 > crate::limits::MAX_PARTITIONS {
            return Err(MetaError::PartitionLimit);
        }
        let meta = TopicMeta {
            name: req.name.clone(),
            topic_id: req.topic_id,
            partitions: req.partitions,
            configs: req.configs.clone(),
            created_ms: req.now_ms,
        };
        let partitions = (0..req.partitions)
            .map(|_| PartitionState::default())
            .collect();
        self.topics_by_name.insert(req.name.clone(), req.topic_id);
        self.topics.insert(
            req.topic_id,
            TopicState {
                meta: meta.clone(),
                partitions,
            },
        );
        Ok(meta)
    }

    /// Grows the topic to `count` partitions; the new ones start empty, at offset 0. Never
    /// shrinks: a count below the current one is [`MetaError::InvalidPartitions`], and the
    /// current one itself succeeds (a retry of a grow that applied).
    fn create_partitions(&mut self, req: &CreatePartitions) -> Result<TopicMeta, MetaError> {
        let topic = self
            .topics_by_name
            .get(&req.name)
            .filter(|id| **id == req.topic_id)
            .and_then(|id| self.topics.get_mut(id))
            .ok_or(MetaError::UnknownTopicOrPartition)?;
        if req.count < topic.meta.partitions || req.count > MAX_PARTITIONS_PER_TOPIC {
            return Err(MetaError::InvalidPartitions);
        }
        let adding = (req.count - topic.meta.partitions) as u64;
        let topic_id = topic.meta.topic_id;
        if adding > 0 && self.partition_count() + adding > crate::limits::MAX_PARTITIONS {
            return Err(MetaError::PartitionLimit);
        }
        let topic = self
            .topics
            .get_mut(&topic_id)
            .ok_or(MetaError::UnknownTopicOrPartition)?;
        while topic.partitions.len() < req.count as usize {
            topic.partitions.push_back(PartitionState::default());
        }
        topic.meta.partitions = req.count;
        Ok(topic.meta.clone())
    }

    fn alter_topic_configs(&mut self, req: &AlterTopicConfigs) -> Result<TopicMeta, MetaError> {
        let topic = self
            .topics_by_name
            .get(&req.name)
            .and_then(|id| self.topics.get_mut(id))
            .ok_or(MetaError::UnknownTopicOrPartition)?;
        edit_configs(&mut topic.meta.configs, req.replace, &req.ops);
        Ok(topic.meta.clone())
    }

    /// All or nothing: a result over the bounds leaves the configs as they were.
    fn alter_broker_configs(
        &mut self,
        req: &AlterBrokerConfigs,
    ) -> Result<BrokerConfigs, MetaError> {
        use crate::limits::{MAX_BROKER_CONFIGS, MAX_CONFIG_VALUE_BYTES};
        let mut after = self.broker_configs.clone();
        let configs = match req.broker {
            None => &mut after.cluster,
            Some(id) => after.brokers.entry(id).or_default(),
        };
        edit_configs(configs, req.replace, &req.ops);
        let oversized = configs
            .iter()
            .any(|(n, v)| n.len() > MAX_CONFIG_VALUE_BYTES || v.len() > MAX_CONFIG_VALUE_BYTES);
        after.brokers.retain(|_, c| !c.is_empty());
        if oversized || after.len() > MAX_BROKER_CONFIGS {
            return Err(MetaError::ConfigsOverLimit);
        }
        after.version = after.version.saturating_add(1);
        self.broker_configs = after;
        Ok(self.broker_configs.clone())
    }

    /// The dynamic broker configs.
    pub fn broker_configs(&self) -> &BrokerConfigs {
        &self.broker_configs
    }

    fn delete_topic(&mut self, name: &str) -> Result<TopicMeta, MetaError> {
        let id = self
            .topics_by_name
            .remove(name)
            .ok_or(MetaError::UnknownTopicOrPartition)?;
        let topic = self
            .topics
            .remove(&id)
            .ok_or(MetaError::UnknownTopicOrPartition)?;
        // O(the topic's batches), once: its entries no longer keep their objects.
        for part in topic.partitions.iter() {
            self.drop_refs(part.index.iter());
        }
        self.exports.retain(|tp, _| tp.topic_id != id);
        // Kafka drops a deleted topic's committed offsets, so a topic created again under the
        // same name starts with none.
        let affected: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, offsets)| offsets.keys().any(|p| p.topic == name))
            .map(|(group, _)| group.clone())
            .collect();
        for group in affected {
            let Some(offsets) = self.groups.get_mut(&group) else {
                continue;
            };
            let gone: Vec<GroupPartition> = offsets
                .keys()
                .filter(|p| p.topic == name)
                .cloned()
                .collect();
            for p in &gone {
                offsets.remove(p);
            }
            if offsets.is_empty() {
                self.groups.remove(&group);
            }
        }
        Ok(topic.meta)
    }

    fn partition(&self, tp: TopicPartition) -> Result<&PartitionState, MetaError> {
        self.topics
            .get(&tp.topic_id)
            .and_then(|t| {
                usize::try_from(tp.partition)
                    .ok()
                    .and_then(|p| t.partitions.get(p))
            })
            .ok_or(MetaError::UnknownTopicOrPartition)
    }

    fn partition_mut(&mut self, tp: TopicPartition) -> Result<&mut PartitionState, MetaError> {
        self.topics
            .get_mut(&tp.topic_id)
            .and_then(|t| {
                usize::try_from(tp.partition)
                    .ok()
                    .and_then(|p| t.partitions.get_mut(p))
            })
            .ok_or(MetaError::UnknownTopicOrPartition)
    }

    // ---- queries ----

    /// All live topics, sorted by name.
    pub fn topics(&self) -> Vec<TopicMeta> {
        self.topics_by_name
            .values()
            .filter_map(|id| self.topics.get(id))
            .map(|t| t.meta.clone())
            .collect()
    }

    pub fn topic_by_name(&self, name: &str) -> Option<TopicMeta> {
        let id = self.topics_by_name.get(name)?;
        self.topics.get(id).map(|t| t.meta.clone())
    }

    pub fn topic_by_id(&self, id: TopicId) -> Option<TopicMeta> {
        self.topics.get(&id).map(|t| t.meta.clone())
    }

    pub fn offsets(&self, tp: TopicPartition) -> Result<PartitionOffsets, MetaError> {
        self.partition(tp).map(PartitionState::offsets)
    }

    /// See [`crate::client::MetastoreClient::batch_for_timestamp`].
    pub fn batch_for_timestamp(
        &self,
        tp: TopicPartition,
        timestamp: i64,
    ) -> Result<Option<BatchLocation>, MetaError> {
        let part = self.partition(tp)?;
        let highs = &part.timestamp_highs;
        // The partition point: never `Equal`, so the search always ends at the first high
        // at or above `timestamp`.
        let i = highs
            .binary_search_by(|&(ts, _)| {
                if ts < timestamp {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            })
            .unwrap_or_else(|i| i);
        Ok(highs
            .get(i)
            .and_then(|&(_, base)| part.index.get(base))
            .copied())
    }

    /// See [`crate::client::MetastoreClient::batch_with_max_timestamp`].
    pub fn batch_with_max_timestamp(
        &self,
        tp: TopicPartition,
    ) -> Result<Option<BatchLocation>, MetaError> {
        let part = self.partition(tp)?;
        Ok(part
            .timestamp_highs
            .last()
            .and_then(|&(_, base)| part.index.get(base))
            .copied())
    }

    pub fn object(&self, id: &ObjectId) -> Option<&ObjectEntry> {
        self.objects.get(id)
    }

    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }
}

impl PartitionState {
    fn offsets(&self) -> PartitionOffsets {
        PartitionOffsets {
            log_start_offset: self.log_start_offset,
            high_watermark: self.high_watermark,
            last_stable_offset: self.last_stable_offset(),
        }
    }
}

/// Applies config operations to a resource's overrides, in order (`replace`: from none).
fn edit_configs(configs: &mut BTreeMap<String, String>, replace: bool, ops: &[ConfigOp]) {
    if replace {
        configs.clear();
    }
    for op in ops {
        match op {
            ConfigOp::Set { name, value } => {
                configs.insert(name.clone(), value.clone());
            }
            ConfigOp::Delete { name } => {
                configs.remove(name);
            }
            ConfigOp::Append { name, value } => {
                let mut items = list(configs.get(name));
                for item in list(Some(value)) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                configs.insert(name.clone(), items.join(","));
            }
            ConfigOp::Subtract { name, value } => {
                let gone = list(Some(value));
                let items: Vec<String> = list(configs.get(name))
                    .into_iter()
                    .filter(|i| !gone.contains(i))
                    .collect();
                if items.is_empty() {
                    configs.remove(name);
                } else {
                    configs.insert(name.clone(), items.join(","));
                }
            }
        }
    }
}

/// The items of a list config such as `cleanup.policy`, trimmed, empty ones dropped.
fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Kafka's rules, so that any name a Kafka client accepts works here and the other way round.
pub fn validate_topic_name(name: &str) -> Result<(), MetaError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty()
        || name.len() > MAX_TOPIC_NAME_LEN
        || name == "."
        || name == ".."
        || !name.chars().all(legal)
    {
        return Err(MetaError::InvalidTopic);
    }
    Ok(())
}

#[path = "admin_reads.rs"]
pub mod admin_reads;

#[path = "commit.rs"]
mod commit;

#[path = "run_index.rs"]
mod run_index;
use run_index::RunIndex;

#[path = "derived.rs"]
mod derived;
use derived::{Derived, ObjectRefs};

#[path = "expiry.rs"]
mod expiry;

#[path = "index_reads.rs"]
mod index_reads;
pub use index_reads::MAX_SLICE_BATCHES;

#[path = "legacy.rs"]
mod legacy;
pub(crate) use legacy::{
    StateMachineV2, StateMachineV3, StateMachineV4, StateMachineV5, StateMachineV6, StateMachineV7,
    StateMachineV8, StateMachineV9,
};

#[path = "read.rs"]
mod read;

#[path = "transactions.rs"]
mod transactions;

#[path = "users.rs"]
mod users;

#[path = "retention.rs"]
mod retention;

#[path = "rewrite.rs"]
mod rewrite;

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "runs_tests.rs"]
mod runs_tests;

#[cfg(test)]
#[path = "create_partitions_tests.rs"]
mod create_partitions_tests;

#[cfg(test)]
#[path = "transactions_tests.rs"]
mod transactions_tests;
