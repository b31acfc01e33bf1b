//! Reading runs back for a rewrite: each object's wanted ranges at once (object_store
//! coalesces ranges close together into one GET), several objects in parallel, then each run
//! walked into its batches, every one checksum verified, so that a rewrite never spreads
//! corruption.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use object_store::ObjectStore;
use skiff_format::run::{run_batches, IndexError, RunOffsets, SegmentIndex};
use skiff_format::{Batch, BatchError};
use skiff_metastore::types::{BatchLocation, ObjectId, RunLayout};
use tracing::warn;

use crate::object_path;

/// One batch of a run read back.
#[derive(Clone, Debug)]
pub(crate) struct StoredBatch {
    /// The batch's real base offset. Its header's may be the producer's (a flushed run).
    pub base_offset: i64,
    pub batch: Batch,
    /// The timestamp the index holds for the batch's first record, known for a run's first
    /// batch only.
    pub first_timestamp: Option<i64>,
    /// No record of the batch is later than this, by the index's timestamps. Those are not
    /// always the header's (a `LogAppendTime` topic's are the agent's clock), so the bound
    /// comes from the index: the run's max, narrowed for a segment by its index's stretch.
    pub max_timestamp: i64,
}

impl StoredBatch {
    pub fn last_offset(&self) -> i64 {
        // `parse_stored` refused a negative delta.
        self.base_offset
            .saturating_add(i64::from(self.batch.header.last_offset_delta))
    }
}

/// Why a run could not be taken from what [`batches`] read.
#[derive(Debug, thiserror::Error)]
pub enum StoredBatchError {
    #[error("run at {position} of object {object} was not read")]
    Missing { object: ObjectId, position: u64 },
    #[error("run at {position} of object {object} is corrupt: {reason}")]
    Corrupt {
        object: ObjectId,
        position: u64,
        #[source]
        reason: RunCorruption,
    },
}

