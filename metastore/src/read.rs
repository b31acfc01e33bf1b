//! A [`Read`] evaluated on the state: one function for the RPC server and the node in this
//! process alike, so both answer every read the same way.

use super::StateMachine;
use crate::rpc::{Read, ReadAnswer};

impl StateMachine {
    /// The answer to `read` from this state.
    pub fn answer(&self, read: Read) -> ReadAnswer {
        match read {
            Read::Topics => ReadAnswer::Topics(self.topics()),
            Read::TopicByName(name) => ReadAnswer::Topic(self.topic_by_name(&name)),
            Read::Offsets(tp) => ReadAnswer::Offsets(self.offsets(tp)),
            Read::Index {
                tp,
                offset,
                max_bytes,
            } => ReadAnswer::Index(self.read_index(tp, offset, max_bytes)),
            Read::BatchForTimestamp { tp, timestamp } => {
                ReadAnswer::Batch(self.batch_for_timestamp(tp, timestamp))
            }
            Read::BatchWithMaxTimestamp(tp) => ReadAnswer::Batch(self.batch_with_max_timestamp(tp)),
            Read::Indexes(reads) => ReadAnswer::Indexes(self.read_indexes(&reads)),
            Read::IndexesWithin {
                reads,
                total_max_bytes,
            } => ReadAnswer::Indexes(self.read_indexes_within(&reads, total_max_bytes)),
            Read::GroupOffsets(group) => ReadAnswer::GroupOffsets(self.group_offsets(&group)),
            Read::Groups => ReadAnswer::Groups(self.groups()),
            Read::UnreferencedObjects => {
                ReadAnswer::UnreferencedObjects(self.unreferenced_objects())
            }
            Read::ObjectsKnown(ids) => ReadAnswer::ObjectsKnown(self.objects_known(&ids)),
            Read::ExportProgress(tps) => ReadAnswer::ExportProgress(self.export_progress(&tps)),
            Read::BrokerConfigs => ReadAnswer::BrokerConfigs(self.broker_configs().clone()),
            Read::PartitionSizes(tps) => ReadAnswer::PartitionSizes(self.partition_sizes(&tps)),
            Read::Producers(tps) => ReadAnswer::Producers(self.producers(&tps)),
            Read::Transactions(ids) => ReadAnswer::Transactions(self.describe_transactions(&ids)),
            Read::ListTransactions(f) => ReadAnswer::TransactionList(self.list_transactions(
                &f.states,
                &f.producer_ids,
                f.min_duration_ms,
                f.now_ms,
                (f.limit as usize).min(crate::limits::MAX_PARTITIONS_PER_READ),
            )),
            Read::TransactionsDue {
                now_ms,
                transactional_id_expiration_ms,
            } => ReadAnswer::Due(self.transactions_due(now_ms, transactional_id_expiration_ms)),
            Read::PendingTxnOffsets(group) => {
                ReadAnswer::GroupPartitions(self.pending_txn_offsets(&group))
            }
            Read::ScramCredential { user, mechanism } => {
                ReadAnswer::ScramCredential(self.scram_credential(&user, mechanism))
            }
            Read::ScramUsers(names) => ReadAnswer::ScramUsers(self.scram_users(names.as_deref())),
            Read::Acls => ReadAnswer::Acls(self.acls()),
            Read::ClientQuotas => ReadAnswer::ClientQuotas(self.client_quotas()),
            Read::AgentListeners => ReadAnswer::AgentListeners(self.agent_listeners().clone()),
        }
    }
}
