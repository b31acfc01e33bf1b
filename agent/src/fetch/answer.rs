//! One partition's answer to a fetch, built from the bytes read of its runs: the batches from
//! the one holding the fetch offset on, each with its real base offset written in, up to the
//! partition's byte limit. The walk checks what the index entry promises (where offsets start,
//! where they end), since a batch handed out under the wrong offsets is worse than none.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use skiff_format::batch::set_base_offset;
use skiff_format::run::{run_batches, RunOffsets};
use skiff_metastore::types::{BatchLocation, RunLayout};

use super::ReadError;

pub(super) struct Answer {
    out: BytesMut,
    offset: i64,
    max_bytes: u64,
    whole_first: bool,
    /// No batch from this offset on is answered: a read_committed fetch's last stable offset.
    end: i64,
    /// A batch ending at or after the fetch offset has been seen.
    reached: bool,
    /// No more batches are wanted: the next would pass the limit, or what was read of a run
    /// stops before its end.
    done: bool,
}

impl Answer {
    /// For a fetch at `offset` of up to `max_bytes`, with its first batch whole whatever its size
    /// if `whole_first` (KIP-74). `capacity`: the bytes read for it.
    /// Batches starting at or after `end` are left out.
    pub fn new(offset: i64, max_bytes: u64, whole_first: bool, end: i64, capacity: usize) -> Self {
        let capacity = u64::try_from(capacity).unwrap_or(u64::MAX).min(max_bytes);
        Self {
            out: BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0)),
            offset,
            max_bytes,
            whole_first,
            end,
            reached: false,
            done: false,
        }
    }

    pub fn done(&self) -> bool {
        self.done
    }

    /// Adds the batches of `bytes`, which are `range` of `run`'s batches (relative to its first
    /// byte; a flushed run is read whole, its offsets known only by counting from its start).
    pub fn add_run(
        &mut self,
        run: &BatchLocation,
        range: Range<u64>,
        bytes: &[u8],
    ) -> Result<(), ReadError> {
        let corrupt = |what| ReadError::Offsets {
            object: run.object,
            position: run.position,
            base: run.base_offset,
            last: run.last_offset,
            what,
        };
        let run_len = u64::from(run.len);
        let (offsets, flushed) = match run.layout {
            RunLayout::Flushed if range != (0..run_len) => {
                return Err(corrupt("a flushed run is read whole or not at all"))
            }
            RunLayout::Flushed => (RunOffsets::Consecutive(run.base_offset), true),
            // Built from the entry: one batch, at the entry's offset.
            RunLayout::Marker { .. } => (RunOffsets::Consecutive(run.base_offset), true),
            RunLayout::Segment { .. } => (RunOffsets::InHeaders, false),
        };
        // The lowest offset the next batch may start at.
        let mut next = run.base_offset;
        let mut first = true;
        for batch in run_batches(bytes, offsets) {
            let batch = batch.map_err(|source| ReadError::Batches {
                object: run.object,
                position: run.position,
                source,
            })?;
            if batch.base_offset < next {
                return Err(corrupt(
                    "a batch starts below the end of the batch before it",
                ));
            }
            let last = batch.last_offset();
            if last > run.last_offset {
                return Err(corrupt("a batch ends past the run's last offset"));
            }
            if std::mem::take(&mut first) && range.start > 0 && batch.base_offset > self.offset {
                // Read from the index point at or below the offset: the batch there must be.
                return Err(corrupt(
                    "the segment index places the offset before its batch",
                ));
            }
            next = last.saturating_add(1);
            if self.done {
                // A flushed run is walked to its end anyway: only its end proves its offsets.
                if flushed {
                    continue;
                }
                break;
            }
            if last < self.offset {
                continue;
            }
            self.reached = true;
            if batch.base_offset >= self.end {
                self.done = true;
                continue;
            }
            let Some(slice) = bytes.get(batch.range.clone()) else {
                return Err(corrupt("a batch lies outside the bytes read"));
            };
            let len = slice.len() as u64;
            if (self.out.len() as u64).saturating_add(len) > self.max_bytes
                && !(self.out.is_empty() && self.whole_first)
            {
                self.done = true;
                continue;
            }
            let at = self.out.len();
            self.out.extend_from_slice(slice);
            if let Some(written) = self.out.get_mut(at..) {
                set_base_offset(written, batch.base_offset);
            }
        }
        if flushed && next != run.last_offset.saturating_add(1) {
            return Err(corrupt("the batches do not end at the run's last offset"));
        }
        if range.end < run_len && !self.done {
            // The next run continues after the end of this one, not after what was read of it.
            self.done = true;
            if !self.reached {
                // The index sent the read to batches that all end before the offset: answering
                // nothing would leave the consumer asking for the same offset forever.
                return Err(corrupt("the segment index misplaces the fetch offset"));
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Bytes {
        self.out.freeze()
    }
}
