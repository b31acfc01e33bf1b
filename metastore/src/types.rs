//! The metastore's domain types: the commands that change state and the answers they produce.
//!
//! Every command carries the time and the ids it needs (`now_ms`, topic ids, object ids) so that
//! applying it is deterministic on every replica.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A topic's stable identity (KIP-516). Names can be reused after deletion; ids never are.
pub type TopicId = Uuid;

/// The unique name of one object in the object store. A ULID, so names sort by creation time and
/// two agents never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub ulid::Ulid);

impl ObjectId {
    /// The object of every marker entry ([`RunLayout::Marker`]): none. No flush or segment ever
    /// gets this id (a ULID of time 0 and no randomness), and it is never counted as a reference.
    pub const MARKER: ObjectId = ObjectId(ulid::Ulid(0));
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic_id: TopicId,
    pub partition: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub topic_id: TopicId,
    pub partitions: i32,
    /// Topic-level overrides only (`retention.ms`, `max.message.bytes`, …); defaults live in the agent.
    pub configs: BTreeMap<String, String>,
    pub created_ms: i64,
}

/// One index entry: a *run* of consecutive batches of one partition, back to back in one
/// object. An agent's flush makes one run per partition it holds (up to [`MAX_RUN_BYTES`]); a
/// compactor's segment is one run however large, with a sparse index after its batches. A
/// reader finds the batch holding an offset by walking the batch headers of the run
/// (`skiff_format::run`), so the index grows with objects and partitions, not with batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLocation {
    pub base_offset: i64,
    /// The last offset of the run's last batch.
    pub last_offset: i64,
    /// As 16 bytes, not the ULID's 26-character text: this is most of an index entry.
    #[serde(with = "object_id_bytes")]
    pub object: ObjectId,
    /// Byte position of the run's first batch inside the object.
    pub position: u64,
    /// Bytes of the run's batches.
    pub len: u32,
    pub first_timestamp: i64,
    /// The largest timestamp of the run's records.
    pub max_timestamp: i64,
    pub layout: RunLayout,
}

impl BatchLocation {
    /// The bytes a reader reads of this run when it wants `want` more bytes: a flushed run has
    /// no index and is read whole; a segment's index lets it read only what it wants.
    pub fn read_cost(&self, want: u64) -> u64 {
        match self.layout {
            RunLayout::Flushed | RunLayout::Marker { .. } => u64::from(self.len),
            RunLayout::Segment { .. } => u64::from(self.len).min(want.max(1)),
        }
    }
}

/// How a run's batches get their offsets, and whether an index follows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunLayout {
    /// Batches as an agent's flush wrote them: their headers' base offsets are the producers',
    /// and each batch starts after the last offset of the one before it, from the run's base.
    #[default]
    Flushed,
    /// A compactor's segment: each header holds its batch's real base offset (key compaction
    /// leaves gaps), and `index_len` bytes of `skiff_format::run::SegmentIndex` follow the
    /// batches, at `position + len`.
    Segment { index_len: u32 },
    /// A transaction marker (journal version 7 on): the control batch that commits or aborts
    /// `producer_id`'s transaction in the partition, one offset long. It has no bytes in any
    /// object (its `object` is [`ObjectId::MARKER`]); readers build the batch from this entry
    /// (`skiff_format::control`), and a compactor writes it into the segments it makes.
    Marker {
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    },
}

impl BatchLocation {
    /// Whether this entry is a transaction marker, with no bytes in any object.
    pub fn is_marker(&self) -> bool {
        matches!(self.layout, RunLayout::Marker { .. })
    }
}

/// A marker's batch length, as `skiff_format::control::MARKER_BATCH_LEN` builds it (a test in
/// the agent keeps the two equal): what its entry's `len` says.
pub const MARKER_LEN: u32 = 78;

/// An agent's commit extends the partition's last run only while the run stays under this:
/// a fetch into the middle of a flushed run reads the whole run (it has no index), so this
/// bounds what such a fetch reads beyond what it asked for.
pub const MAX_RUN_BYTES: u32 = 1 << 20;

