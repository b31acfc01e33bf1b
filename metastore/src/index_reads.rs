//! Reads of the partitions' indexes, as fetches and the compactor make them. A child module of
//! the state machine, so it sees its private state. Each runs under the state's read lock, so
//! each is bounded: by bytes of batches described, by a number of entries, and for a whole
//! Fetch by one budget across its partitions, whatever the request asks for.

use std::collections::HashMap;

use super::StateMachine;
use crate::types::{IndexAnswer, IndexRead, IndexSlice, MetaError, TopicPartition};

/// The most entries one slice holds, whatever its byte limit: a partition of tiny batches
/// would otherwise answer a 256 MiB read with millions of them (a stored batch is at least its
/// 61-byte header). Readers that want more page on from the last entry.
pub const MAX_SLICE_BATCHES: usize = 16_384;

impl StateMachine {
    /// See [`crate::client::MetastoreClient::read_index`].
    pub fn read_index(
        &self,
        tp: TopicPartition,
        offset: i64,
        max_bytes: u64,
    ) -> Result<IndexSlice, MetaError> {
        self.slice(tp, offset, max_bytes, MAX_SLICE_BATCHES)
    }

    /// Several index reads from this one state, each within its own `max_bytes` only (the
    /// older form of [`StateMachine::read_indexes_within`], kept for clients that send it).
    pub fn read_indexes(&self, reads: &[IndexRead]) -> Vec<IndexAnswer> {
        self.read_indexes_within(reads, u64::MAX)
    }

    /// See [`crate::client::MetastoreClient::read_indexes_within`]: the reads in request order,
    /// each within its own `max_bytes` and what is left of `total_max_bytes`, as Kafka fills a
    /// response. A slice may pass what was left by its last batch (the first batch of a slice is
    /// whole), so the slices together describe at most `total_max_bytes` plus one batch per
    /// partition. Once the total is spent the remaining reads get their offsets and no batches.
    /// A read repeating an earlier one (same partition, offset and kind) does not walk the index
    /// again: it gets a copy of the first answer, cut to what is left of both limits.
    pub fn read_indexes_within(
        &self,
        reads: &[IndexRead],
        total_max_bytes: u64,
    ) -> Vec<IndexAnswer> {
        let mut left = total_max_bytes;
        let mut first_of: HashMap<(TopicPartition, i64, bool, i64), usize> = HashMap::new();
        let mut answers: Vec<IndexAnswer> = Vec::with_capacity(reads.len());
        for r in reads {
            let key = (r.tp, r.offset, r.offsets_only, r.aborted_upto);
            if let Some(answer) = first_of.get(&key).and_then(|&i| answers.get(i)) {
                let mut answer = answer.clone();
                if let Ok(slice) = &mut answer.slice {
                    let mut used = 0u64;
                    let limit = r.max_bytes.min(left);
                    let keep = slice
                        .batches
                        .iter()
                        .take_while(|b| {
                            used += b.read_cost(limit.saturating_sub(used));
                            used <= limit
                        })
                        .count();
                    slice.batches.truncate(keep);
                    left = left.saturating_sub(slice_bytes(slice, limit));
                }
                answers.push(answer);
                continue;
            }
            first_of.insert(key, answers.len());
            let max_batches = if r.offsets_only || left == 0 {
                0
            } else {
                MAX_SLICE_BATCHES
            };
            let limit = r.max_bytes.min(left);
            let mut slice = self.slice(r.tp, r.offset, limit, max_batches);
            if let (Ok(s), true) = (&mut slice, r.offsets_only && r.aborted_upto >= r.offset) {
                if let Ok(part) = self.partition(r.tp) {
                    s.aborted = part.aborted_between(r.offset, r.aborted_upto);
                }
            }
            if let Ok(s) = &slice {
                left = left.saturating_sub(slice_bytes(s, limit));
            }
            answers.push(IndexAnswer {
                slice,
                offsets: self.offsets(r.tp).ok(),
            });
        }
        answers
    }

    /// The run containing `offset` (or the first after it) and those following, until what
    /// reading them costs ([`crate::types::BatchLocation::read_cost`]) reaches `max_bytes` (at least one run,
    /// if `max_batches` allows any) or there are `max_batches` of them.
    fn slice(
        &self,
        tp: TopicPartition,
        offset: i64,
        max_bytes: u64,
        max_batches: usize,
    ) -> Result<IndexSlice, MetaError> {
        let part = self.partition(tp)?;
        let offsets = part.offsets();
        if offset < part.log_start_offset || offset > part.high_watermark {
            return Err(MetaError::OffsetOutOfRange);
        }
        let mut batches = Vec::new();
        if max_batches == 0 {
            return Ok(IndexSlice {
                offsets,
                batches,
                aborted: Vec::new(),
            });
        }
        let start = match part.index.floor(offset) {
            Some(b) if b.last_offset >= offset => b.base_offset,
            _ => offset.saturating_add(1),
        };
        let mut bytes = 0u64;
        for b in part.index.from(start) {
            if batches.len() >= max_batches || !batches.is_empty() && bytes >= max_bytes {
                break;
            }
            bytes += b.read_cost(max_bytes.saturating_sub(bytes));
            batches.push(*b);
        }
        let aborted = match batches.last() {
            Some(last) => part.aborted_between(offset, last.last_offset),
            None => Vec::new(),
        };
        Ok(IndexSlice {
            offsets,
            batches,
            aborted,
        })
    }
}

/// What reading `slice`'s runs costs, for a reader that wants `limit` bytes of them.
fn slice_bytes(slice: &IndexSlice, limit: u64) -> u64 {
    slice.batches.iter().fold(0u64, |used, b| {
        used.saturating_add(b.read_cost(limit.saturating_sub(used)))
    })
}

#[cfg(test)]
#[path = "index_reads_tests.rs"]
mod tests;
