//! The segment a rewrite writes, merging and key compaction alike: one partition's batches back
//! to back, each header carrying the batch's real base offset, then the [`SegmentIndex`] over
//! them, all indexed in the metastore by ONE entry ([`RunLayout::Segment`]). However many
//! batches a segment holds, it costs the metastore one entry, and a fetch into its middle reads
//! the index and then only the stretch it needs.

use std::sync::Arc;

use object_store::ObjectStore;
use skiff_format::run::SegmentIndex;
use skiff_format::ObjectBuilder;
use skiff_metastore::types::{BatchLocation, ObjectId, RunLayout, TopicPartition};

use crate::read::StoredBatch;

/// Why a batch cannot join a segment.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SegmentError {
    #[error("the batch at offset {base_offset} does not follow offset {after}")]
    OutOfOrder { base_offset: i64, after: i64 },
    #[error("a segment cannot hold more than {} bytes of batches", u32::MAX)]
    TooLarge,
}

/// The segment so far, once it holds a batch.
struct Extent {
    base_offset: i64,
    last_offset: i64,
    /// Where the first batch lies in the object.
    position: u64,
    /// Bytes of batches.
    len: u32,
    first_timestamp: i64,
    max_timestamp: i64,
}

pub(crate) struct SegmentWriter {
    tp: TopicPartition,
    id: ObjectId,
    builder: ObjectBuilder,
    index: SegmentIndex,
    extent: Option<Extent>,
}

/// A segment in the store, and the one index entry that describes it.
pub(crate) struct Written {
    pub location: BatchLocation,
    /// The object's size.
    pub size: u64,
}

impl SegmentWriter {
    pub fn new(tp: TopicPartition) -> Self {
        let id = ObjectId(ulid::Ulid::new());
        Self {
            tp,
            id,
            builder: ObjectBuilder::new(id.0 .0),
            index: SegmentIndex::default(),
            extent: None,
        }
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Adds `b` after the batches pushed before it, which must end below its base offset.
    pub fn push(&mut self, b: &StoredBatch) -> Result<(), SegmentError> {
        let batch_len = u32::try_from(b.batch.bytes.len()).map_err(|_| SegmentError::TooLarge)?;
        let at = match &self.extent {
            Some(e) if b.base_offset <= e.last_offset => {
                return Err(SegmentError::OutOfOrder {
                    base_offset: b.base_offset,
                    after: e.last_offset,
                })
            }
            Some(e) => e.len,
            None => 0,
        };
        // Positions in the index are u32 from the first batch, and so is the entry's `len`.
        let len = at.checked_add(batch_len).ok_or(SegmentError::TooLarge)?;
        // Flushed batches carry their producer's base offset; a segment's must carry the real
        // one. Only the 8 bytes of it are written anew (`push_with_base_offset`): the records
        // stay the source's `Bytes`, uncopied, so a job's memory is its source bytes, not
        // twice them.
        let position = self.builder.push_with_base_offset(
            *self.tp.topic_id.as_bytes(),
            self.tp.partition,
            &b.batch,
            b.base_offset,
        );
        self.index.push(b.base_offset, at, b.max_timestamp);
        let last_offset = b.last_offset();
        match &mut self.extent {
            Some(e) => {
                e.last_offset = last_offset;
                e.len = len;
                e.max_timestamp = e.max_timestamp.max(b.max_timestamp);
            }
            None => {
                self.extent = Some(Extent {
                    base_offset: b.base_offset,
                    last_offset,
                    position,
                    len,
                    // Unknown when it was not a run's first batch: ListOffsets then reads the
                    // records rather than trust a timestamp nobody measured.
                    first_timestamp: b.first_timestamp.unwrap_or(i64::MIN),
                    max_timestamp: b.max_timestamp,
                });
            }
        }
        Ok(())
    }

    /// The object's size if it were written now, index included.
    pub fn object_len(&self) -> u64 {
        self.builder
            .len()
            .saturating_add(self.index.encoded_len() as u64)
    }

    /// Puts the segment in the store with its index. `None` if it holds no batch: nothing is
    /// written.
    pub async fn write(
        self,
        store: &Arc<dyn ObjectStore>,
    ) -> object_store::Result<Option<Written>> {
        let Some(e) = self.extent else {
            return Ok(None);
        };
        let mut builder = self.builder;
        let index = self.index.encode();
        let index_len = u32::try_from(index.len()).unwrap_or(u32::MAX);
        builder.push_bytes(index);
        let size = crate::put_segment(store, self.id, builder).await?;
        Ok(Some(Written {
            location: BatchLocation {
                base_offset: e.base_offset,
                last_offset: e.last_offset,
                object: self.id,
                position: e.position,
                len: e.len,
                first_timestamp: e.first_timestamp,
                max_timestamp: e.max_timestamp,
                layout: RunLayout::Segment { index_len },
            },
            size,
        }))
    }
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