mod object_id_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ObjectId;

    pub fn serialize<S: Serializer>(id: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
        id.0 .0.to_be_bytes().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        let bytes = <[u8; 16]>::deserialize(d)?;
        Ok(ObjectId(ulid::Ulid(u128::from_be_bytes(bytes))))
    }
}

/// One batch of a flush, as the agent describes it to the metastore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitBatch {
    pub tp: TopicPartition,
    pub position: u64,
    pub len: u32,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    /// -1 when the producer is not idempotent.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// The batch belongs to its producer's transaction (journal version 7 on): accepted only
    /// while that transaction is ongoing, at the producer's epoch, with the partition in it.
    /// Absent from the JSON journals of version 1, which name this variant: false.
    #[serde(default)]
    pub transactional: bool,
}

/// A flushed object and every batch in it. Committing the same object twice is a no-op that returns
/// the first answer again: a commit whose outcome was unknown can simply be retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitObject {
    pub object: ObjectId,
    pub size: u64,
    pub batches: Vec<CommitBatch>,
    /// Set by the metastore node that proposes the commit, whatever the sender put here: a
    /// commit of an object older than [`crate::limits::MAX_COMMIT_AGE_MS`] by that clock is
    /// refused ([`MetaError::ObjectTooOld`]).
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopic {
    pub name: String,
    pub topic_id: TopicId,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitProducerId {
    /// Transactions come later; an idempotent producer sends `None`.
    pub transactional_id: Option<String>,
    pub now_ms: i64,
}

/// Everything that changes metastore state. This is the Raft log's entry payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateTopic(CreateTopic),
    DeleteTopic {
        name: String,
        now_ms: i64,
    },
    /// A flush as journals before version 7 hold it; applied as a [`Command::CommitObject`]
    /// with no transactional batch.
    CommitObjectV6(crate::legacy_commands::CommitObjectV6),
    InitProducerId(InitProducerId),
    AgentHeartbeat(AgentHeartbeat),
    // New variants go last: the journal names a variant by its position.
    CommitOffsets(CommitOffsets),
    DeleteGroup {
        group: String,
    },
    DeleteOffsets {
        group: String,
        partitions: Vec<GroupPartition>,
    },
    /// DeleteRecords: moves a partition's log start offset up to `offset` (-1: the high
    /// watermark). Batches wholly below it leave the index.
    DeleteRecords {
        tp: TopicPartition,
        offset: i64,
    },
    EnforceRetention(EnforceRetention),
    /// Drops the records of objects no index entry points at any more (their bytes have been,
    /// or are about to be, deleted from the store). Objects still referenced are kept.
    ForgetObjects {
        objects: Vec<ObjectId>,
    },
    /// [`ReplaceBatches`] as journals before version 5 hold it, with per-batch entries. Only
    /// read back from them; applied as the same rewrite of flushed runs.
    ReplaceBatchesV4(crate::legacy_commands::ReplaceBatchesV4),
    AcquireLeases(AcquireLeases),
    /// Gives up the `holder`'s leases on `keys` before they expire, so another compactor can
    /// take the work at once.
    ReleaseLeases {
        holder: String,
        keys: Vec<String>,
    },
    AlterTopicConfigs(AlterTopicConfigs),
    /// Records that a partition's Parquet export reached `to` (exclusive), if it stood at `from`
    /// (`None`: never exported). Compare-and-set, so two exporters never both advance.
    AdvanceExport {
        tp: TopicPartition,
        from: Option<i64>,
        to: i64,
    },
    ExpireState(ExpireState),
    ReplaceBatches(ReplaceBatches),
    /// CreatePartitions: grows a topic (journal version 6 on).
    CreatePartitions(CreatePartitions),
    /// OffsetCommit through the group's coordinator (journal version 6 on).
    CommitGroupOffsets(CoordinatedCommit),
    /// Dynamic broker configs (journal version 6 on).
    AlterBrokerConfigs(AlterBrokerConfigs),
    /// A flush (journal version 7 on, with transactional batches).
    CommitObject(CommitObject),
    // Journal version 7 on: transactions. `CommitObjectV6` is the commit as journals before
    // version 7 hold it (no transactional flag); new commits are `CommitObject`.
    InitTransactionalProducer(InitTransactionalProducer),
    AddPartitionsToTxn(AddPartitionsToTxn),
    AddOffsetsToTxn(AddOffsetsToTxn),
    TxnCommitOffsets(TxnCommitOffsets),
    EndTxn(EndTxn),
    ExpireTransactions(ExpireTransactions),
    /// `skiff transactions abort`: aborts the id's ongoing transaction, if any, and fences its
    /// producer, as a transaction timeout does.
    AbortTransaction {
        transactional_id: String,
        now_ms: i64,
    },
    /// A compactor's rewrite that also drops abort markers (the offsets in `aborts`, all inside
    /// the rewritten run): their transactions leave the aborted index in the same apply, so no
    /// reader is ever told of an aborted transaction whose marker is gone (a read_committed
    /// consumer would skip its producer's later batches looking for it).
    ReplaceBatchesDroppingAborts {
        rewrite: ReplaceBatches,
        aborts: Vec<i64>,
    },
    /// AlterUserScramCredentials (journal version 8 on).
    AlterScramCredentials(crate::security::AlterScramCredentials),
    /// CreateAcls (journal version 8 on).
    CreateAcls(Vec<crate::security::AclBinding>),
    /// DeleteAcls (journal version 8 on).
    DeleteAcls(Vec<crate::security::AclFilter>),
    /// AlterClientQuotas (journal version 9 on): each alteration applies on its own.
    AlterClientQuotas(Vec<crate::security::QuotaAlteration>),
    /// An agent's listeners as clients reach them (journal version 9 on): replaces what the
    /// agent at address `agent` (`host:port`, as heartbeats key it) had. Refused
    /// ([`MetaError::UnknownAgent`]) unless that agent is in the state's agents.
    SetAgentListeners {
        agent: String,
        listeners: Vec<crate::security::AdvertisedListener>,
    },
}

