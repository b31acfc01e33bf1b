//! Reads for the admin and describe APIs (DescribeLogDirs, DescribeProducers). A child module of
//! the state machine, so it sees its private state. Each is bounded: the agent asks for at most
//! [`MAX_PARTITIONS_PER_READ`] partitions at a time, and a partition answers at most
//! [`MAX_PRODUCERS_PER_PARTITION`] producers.

use super::StateMachine;
pub use crate::limits::MAX_PARTITIONS_PER_READ;
use crate::types::{MetaError, ProducerSummary, TopicPartition};

/// The most producers one partition describes, the most recently written first.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 4_096;

impl StateMachine {
    /// Each partition's bytes: the sum of its index entries' lengths, kept up to date with
    /// every change of the index (retention by size reads the same number). Partitions past
    /// [`MAX_PARTITIONS_PER_READ`] are not answered.
    pub fn partition_sizes(&self, tps: &[TopicPartition]) -> Vec<Result<u64, MetaError>> {
        tps.iter()
            .take(MAX_PARTITIONS_PER_READ)
            .map(|&tp| self.partition(tp).map(|p| p.bytes()))
            .collect()
    }

    /// Each partition's idempotent producers, as DescribeProducers shows them.
    pub fn producers(
        &self,
        tps: &[TopicPartition],
    ) -> Vec<Result<Vec<ProducerSummary>, MetaError>> {
        tps.iter()
            .take(MAX_PARTITIONS_PER_READ)
            .map(|&tp| {
                let part = self.partition(tp)?;
                let mut out: Vec<ProducerSummary> = part
                    .producers
                    .iter()
                    .filter_map(|(&producer_id, state)| {
                        let last = state.batches.back()?;
                        Some(ProducerSummary {
                            producer_id,
                            epoch: state.epoch,
                            last_sequence: last.last_seq,
                            last_write_ms: state.last_write_ms.unwrap_or(-1),
                            current_txn_start_offset: part
                                .open_txns
                                .get(&producer_id)
                                .copied()
                                .unwrap_or(-1),
                        })
                    })
                    .collect();
                if out.len() > MAX_PRODUCERS_PER_PARTITION {
                    out.sort_by_key(|p| std::cmp::Reverse((p.last_write_ms, p.producer_id)));
                    out.truncate(MAX_PRODUCERS_PER_PARTITION);
                    out.sort_by_key(|p| p.producer_id);
                }
                Ok(out)
            })
            .collect()
    }
}
