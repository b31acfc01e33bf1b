//! The sparse indexes of compactor segments this agent has read. A fetch into a segment reads
//! its index before the part of its batches it wants, and a consumer goes through a 128 MiB
//! segment in a hundred fetches or more: keeping the index saves a GET on each. Objects never
//! change once written, so a cached index is never wrong; when the compactor deletes an object
//! its index entries stop naming it, and the cache forgets what is not used.

use std::ops::Range;
use std::sync::Arc;

use moka::sync::Cache;
use skiff_format::run::{IndexPoint, SegmentIndex, INDEX_INTERVAL_BYTES};
use skiff_metastore::types::{BatchLocation, ObjectId, RunLayout};

use super::ReadError;

/// Bytes of one encoded point, and of the point count and checksum after the points, as
/// `skiff_format::run` encodes them (a test holds the two to agree).
const POINT_BYTES: u64 = 20;
const FIXED_BYTES: u64 = 8;

/// What the cache holds by default: the indexes of some 800 full segments, 100 GiB of batches.
pub const DEFAULT_CACHE_BYTES: u64 = 32 << 20;

/// A run's object and where the run starts: one object may hold segments of several partitions.
type Key = (ObjectId, u64);

/// Clones share one cache.
#[derive(Clone)]
pub struct SegmentIndexes {
    cache: Option<Cache<Key, Arc<SegmentIndex>>>,
}

impl SegmentIndexes {
    /// Holds up to about `max_bytes` of decoded indexes; 0 turns the cache off.
    pub fn new(max_bytes: u64) -> Self {
        let cache = (max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_: &Key, index: &Arc<SegmentIndex>| {
                    let points = index
                        .points()
                        .len()
                        .saturating_mul(std::mem::size_of::<IndexPoint>());
                    // The entry's own overhead counts too, so tiny indexes cannot pile up.
                    u32::try_from(points.saturating_add(64)).unwrap_or(u32::MAX)
                })
                .build()
        });
        Self { cache }
    }

    pub fn get(&self, run: &BatchLocation) -> Option<Arc<SegmentIndex>> {
        self.cache.as_ref()?.get(&(run.object, run.position))
    }

    pub fn insert(&self, run: &BatchLocation, index: Arc<SegmentIndex>) {
        if let Some(cache) = &self.cache {
            cache.insert((run.object, run.position), index);
        }
    }
}

fn bounds(run: &BatchLocation, what: &'static str) -> ReadError {
    ReadError::IndexBounds {
        object: run.object,
        position: run.position,
        what,
    }
}

/// Where a segment's index lies in its object. An index holds at most one point per
/// [`INDEX_INTERVAL_BYTES`] of batches, so a length beyond that is refused before it is read:
/// a corrupt entry must not make a fetch GET gigabytes.
pub fn index_range(run: &BatchLocation) -> Result<Range<u64>, ReadError> {
    let RunLayout::Segment { index_len } = run.layout else {
        return Err(bounds(run, "the run is not a segment"));
    };
    let most_points = u64::from(run.len).div_ceil(INDEX_INTERVAL_BYTES);
    if u64::from(index_len) > most_points * POINT_BYTES + FIXED_BYTES {
        return Err(bounds(run, "longer than the run's batches can need"));
    }
    let start = run
        .position
        .checked_add(u64::from(run.len))
        .ok_or_else(|| bounds(run, "past the end of any object"))?;
    let end = start
        .checked_add(u64::from(index_len))
        .ok_or_else(|| bounds(run, "past the end of any object"))?;
    Ok(start..end)
}