/// IncrementalAlterConfigs (or, with `replace`, AlterConfigs) on a broker resource: the
/// cluster-wide dynamic defaults (`broker: None`, Kafka's resource name "") or one broker's
/// overrides. The agent validates names and values; apply edits the set in order, and refuses
/// the whole command ([`MetaError::ConfigsOverLimit`]) if the result is over
/// [`crate::limits::MAX_BROKER_CONFIGS`] or a name or value over its size bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterBrokerConfigs {
    pub broker: Option<i32>,
    /// AlterConfigs: the resource's dynamic configs become exactly the `Set` operations.
    pub replace: bool,
    pub ops: Vec<ConfigOp>,
}

/// The dynamic broker configs (Kafka's KIP-226): cluster-wide defaults, and per-broker overrides
/// that shadow them on that broker only. Names are Kafka's broker config names
/// (`log.retention.ms`, `offset.metadata.max.bytes`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfigs {
    pub cluster: BTreeMap<String, String>,
    pub brokers: BTreeMap<i32, BTreeMap<String, String>>,
    /// Moves forward with every change, so a reader can tell an older copy from a newer one.
    pub version: u64,
}

impl BrokerConfigs {
    /// Every config set, over all resources.
    pub fn len(&self) -> usize {
        self.cluster.len() + self.brokers.values().map(BTreeMap::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configs of one resource: the cluster's (`None`) or a broker's.
    pub fn of(&self, broker: Option<i32>) -> Option<&BTreeMap<String, String>> {
        match broker {
            None => Some(&self.cluster),
            Some(id) => self.brokers.get(&id),
        }
    }
}

/// Offsets committed by the agent that coordinates the group, fenced: applied only if
/// `coordinator` is the agent the live agents, as this state holds them when the command
/// applies, make the group's coordinator ([`crate::placement::coordinator_of`]). Otherwise every
/// partition gets [`MetaError::NotCoordinator`], so an agent whose view of the agents is stale (it
/// has not yet heard that another agent joined or that it was expired) cannot commit for a group
/// that has moved, while the new coordinator already does. The live set is the metastore's
/// (heartbeats are stamped by its clock), so two agents cannot both pass the check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatedCommit {
    /// The broker id of the committing agent.
    pub coordinator: i32,
    pub commit: CommitOffsets,
}

/// CreatePartitions on one topic: its partition count becomes `count`. The agent has checked the
/// request against the topic as it read it; apply checks again, since the topic may have changed
/// since. Growing to the count it already has succeeds, so a command of unknown outcome can
/// simply be resent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitions {
    pub name: String,
    /// The topic the agent read: a topic deleted and created again under the name meanwhile is
    /// not grown ([`MetaError::UnknownTopicOrPartition`]).
    pub topic_id: TopicId,
    /// The new partition count, up to [`crate::limits::MAX_PARTITIONS_PER_TOPIC`].
    pub count: i32,
}

