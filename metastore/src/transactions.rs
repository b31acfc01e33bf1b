//! Transactions: Kafka's transaction coordinator, as part of the state machine. A child module
//! of the state machine, as deterministic as `apply`.
//!
//! Kafka's coordinator ends a transaction in two phases (prepare in its log, then markers to
//! every partition's leader, then complete), because its transaction log and the partitions
//! live on different brokers. Here the coordinator's state and every partition's log are one
//! state, so [`StateMachine::end_txn`] is one command: the markers, the last stable offsets,
//! the aborted index and the groups' offsets all change in the same apply, or none does. A
//! transaction is never half committed and no marker can be left unwritten (no hanging
//! transactions).

use std::collections::{BTreeMap, BTreeSet};

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::{PartitionState, StateMachine};
use crate::limits::{MAX_GROUPS_PER_TXN, MAX_PARTITIONS_PER_TXN, MAX_TRANSACTIONAL_ID_BYTES};
use crate::types::{
    AbortedTxn, AddOffsetsToTxn, AddPartitionsToTxn, BatchLocation, CommittedOffset, EndTxn,
    ExpireTransactions, GroupPartition, InitTransactionalProducer, MetaError, ObjectId,
    ProducerIdAndEpoch, RunLayout, TopicPartition, TransactionSummary, TransactionsExpired,
    TxnCommitOffsets, TxnProducer, TxnStatus, MARKER_LEN,
};

/// The coordinator's state: every transactional id, and the id of each transactional producer.
/// Grows with the transactional ids in use (they expire after
/// `transactional.id.expiration.ms`), not with transactions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Transactions {
    #[serde(deserialize_with = "crate::capped::map")]
    by_id: OrdMap<String, TxnState>,
    #[serde(deserialize_with = "crate::capped::map")]
    by_producer: OrdMap<i64, String>,
}

/// One transactional id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TxnState {
    producer_id: i64,
    epoch: i16,
    /// The epoch before EndTxn v5 last bumped it, so that a retried EndTxn (sent with the old
    /// epoch, its answer lost) gets its answer again; -1 if none.
    last_epoch: i16,
    timeout_ms: i32,
    status: TxnStatus,
    /// When the ongoing transaction began; -1 if none is ongoing.
    start_ms: i64,
    last_update_ms: i64,
    /// The partitions of the ongoing transaction, up to [`MAX_PARTITIONS_PER_TXN`].
    partitions: BTreeSet<TopicPartition>,
    /// The groups the ongoing transaction added (AddOffsetsToTxn), each with the offsets it
    /// committed in the transaction so far (TxnOffsetCommit), up to [`MAX_GROUPS_PER_TXN`].
    offsets: BTreeMap<String, BTreeMap<GroupPartition, CommittedOffset>>,
}

/// One entry of a partition's aborted index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AbortedEntry {
    pub(crate) txn: AbortedTxn,
    /// The partition's last stable offset just after the marker: every transaction still open
    /// then began at or after it. What lets [`PartitionState::aborted_between`] stop early.
    pub(crate) floor: i64,
}

/// Kafka bumps an epoch until it would reach `i16::MAX`; then the id gets a new producer id.
const LAST_EPOCH: i16 = i16::MAX - 1;

