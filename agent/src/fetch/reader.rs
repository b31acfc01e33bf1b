use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use object_store::ObjectStore;
use skiff_format::run::SegmentIndex;
use skiff_metastore::types::{BatchLocation, ObjectId, RunLayout};

use super::answer::Answer;
use super::blocks::BlockCache;
use super::segment_index::{self, SegmentIndexes, DEFAULT_CACHE_BYTES};
use super::ReadError;
use crate::storage::object_path;

/// Ranges of one object closer than this are fetched with one GET: on S3 a request costs far more
/// than reading a few hundred KiB extra (the same threshold `object_store` uses for `get_ranges`).
const COALESCE_GAP: u64 = 1024 * 1024;
/// GETs of one read running at once.
const PARALLEL_GETS: usize = 16;

/// What one partition of a fetch reads.
#[derive(Clone, Copy, Debug)]
pub struct PartitionRead<'a> {
    /// The runs from the one holding `offset` (or the first after it) on.
    pub runs: &'a [BatchLocation],
    /// The fetch offset: batches ending before it are left out.
    pub offset: i64,
    /// Bytes of batches the partition may answer: the answer stops before the batch that would
    /// pass this.
    pub max_bytes: u64,
    /// The first batch comes whole whatever its size: it is the response's first (KIP-74).
    pub whole_first: bool,
    /// Batches from this offset on are left out (a read_committed fetch's last stable offset;
    /// `i64::MAX` for none).
    pub end_offset: i64,
}

/// Reads committed batches back from the object store.
#[derive(Clone)]
pub struct Reader {
    store: Arc<dyn ObjectStore>,
    indexes: SegmentIndexes,
    /// Where object bytes are read through, when there is a read cache.
    blocks: Option<Arc<BlockCache>>,
}

/// Part of one object, fetched with one ranged GET.
#[derive(Debug)]
struct Span {
    object: ObjectId,
    range: Range<u64>,
}

/// Part of a run to read: `range` of its batches' bytes, from its first batch.
struct Wanted<'a> {
    run: &'a BatchLocation,
    range: Range<u64>,
}

impl Wanted<'_> {
    /// Where the part lies in the object; `None` past any object's end (corrupt index data).
    fn object_range(&self) -> Option<Range<u64>> {
        let start = self.run.position.checked_add(self.range.start)?;
        let end = self.run.position.checked_add(self.range.end)?;
        Some(start..end)
    }
}

type IndexKey = (ObjectId, u64);

fn index_key(run: &BatchLocation) -> IndexKey {
    (run.object, run.position)
}

