use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};
use object_store::ObjectStore;
use skiff_format::batch::set_base_offset;
use skiff_metastore::types::{BatchLocation, ObjectId};

use crate::storage::object_path;

/// Ranges of one object closer than this are fetched with one GET: on S3 a request costs far more
/// than reading a few hundred KiB extra (the same threshold `object_store` uses for `get_ranges`).
const COALESCE_GAP: u64 = 1024 * 1024;
/// GETs of one read running at once.
const PARALLEL_GETS: usize = 16;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadError {
    #[error("object store: {0}")]
    Store(Arc<object_store::Error>),
    #[error("object {object} returned {got} bytes for a {want}-byte range")]
    ShortRead {
        object: ObjectId,
        want: u64,
        got: usize,
    },
    #[error("batch at {position} of object {object} is outside every span read")]
    NotRead { object: ObjectId, position: u64 },
}

/// Reads committed batches back from the object store.
#[derive(Clone)]
pub struct Reader {
    store: Arc<dyn ObjectStore>,
}

/// Part of one object, fetched with one ranged GET.
#[derive(Debug)]
struct Span {
    object: ObjectId,
    range: Range<u64>,
}

impl Reader {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// The batches, concatenated in order, each with its committed base offset written in.
    pub async fn read(&self, batches: &[BatchLocation]) -> Result<Bytes, ReadError> {
        self.read_many(&[batches])
            .await
            .pop()
            .unwrap_or_else(|| Ok(Bytes::new()))
    }