impl StateMachine {
    /// InitProducerId for a transactional id. A new id gets a producer id; a known one keeps
    /// its producer id with the next epoch (a new producer id once epochs run out), which
    /// fences every producer with an older epoch. An ongoing transaction is aborted first, in
    /// the same apply. KIP-360: a producer that names its id and epoch gets the bump only if
    /// they are the id's current ones; naming the epoch before the last bump (a retry whose
    /// answer was lost, or a producer that missed its EndTxn v5 answer) gets the current epoch
    /// without another bump. An id with no state starts afresh whatever the request names.
    pub(super) fn init_transactional_producer(
        &mut self,
        req: &InitTransactionalProducer,
    ) -> Result<ProducerIdAndEpoch, MetaError> {
        if req.transactional_id.is_empty()
            || req.transactional_id.len() > MAX_TRANSACTIONAL_ID_BYTES
        {
            return Err(MetaError::InvalidProducerIdMapping);
        }
        if req.transaction_timeout_ms <= 0 {
            return Err(MetaError::InvalidTransactionTimeout);
        }
        let Some(txn) = self.transactions.by_id.get(&req.transactional_id).cloned() else {
            // A KIP-360 producer whose id has expired starts afresh, as Kafka's coordinator
            // lets it: there is nothing left to fence.
            let producer_id = self.allocate_producer_id();
            let txn = TxnState {
                producer_id,
                epoch: 0,
                last_epoch: -1,
                timeout_ms: req.transaction_timeout_ms,
                status: TxnStatus::Empty,
                start_ms: -1,
                last_update_ms: req.now_ms,
                partitions: BTreeSet::new(),
                offsets: BTreeMap::new(),
            };
            self.transactions
                .by_producer
                .insert(producer_id, req.transactional_id.clone());
            self.transactions
                .by_id
                .insert(req.transactional_id.clone(), txn);
            return Ok(ProducerIdAndEpoch {
                producer_id,
                producer_epoch: 0,
            });
        };
        // KIP-360: the epoch before the last bump, named again, is a retry of the call that
        // bumped it (its answer lost) as long as no other producer has initialised since (which
        // clears `last_epoch`): it gets the current epoch without another bump, as in Kafka.
        let recovering = req.producer_id >= 0;
        if recovering {
            if req.producer_id != txn.producer_id {
                return Err(MetaError::ProducerFenced);
            }
            if req.producer_epoch != txn.epoch {
                if txn.last_epoch >= 0
                    && req.producer_epoch == txn.last_epoch
                    && txn.status != TxnStatus::Ongoing
                {
                    return Ok(ProducerIdAndEpoch {
                        producer_id: txn.producer_id,
                        producer_epoch: txn.epoch,
                    });
                }
                return Err(MetaError::ProducerFenced);
            }
        }
        if txn.status == TxnStatus::Ongoing {
            self.complete(&req.transactional_id, false, req.now_ms);
        }
        let fenced = self.fence(&req.transactional_id, req.now_ms);
        if let Some(t) = self.transactions.by_id.get_mut(&req.transactional_id) {
            t.timeout_ms = req.transaction_timeout_ms;
            t.status = TxnStatus::Empty;
            t.last_epoch = if recovering && fenced.producer_id == txn.producer_id {
                txn.epoch
            } else {
                -1
            };
        }
        Ok(fenced)
    }

    /// AddPartitionsToTxn. The whole request fails for a fenced or unknown producer, or a
    /// transaction that cannot take partitions now; otherwise each partition is answered on its
    /// own, and if any does not exist none is added (Kafka answers the others
    /// `OPERATION_NOT_ATTEMPTED`, which the agent does).
    pub(super) fn add_partitions_to_txn(
        &mut self,
        req: &AddPartitionsToTxn,
    ) -> Result<Vec<Result<(), MetaError>>, MetaError> {
        self.check_producer(&req.producer)?;
        let answers: Vec<Result<(), MetaError>> = req
            .partitions
            .iter()
            .map(|tp| self.partition(*tp).map(|_| ()))
            .collect();
        if answers.iter().any(Result::is_err) {
            return Ok(answers);
        }
        let txn = self.txn_mut(&req.producer.transactional_id)?;
        let mut partitions = txn.partitions.clone();
        partitions.extend(req.partitions.iter().copied());
        if partitions.len() > MAX_PARTITIONS_PER_TXN {
            return Err(MetaError::TooManyTxnPartitions);
        }
        txn.partitions = partitions;
        begin(txn, req.now_ms);
        Ok(answers)
    }

    /// AddOffsetsToTxn: the group joins the transaction (which begins if none is ongoing).
    pub(super) fn add_offsets_to_txn(&mut self, req: &AddOffsetsToTxn) -> Result<(), MetaError> {
        self.check_producer(&req.producer)?;
        let txn = self.txn_mut(&req.producer.transactional_id)?;
        if !txn.offsets.contains_key(&req.group) && txn.offsets.len() >= MAX_GROUPS_PER_TXN {
            return Err(MetaError::TooManyTxnPartitions);
        }
        txn.offsets.entry(req.group.clone()).or_default();
        begin(txn, req.now_ms);
        Ok(())
    }