impl Reader {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self::with_index_cache(store, DEFAULT_CACHE_BYTES)
    }

    /// A reader keeping up to `index_bytes` of segment indexes (0: none).
    pub fn with_index_cache(store: Arc<dyn ObjectStore>, index_bytes: u64) -> Self {
        Self {
            store,
            indexes: SegmentIndexes::new(index_bytes),
            blocks: None,
        }
    }

    /// Reads object bytes through `blocks`.
    pub fn with_blocks(mut self, blocks: Arc<BlockCache>) -> Self {
        self.blocks = Some(blocks);
        self
    }

    /// The batches of `runs` from the one holding `offset` on, up to `max_bytes` (the first
    /// whole), concatenated, each with its real base offset written in.
    pub async fn read(
        &self,
        runs: &[BatchLocation],
        offset: i64,
        max_bytes: u64,
    ) -> Result<Bytes, ReadError> {
        let read = PartitionRead {
            runs,
            offset,
            max_bytes,
            whole_first: true,
            end_offset: i64::MAX,
        };
        self.read_many(&[read])
            .await
            .pop()
            .unwrap_or_else(|| Ok(Bytes::new()))
    }

    /// [`Reader::read`] for several partitions at once (a fetch's), sharing the GETs: a flush
    /// lays partitions out side by side in one object, so a consumer tailing many partitions
    /// reads each new object with one GET instead of one per partition. A failed GET fails only
    /// the partitions that needed it.
    pub async fn read_many(&self, reads: &[PartitionRead<'_>]) -> Vec<Result<Bytes, ReadError>> {
        let indexes = self.indexes_of(reads.iter().flat_map(|r| r.runs)).await;
        let wanted: Vec<Result<Vec<Wanted>, ReadError>> =
            reads.iter().map(|r| wanted(r, &indexes)).collect();
        let spans = spans(
            wanted
                .iter()
                .flatten()
                .flatten()
                .filter(|w| !w.run.is_marker())
                .filter_map(|w| Some((w.run.object, w.object_range()?))),
        );
        // The GETs are built up front, each owning what it needs: a stream mapping over borrowed
        // spans defeats the compiler's `Send` inference once a handler's future is boxed.
        let gets: Vec<_> = spans
            .iter()
            .map(|span| self.get(span.object, span.range.clone()))
            .collect();
        let chunks: Vec<Result<Bytes, ReadError>> =
            stream::iter(gets).buffered(PARALLEL_GETS).collect().await;
        reads
            .iter()
            .zip(wanted)
            .map(|(read, wanted)| assemble(read, &wanted?, &spans, &chunks))
            .collect()
    }

    /// `range` of `object`, through the read cache if there is one. Owns what it needs, so the
    /// future is `'static`.
    fn get(
        &self,
        object: ObjectId,
        range: Range<u64>,
    ) -> impl std::future::Future<Output = Result<Bytes, ReadError>> + Send + 'static {
        let store = self.store.clone();
        let blocks = self.blocks.clone();
        async move {
            match blocks {
                Some(blocks) => blocks.get(&store, object, range).await,
                None => get(store, object, range).await,
            }
        }
    }

    /// The index of segment `run`, from the cache or the object.
    pub async fn segment_index(&self, run: &BatchLocation) -> Result<Arc<SegmentIndex>, ReadError> {
        if let Some(index) = self.indexes.get(run) {
            return Ok(index);
        }
        let index = load_index(self.store.clone(), *run).await?;
        self.indexes.insert(run, index.clone());
        Ok(index)
    }

    /// `range` of `run`'s batches' bytes (from its first batch), as stored: base offsets are
    /// the producers' in a flushed run.
    pub async fn read_run(
        &self,
        run: &BatchLocation,
        range: Range<u64>,
    ) -> Result<Bytes, ReadError> {
        let wanted = Wanted { run, range };
        let object_range = (wanted.range.start <= wanted.range.end
            && wanted.range.end <= u64::from(run.len))
        .then(|| wanted.object_range())
        .flatten()
        .ok_or(ReadError::NotRead {
            object: run.object,
            position: run.position,
        })?;
        self.get(run.object, object_range).await
    }

    /// The indexes of the segments among `runs`, each read once.
    async fn indexes_of<'a>(
        &self,
        runs: impl Iterator<Item = &'a BatchLocation>,
    ) -> HashMap<IndexKey, Result<Arc<SegmentIndex>, ReadError>> {
        let mut found = HashMap::new();
        let mut loads = Vec::new();
        for run in runs.filter(|r| matches!(r.layout, RunLayout::Segment { .. })) {
            if found.contains_key(&index_key(run)) {
                continue;
            }
            match self.indexes.get(run) {
                Some(index) => {
                    found.insert(index_key(run), Ok(index));
                }
                None => {
                    // Claimed now, so a run named twice is loaded once.
                    found.insert(
                        index_key(run),
                        Err(ReadError::NotRead {
                            object: run.object,
                            position: run.position,
                        }),
                    );
                    let run = *run;
                    let store = self.store.clone();
                    loads.push(async move { (run, load_index(store, run).await) });
                }
            }
        }
        let loaded: Vec<_> = stream::iter(loads).buffered(PARALLEL_GETS).collect().await;
        for (run, index) in loaded {
            if let Ok(index) = &index {
                self.indexes.insert(&run, index.clone());
            }
            found.insert(index_key(&run), index);
        }
        found
    }
}

async fn load_index(
    store: Arc<dyn ObjectStore>,
    run: BatchLocation,
) -> Result<Arc<SegmentIndex>, ReadError> {
    let range = segment_index::index_range(&run)?;
    let bytes = get(store, run.object, range).await?;
    Ok(Arc::new(segment_index::decode(&run, &bytes)?))
}

/// What to read of each of `read`'s runs, in order, up to the run its answer ends in. A flushed
/// run is read whole (nothing says where its batches start). Of a segment, the first run of the
/// partition is read from the index point at or below the offset; later ones from their start;
/// each up to a batch boundary past what the limit can take.
fn wanted<'a>(
    read: &PartitionRead<'a>,
    indexes: &HashMap<IndexKey, Result<Arc<SegmentIndex>, ReadError>>,
) -> Result<Vec<Wanted<'a>>, ReadError> {
    let mut out = Vec::with_capacity(read.runs.len());
    // Bytes of the runs after the first, all answered before the run at hand. The first run is
    // left out: where the offset falls in it, it may answer anything from one batch to all.
    let mut before = 0u64;
    for (i, run) in read.runs.iter().enumerate() {
        if i > 0 && before > 0 && before >= read.max_bytes {
            break;
        }
        let len = u64::from(run.len);
        let range = match run.layout {
            RunLayout::Flushed | RunLayout::Marker { .. } => 0..len,
            RunLayout::Segment { .. } => {
                let index =
                    indexes
                        .get(&index_key(run))
                        .cloned()
                        .unwrap_or(Err(ReadError::NotRead {
                            object: run.object,
                            position: run.position,
                        }))?;
                if i == 0 {
                    let start = index.position_for_offset(read.offset);
                    // The batch holding the offset starts before the next point, so the
                    // batches the limit can take end within `max_bytes` of that point.
                    let next = index.end_at_or_after(u64::from(start) + 1, run.len);
                    let end = index
                        .end_at_or_after(u64::from(next).saturating_add(read.max_bytes), run.len);
                    u64::from(start)..u64::from(end)
                } else {
                    let want = read.max_bytes.saturating_sub(before).max(1);
                    0..u64::from(index.end_at_or_after(want, run.len))
                }
            }
        };
        if i > 0 {
            before = before.saturating_add(range.end.saturating_sub(range.start));
        }
        let whole = range.end >= len;
        out.push(Wanted { run, range });
        if !whole {
            break;
        }
    }
    Ok(out)
}