/// Decodes the bytes at [`index_range`] and checks them against the run they index: every
/// lookup must land on a batch of this run, and a run must be reachable from its first byte.
pub fn decode(run: &BatchLocation, bytes: &[u8]) -> Result<SegmentIndex, ReadError> {
    let index = SegmentIndex::decode(bytes).map_err(|source| ReadError::Index {
        object: run.object,
        position: run.position,
        source,
    })?;
    let points = index.points();
    match (points.first(), points.last()) {
        (Some(first), Some(last)) => {
            if first.position != 0 {
                return Err(bounds(run, "the first point is not the first batch"));
            }
            if u64::from(last.position) >= u64::from(run.len) {
                return Err(bounds(run, "a point lies past the run's batches"));
            }
            if first.base_offset < run.base_offset || last.base_offset > run.last_offset {
                return Err(bounds(run, "a point lies outside the run's offsets"));
            }
        }
        _ => return Err(bounds(run, "no points")),
    }
    Ok(index)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn segment(len: u32, index_len: u32) -> BatchLocation {
        BatchLocation {
            base_offset: 100,
            last_offset: 199,
            object: ObjectId(ulid::Ulid::from_parts(1, 1)),
            position: 10,
            len,
            first_timestamp: 0,
            max_timestamp: 0,
            layout: RunLayout::Segment { index_len },
        }
    }

    /// Past its byte bound the cache evicts: 200 indexes of ~24 KiB each into 1 MiB.
    #[test]
    fn the_cache_stays_within_its_bytes() {
        let indexes = SegmentIndexes::new(1 << 20);
        let mut index = SegmentIndex::default();
        for i in 0..1000u32 {
            index.push(i64::from(i), i * 65_536, 0);
        }
        let index = Arc::new(index);
        for n in 0..200u64 {
            let mut run = segment(u32::MAX, 0);
            run.position = n;
            indexes.insert(&run, index.clone());
        }
        let cache = indexes.cache.as_ref().unwrap();
        cache.run_pending_tasks();
        assert!(
            cache.weighted_size() <= 1 << 20,
            "{}",
            cache.weighted_size()
        );
        assert!(cache.entry_count() < 200, "{}", cache.entry_count());
    }

    #[test]
    fn the_encoding_sizes_agree_with_the_format() {
        let mut index = SegmentIndex::default();
        assert_eq!(index.encoded_len() as u64, FIXED_BYTES);
        index.push(0, 0, 0);
        assert_eq!(index.encoded_len() as u64, FIXED_BYTES + POINT_BYTES);
    }

    #[test]
    fn an_index_longer_than_its_run_can_need_is_not_read() {
        let len = 3 * INDEX_INTERVAL_BYTES as u32 + 1;
        let most = 4 * POINT_BYTES as u32 + FIXED_BYTES as u32;
        let fits = segment(len, most);
        assert_eq!(
            index_range(&fits).unwrap(),
            10 + u64::from(len)..10 + u64::from(len + most)
        );
        assert!(index_range(&segment(len, most + 1)).is_err());
        let mut flushed = fits;
        flushed.layout = RunLayout::Flushed;
        assert!(index_range(&flushed).is_err());
    }

    #[test]
    fn points_outside_their_run_are_refused() {
        let run = segment(1_000, 48);
        let encode = |points: &[(i64, u32)]| {
            let mut index = SegmentIndex::default();
            for &(offset, position) in points {
                index.push(offset, position, 0);
            }
            index.encode()
        };
        assert!(decode(&run, &encode(&[(100, 0)])).is_ok());
        // Points are 64 KiB apart at least: the second lies past this run, not a longer one.
        let two = encode(&[(100, 0), (150, 70_000)]);
        assert!(decode(&run, &two).is_err());
        let mut long = run;
        long.len = 1 << 20;
        assert_eq!(decode(&long, &two).unwrap().points().len(), 2);
        assert!(decode(&run, &encode(&[(99, 0)])).is_err());
        assert!(decode(&run, &encode(&[(100, 5)])).is_err());
        assert!(decode(&run, &encode(&[])).is_err());
        assert!(decode(&run, &encode(&[(200, 0)])).is_err());
        let mut bytes = encode(&[(100, 0)]).to_vec();
        bytes[0] ^= 1;
        assert!(matches!(decode(&run, &bytes), Err(ReadError::Index { .. })));
    }

    #[test]
    fn cached_per_run_and_off_at_zero() {
        let run = segment(1_000, 28);
        let index = Arc::new(
            decode(&run, &{
                let mut i = SegmentIndex::default();
                i.push(100, 0, 0);
                i.encode()
            })
            .unwrap(),
        );
        let cache = SegmentIndexes::new(1 << 20);
        cache.insert(&run, index.clone());
        assert_eq!(cache.get(&run), Some(index.clone()));
        let mut other = run;
        other.position = 5_000;
        assert!(cache.get(&other).is_none());
        let off = SegmentIndexes::new(0);
        off.insert(&run, index);
        assert!(off.get(&run).is_none());
    }
}
