//! Command payloads as older journals hold them, for reading those journals back. postcard
//! names fields by position, so a changed type keeps its old layout here, with the conversion.

use serde::{Deserialize, Serialize};

use crate::types::{
    BatchLocation, CommitBatch, CommitObject, ObjectId, ReplaceBatches, RunLayout, TopicPartition,
};

/// An index entry as snapshots before version 6 and journals before version 5 hold it: one
/// batch, its object id as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLocationV1 {
    pub base_offset: i64,
    pub last_offset: i64,
    pub object: ObjectId,
    pub position: u64,
    pub len: u32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
}

/// One batch is a run of one; the segments of those versions held per-batch entries whose
/// headers carry the producers' base offsets, so they are flushed runs too.
impl From<BatchLocationV1> for BatchLocation {
    fn from(v: BatchLocationV1) -> Self {
        BatchLocation {
            base_offset: v.base_offset,
            last_offset: v.last_offset,
            object: v.object,
            position: v.position,
            len: v.len,
            first_timestamp: v.first_timestamp,
            max_timestamp: v.max_timestamp,
            layout: RunLayout::Flushed,
        }
    }
}

/// [`ReplaceBatches`] in journals before version 5.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceBatchesV4 {
    pub tp: TopicPartition,
    pub object: ObjectId,
    pub size: u64,
    pub replaced: Vec<(i64, ObjectId)>,
    pub batches: Vec<BatchLocationV1>,
    pub now_ms: i64,
}

impl From<&ReplaceBatchesV4> for ReplaceBatches {
    fn from(v: &ReplaceBatchesV4) -> Self {
        ReplaceBatches {
            tp: v.tp,
            object: v.object,
            size: v.size,
            replaced: v.replaced.clone(),
            batches: v.batches.iter().copied().map(Into::into).collect(),
            now_ms: v.now_ms,
        }
    }
}

/// A batch of [`CommitObjectV6`]: [`crate::types::CommitBatch`] before transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitBatchV6 {
    pub tp: TopicPartition,
    pub position: u64,
    pub len: u32,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// [`CommitObject`] in journals before version 7.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitObjectV6 {
    pub object: ObjectId,
    pub size: u64,
    pub batches: Vec<CommitBatchV6>,
    pub now_ms: i64,
}

impl From<&CommitObjectV6> for CommitObject {
    fn from(v: &CommitObjectV6) -> Self {
        CommitObject {
            object: v.object,
            size: v.size,
            batches: v
                .batches
                .iter()
                .map(|b| CommitBatch {
                    tp: b.tp,
                    position: b.position,
                    len: b.len,
                    last_offset_delta: b.last_offset_delta,
                    record_count: b.record_count,
                    first_timestamp: b.first_timestamp,
                    max_timestamp: b.max_timestamp,
                    producer_id: b.producer_id,
                    producer_epoch: b.producer_epoch,
                    base_sequence: b.base_sequence,
                    transactional: false,
                })
                .collect(),
            now_ms: v.now_ms,
        }
    }
}
