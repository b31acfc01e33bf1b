//! The interface agents use to reach the metastore, wherever it runs.
//!
//! [`MetastoreClient`] is what agents and compactors call. Each of its methods is either a
//! [`Command`] to replicate or a [`Read`] of the state; how either reaches a state machine is a
//! [`Transport`] (the node in this process, or a quorum over HTTP), and every transport is a
//! client through the one mapping below.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::rpc::{Read, ReadAnswer};
use crate::security::{
    AclBinding, AclFilter, Acls, AdvertisedListener, AlterScramCredentials, ClientQuotas,
    QuotaAlteration, ScramCredential, ScramMechanism, ScramUser,
};
use crate::types::{
    AcquireLeases, AlterBrokerConfigs, AlterTopicConfigs, BrokerConfigs, EnforceRetention,
    ExpireState, ObjectId, ReplaceBatches, StateExpired, Trimmed, UnreferencedObject,
};
use crate::types::{
    AddOffsetsToTxn, AddPartitionsToTxn, EndTxn, ExpireTransactions, InitTransactionalProducer,
    TransactionSummary, TransactionsExpired, TxnCommitOffsets,
};
use crate::types::{
    AgentHeartbeat, BatchAppend, BatchLocation, Command, CommandResponse, CommitObject,
    CommitOffsets, CommittedOffset, CoordinatedCommit, CreatePartitions, CreateTopic,
    GroupPartition, IndexAnswer, IndexRead, IndexSlice, InitProducerId, LiveAgents, MetaError,
    PartitionOffsets, ProducerIdAndEpoch, ProducerSummary, TopicMeta, TopicPartition,
};

/// Failures at the client boundary, sorted by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum MetastoreError {
    /// The state machine decided against the request; retrying the same request gives the same answer.
    #[error("{0}")]
    Rejected(#[from] MetaError),
    /// The command certainly did not apply (no leader, shutting down, refused before proposal).
    #[error("metastore unavailable: {0}")]
    Unavailable(String),
    /// The command may or may not have applied (timeout, lost connection after the proposal).
    /// Commands are idempotent by construction, so the caller may retry.
    #[error("metastore outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl MetastoreError {
    /// True when the command is known not to have been applied.
    pub fn is_certainly_not_applied(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Rejected(_))
    }
}