/// IncrementalAlterConfigs (or, with `replace`, AlterConfigs) on one topic. The agent validates
/// names and values; apply only edits the map, in order, so every replica gets the same result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterTopicConfigs {
    pub name: String,
    /// AlterConfigs: the topic's overrides become exactly the `Set` operations.
    pub replace: bool,
    pub ops: Vec<ConfigOp>,
}

/// One operation of IncrementalAlterConfigs, Kafka's `AlterConfigOp` types 0 to 3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    Set {
        name: String,
        value: String,
    },
    /// Back to the default.
    Delete {
        name: String,
    },
    /// Adds items to a list config (`cleanup.policy`), skipping those present.
    Append {
        name: String,
        value: String,
    },
    /// Removes items from a list config; an empty list is deleted.
    Subtract {
        name: String,
        value: String,
    },
}

/// The compactor's rewrite of a run of one partition's batches into a new object: a merged
/// segment (the same batches, byte for byte, elsewhere) or what key compaction kept of them.
///
/// Applied only if the run is still exactly as the compactor read it: every index entry with a
/// base offset in `replaced`'s span is one of `replaced`, pointing at the same object. Otherwise
/// (retention trimmed it, another compactor rewrote it first) the rewrite is refused with
/// [`MetaError::RewriteConflict`] and the new object, never referenced, is garbage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceBatches {
    pub tp: TopicPartition,
    /// The new object, already durable in the store.
    pub object: ObjectId,
    pub size: u64,
    /// The entries replaced, by base offset, with the object each was read from. Ascending.
    pub replaced: Vec<(i64, ObjectId)>,
    /// The new entries, all in `object`, ascending and within the offsets of the replaced run:
    /// a merge keeps every batch's offsets; compaction may leave out batches (offset gaps, as in
    /// Kafka) but never moves one. A segment is one entry ([`RunLayout::Segment`]).
    pub batches: Vec<BatchLocation>,
    pub now_ms: i64,
}

/// Takes (or renews) leases on units of compactor work, so that several compactors share it
/// without doing the same twice. A key is granted if nobody holds it, its lease expired by
/// `now_ms`, or `holder` already holds it. All or nothing per key, independently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquireLeases {
    pub holder: String,
    pub keys: Vec<String>,
    pub ttl_ms: i64,
    pub now_ms: i64,
}

/// One retention pass over every topic, at `now_ms`. Topics without their own `retention.ms`
/// or `retention.bytes` use the defaults given here (the compactor's settings), so apply stays
/// deterministic. Only topics whose `cleanup.policy` includes `delete` are trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforceRetention {
    pub now_ms: i64,
    /// Kafka's `retention.ms` default is 7 days; -1 keeps forever.
    pub default_retention_ms: i64,
    /// Kafka's `retention.bytes` default is -1: no limit.
    pub default_retention_bytes: i64,
}

/// One pass that forgets what the state no longer needs, at `now_ms`, with the sender's
/// settings (like [`EnforceRetention`], so every replica expires the same). A negative bound
/// keeps that kind of state forever.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireState {
    pub now_ms: i64,
    /// Kafka's `producer.id.expiration.ms` (KIP-854), default 1 day: a producer's state on a
    /// partition goes once it has written nothing there for this long.
    pub producer_id_expiration_ms: i64,
    /// How long a committed object keeps its answer for a retried commit. Far past the longest
    /// time a retry can still arrive (an agent retries for under a second, and commits of old
    /// objects are refused).
    pub commit_answer_retention_ms: i64,
    /// Kafka's `offsets.retention.minutes`, in ms (default 7 days): a group's committed offsets
    /// go once its newest commit is this old.
    pub offsets_retention_ms: i64,
    /// The broker id of an address no agent has heartbeated from for this long is forgotten.
    pub broker_id_retention_ms: i64,
}