    /// TxnOffsetCommit: the offsets wait in the transaction. Refused partition by partition
    /// for a coordinator that is not the group's; for a producer that is fenced, or whose
    /// transaction has not added the group, every partition gets the error.
    pub(super) fn txn_commit_offsets(
        &mut self,
        req: &TxnCommitOffsets,
    ) -> Vec<Result<(), MetaError>> {
        let n = req.commit.offsets.len();
        if !self.coordinates(req.coordinator, &req.commit.group) {
            return vec![Err(MetaError::NotCoordinator); n];
        }
        if let Err(e) = self.check_producer(&req.producer) {
            return vec![Err(e); n];
        }
        let exists: Vec<bool> = req
            .commit
            .offsets
            .iter()
            .map(|(gp, _)| self.group_partition_exists(gp))
            .collect();
        let Ok(txn) = self.txn_mut(&req.producer.transactional_id) else {
            return vec![Err(MetaError::InvalidProducerIdMapping); n];
        };
        if txn.status != TxnStatus::Ongoing {
            return vec![Err(MetaError::InvalidTxnState); n];
        }
        let Some(pending) = txn.offsets.get_mut(&req.commit.group) else {
            return vec![Err(MetaError::GroupNotInTransaction); n];
        };
        req.commit
            .offsets
            .iter()
            .zip(exists)
            .map(|((gp, offset), exists)| {
                if !exists {
                    return Err(MetaError::UnknownTopicOrPartition);
                }
                pending.insert(gp.clone(), offset.clone());
                Ok(())
            })
            .collect()
    }

    /// EndTxn: commits or aborts the ongoing transaction in this one apply. A retry of an
    /// EndTxn that already applied gets the same answer; the opposite outcome, or an EndTxn with
    /// no transaction, is [`MetaError::InvalidTxnState`].
    pub(super) fn end_txn(&mut self, req: &EndTxn) -> Result<ProducerIdAndEpoch, MetaError> {
        let id = &req.producer.transactional_id;
        let txn = self
            .transactions
            .by_id
            .get(id)
            .ok_or(MetaError::InvalidProducerIdMapping)?;
        if txn.producer_id != req.producer.producer_id {
            return Err(MetaError::InvalidProducerIdMapping);
        }
        let done = if req.commit {
            TxnStatus::CompleteCommit
        } else {
            TxnStatus::CompleteAbort
        };
        let current = ProducerIdAndEpoch {
            producer_id: txn.producer_id,
            producer_epoch: txn.epoch,
        };
        if req.producer.producer_epoch != txn.epoch {
            // A retry of an EndTxn v5 whose answer was lost: it bumped the epoch.
            if txn.last_epoch >= 0 && req.producer.producer_epoch == txn.last_epoch {
                return if txn.status == done {
                    Ok(current)
                } else {
                    Err(MetaError::InvalidTxnState)
                };
            }
            return Err(if req.producer.producer_epoch < txn.epoch {
                MetaError::ProducerFenced
            } else {
                MetaError::InvalidProducerEpoch
            });
        }
        match txn.status {
            TxnStatus::Ongoing => {}
            status if status == done && !req.bump_epoch => return Ok(current),
            _ => return Err(MetaError::InvalidTxnState),
        }
        self.complete(id, req.commit, req.now_ms);
        if !req.bump_epoch {
            return Ok(current);
        }
        let before = current.producer_epoch;
        let bumped = self.fence(id, req.now_ms);
        if let Some(t) = self.transactions.by_id.get_mut(id) {
            t.last_epoch = if bumped.producer_id == current.producer_id {
                before
            } else {
                -1
            };
        }
        Ok(bumped)
    }

