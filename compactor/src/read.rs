//! Reading batches back for a rewrite: each object's wanted ranges at once (object_store
//! coalesces ranges close together into one GET), several objects in parallel.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use object_store::ObjectStore;
use skiff_format::Batch;
use skiff_metastore::types::{BatchLocation, ObjectId};
use tracing::warn;

use crate::object_path;

/// Why a batch could not be taken from what [`batches`] read.
#[derive(Debug, thiserror::Error)]
pub enum StoredBatchError {
    #[error("batch at {position} of object {object} was not read")]
    Missing { object: ObjectId, position: u64 },
    #[error("batch at {position} of object {object} is corrupt: {reason}")]
    Corrupt {
        object: ObjectId,
        position: u64,
        reason: String,
    },
}

/// The batch at `b` among the bytes [`batches`] read, its checksum verified: a rewrite never
/// spreads corruption.
pub(crate) fn stored_batch(
    read: &HashMap<(ObjectId, u64), Bytes>,
    b: &BatchLocation,
) -> Result<Batch, StoredBatchError> {
    let raw = read
        .get(&(b.object, b.position))
        .filter(|c| c.len() == b.len as usize)
        .cloned()
        .ok_or(StoredBatchError::Missing {
            object: b.object,
            position: b.position,
        })?;
    Batch::parse_stored(raw).map_err(|e| StoredBatchError::Corrupt {
        object: b.object,
        position: b.position,
        reason: e.to_string(),
    })
}

/// Objects read at once.
const PARALLEL_READS: usize = 8;

/// The bytes of `batches`, by (object, position), and the objects that could not be read.
/// `objects_read` counts the objects asked for.
pub(crate) async fn batches<'a>(
    store: &Arc<dyn ObjectStore>,
    batches: impl IntoIterator<Item = &'a BatchLocation>,
    objects_read: &mut usize,
) -> (HashMap<(ObjectId, u64), Bytes>, Vec<ObjectId>) {
    let mut wanted: BTreeMap<ObjectId, Vec<Range<u64>>> = BTreeMap::new();
    for b in batches {
        wanted
            .entry(b.object)
            .or_default()
            .push(b.position..b.position.saturating_add(u64::from(b.len)));
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