/// What an [`ExpireState`] pass forgot, and how much of each kind is left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateExpired {
    pub producers_expired: u64,
    pub commit_answers_dropped: u64,
    pub groups_expired: u64,
    pub broker_ids_forgotten: u64,
    pub left: StateCounts,
}

/// The sizes of what the state keeps per producer, object answer, group and address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// Producer states, one per producer and partition it wrote to.
    pub producers: u64,
    /// Committed objects still holding the answer for a retried commit.
    pub commit_answers: u64,
    /// Consumer groups with committed offsets.
    pub groups: u64,
    /// Addresses that keep a broker id.
    pub broker_ids: u64,
    /// Index entries (runs and segments) over all partitions: grows with objects and
    /// partitions, not with batches. Not bounded by expiry; by retention.
    pub index_entries: u64,
}

/// A partition whose log start offset moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trimmed {
    pub tp: TopicPartition,
    pub log_start_offset: i64,
}

/// An object the index no longer points at, with when it was committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreferencedObject {
    pub object: ObjectId,
    pub size: u64,
    pub created_ms: i64,
}

/// The answer to one [`Command`], produced by `apply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    TopicCreated(Result<TopicMeta, MetaError>),
    TopicDeleted(Result<TopicMeta, MetaError>),
    /// One answer per batch, in the order of [`CommitObject::batches`].
    Committed(Vec<Result<BatchAppend, MetaError>>),
    ProducerId(Result<ProducerIdAndEpoch, MetaError>),
    /// The live agents after the heartbeat was applied, the sender among them.
    Agents(LiveAgents),
    /// One answer per partition, in the order of [`CommitOffsets::offsets`].
    OffsetsCommitted(Vec<Result<(), MetaError>>),
    GroupDeleted(Result<(), MetaError>),
    OffsetsDeleted(Result<(), MetaError>),
    /// The answer to Raft's own log entries (leader blanks, membership changes), which carry no
    /// [`Command`]. No client ever waits for it.
    Empty,
    // New variants go last, as in `Command`: RPC bodies name a variant by its position.
    /// The partition's offsets after a DeleteRecords.
    RecordsDeleted(Result<PartitionOffsets, MetaError>),
    /// The partitions a retention pass trimmed.
    Retained(Vec<Trimmed>),
    /// The objects forgotten (those of the request that no index entry pointed at).
    ObjectsForgotten(Vec<ObjectId>),
    Replaced(Result<(), MetaError>),
    /// For each key of an [`AcquireLeases`] or a release, whether the holder now holds it (or,
    /// for a release, held it until then).
    Leases(Vec<bool>),
    /// The topic after an [`AlterTopicConfigs`].
    ConfigsAltered(Result<TopicMeta, MetaError>),
    /// [`MetaError::RewriteConflict`] if the export did not stand where the command said.
    ExportAdvanced(Result<(), MetaError>),
    StateExpired(StateExpired),
    /// The topic after a [`CreatePartitions`].
    PartitionsCreated(Result<TopicMeta, MetaError>),
    /// Every dynamic broker config after an [`AlterBrokerConfigs`].
    BrokerConfigsAltered(Result<BrokerConfigs, MetaError>),
    /// AddPartitionsToTxn: the whole request's error, or one answer per partition in order.
    PartitionsAddedToTxn(Result<Vec<Result<(), MetaError>>, MetaError>),
    /// AddOffsetsToTxn, and `AbortTransaction`.
    TxnUpdated(Result<(), MetaError>),
    /// EndTxn: the producer id and epoch the producer goes on with (a new epoch with
    /// [`EndTxn::bump_epoch`]).
    TxnEnded(Result<ProducerIdAndEpoch, MetaError>),
    TransactionsExpired(TransactionsExpired),
    /// One answer per user of an `AlterScramCredentials`.
    ScramCredentialsAltered(Vec<(String, Result<(), MetaError>)>),
    /// One answer per binding of a `CreateAcls`.
    AclsCreated(Vec<Result<(), MetaError>>),
    /// For each filter of a `DeleteAcls`, the bindings it deleted.
    AclsDeleted(Vec<Vec<crate::security::AclBinding>>),
    /// One answer per alteration of an `AlterClientQuotas`.
    ClientQuotasAltered(Vec<Result<(), MetaError>>),
    AgentListenersSet(Result<(), MetaError>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAppend {
    pub base_offset: i64,
    /// The batch was a retry of one already committed; `base_offset` is the original one and the
    /// bytes in this object are dead.
    pub duplicate: bool,
    pub log_start_offset: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    /// The next offset to be assigned; every offset below it is committed.
    pub high_watermark: i64,
    /// The first offset of the oldest transaction still open on the partition (the high
    /// watermark if none): read_committed consumers read up to here.
    pub last_stable_offset: i64,
}

/// One idempotent producer's state on one partition, as DescribeProducers shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSummary {
    pub producer_id: i64,
    pub epoch: i16,
    /// The last sequence number of its last committed batch.
    pub last_sequence: i32,
    /// When the metastore last committed a batch of it to the partition (the commit's time,
    /// not the batch's timestamp); -1 if not known (state from a snapshot before version 5).
    pub last_write_ms: i64,
    /// The first offset of its transaction open on the partition; -1 if none.
    pub current_txn_start_offset: i64,
}