/// What is wrong with a run's bytes, measured against its index entry.
#[derive(Debug, thiserror::Error)]
pub enum RunCorruption {
    #[error("the batch at byte {at} of the run: {source}")]
    Batch { at: usize, source: BatchError },
    #[error("the run holds no batch")]
    Empty,
    #[error("the batches end at offset {walked}, the index entry at {entry}")]
    End { walked: i64, entry: i64 },
    #[error("the batch at offset {base_offset} is not after offset {after} or past the run's last offset {last}")]
    OutOfPlace {
        base_offset: i64,
        after: i64,
        last: i64,
    },
    #[error("segment index: {0}")]
    Index(#[from] IndexError),
    #[error("segment index point {0} is not at the start of a batch with its offset")]
    IndexPoint(usize),
}

/// How many bytes a rewrite reads of run `b`: its batches, and a segment's index after them.
fn stored_len(b: &BatchLocation) -> u64 {
    match b.layout {
        RunLayout::Flushed => u64::from(b.len),
        RunLayout::Segment { index_len } => u64::from(b.len) + u64::from(index_len),
        // Built from the entry, never read.
        RunLayout::Marker { .. } => 0,
    }
}

fn stored_range(b: &BatchLocation) -> Range<u64> {
    b.position..b.position.saturating_add(stored_len(b))
}

/// The batches of run `b` among the bytes [`batches`] read, in order, each with its real offset
/// and its checksum verified. The walk must match the entry, or the run is corrupt.
pub(crate) fn stored_run(
    read: &HashMap<(ObjectId, u64), Bytes>,
    b: &BatchLocation,
) -> Result<Vec<StoredBatch>, StoredBatchError> {
    if let RunLayout::Marker {
        producer_id,
        producer_epoch,
        commit,
    } = b.layout
    {
        return marker(b, producer_id, producer_epoch, commit);
    }
    // Exactly what was asked for, so the run's `len` bytes are there to slice.
    let raw = read
        .get(&(b.object, b.position))
        .filter(|c| c.len() as u64 == stored_len(b))
        .ok_or(StoredBatchError::Missing {
            object: b.object,
            position: b.position,
        })?;
    walk(raw, b).map_err(|reason| StoredBatchError::Corrupt {
        object: b.object,
        position: b.position,
        reason,
    })
}

/// A marker entry as the one control batch it stands for.
fn marker(
    b: &BatchLocation,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> Result<Vec<StoredBatch>, StoredBatchError> {
    let bytes = skiff_format::control::Marker {
        producer_id,
        producer_epoch,
        commit,
        timestamp: b.max_timestamp,
        coordinator_epoch: 0,
    }
    .encode(b.base_offset);
    let batch = Batch::parse_stored(bytes).map_err(|source| StoredBatchError::Corrupt {
        object: b.object,
        position: b.position,
        reason: RunCorruption::Batch { at: 0, source },
    })?;
    Ok(vec![StoredBatch {
        base_offset: b.base_offset,
        batch,
        first_timestamp: Some(b.first_timestamp),
        max_timestamp: b.max_timestamp,
    }])
}

fn walk(raw: &Bytes, b: &BatchLocation) -> Result<Vec<StoredBatch>, RunCorruption> {
    let len = b.len as usize;
    let (run, index) = (raw.slice(..len), raw.slice(len..));
    let (offsets, index) = match b.layout {
        RunLayout::Flushed | RunLayout::Marker { .. } => {
            (RunOffsets::Consecutive(b.base_offset), None)
        }
        RunLayout::Segment { .. } => (RunOffsets::InHeaders, Some(SegmentIndex::decode(&index)?)),
    };
    let points = index.as_ref().map_or(&[][..], |i| i.points());
    let mut next_point = 0;
    let mut stretch_max = b.max_timestamp;
    let mut out: Vec<StoredBatch> = Vec::new();
    let mut end = 0;
    for found in run_batches(&run, offsets) {
        let found = found.map_err(|source| RunCorruption::Batch { at: end, source })?;
        let at = found.range.start;
        end = found.range.end;
        let batch = Batch::parse_stored(run.slice(found.range.clone()))
            .map_err(|source| RunCorruption::Batch { at, source })?;
        let after = out
            .last()
            .map_or(b.base_offset.saturating_sub(1), StoredBatch::last_offset);
        if found.base_offset <= after || found.last_offset() > b.last_offset {
            return Err(RunCorruption::OutOfPlace {
                base_offset: found.base_offset,
                after,
                last: b.last_offset,
            });
        }
        if index.is_some() {
            // Every point must be a batch boundary, the first at the first batch: a point
            // anywhere else would send readers into the middle of a batch.
            match points.get(next_point) {
                Some(p) if p.position as usize == at => {
                    if p.base_offset != found.base_offset {
                        return Err(RunCorruption::IndexPoint(next_point));
                    }
                    stretch_max = p.max_timestamp.min(b.max_timestamp);
                    next_point += 1;
                }
                Some(p) if (p.position as usize) < at => {
                    return Err(RunCorruption::IndexPoint(next_point))
                }
                _ if at == 0 => return Err(RunCorruption::IndexPoint(0)),
                _ => {}
            }
        }
        out.push(StoredBatch {
            base_offset: found.base_offset,
            batch,
            first_timestamp: out.is_empty().then_some(b.first_timestamp),
            max_timestamp: stretch_max,
        });
    }
    if next_point < points.len() {
        return Err(RunCorruption::IndexPoint(next_point));
    }
    let walked = out.last().ok_or(RunCorruption::Empty)?.last_offset();
    // A flushed run's offsets are counted from its base, so only its end can tell that the
    // batches are the ones the entry describes.
    if b.layout == RunLayout::Flushed && walked != b.last_offset {
        return Err(RunCorruption::End {
            walked,
            entry: b.last_offset,
        });
    }
    Ok(out)
}

/// Objects read at once.
const PARALLEL_READS: usize = 8;

/// The bytes of `runs` (with a segment's index), by (object, position), and the objects that
/// could not be read. `objects_read` counts the objects asked for.
pub(crate) async fn batches<'a>(
    store: &Arc<dyn ObjectStore>,
    runs: impl IntoIterator<Item = &'a BatchLocation>,
    objects_read: &mut usize,
) -> (HashMap<(ObjectId, u64), Bytes>, Vec<ObjectId>) {
    let mut wanted: BTreeMap<ObjectId, Vec<Range<u64>>> = BTreeMap::new();
    for b in runs.into_iter().filter(|b| !b.is_marker()) {
        wanted.entry(b.object).or_default().push(stored_range(b));
    }
    *objects_read += wanted.len();
    let reads = wanted.into_iter().map(|(object, mut ranges)| {
        ranges.sort_by_key(|r| r.start);
        ranges.dedup();
        let store = store.clone();
        async move {
            let got = store.get_ranges(&object_path(object), &ranges).await;
            (object, ranges, got)
        }
    });
    let mut chunks = HashMap::new();
    let mut unreadable = Vec::new();
    let mut reads = stream::iter(reads).buffer_unordered(PARALLEL_READS);
    while let Some((object, ranges, got)) = reads.next().await {
        match got {
            Ok(parts) => {
                for (range, bytes) in ranges.into_iter().zip(parts) {
                    chunks.insert((object, range.start), bytes);
                }
            }
            Err(e) => {
                warn!(%object, error = %e, "reading a source object failed; its rewrites wait for the next pass");
                unreadable.push(object);
            }
        }
    }
    (chunks, unreadable)
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
