//! Command payloads as older journals hold them, for reading those journals back. postcard
//! names fields by position, so a changed type keeps its old layout here, with the conversion.

use serde::{Deserialize, Serialize};

use crate::types::{BatchLocation, ObjectId, ReplaceBatches, RunLayout, TopicPartition};

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