/// What a fetch needs: the batches from the one containing `offset` on, up to a byte budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSlice {
    pub offsets: PartitionOffsets,
    pub batches: Vec<BatchLocation>,
    /// The aborted transactions whose records overlap the slice's offsets, oldest first: what
    /// a read_committed Fetch answers with.
    pub aborted: Vec<AbortedTxn>,
}

/// One aborted transaction on one partition: its records lie within `first_offset..=
/// last_offset`, the last being its abort marker. Kafka's `AbortedTransaction`, with the
/// marker's offset as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// One partition of a batched index read ([`crate::client::MetastoreClient::read_indexes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRead {
    pub tp: TopicPartition,
    pub offset: i64,
    pub max_bytes: u64,
    /// Answer only the partition's offsets and whether `offset` is in range, with no batches:
    /// the reader has them cached. Committed index entries never change, but the high watermark
    /// and the log start offset do, so they are read every time.
    pub offsets_only: bool,
    /// With `offsets_only`: the last offset of the batches the reader has cached, so that the
    /// answer holds the aborted transactions overlapping `offset..=aborted_upto` (what a
    /// read_committed fetch answers with); -1 for none.
    pub aborted_upto: i64,
}

impl IndexRead {
    /// A read of the partition's offsets alone (high watermark, log start, last stable offset).
    pub fn offsets_of(tp: TopicPartition) -> Self {
        IndexRead {
            tp,
            offset: 0,
            max_bytes: 0,
            offsets_only: true,
            aborted_upto: -1,
        }
    }
}

/// Its answer: the slice, or why not, with the partition's offsets whenever it exists (a fetch
/// out of range still reports the high watermark).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexAnswer {
    pub slice: Result<IndexSlice, MetaError>,
    pub offsets: Option<PartitionOffsets>,
}

