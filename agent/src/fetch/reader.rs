use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::try_join_all;
use object_store::ObjectStore;
use skiff_format::batch::set_base_offset;
use skiff_metastore::types::{BatchLocation, ObjectId};

use crate::storage::object_path;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("object {object} returned {got} bytes for a {want}-byte range")]
    ShortRead {
        object: ObjectId,
        want: u64,
        got: usize,
    },
}

/// Reads committed batches back from the object store.
#[derive(Clone)]
pub struct Reader {
    store: Arc<dyn ObjectStore>,
}

/// Adjacent batches of one object, fetched with one ranged GET.
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
        let spans = spans(batches);
        let chunks = try_join_all(spans.iter().map(|span| async move {
            let bytes = self
                .store
                .get_range(&object_path(span.object), span.range.clone())
                .await?;
            let want = span.range.end - span.range.start;
            if bytes.len() as u64 != want {
                return Err(ReadError::ShortRead {
                    object: span.object,
                    want,
                    got: bytes.len(),
                });
            }
            Ok(bytes)
        }))
        .await?;

        let total: usize = batches.iter().map(|b| b.len as usize).sum();
        let mut out = BytesMut::with_capacity(total);
        let mut spans = spans.iter().zip(chunks.iter());
        let mut current = spans.next();
        for b in batches {
            // Advance to the span holding this batch; spans were built from this same list.
            while let Some((span, _)) = current {
                if span.object == b.object
                    && span.range.start <= b.position
                    && b.position + b.len as u64 <= span.range.end
                {
                    break;
                }
                current = spans.next();
            }
            let Some((span, chunk)) = current else { break };
            let start = (b.position - span.range.start) as usize;
            let Some(slice) = chunk.get(start..start + b.len as usize) else {
                break;
            };
            let at = out.len();
            out.extend_from_slice(slice);
            set_base_offset(&mut out[at..], b.base_offset);
        }
        Ok(out.freeze())
    }
}

fn spans(batches: &[BatchLocation]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for b in batches {
        let end = b.position + b.len as u64;
        match spans.last_mut() {
            Some(s) if s.object == b.object && s.range.end == b.position => s.range.end = end,
            _ => spans.push(Span {
                object: b.object,
                range: b.position..end,
            }),
        }
    }
    spans
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
    fn adjacent_batches_of_one_object_make_one_span() {
        let a = ObjectId(ulid::Ulid::from_parts(1, 1));
        let b = ObjectId(ulid::Ulid::from_parts(2, 2));
        let s = spans(&[loc(a, 10, 5), loc(a, 15, 5), loc(b, 0, 3), loc(b, 10, 3)]);
        let got: Vec<_> = s.iter().map(|s| (s.object, s.range.clone())).collect();
        assert_eq!(got, vec![(a, 10..20), (b, 0..3), (b, 10..13)]);
    }
}