    /// Aborts the transactions open longer than their timeout, fencing their producers, and
    /// forgets the idle ids. O(transactional ids).
    pub(super) fn expire_transactions(&mut self, pass: &ExpireTransactions) -> TransactionsExpired {
        let now = pass.now_ms;
        let timed_out: Vec<String> = self
            .transactions
            .by_id
            .iter()
            .filter(|(_, t)| t.status == TxnStatus::Ongoing && timed_out(t, now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &timed_out {
            self.abort_and_fence(id, now);
        }
        let idle: Vec<(String, i64)> = if pass.transactional_id_expiration_ms < 0 {
            Vec::new()
        } else {
            self.transactions
                .by_id
                .iter()
                .filter(|(_, t)| {
                    t.status != TxnStatus::Ongoing
                        && now.saturating_sub(t.last_update_ms)
                            > pass.transactional_id_expiration_ms
                })
                .map(|(id, t)| (id.clone(), t.producer_id))
                .collect()
        };
        for (id, producer_id) in &idle {
            self.transactions.by_id.remove(id);
            self.transactions.by_producer.remove(producer_id);
        }
        TransactionsExpired {
            timed_out,
            forgotten: idle.len() as u64,
        }
    }

    /// `skiff transactions abort`: aborts the ongoing transaction and fences its producer.
    /// An id with no transaction ongoing is [`MetaError::InvalidTxnState`].
    pub(super) fn abort_transaction(&mut self, id: &str, now_ms: i64) -> Result<(), MetaError> {
        match self.transactions.by_id.get(id) {
            None => Err(MetaError::InvalidProducerIdMapping),
            Some(t) if t.status != TxnStatus::Ongoing => Err(MetaError::InvalidTxnState),
            Some(_) => {
                self.abort_and_fence(id, now_ms);
                Ok(())
            }
        }
    }

    fn abort_and_fence(&mut self, id: &str, now_ms: i64) {
        self.complete(id, false, now_ms);
        self.fence(id, now_ms);
        if let Some(t) = self.transactions.by_id.get_mut(id) {
            t.last_epoch = -1;
        }
    }

    /// Whether any transaction has timed out, or any id is due to expire, at `now_ms`: what
    /// an agent asks before it sends an [`ExpireTransactions`], so an idle cluster's log does not
    /// grow with passes that do nothing.
    pub fn transactions_due(&self, now_ms: i64, transactional_id_expiration_ms: i64) -> bool {
        self.transactions.by_id.values().any(|t| {
            if t.status == TxnStatus::Ongoing {
                timed_out(t, now_ms)
            } else {
                transactional_id_expiration_ms >= 0
                    && now_ms.saturating_sub(t.last_update_ms) > transactional_id_expiration_ms
            }
        })
    }

    /// Checks a transactional batch before it is appended: the producer's transaction must be
    /// ongoing at the batch's epoch with the partition in it (KIP-890 part 1: no write into a
    /// transaction that has ended, whatever a late or zombie producer sends).
    pub(super) fn check_txn_batch(
        &self,
        tp: TopicPartition,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(), MetaError> {
        let txn = self
            .transactions
            .by_producer
            .get(&producer_id)
            .and_then(|id| self.transactions.by_id.get(id))
            .ok_or(MetaError::InvalidProducerIdMapping)?;
        if epoch != txn.epoch {
            return Err(MetaError::InvalidProducerEpoch);
        }
        if txn.status != TxnStatus::Ongoing || !txn.partitions.contains(&tp) {
            return Err(MetaError::InvalidTxnState);
        }
        Ok(())
    }

    /// Describes the ids asked for; `None` for an id that has no state.
    pub fn describe_transactions(&self, ids: &[String]) -> Vec<Option<TransactionSummary>> {
        ids.iter()
            .map(|id| self.transactions.by_id.get(id).map(|t| summary(id, t)))
            .collect()
    }

    /// ListTransactions: the ids whose state is among `states` and whose producer is among
    /// `producer_ids` (an empty filter passes everything), whose ongoing transaction has run
    /// for at least `min_duration_ms` (-1: any). At most `limit`, by id.
    pub fn list_transactions(
        &self,
        states: &[TxnStatus],
        producer_ids: &[i64],
        min_duration_ms: i64,
        now_ms: i64,
        limit: usize,
    ) -> Vec<TransactionSummary> {
        self.transactions
            .by_id
            .iter()
            .filter(|(_, t)| states.is_empty() || states.contains(&t.status))
            .filter(|(_, t)| producer_ids.is_empty() || producer_ids.contains(&t.producer_id))
            .filter(|(_, t)| {
                min_duration_ms < 0
                    || t.status == TxnStatus::Ongoing
                        && now_ms.saturating_sub(t.start_ms) >= min_duration_ms
            })
            .take(limit)
            .map(|(id, t)| summary(id, t))
            .collect()
    }

    /// The partitions of `group` with offsets waiting in an ongoing transaction: OffsetFetch
    /// with `require_stable` answers them `UNSTABLE_OFFSET_COMMIT` (KIP-447), so a consumer
    /// taking over does not start from an offset a transaction is about to move.
    pub fn pending_txn_offsets(&self, group: &str) -> Vec<GroupPartition> {
        let mut out: BTreeSet<GroupPartition> = BTreeSet::new();
        for t in self.transactions.by_id.values() {
            if let Some(pending) = t.offsets.get(group) {
                out.extend(pending.keys().cloned());
            }
        }
        out.into_iter().collect()
    }

    /// How many transactional ids there are, and how many have a transaction ongoing.
    pub fn transaction_counts(&self) -> (u64, u64) {
        let ongoing = self
            .transactions
            .by_id
            .values()
            .filter(|t| t.status == TxnStatus::Ongoing)
            .count();
        (self.transactions.by_id.len() as u64, ongoing as u64)
    }

    fn allocate_producer_id(&mut self) -> i64 {
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        id
    }

    fn txn_mut(&mut self, id: &str) -> Result<&mut TxnState, MetaError> {
        self.transactions
            .by_id
            .get_mut(id)
            .ok_or(MetaError::InvalidProducerIdMapping)
    }

    /// The producer must be the id's, at its current epoch.
    fn check_producer(&self, p: &TxnProducer) -> Result<(), MetaError> {
        let txn = self
            .transactions
            .by_id
            .get(&p.transactional_id)
            .ok_or(MetaError::InvalidProducerIdMapping)?;
        if txn.producer_id != p.producer_id {
            return Err(MetaError::InvalidProducerIdMapping);
        }
        if p.producer_epoch < txn.epoch {
            return Err(MetaError::ProducerFenced);
        }
        if p.producer_epoch > txn.epoch {
            return Err(MetaError::InvalidProducerEpoch);
        }
        Ok(())
    }

    fn group_partition_exists(&self, gp: &GroupPartition) -> bool {
        self.topics_by_name
            .get(&gp.topic)
            .and_then(|id| self.topics.get(id))
            .is_some_and(|t| (0..t.meta.partitions).contains(&gp.partition))
    }

    /// Ends the id's ongoing transaction: a marker at the end of every partition it wrote to,
    /// the aborted index on abort, the pending offsets stored (commit) or dropped (abort).
    fn complete(&mut self, id: &str, commit: bool, now_ms: i64) {
        let Some(txn) = self.transactions.by_id.get_mut(id) else {
            return;
        };
        let partitions = std::mem::take(&mut txn.partitions);
        let offsets = std::mem::take(&mut txn.offsets);
        let (producer_id, epoch) = (txn.producer_id, txn.epoch);
        txn.status = if commit {
            TxnStatus::CompleteCommit
        } else {
            TxnStatus::CompleteAbort
        };
        txn.start_ms = -1;
        txn.last_update_ms = now_ms;
        for tp in partitions {
            // A partition deleted since has nothing to end.
            if let Ok(part) = self.partition_mut(tp) {
                part.end_txn(producer_id, epoch, commit, now_ms);
            }
        }
        if !commit {
            return;
        }
        for (group, pending) in offsets {
            let exists: Vec<(GroupPartition, CommittedOffset)> = pending
                .into_iter()
                .filter(|(gp, _)| self.group_partition_exists(gp))
                .collect();
            if exists.is_empty() {
                continue;
            }
            let stored = self.groups.entry(group).or_default();
            for (gp, offset) in exists {
                stored.insert(gp, offset);
            }
        }
    }

    /// The next epoch of the id's producer (a new producer id once the epoch runs out).
    fn fence(&mut self, id: &str, now_ms: i64) -> ProducerIdAndEpoch {
        let exhausted = self
            .transactions
            .by_id
            .get(id)
            .is_some_and(|t| t.epoch >= LAST_EPOCH);
        let new_id = exhausted.then(|| self.allocate_producer_id());
        let Some(txn) = self.transactions.by_id.get_mut(id) else {
            return ProducerIdAndEpoch {
                producer_id: -1,
                producer_epoch: -1,
            };
        };
        match new_id {
            Some(pid) => {
                let old = txn.producer_id;
                txn.producer_id = pid;
                txn.epoch = 0;
                self.transactions.by_producer.remove(&old);
                self.transactions.by_producer.insert(pid, id.to_owned());
            }
            None => txn.epoch += 1,
        }
        let Some(txn) = self.transactions.by_id.get_mut(id) else {
            return ProducerIdAndEpoch {
                producer_id: -1,
                producer_epoch: -1,
            };
        };
        txn.last_update_ms = now_ms;
        ProducerIdAndEpoch {
            producer_id: txn.producer_id,
            producer_epoch: txn.epoch,
        }
    }
}

fn begin(txn: &mut TxnState, now_ms: i64) {
    if txn.status != TxnStatus::Ongoing {
        txn.status = TxnStatus::Ongoing;
        txn.start_ms = now_ms;
    }
    txn.last_update_ms = now_ms;
}

fn timed_out(t: &TxnState, now_ms: i64) -> bool {
    now_ms.saturating_sub(t.start_ms) > i64::from(t.timeout_ms)
}

fn summary(id: &str, t: &TxnState) -> TransactionSummary {
    TransactionSummary {
        transactional_id: id.to_owned(),
        producer_id: t.producer_id,
        producer_epoch: t.epoch,
        status: t.status,
        timeout_ms: t.timeout_ms,
        start_ms: t.start_ms,
        last_update_ms: t.last_update_ms,
        partitions: t.partitions.iter().copied().collect(),
        groups: t.offsets.keys().cloned().collect(),
    }
}

impl PartitionState {
    /// The last stable offset: the first offset of the oldest open transaction, or the high
    /// watermark; never below the log start.
    pub(super) fn last_stable_offset(&self) -> i64 {
        self.open_txns
            .values()
            .min()
            .copied()
            .unwrap_or(self.high_watermark)
            .min(self.high_watermark)
            .max(self.log_start_offset)
    }

    /// A transactional batch of `producer_id` was appended at `base_offset`: its transaction
    /// is open here from its first batch on.
    pub(super) fn note_txn_write(&mut self, producer_id: i64, base_offset: i64) {
        self.open_txns.entry(producer_id).or_insert(base_offset);
    }

    /// Writes the marker of `producer_id`'s transaction, if it wrote here, and closes it.
    fn end_txn(&mut self, producer_id: i64, epoch: i16, commit: bool, now_ms: i64) {
        let Some(first_offset) = self.open_txns.remove(&producer_id) else {
            return;
        };
        let offset = self.high_watermark;
        self.index.push(BatchLocation {
            base_offset: offset,
            last_offset: offset,
            object: ObjectId::MARKER,
            position: 0,
            len: MARKER_LEN,
            first_timestamp: now_ms,
            max_timestamp: now_ms,
            layout: RunLayout::Marker {
                producer_id,
                producer_epoch: epoch,
                commit,
            },
        });
        self.add_bytes(MARKER_LEN);
        self.high_watermark = offset + 1;
        if !commit {
            let floor = self.last_stable_offset();
            self.aborted.push_back(AbortedEntry {
                txn: AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: offset,
                },
                floor,
            });
        }
    }

    /// The aborted transactions overlapping `from..=to`, in marker order. The aborted index is
    /// in marker order, so by `last_offset`: a binary search finds the first that ends at or
    /// after `from`, and every one after it up to `to` overlaps. Past `to`, an entry overlaps if
    /// its transaction began by `to`; the walk stops at the first entry whose floor is past
    /// `to`, since every later one either was open then (began at or after the floor) or began
    /// after its marker. So a read walks the markers of its range and the transactions open
    /// across its end, never the whole index.
    pub(super) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = first_at_or_after(&self.aborted, from);
        let mut out = Vec::new();
        for a in self.aborted.iter().skip(start) {
            if a.txn.first_offset <= to {
                out.push(a.txn);
            }
            if a.txn.last_offset > to && a.floor > to {
                break;
            }
        }
        out
    }

    /// Drops the aborted transactions wholly below the log start offset: no fetch can reach
    /// them. Keeps the aborted index within the log, as the index itself is.
    pub(super) fn trim_aborted(&mut self) {
        let start = self.log_start_offset;
        let gone = first_at_or_after(&self.aborted, start);
        if gone > 0 {
            self.aborted = self.aborted.split_off(gone);
        }
    }
}

/// The position of the first entry whose marker is at or after `offset`.
fn first_at_or_after(aborted: &imbl::Vector<AbortedEntry>, offset: i64) -> usize {
    aborted
        .binary_search_by(|a| {
            if a.txn.last_offset < offset {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        })
        .unwrap_or_else(|i| i)
}

#[cfg(test)]
#[path = "transactions_tests.rs"]
mod tests;