/// Deterministic rejections decided by the state machine. Each maps to one Kafka error code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetaError {
    #[error("topic already exists")]
    TopicAlreadyExists,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("invalid number of partitions")]
    InvalidPartitions,
    #[error("invalid topic name")]
    InvalidTopic,
    #[error("offset out of range")]
    OffsetOutOfRange,
    #[error("out of order sequence number")]
    OutOfOrderSequence,
    #[error("producer epoch is fenced")]
    InvalidProducerEpoch,
    #[error("unknown producer id")]
    UnknownProducerId,
    // New variants go last: committed answers are stored, naming a variant by its position.
    #[error("group id not found")]
    GroupIdNotFound,
    /// A [`ReplaceBatches`] whose run changed since the compactor read it, or that does not
    /// describe the same offsets.
    #[error("the batches to rewrite changed or do not match")]
    RewriteConflict,
    /// A command whose encoding is over [`crate::limits::MAX_COMMAND_BYTES`]: refused before it
    /// is proposed, since no Raft entry may outgrow what one request can carry.
    #[error("metastore command too large")]
    CommandTooLarge,
    /// A [`CommitObject`] of an object older than [`crate::limits::MAX_COMMIT_AGE_MS`], not
    /// committed before: the compactor may already have deleted it as an orphan. Nothing is
    /// applied, and nothing remembered; the batches must be written again, in a new object.
    #[error("object too old to commit; write its batches again")]
    ObjectTooOld,
    /// A [`CoordinatedCommit`] from an agent that does not coordinate the group.
    #[error("not the group's coordinator")]
    NotCoordinator,
    /// An [`AlterBrokerConfigs`] whose result would be over the bounds of
    /// [`crate::limits::MAX_BROKER_CONFIGS`] (entries) or
    /// [`crate::limits::MAX_CONFIG_VALUE_BYTES`] (a name or value).
    #[error("dynamic broker configs over their bound")]
    ConfigsOverLimit,
    // Transactions (journal version 7 on).
    /// A newer producer with the same transactional id has started (or the transaction timed
    /// out): this one is a zombie.
    #[error("there is a newer producer with the same transactional id")]
    ProducerFenced,
    /// The request does not fit the transaction's state (no transaction ongoing, a partition
    /// not in it, commit after abort).
    #[error("the producer attempted a transactional operation in an invalid state")]
    InvalidTxnState,
    /// The producer id is not the one the transactional id has.
    #[error("the producer id does not match the transactional id")]
    InvalidProducerIdMapping,
    #[error("the transaction timeout is larger than the maximum allowed")]
    InvalidTransactionTimeout,
    /// TxnOffsetCommit for a group the transaction has not added (AddOffsetsToTxn).
    #[error("the group is not in the transaction")]
    GroupNotInTransaction,
    /// A transaction over [`crate::limits::MAX_PARTITIONS_PER_TXN`] partitions.
    #[error("too many partitions in one transaction")]
    TooManyTxnPartitions,
    // Security (journal version 8 on).
    /// A SCRAM credential to delete that does not exist (Kafka's RESOURCE_NOT_FOUND).
    #[error("no such credential")]
    CredentialNotFound,
    /// More users, ACLs, quota entities or keys, or listeners, or a longer name, salt, key or
    /// host, than [`crate::limits`] allows.
    #[error("over the metastore's bound on users, ACLs, quotas or listeners")]
    SecurityOverLimit,
    // Journal version 9 on.
    /// A command that no request the agent checked can make: a client-quota entity with
    /// neither a user nor a client id (Kafka's INVALID_REQUEST). Apply refuses it rather than
    /// keep an entity no lookup can match.
    #[error("invalid request")]
    InvalidRequest,
    /// `SetAgentListeners` for an address that is not among the state's agents (never
    /// heartbeated, or expired since): the agent heartbeats again, then sets its listeners.
    #[error("unknown agent")]
    UnknownAgent,
    /// A topic created or grown past [`crate::limits::MAX_PARTITIONS`] in the cluster
    /// (Kafka's POLICY_VIOLATION).
    #[error("the cluster has as many partitions as the metastore holds")]
    PartitionLimit,
}

/// A partition as consumer groups name it: by topic name, as OffsetCommit and OffsetFetch do.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupPartition {
    pub topic: String,
    pub partition: i32,
}

/// A consumer group's committed position in one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    /// The leader epoch the consumer last saw at that offset, -1 if it did not say.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// OffsetCommit, once the coordinator has checked the member and generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitOffsets {
    pub group: String,
    pub offsets: Vec<(GroupPartition, CommittedOffset)>,
}