pub type Result<T, E = MetastoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait MetastoreClient: Send + Sync + 'static {
    async fn create_topic(&self, req: CreateTopic) -> Result<TopicMeta>;
    async fn delete_topic(&self, name: &str, now_ms: i64) -> Result<TopicMeta>;
    /// CreatePartitions: the topic afterwards. [`MetaError::InvalidPartitions`] for a count below
    /// the current one or over the limit; growing to the current count succeeds.
    async fn create_partitions(&self, req: CreatePartitions) -> Result<TopicMeta>;
    /// Commits one flushed object. The outer error concerns the whole commit; the inner ones are
    /// per batch (for example a sequence gap on one partition).
    async fn commit_object(
        &self,
        commit: CommitObject,
    ) -> Result<Vec<std::result::Result<BatchAppend, MetaError>>>;
    async fn init_producer_id(&self, req: InitProducerId) -> Result<ProducerIdAndEpoch>;
    /// Records that an agent is alive (and expires those whose session ran out); answers with the
    /// live agents.
    async fn agent_heartbeat(&self, hb: AgentHeartbeat) -> Result<LiveAgents>;
    /// Stores a consumer group's offsets; one answer per partition, in order.
    async fn commit_offsets(
        &self,
        req: CommitOffsets,
    ) -> Result<Vec<std::result::Result<(), MetaError>>>;
    /// [`commit_offsets`](Self::commit_offsets) from the agent `coordinator`, fenced: refused
    /// partition by partition with [`MetaError::NotCoordinator`] unless that agent coordinates
    /// the group among the live agents when the command applies ([`CoordinatedCommit`]).
    async fn commit_group_offsets(
        &self,
        coordinator: i32,
        commit: CommitOffsets,
    ) -> Result<Vec<std::result::Result<(), MetaError>>>;
    /// Forgets a group's committed offsets ([`MetaError::GroupIdNotFound`] if it has none).
    async fn delete_group(&self, group: &str) -> Result<()>;
    async fn delete_offsets(&self, group: &str, partitions: Vec<GroupPartition>) -> Result<()>;
    /// A group's committed offsets, linearizably.
    async fn group_offsets(&self, group: &str) -> Result<Vec<(GroupPartition, CommittedOffset)>>;
    /// The groups that have committed offsets.
    async fn groups(&self) -> Result<Vec<String>>;

    /// DeleteRecords on one partition: its offsets afterwards. `offset` -1 is the high
    /// watermark; beyond it, [`MetaError::OffsetOutOfRange`].
    async fn delete_records(&self, tp: TopicPartition, offset: i64) -> Result<PartitionOffsets>;
    /// One retention pass over every topic; the partitions it trimmed.
    async fn enforce_retention(&self, pass: EnforceRetention) -> Result<Vec<Trimmed>>;
    /// One expiry pass: forgets idle producers, old commit answers, expired groups' offsets and
    /// departed addresses; says what it forgot and what is left.
    async fn expire_state(&self, pass: ExpireState) -> Result<StateExpired>;
    /// Forgets objects nothing points at; answers those it forgot.
    async fn forget_objects(&self, objects: Vec<ObjectId>) -> Result<Vec<ObjectId>>;
    /// The committed objects no index entry points at.
    async fn unreferenced_objects(&self) -> Result<Vec<UnreferencedObject>>;
    /// Whether the metastore knows each object (committed and not forgotten).
    async fn objects_known(&self, objects: Vec<ObjectId>) -> Result<Vec<bool>>;
    /// Swaps a run of a partition's batches for their rewritten copies, atomically;
    /// [`MetaError::RewriteConflict`] if the run changed since it was read.
    async fn replace_batches(&self, req: ReplaceBatches) -> Result<()>;
    /// [`MetastoreClient::replace_batches`] that also drops the abort markers at `aborts` from
    /// the aborted index, atomically with the rewrite that removes them.
    async fn replace_batches_dropping_aborts(
        &self,
        req: ReplaceBatches,
        aborts: Vec<i64>,
    ) -> Result<()>;
    /// Takes or renews leases on compactor work; whether each key is now held by the holder.
    async fn acquire_leases(&self, req: AcquireLeases) -> Result<Vec<bool>>;
    async fn release_leases(&self, holder: &str, keys: Vec<String>) -> Result<Vec<bool>>;
    /// IncrementalAlterConfigs / AlterConfigs on a topic: the topic afterwards.
    async fn alter_topic_configs(&self, req: AlterTopicConfigs) -> Result<TopicMeta>;
    /// Moves a partition's export progress from `from` to `to`;
    /// [`MetaError::RewriteConflict`] if it was not at `from`.
    async fn advance_export(&self, tp: TopicPartition, from: Option<i64>, to: i64) -> Result<()>;
    /// Each partition's export progress (exclusive), `None` if it never exported.
    async fn export_progress(&self, tps: Vec<TopicPartition>) -> Result<Vec<Option<i64>>>;
    async fn alter_broker_configs(&self, req: AlterBrokerConfigs) -> Result<BrokerConfigs>;
    async fn broker_configs(&self) -> Result<BrokerConfigs>;
    /// AlterUserScramCredentials: one answer per user.
    async fn alter_scram_credentials(
        &self,
        req: AlterScramCredentials,
    ) -> Result<Vec<(String, std::result::Result<(), MetaError>)>>;
    async fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<Option<ScramCredential>>;
    /// The users named that have credentials, or every user for `None`.
    async fn scram_users(&self, names: Option<Vec<String>>) -> Result<Vec<ScramUser>>;
    /// CreateAcls: one answer per binding.
    async fn create_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> Result<Vec<std::result::Result<(), MetaError>>>;
    /// DeleteAcls: for each filter, the bindings it deleted.
    async fn delete_acls(&self, filters: Vec<AclFilter>) -> Result<Vec<Vec<AclBinding>>>;
    async fn acls(&self) -> Result<Acls>;
    /// AlterClientQuotas: one answer per alteration, each applied on its own.
    async fn alter_client_quotas(
        &self,
        alterations: Vec<QuotaAlteration>,
    ) -> Result<Vec<std::result::Result<(), MetaError>>>;
    async fn client_quotas(&self) -> Result<ClientQuotas>;
    /// Replaces the listeners of the agent at `agent` (`host:port`, as its heartbeat names it);
    /// [`MetaError::UnknownAgent`] unless that agent has heartbeated and not been expired.
    async fn set_agent_listeners(
        &self,
        agent: String,
        listeners: Vec<AdvertisedListener>,
    ) -> Result<()>;
    /// Every agent's listeners, by the agent's address.
    async fn agent_listeners(&self) -> Result<BTreeMap<String, Vec<AdvertisedListener>>>;

    /// All live topics, by name.
    async fn topics(&self) -> Result<Vec<TopicMeta>>;
    async fn topic_by_name(&self, name: &str) -> Result<Option<TopicMeta>>;
    async fn offsets(&self, tp: TopicPartition) -> Result<PartitionOffsets>;
    /// The batch containing `offset` (or the first after it) and those following it, until
    /// their lengths add up to at least `max_bytes` (at least one batch when any exists).
    /// `offset == high_watermark` gives an empty slice; outside `[log_start, hwm]` it is
    /// [`MetaError::OffsetOutOfRange`].
    async fn read_index(
        &self,
        tp: TopicPartition,
        offset: i64,
        max_bytes: u64,
    ) -> Result<IndexSlice>;
    /// [`MetastoreClient::read_index`] for many partitions at once, from one state and in one
    /// round trip: what one Fetch needs.
    async fn read_indexes(&self, reads: Vec<IndexRead>) -> Result<Vec<IndexAnswer>>;
    /// [`MetastoreClient::read_indexes`] within one budget for them all, spent in request order
    /// as Kafka fills a response: together the slices describe at most `total_max_bytes` plus
    /// one batch per partition, however much each read asks for; reads after the budget is spent
    /// get their offsets and no batches. Each slice holds at most
    /// [`crate::state_machine::MAX_SLICE_BATCHES`] entries, and a read repeating an earlier one
    /// reuses its answer instead of reading the index again.
    async fn read_indexes_within(
        &self,
        reads: Vec<IndexRead>,
        total_max_bytes: u64,
    ) -> Result<Vec<IndexAnswer>>;
    /// The first batch whose `max_timestamp >= timestamp`, if any.
    async fn batch_for_timestamp(
        &self,
        tp: TopicPartition,
        timestamp: i64,
    ) -> Result<Option<BatchLocation>>;
    /// The batch with the largest `max_timestamp` (the earliest such batch on ties), if any.
    async fn batch_with_max_timestamp(&self, tp: TopicPartition) -> Result<Option<BatchLocation>>;
    /// Each partition's bytes in the index, in the order asked, with
    /// [`MetaError::UnknownTopicOrPartition`] for a partition that does not exist. At most
    /// [`crate::limits::MAX_PARTITIONS_PER_READ`] partitions are answered.
    async fn partition_sizes(
        &self,
        tps: Vec<TopicPartition>,
    ) -> Result<Vec<std::result::Result<u64, MetaError>>>;
    /// Each partition's idempotent producers, like [`MetastoreClient::partition_sizes`].
    async fn producers(
        &self,
        tps: Vec<TopicPartition>,
    ) -> Result<Vec<std::result::Result<Vec<ProducerSummary>, MetaError>>>;

    // ---- transactions ----
    /// InitProducerId with a transactional id ([`InitTransactionalProducer`]).
    async fn init_transactional_producer(
        &self,
        req: InitTransactionalProducer,
    ) -> Result<ProducerIdAndEpoch>;
    /// AddPartitionsToTxn: an error for the whole request, or one answer per partition.
    async fn add_partitions_to_txn(
        &self,
        req: AddPartitionsToTxn,
    ) -> Result<Vec<std::result::Result<(), MetaError>>>;
    async fn add_offsets_to_txn(&self, req: AddOffsetsToTxn) -> Result<()>;
    /// TxnOffsetCommit: one answer per partition, in order.
    async fn txn_commit_offsets(
        &self,
        req: TxnCommitOffsets,
    ) -> Result<Vec<std::result::Result<(), MetaError>>>;
    /// EndTxn: the producer id and epoch to go on with.
    async fn end_txn(&self, req: EndTxn) -> Result<ProducerIdAndEpoch>;
    async fn expire_transactions(&self, pass: ExpireTransactions) -> Result<TransactionsExpired>;
    /// Aborts the id's ongoing transaction and fences its producer.
    async fn abort_transaction(&self, transactional_id: &str, now_ms: i64) -> Result<()>;
    /// DescribeTransactions: `None` for an id with no state.
    async fn describe_transactions(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Option<TransactionSummary>>>;
    /// ListTransactions ([`crate::rpc::TransactionFilter`]).
    async fn list_transactions(
        &self,
        filter: crate::rpc::TransactionFilter,
    ) -> Result<Vec<TransactionSummary>>;
    /// Whether an [`ExpireTransactions`] pass at `now_ms` would do anything.
    async fn transactions_due(
        &self,
        now_ms: i64,
        transactional_id_expiration_ms: i64,
    ) -> Result<bool>;
    /// The partitions of `group` with offsets waiting in an ongoing transaction.
    async fn pending_txn_offsets(&self, group: &str) -> Result<Vec<GroupPartition>>;

    /// A counter that moves forward every time a commit is applied; long-polling fetches wait on it.
    fn commits(&self) -> watch::Receiver<u64>;
}