    /// [`Reader::read`] for several lists of batches at once (a fetch's partitions), sharing the
    /// GETs: a flush lays partitions out side by side in one object, so a consumer tailing many
    /// partitions reads each new object with one GET instead of one per partition. A failed GET
    /// fails only the lists that needed it.
    pub async fn read_many(&self, lists: &[&[BatchLocation]]) -> Vec<Result<Bytes, ReadError>> {
        let spans = spans(lists.iter().flat_map(|l| l.iter()));
        // The GETs are built up front, each owning what it needs: a stream mapping over borrowed
        // spans defeats the compiler's `Send` inference once a handler's future is boxed.
        let gets: Vec<_> = spans
            .iter()
            .map(|span| get(self.store.clone(), span.object, span.range.clone()))
            .collect();
        let chunks: Vec<Result<Bytes, ReadError>> =
            stream::iter(gets).buffered(PARALLEL_GETS).collect().await;
        lists
            .iter()
            .map(|batches| assemble(batches, &spans, &chunks))
            .collect()
    }
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

/// The spans covering `batches`, sorted by object and position; ranges of one object closer than
/// [`COALESCE_GAP`] share a span. A batch whose range overflows (corrupt index data) gets none, so
/// [`assemble`] fails it as not read.
fn spans<'a>(batches: impl Iterator<Item = &'a BatchLocation>) -> Vec<Span> {
    let mut wanted: Vec<(ObjectId, Range<u64>)> = batches
        .filter_map(|b| {
            Some((
                b.object,
                b.position..b.position.checked_add(u64::from(b.len))?,
            ))
        })
        .collect();
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

/// Copies `batches` out of the chunks read for `spans` and writes each one's base offset in. The
/// copy is needed anyway: the base offset is rewritten, and a chunk may be shared by partitions.
fn assemble(
    batches: &[BatchLocation],
    spans: &[Span],
    chunks: &[Result<Bytes, ReadError>],
) -> Result<Bytes, ReadError> {
    let total: usize = batches.iter().map(|b| b.len as usize).sum();
    let mut out = BytesMut::with_capacity(total);
    for b in batches {
        let not_read = || ReadError::NotRead {
            object: b.object,
            position: b.position,
        };
        let i = spans
            .partition_point(|s| (s.object, s.range.start) <= (b.object, b.position))
            .checked_sub(1)
            .ok_or_else(not_read)?;
        let (span, chunk) = (&spans[i], chunks[i].as_ref().map_err(Clone::clone)?);
        let start = usize::try_from(b.position - span.range.start).map_err(|_| not_read())?;
        let end = start.checked_add(b.len as usize).ok_or_else(not_read)?;
        let slice = chunk
            .get(start..end)
            .filter(|_| span.object == b.object)
            .ok_or_else(not_read)?;
        let at = out.len();
        out.extend_from_slice(slice);
        set_base_offset(&mut out[at..], b.base_offset);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(object: ObjectId, position: u64, len: u32) -> BatchLocation {
        BatchLocation {
            base_offset: 0,
            last_offset: 0,
            object,
            position,
            len,
            first_timestamp: 0,
            max_timestamp: 0,
        }
    }

    #[test]
    fn close_batches_of_one_object_make_one_span() {
        let a = ObjectId(ulid::Ulid::from_parts(1, 1));
        let b = ObjectId(ulid::Ulid::from_parts(2, 2));
        let far = 13 + COALESCE_GAP + 1;
        let batches = [
            loc(b, far, 3),
            loc(a, 15, 5),
            loc(b, 0, 3),
            loc(a, 10, 5),
            loc(b, 10, 3),
        ];
        let s = spans(batches.iter());
        let got: Vec<_> = s.iter().map(|s| (s.object, s.range.clone())).collect();
        assert_eq!(got, vec![(a, 10..20), (b, 0..13), (b, far..far + 3)]);
    }

    #[tokio::test]
    async fn a_batch_whose_range_overflows_is_not_read() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let a = ObjectId(ulid::Ulid::from_parts(1, 1));
        store
            .put(&object_path(a), vec![0u8; 61].into())
            .await
            .expect("put");
        let reader = Reader::new(store);
        // One batch ends past u64::MAX; two fit, near the end, but the coalescing gap after the
        // first does not.
        let past_the_end = [loc(a, 0, 61), loc(a, u64::MAX - 10, 61)];
        let near_the_end = [loc(a, u64::MAX - 100, 61), loc(a, u64::MAX - 30, 10)];
        let got = reader.read(&past_the_end).await;
        assert!(matches!(got, Err(ReadError::NotRead { .. })), "{got:?}");
        let got = reader.read(&near_the_end).await;
        assert!(got.is_err(), "{got:?}");
        let got: Vec<_> = spans(past_the_end.iter().chain(&near_the_end))
            .iter()
            .map(|s| s.range.clone())
            .collect();
        assert_eq!(got, vec![0..61, u64::MAX - 100..u64::MAX - 20]);
    }

    #[tokio::test]
    async fn partitions_of_one_object_share_one_get_and_keep_their_own_bytes() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let a = ObjectId(ulid::Ulid::from_parts(1, 1));
        // Three 61-byte "batches" side by side; byte 60 of each tells them apart.
        let mut object = Vec::new();
        for tag in [1u8, 2, 3] {
            let mut batch = vec![0u8; 61];
            batch[60] = tag;
            object.extend_from_slice(&batch);
        }
        store
            .put(&object_path(a), object.into())
            .await
            .expect("put");
        let mut p0 = loc(a, 0, 61);
        p0.base_offset = 7;
        let p1 = [loc(a, 61, 61), loc(a, 122, 61)];
        let reader = Reader::new(store);
        let spans = spans([&p0].into_iter().chain(p1.iter()));
        assert_eq!(spans.len(), 1);
        let got = reader.read_many(&[std::slice::from_ref(&p0), &p1]).await;
        let first = got[0].as_ref().expect("p0");
        assert_eq!(&first[..8], &7i64.to_be_bytes());
        assert_eq!(first[60], 1);
        let second = got[1].as_ref().expect("p1");
        assert_eq!((second.len(), second[60], second[121]), (122, 2, 3));
    }

    #[tokio::test]
    async fn a_missing_object_fails_only_the_lists_that_need_it() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let (a, truncated, gone) = (
            ObjectId(ulid::Ulid::from_parts(1, 1)),
            ObjectId(ulid::Ulid::from_parts(2, 2)),
            ObjectId(ulid::Ulid::from_parts(3, 3)),
        );
        for (id, len) in [(a, 61), (truncated, 30)] {
            store
                .put(&object_path(id), vec![0u8; len].into())
                .await
                .expect("put");
        }
        let reader = Reader::new(store);
        let lists = [loc(a, 0, 61), loc(gone, 0, 61), loc(truncated, 0, 61)];
        let got = reader
            .read_many(&[&lists[0..1], &lists[1..2], &lists[2..3]])
            .await;
        assert_eq!(got[0].as_ref().map(Bytes::len).ok(), Some(61));
        assert!(matches!(got[1], Err(ReadError::Store(_))));
        assert!(
            got[2].is_err(),
            "a truncated object is an error, not a short batch"
        );
    }
}