/// An agent saying it is alive. Agents are known by the address clients reach them at, so one
/// that restarts at the same address keeps its broker id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHeartbeat {
    /// `host:port` advertised to Kafka clients.
    pub host: String,
    pub port: u16,
    /// The agent counts as dead once this long has passed without a heartbeat from it.
    pub session_timeout_ms: i64,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The broker id Kafka clients know the agent by.
    pub broker_id: i32,
    pub host: String,
    pub port: u16,
    pub last_heartbeat_ms: i64,
    pub session_timeout_ms: i64,
}

/// The agents a heartbeat has not yet expired, by broker id, and a number that moves forward
/// whenever that set changes (partition leadership follows the set, so this is the leader epoch).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveAgents {
    pub epoch: i64,
    pub agents: Vec<AgentInfo>,
}

// ---- transactions (KIP-98) ----

/// A transactional producer as every transactional request names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnProducer {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// InitProducerId with a `transactional.id`: the id's producer id with a new epoch, which
/// fences every older producer of the id. An ongoing transaction of the id is aborted first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitTransactionalProducer {
    pub transactional_id: String,
    /// `transaction.timeout.ms`; the agent has checked it against
    /// `transaction.max.timeout.ms`, apply refuses what is not positive.
    pub transaction_timeout_ms: i32,
    /// KIP-360: the producer id and epoch the producer had, to recover without losing its
    /// id; -1 and -1 for a producer starting afresh.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub now_ms: i64,
}

/// AddPartitionsToTxn: the partitions join the producer's transaction, which begins with the
/// first of them if none is ongoing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPartitionsToTxn {
    pub producer: TxnProducer,
    pub partitions: Vec<TopicPartition>,
    pub now_ms: i64,
}

/// AddOffsetsToTxn: the transaction will commit offsets of `group`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddOffsetsToTxn {
    pub producer: TxnProducer,
    pub group: String,
    pub now_ms: i64,
}

/// TxnOffsetCommit, once the group's coordinator has checked the member and generation
/// (KIP-447): the offsets wait in the transaction and become the group's only if it commits.
/// Fenced like [`CoordinatedCommit`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnCommitOffsets {
    pub producer: TxnProducer,
    pub coordinator: i32,
    pub commit: CommitOffsets,
}

/// EndTxn: commits or aborts the transaction in one step. A marker goes at the end of every
/// partition the transaction wrote to, and its pending offsets become the groups' (commit) or
/// are dropped (abort).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndTxn {
    pub producer: TxnProducer,
    pub commit: bool,
    /// EndTxn version 5 (KIP-890 part 2): every transaction ends with a new epoch, returned.
    pub bump_epoch: bool,
    pub now_ms: i64,
}

/// One pass over the transactional ids at `now_ms`: aborts every transaction open longer than
/// its timeout (fencing its producer, as Kafka's coordinator does), and forgets the ids with no
/// transaction ongoing that have been idle for `transactional_id_expiration_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireTransactions {
    pub now_ms: i64,
    /// Kafka's `transactional.id.expiration.ms`, default 7 days; negative: never.
    pub transactional_id_expiration_ms: i64,
}

/// What an [`ExpireTransactions`] pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionsExpired {
    /// The ids whose transaction timed out and was aborted.
    pub timed_out: Vec<String>,
    /// How many idle ids were forgotten.
    pub forgotten: u64,
}

/// A transaction's state, as Kafka's coordinator names them (DescribeTransactions,
/// ListTransactions). Skiff ends a transaction in one command, so it never rests in
/// `PrepareCommit`, `PrepareAbort` or `PrepareEpochFence`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TxnStatus {
    Empty,
    Ongoing,
    CompleteCommit,
    CompleteAbort,
}

impl TxnStatus {
    /// Kafka's name of the state.
    pub fn kafka_name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
        }
    }
}

/// One transactional id, as DescribeTransactions shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionSummary {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub status: TxnStatus,
    pub timeout_ms: i32,
    /// When the ongoing transaction began; -1 if none is ongoing.
    pub start_ms: i64,
    pub last_update_ms: i64,
    pub partitions: Vec<TopicPartition>,
    pub groups: Vec<String>,
}
