//! Runs of batches, and the sparse index a compactor's segment carries.
//!
//! The metastore indexes *runs*: consecutive batches of one partition lying back to back in one
//! object. A reader gets the run's bytes and walks the batch headers in them to find the batch
//! holding an offset. How it learns each batch's offset depends on who wrote the run:
//!
//! - **an agent's flush** holds the batches as producers sent them. Offsets are assigned at
//!   commit, after the object is written, so the headers' base offsets mean nothing: the run's
//!   first batch starts at the run's base offset and each next one follows the last offset of
//!   the one before ([`RunOffsets::Consecutive`]);
//! - **a compactor's segment** is written once offsets are known, so every header carries its
//!   batch's real base offset ([`RunOffsets::InHeaders`]), and key compaction may leave gaps
//!   between batches, as in Kafka. A segment can be 128 MiB: after its batches comes a
//!   [`SegmentIndex`], one point every [`INDEX_INTERVAL_BYTES`] of batches (Kafka's `.index`
//!   and `.timeindex` in one), so a fetch into its middle reads the index and then only the
//!   part it needs.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{BatchError, BatchHeader, Corruption, LOG_OVERHEAD};

/// How far apart the points of a [`SegmentIndex`] are, in bytes of batches: a fetch into a
/// segment reads at most this much before the batch it wants. 2,048 points (40 KiB) index a
/// 128 MiB segment.
pub const INDEX_INTERVAL_BYTES: u64 = 64 * 1024;

/// Bytes of one index point: base offset i64, position u32, max timestamp i64.
const POINT_LEN: usize = 20;
/// Point count u32 and CRC-32C u32, after the points.
const INDEX_FIXED_LEN: usize = 8;

/// Where the batches of a run get their offsets from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOffsets {
    /// The first batch's base offset; each next batch starts after the previous one's last.
    Consecutive(i64),
    /// Each header's base offset is the batch's own.
    InHeaders,
}

/// One batch found in a run's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunBatch {
    /// Where the whole batch lies in the bytes walked.
    pub range: Range<usize>,
    /// The batch's real base offset.
    pub base_offset: i64,
    pub header: BatchHeader,
}

impl RunBatch {
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.header.last_offset_delta.max(0)))
    }
}

/// Walks the batches back to back in `bytes`, from its first byte. Stops at the end of the
/// bytes, or with one error at the first header that does not parse or batch that does not fit.
pub fn run_batches(bytes: &[u8], offsets: RunOffsets) -> RunBatches<'_> {
    RunBatches {
        bytes,
        at: 0,
        next: offsets,
        failed: false,
    }
}

pub struct RunBatches<'a> {
    bytes: &'a [u8],
    at: usize,
    next: RunOffsets,
    failed: bool,
}

impl Iterator for RunBatches<'_> {
    type Item = Result<RunBatch, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at >= self.bytes.len() {
            return None;
        }
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        // `parse` checked the length is at least the header's; it is positive.
        let len = LOG_OVERHEAD + header.batch_length as usize;
        if len > rest.len() {
            self.failed = true;
            return Some(Err(Corruption::Truncated {
                needed: len,
                available: rest.len(),
            }
            .into()));
        }
        let base_offset = match self.next {
            RunOffsets::Consecutive(base) => base,
            RunOffsets::InHeaders => header.base_offset,
        };
        let batch = RunBatch {
            range: self.at..self.at + len,
            base_offset,
            header,
        };
        if let RunOffsets::Consecutive(_) = self.next {
            self.next = RunOffsets::Consecutive(batch.last_offset().saturating_add(1));
        }
        self.at += len;
        Some(Ok(batch))
    }
}

/// One point of a [`SegmentIndex`]: a batch boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexPoint {
    /// The base offset of the batch starting here.
    pub base_offset: i64,
    /// Where that batch starts, from the start of the segment's run.
    pub position: u32,
    /// The largest timestamp of the batches from here to the next point.
    pub max_timestamp: i64,
}

/// Why a segment index could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("segment index of {len} bytes cannot hold {count} points")]
    Length { len: usize, count: u32 },
    #[error("segment index checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("segment index points are not in order at point {0}")]
    Order(usize),
}