async fn get(
    store: Arc<dyn ObjectStore>,
    object: ObjectId,
    range: Range<u64>,
) -> Result<Bytes, ReadError> {
    let want = range.end.saturating_sub(range.start);
    let bytes = store
        .get_range(&object_path(object), range)
        .await
        .map_err(|e| ReadError::Store(Arc::new(e)))?;
    if bytes.len() as u64 != want {
        return Err(ReadError::ShortRead {
            object,
            want,
            got: bytes.len(),
        });
    }
    Ok(bytes)
}

/// The spans covering `ranges` of objects, sorted by object and position; ranges of one object
/// closer than [`COALESCE_GAP`] share a span.
fn spans(ranges: impl Iterator<Item = (ObjectId, Range<u64>)>) -> Vec<Span> {
    let mut wanted: Vec<(ObjectId, Range<u64>)> = ranges.filter(|(_, r)| !r.is_empty()).collect();
    wanted.sort_unstable_by_key(|(object, range)| (*object, range.start));
    let mut spans: Vec<Span> = Vec::new();
    for (object, range) in wanted {
        match spans.last_mut() {
            Some(s)
                if s.object == object
                    && range.start <= s.range.end.saturating_add(COALESCE_GAP) =>
            {
                s.range.end = s.range.end.max(range.end)
            }
            _ => spans.push(Span { object, range }),
        }
    }
    spans
}

/// The bytes of `object` at `range`, out of the chunks read for `spans`.
fn bytes_at<'c>(
    object: ObjectId,
    range: Option<Range<u64>>,
    spans: &[Span],
    chunks: &'c [Result<Bytes, ReadError>],
) -> Result<&'c [u8], ReadError> {
    let position = range.as_ref().map_or(u64::MAX, |r| r.start);
    let not_read = || ReadError::NotRead { object, position };
    let range = range.ok_or_else(not_read)?;
    if range.is_empty() {
        return Ok(&[]);
    }
    let i = spans
        .partition_point(|s| (s.object, s.range.start) <= (object, range.start))
        .checked_sub(1)
        .ok_or_else(not_read)?;
    let span = spans
        .get(i)
        .filter(|s| s.object == object)
        .ok_or_else(not_read)?;
    let chunk = chunks
        .get(i)
        .ok_or_else(not_read)?
        .as_ref()
        .map_err(Clone::clone)?;
    let start = usize::try_from(range.start - span.range.start).map_err(|_| not_read())?;
    let end = usize::try_from(range.end - span.range.start).map_err(|_| not_read())?;
    chunk.get(start..end).ok_or_else(not_read)
}

/// One partition's answer out of the chunks read. The batches are copied: each one's base
/// offset is written in, and a chunk may be shared by partitions.
fn assemble(
    read: &PartitionRead<'_>,
    wanted: &[Wanted<'_>],
    spans: &[Span],
    chunks: &[Result<Bytes, ReadError>],
) -> Result<Bytes, ReadError> {
    let parts = wanted
        .iter()
        .map(|w| match marker_batch(w.run) {
            Some(marker) => Ok(Part::Built(marker)),
            None => bytes_at(w.run.object, w.object_range(), spans, chunks).map(Part::Read),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let capacity = parts.iter().map(|p| p.bytes().len()).sum();
    let mut answer = Answer::new(
        read.offset,
        read.max_bytes,
        read.whole_first,
        read.end_offset,
        capacity,
    );
    for (w, part) in wanted.iter().zip(&parts) {
        if answer.done() {
            break;
        }
        answer.add_run(w.run, w.range.clone(), part.bytes())?;
    }
    Ok(answer.finish())
}

/// The bytes of one run of an answer: read from the store, or built from a marker's entry.
enum Part<'c> {
    Read(&'c [u8]),
    Built(Bytes),
}

impl Part<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Part::Read(b) => b,
            Part::Built(b) => b,
        }
    }
}

/// A marker entry's control batch (at offset 0: the answer writes the real one in).
fn marker_batch(run: &BatchLocation) -> Option<Bytes> {
    let RunLayout::Marker {
        producer_id,
        producer_epoch,
        commit,
    } = run.layout
    else {
        return None;
    };
    let marker = skiff_format::control::Marker {
        producer_id,
        producer_epoch,
        commit,
        timestamp: run.max_timestamp,
        coordinator_epoch: 0,
    };
    Some(marker.encode(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "reader_tests.rs"]
mod tests;
