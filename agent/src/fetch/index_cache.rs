//! Index entries this agent has already read, so that a fetch of history asks the metastore only
//! for the partition's offsets, not for the batches again.
//!
//! What is cached is a slice of committed batches starting at a fetch offset: the index never
//! changes below the high watermark, so a slice stays right as long as the objects it names
//! exist. Only full slices are kept (as many bytes as the fetch asked for): a slice cut short by
//! the high watermark would keep a tailing consumer from seeing what comes after it. The high
//! watermark and the log start offset are read from the metastore on every fetch, which keeps
//! fetches linearizable whether the slice came from here or not.
//!
//! Objects can move: the compactor rewrites batches into merged segments and deletes the old
//! objects after a grace period. Entries therefore expire (`ttl`, shorter than that grace
//! period), and an entry whose object cannot be read is dropped at once.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use skiff_metastore::types::{BatchLocation, TopicPartition};

/// A fetch offset of one partition.
type Key = (TopicPartition, i64);

#[derive(Debug)]
struct Slice {
    batches: Box<[BatchLocation]>,
    bytes: u64,
}

pub struct IndexCache {
    slices: Option<Cache<Key, Arc<Slice>>>,
}

impl IndexCache {
    /// Holds up to `max_batches` batch locations (about 64 bytes each); 0 turns the cache off.
    pub fn new(max_batches: u64, ttl: Duration) -> Self {
        let slices = (max_batches > 0).then(|| {
            Cache::builder()
                .max_capacity(max_batches)
                .weigher(|_: &Key, s: &Arc<Slice>| {
                    u32::try_from(s.batches.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build()
        });
        Self { slices }
    }

    /// The batches from `offset` on, if a cached slice holds at least `limit` bytes of them.
    pub fn get(&self, tp: TopicPartition, offset: i64, limit: u64) -> Option<Vec<BatchLocation>> {
        let slice = self.slices.as_ref()?.get(&(tp, offset))?;
        (slice.bytes >= limit).then(|| slice.batches.to_vec())
    }

    /// Keeps `batches`, read from the metastore for a fetch at `offset` that wanted `limit`
    /// bytes, if they are a full slice. Runs are counted by their length, not by what reading
    /// them costs: the metastore stops a slice once the runs' costs reach the limit, which for
    /// a segment (costing what is wanted of it, up to its length) is when the lengths do.
    pub fn insert(&self, tp: TopicPartition, offset: i64, limit: u64, batches: &[BatchLocation]) {
        let Some(slices) = &self.slices else { return };
        let bytes: u64 = batches.iter().map(|b| u64::from(b.len)).sum();
        if batches.is_empty() || bytes < limit {
            return;
        }
        let slice = Slice {
            batches: batches.into(),
            bytes,
        };
        slices.insert((tp, offset), Arc::new(slice));
    }

    /// Forgets the slice at `offset`: one of its objects could not be read.
    pub fn invalidate(&self, tp: TopicPartition, offset: i64) {
        if let Some(slices) = &self.slices {
            slices.invalidate(&(tp, offset));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skiff_metastore::types::ObjectId;

    fn batch(base: i64, len: u32) -> BatchLocation {
        BatchLocation {
            base_offset: base,
            last_offset: base + 9,
            object: ObjectId(ulid::Ulid(1)),
            position: 0,
            len,
            first_timestamp: 0,
            max_timestamp: 0,
            layout: skiff_metastore::types::RunLayout::Flushed,
        }
    }

    fn tp() -> TopicPartition {
        TopicPartition {
            topic_id: uuid::Uuid::from_u128(1),
            partition: 0,
        }
    }

    #[test]
    fn keeps_only_full_slices_and_serves_smaller_or_equal_asks() {
        let cache = IndexCache::new(100, Duration::from_secs(60));
        // Cut short by the high watermark: 200 bytes of the 1,000 asked for.
        cache.insert(tp(), 0, 1000, &[batch(0, 100), batch(10, 100)]);
        assert!(cache.get(tp(), 0, 1).is_none());
        cache.insert(tp(), 0, 150, &[batch(0, 100), batch(10, 100)]);
        assert_eq!(cache.get(tp(), 0, 200).unwrap().len(), 2);
        assert!(cache.get(tp(), 0, 201).is_none());
        assert!(cache.get(tp(), 10, 1).is_none());
        cache.invalidate(tp(), 0);
        assert!(cache.get(tp(), 0, 1).is_none());
    }

    #[test]
    fn off_when_sized_zero() {
        let cache = IndexCache::new(0, Duration::from_secs(60));
        cache.insert(tp(), 0, 1, &[batch(0, 100)]);
        assert!(cache.get(tp(), 0, 1).is_none());
    }
}