/// The sparse offset and time index written after a segment's batches.
///
/// ```text
/// points   20 B each   base offset i64 | position u32 | max timestamp i64
///          point count u32 | crc32c u32 of points and count
/// ```
///
/// The first point is the first batch; the next is the first batch starting at least
/// [`INDEX_INTERVAL_BYTES`] after the point before. Big-endian, like the object around it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    points: Vec<IndexPoint>,
}

impl SegmentIndex {
    pub fn points(&self) -> &[IndexPoint] {
        &self.points
    }

    /// Adds a batch that starts at `position` in the run (batches in order).
    pub fn push(&mut self, base_offset: i64, position: u32, max_timestamp: i64) {
        match self.points.last_mut() {
            Some(last)
                if u64::from(position.saturating_sub(last.position)) < INDEX_INTERVAL_BYTES =>
            {
                last.max_timestamp = last.max_timestamp.max(max_timestamp)
            }
            _ => self.points.push(IndexPoint {
                base_offset,
                position,
                max_timestamp,
            }),
        }
    }

    pub fn encoded_len(&self) -> usize {
        self.points
            .len()
            .saturating_mul(POINT_LEN)
            .saturating_add(INDEX_FIXED_LEN)
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        for p in &self.points {
            out.put_i64(p.base_offset);
            out.put_u32(p.position);
            out.put_i64(p.max_timestamp);
        }
        out.put_u32(u32::try_from(self.points.len()).unwrap_or(u32::MAX));
        let crc = crc32c::crc32c(&out);
        out.put_u32(crc);
        out.freeze()
    }

    /// Decodes exactly an index's bytes. Nothing is allocated beyond what the bytes hold, and
    /// points out of order (which would misdirect every lookup) are refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, IndexError> {
        let length = |count| IndexError::Length {
            len: bytes.len(),
            count,
        };
        let (body, crc) = bytes.split_last_chunk::<4>().ok_or(length(0))?;
        let (points, count) = body.split_last_chunk::<4>().ok_or(length(0))?;
        let count = u32::from_be_bytes(*count);
        if usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(POINT_LEN))
            != Some(points.len())
        {
            return Err(length(count));
        }
        let stored = u32::from_be_bytes(*crc);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(IndexError::Checksum { stored, computed });
        }
        let points: Vec<IndexPoint> = points
            .chunks_exact(POINT_LEN)
            .map(|p| IndexPoint {
                base_offset: i64::from_be_bytes(array(p, 0)),
                position: u32::from_be_bytes(array(p, 8)),
                max_timestamp: i64::from_be_bytes(array(p, 12)),
            })
            .collect();
        if let Some(i) = points
            .windows(2)
            .position(|w| w[1].base_offset <= w[0].base_offset || w[1].position <= w[0].position)
        {
            return Err(IndexError::Order(i + 1));
        }
        Ok(Self { points })
    }

    /// Where to start reading for `offset`: the last point at or below it (the run's start if
    /// none is).
    pub fn position_for_offset(&self, offset: i64) -> u32 {
        let i = self.points.partition_point(|p| p.base_offset <= offset);
        i.checked_sub(1)
            .and_then(|i| self.points.get(i))
            .map_or(0, |p| p.position)
    }

    /// Where to stop reading so that everything from `from` up to `at_least` is read in whole
    /// batches: the first point at or past `at_least`, or `run_len`, the run's end.
    pub fn end_at_or_after(&self, at_least: u64, run_len: u32) -> u32 {
        let i = self
            .points
            .partition_point(|p| u64::from(p.position) < at_least);
        self.points.get(i).map_or(run_len, |p| p.position)
    }

    /// Where to start reading to find the first record with a timestamp at or above `t`: the
    /// start of the first stretch whose largest timestamp reaches it. `None`: no record does.
    pub fn position_for_timestamp(&self, t: i64) -> Option<u32> {
        self.points
            .iter()
            .find(|p| p.max_timestamp >= t)
            .map(|p| p.position)
    }

    /// The start of the first stretch holding the run's largest timestamp.
    pub fn position_of_max_timestamp(&self) -> Option<u32> {
        let max = self.points.iter().map(|p| p.max_timestamp).max()?;
        self.position_for_timestamp(max)
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "run_tests.rs"]
mod tests;