/// How a client reaches a state machine: a command to replicate and apply, a linearizable read,
/// and the commit counter. Implement this, not [`MetastoreClient`], which every transport gets
/// from it. The transport classifies its own failures (a lost answer to a read is no ambiguity,
/// for instance); the mapping of answers is the same for all.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Replicates and applies `cmd`: its answer from `apply`.
    async fn write(&self, cmd: Command) -> Result<CommandResponse>;
    /// Evaluates `read` on a state that includes every write acknowledged before the call.
    async fn read(&self, read: Read) -> Result<ReadAnswer>;
    /// [`MetastoreClient::commits`].
    fn commit_counter(&self) -> watch::Receiver<u64>;
}

#[async_trait]
impl<T: Transport> MetastoreClient for T {
    async fn create_topic(&self, req: CreateTopic) -> Result<TopicMeta> {
        answer::topic_created(self.write(Command::CreateTopic(req)).await?)
    }

    async fn delete_topic(&self, name: &str, now_ms: i64) -> Result<TopicMeta> {
        let cmd = Command::DeleteTopic {
            name: name.to_owned(),
            now_ms,
        };
        answer::topic_deleted(self.write(cmd).await?)
    }

    async fn create_partitions(&self, req: CreatePartitions) -> Result<TopicMeta> {
        match self.write(Command::CreatePartitions(req)).await? {
            CommandResponse::PartitionsCreated(r) => Ok(r?),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn commit_object(
        &self,
        commit: CommitObject,
    ) -> Result<Vec<std::result::Result<BatchAppend, MetaError>>> {
        answer::committed(self.write(Command::CommitObject(commit)).await?)
    }

    async fn init_producer_id(&self, req: InitProducerId) -> Result<ProducerIdAndEpoch> {
        answer::producer_id(self.write(Command::InitProducerId(req)).await?)
    }

    async fn agent_heartbeat(&self, hb: AgentHeartbeat) -> Result<LiveAgents> {
        answer::agents(self.write(Command::AgentHeartbeat(hb)).await?)
    }

    async fn commit_offsets(
        &self,
        req: CommitOffsets,
    ) -> Result<Vec<std::result::Result<(), MetaError>>> {
        answer::offsets_committed(self.write(Command::CommitOffsets(req)).await?)
    }

    async fn commit_group_offsets(
        &self,
        coordinator: i32,
        commit: CommitOffsets,
    ) -> Result<Vec<std::result::Result<(), MetaError>>> {
        let cmd = Command::CommitGroupOffsets(CoordinatedCommit {
            coordinator,
            commit,
        });
        answer::offsets_committed(self.write(cmd).await?)
    }

    async fn delete_group(&self, group: &str) -> Result<()> {
        let cmd = Command::DeleteGroup {
            group: group.to_owned(),
        };
        answer::group_deleted(self.write(cmd).await?)
    }

    async fn delete_offsets(&self, group: &str, partitions: Vec<GroupPartition>) -> Result<()> {
        let cmd = Command::DeleteOffsets {
            group: group.to_owned(),
            partitions,
        };
        answer::group_deleted(self.write(cmd).await?)
    }

    async fn group_offsets(&self, group: &str) -> Result<Vec<(GroupPartition, CommittedOffset)>> {
        match self.read(Read::GroupOffsets(group.to_owned())).await? {
            ReadAnswer::GroupOffsets(o) => Ok(o),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn groups(&self) -> Result<Vec<String>> {
        match self.read(Read::Groups).await? {
            ReadAnswer::Groups(g) => Ok(g),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn delete_records(&self, tp: TopicPartition, offset: i64) -> Result<PartitionOffsets> {
        answer::records_deleted(self.write(Command::DeleteRecords { tp, offset }).await?)
    }

    async fn enforce_retention(&self, pass: EnforceRetention) -> Result<Vec<Trimmed>> {
        answer::retained(self.write(Command::EnforceRetention(pass)).await?)
    }

    async fn expire_state(&self, pass: ExpireState) -> Result<StateExpired> {
        answer::state_expired(self.write(Command::ExpireState(pass)).await?)
    }

    async fn forget_objects(&self, objects: Vec<ObjectId>) -> Result<Vec<ObjectId>> {
        answer::objects_forgotten(self.write(Command::ForgetObjects { objects }).await?)
    }

    async fn unreferenced_objects(&self) -> Result<Vec<UnreferencedObject>> {
        match self.read(Read::UnreferencedObjects).await? {
            ReadAnswer::UnreferencedObjects(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn objects_known(&self, objects: Vec<ObjectId>) -> Result<Vec<bool>> {
        match self.read(Read::ObjectsKnown(objects)).await? {
            ReadAnswer::ObjectsKnown(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn replace_batches(&self, req: ReplaceBatches) -> Result<()> {
        answer::replaced(self.write(Command::ReplaceBatches(req)).await?)
    }

    async fn replace_batches_dropping_aborts(
        &self,
        rewrite: ReplaceBatches,
        aborts: Vec<i64>,
    ) -> Result<()> {
        let cmd = Command::ReplaceBatchesDroppingAborts { rewrite, aborts };
        answer::replaced(self.write(cmd).await?)
    }

    async fn acquire_leases(&self, req: AcquireLeases) -> Result<Vec<bool>> {
        answer::leases(self.write(Command::AcquireLeases(req)).await?)
    }

    async fn release_leases(&self, holder: &str, keys: Vec<String>) -> Result<Vec<bool>> {
        let cmd = Command::ReleaseLeases {
            holder: holder.to_owned(),
            keys,
        };
        answer::leases(self.write(cmd).await?)
    }

    async fn alter_topic_configs(&self, req: AlterTopicConfigs) -> Result<TopicMeta> {
        answer::configs_altered(self.write(Command::AlterTopicConfigs(req)).await?)
    }

    async fn advance_export(&self, tp: TopicPartition, from: Option<i64>, to: i64) -> Result<()> {
        answer::export_advanced(self.write(Command::AdvanceExport { tp, from, to }).await?)
    }

    async fn export_progress(&self, tps: Vec<TopicPartition>) -> Result<Vec<Option<i64>>> {
        match self.read(Read::ExportProgress(tps)).await? {
            ReadAnswer::ExportProgress(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn alter_broker_configs(&self, req: AlterBrokerConfigs) -> Result<BrokerConfigs> {
        answer::broker_configs_altered(self.write(Command::AlterBrokerConfigs(req)).await?)
    }

    async fn broker_configs(&self) -> Result<BrokerConfigs> {
        match self.read(Read::BrokerConfigs).await? {
            ReadAnswer::BrokerConfigs(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn alter_scram_credentials(
        &self,
        req: AlterScramCredentials,
    ) -> Result<Vec<(String, std::result::Result<(), MetaError>)>> {
        match self.write(Command::AlterScramCredentials(req)).await? {
            CommandResponse::ScramCredentialsAltered(r) => Ok(r),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<Option<ScramCredential>> {
        let read = Read::ScramCredential {
            user: user.to_owned(),
            mechanism,
        };
        match self.read(read).await? {
            ReadAnswer::ScramCredential(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn scram_users(&self, names: Option<Vec<String>>) -> Result<Vec<ScramUser>> {
        match self.read(Read::ScramUsers(names)).await? {
            ReadAnswer::ScramUsers(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn create_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> Result<Vec<std::result::Result<(), MetaError>>> {
        match self.write(Command::CreateAcls(bindings)).await? {
            CommandResponse::AclsCreated(r) => Ok(r),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn delete_acls(&self, filters: Vec<AclFilter>) -> Result<Vec<Vec<AclBinding>>> {
        match self.write(Command::DeleteAcls(filters)).await? {
            CommandResponse::AclsDeleted(r) => Ok(r),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn acls(&self) -> Result<Acls> {
        match self.read(Read::Acls).await? {
            ReadAnswer::Acls(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn alter_client_quotas(
        &self,
        alterations: Vec<QuotaAlteration>,
    ) -> Result<Vec<std::result::Result<(), MetaError>>> {
        match self.write(Command::AlterClientQuotas(alterations)).await? {
            CommandResponse::ClientQuotasAltered(r) => Ok(r),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn client_quotas(&self) -> Result<ClientQuotas> {
        match self.read(Read::ClientQuotas).await? {
            ReadAnswer::ClientQuotas(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn set_agent_listeners(
        &self,
        agent: String,
        listeners: Vec<AdvertisedListener>,
    ) -> Result<()> {
        match self
            .write(Command::SetAgentListeners { agent, listeners })
            .await?
        {
            CommandResponse::AgentListenersSet(r) => Ok(r?),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn agent_listeners(&self) -> Result<BTreeMap<String, Vec<AdvertisedListener>>> {
        match self.read(Read::AgentListeners).await? {
            ReadAnswer::AgentListeners(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        match self.read(Read::Topics).await? {
            ReadAnswer::Topics(t) => Ok(t),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn topic_by_name(&self, name: &str) -> Result<Option<TopicMeta>> {
        match self.read(Read::TopicByName(name.to_owned())).await? {
            ReadAnswer::Topic(t) => Ok(t),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn offsets(&self, tp: TopicPartition) -> Result<PartitionOffsets> {
        match self.read(Read::Offsets(tp)).await? {
            ReadAnswer::Offsets(r) => Ok(r?),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn read_index(
        &self,
        tp: TopicPartition,
        offset: i64,
        max_bytes: u64,
    ) -> Result<IndexSlice> {
        let read = Read::Index {
            tp,
            offset,
            max_bytes,
        };
        match self.read(read).await? {
            ReadAnswer::Index(r) => Ok(r?),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn read_indexes(&self, reads: Vec<IndexRead>) -> Result<Vec<IndexAnswer>> {
        match self.read(Read::Indexes(reads)).await? {
            ReadAnswer::Indexes(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn read_indexes_within(
        &self,
        reads: Vec<IndexRead>,
        total_max_bytes: u64,
    ) -> Result<Vec<IndexAnswer>> {
        let read = Read::IndexesWithin {
            reads,
            total_max_bytes,
        };
        match self.read(read).await? {
            ReadAnswer::Indexes(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn batch_for_timestamp(
        &self,
        tp: TopicPartition,
        timestamp: i64,
    ) -> Result<Option<BatchLocation>> {
        match self.read(Read::BatchForTimestamp { tp, timestamp }).await? {
            ReadAnswer::Batch(r) => Ok(r?),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn batch_with_max_timestamp(&self, tp: TopicPartition) -> Result<Option<BatchLocation>> {
        match self.read(Read::BatchWithMaxTimestamp(tp)).await? {
            ReadAnswer::Batch(r) => Ok(r?),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn partition_sizes(
        &self,
        tps: Vec<TopicPartition>,
    ) -> Result<Vec<std::result::Result<u64, MetaError>>> {
        match self.read(Read::PartitionSizes(tps)).await? {
            ReadAnswer::PartitionSizes(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn producers(
        &self,
        tps: Vec<TopicPartition>,
    ) -> Result<Vec<std::result::Result<Vec<ProducerSummary>, MetaError>>> {
        match self.read(Read::Producers(tps)).await? {
            ReadAnswer::Producers(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn init_transactional_producer(
        &self,
        req: InitTransactionalProducer,
    ) -> Result<ProducerIdAndEpoch> {
        answer::producer_id(self.write(Command::InitTransactionalProducer(req)).await?)
    }

    async fn add_partitions_to_txn(
        &self,
        req: AddPartitionsToTxn,
    ) -> Result<Vec<std::result::Result<(), MetaError>>> {
        match self.write(Command::AddPartitionsToTxn(req)).await? {
            CommandResponse::PartitionsAddedToTxn(r) => Ok(r?),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn add_offsets_to_txn(&self, req: AddOffsetsToTxn) -> Result<()> {
        answer::txn_updated(self.write(Command::AddOffsetsToTxn(req)).await?)
    }

    async fn txn_commit_offsets(
        &self,
        req: TxnCommitOffsets,
    ) -> Result<Vec<std::result::Result<(), MetaError>>> {
        answer::offsets_committed(self.write(Command::TxnCommitOffsets(req)).await?)
    }

    async fn end_txn(&self, req: EndTxn) -> Result<ProducerIdAndEpoch> {
        match self.write(Command::EndTxn(req)).await? {
            CommandResponse::TxnEnded(r) => Ok(r?),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn expire_transactions(&self, pass: ExpireTransactions) -> Result<TransactionsExpired> {
        match self.write(Command::ExpireTransactions(pass)).await? {
            CommandResponse::TransactionsExpired(r) => Ok(r),
            other => Err(answer::unexpected(&other)),
        }
    }

    async fn abort_transaction(&self, transactional_id: &str, now_ms: i64) -> Result<()> {
        let cmd = Command::AbortTransaction {
            transactional_id: transactional_id.to_owned(),
            now_ms,
        };
        answer::txn_updated(self.write(cmd).await?)
    }

    async fn describe_transactions(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Option<TransactionSummary>>> {
        match self.read(Read::Transactions(ids)).await? {
            ReadAnswer::Transactions(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn list_transactions(
        &self,
        filter: crate::rpc::TransactionFilter,
    ) -> Result<Vec<TransactionSummary>> {
        match self.read(Read::ListTransactions(filter)).await? {
            ReadAnswer::TransactionList(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn transactions_due(
        &self,
        now_ms: i64,
        transactional_id_expiration_ms: i64,
    ) -> Result<bool> {
        let read = Read::TransactionsDue {
            now_ms,
            transactional_id_expiration_ms,
        };
        match self.read(read).await? {
            ReadAnswer::Due(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    async fn pending_txn_offsets(&self, group: &str) -> Result<Vec<GroupPartition>> {
        match self.read(Read::PendingTxnOffsets(group.to_owned())).await? {
            ReadAnswer::GroupPartitions(r) => Ok(r),
            other => Err(answer::unexpected_read(&other)),
        }
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.commit_counter()
    }
}

/// Each command's answer, out of the [`CommandResponse`] that `apply` gave it. A different variant
/// cannot happen while `apply` answers each command with its own (and a read with its own); if it
/// did, the command had applied, so "outcome unknown" is the honest error.
mod answer {
    use super::{MetastoreError, Result};
    use crate::rpc::ReadAnswer;
    use crate::types::{
        BatchAppend, BrokerConfigs, CommandResponse, LiveAgents, MetaError, ObjectId,
        PartitionOffsets, ProducerIdAndEpoch, StateExpired, TopicMeta, Trimmed,
    };

    pub fn txn_updated(resp: CommandResponse) -> Result<()> {
        match resp {
            CommandResponse::TxnUpdated(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn unexpected(resp: &CommandResponse) -> MetastoreError {
        MetastoreError::OutcomeUnknown(format!("unexpected response {resp:?}"))
    }

    pub fn unexpected_read(answer: &ReadAnswer) -> MetastoreError {
        MetastoreError::OutcomeUnknown(format!("unexpected answer {answer:?}"))
    }

    pub fn topic_created(resp: CommandResponse) -> Result<TopicMeta> {
        match resp {
            CommandResponse::TopicCreated(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn topic_deleted(resp: CommandResponse) -> Result<TopicMeta> {
        match resp {
            CommandResponse::TopicDeleted(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn committed(
        resp: CommandResponse,
    ) -> Result<Vec<std::result::Result<BatchAppend, MetaError>>> {
        match resp {
            CommandResponse::Committed(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    pub fn producer_id(resp: CommandResponse) -> Result<ProducerIdAndEpoch> {
        match resp {
            CommandResponse::ProducerId(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn offsets_committed(
        resp: CommandResponse,
    ) -> Result<Vec<std::result::Result<(), MetaError>>> {
        match resp {
            CommandResponse::OffsetsCommitted(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    pub fn group_deleted(resp: CommandResponse) -> Result<()> {
        match resp {
            CommandResponse::GroupDeleted(r) | CommandResponse::OffsetsDeleted(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn records_deleted(resp: CommandResponse) -> Result<PartitionOffsets> {
        match resp {
            CommandResponse::RecordsDeleted(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn retained(resp: CommandResponse) -> Result<Vec<Trimmed>> {
        match resp {
            CommandResponse::Retained(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    pub fn state_expired(resp: CommandResponse) -> Result<StateExpired> {
        match resp {
            CommandResponse::StateExpired(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    pub fn objects_forgotten(resp: CommandResponse) -> Result<Vec<ObjectId>> {
        match resp {
            CommandResponse::ObjectsForgotten(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    pub fn replaced(resp: CommandResponse) -> Result<()> {
        match resp {
            CommandResponse::Replaced(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn configs_altered(resp: CommandResponse) -> Result<TopicMeta> {
        match resp {
            CommandResponse::ConfigsAltered(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn broker_configs_altered(resp: CommandResponse) -> Result<BrokerConfigs> {
        match resp {
            CommandResponse::BrokerConfigsAltered(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn export_advanced(resp: CommandResponse) -> Result<()> {
        match resp {
            CommandResponse::ExportAdvanced(r) => Ok(r?),
            other => Err(unexpected(&other)),
        }
    }

    pub fn leases(resp: CommandResponse) -> Result<Vec<bool>> {
        match resp {
            CommandResponse::Leases(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    pub fn agents(resp: CommandResponse) -> Result<LiveAgents> {
        match resp {
            CommandResponse::Agents(live) => Ok(live),
            other => Err(unexpected(&other)),
        }
    }
}
