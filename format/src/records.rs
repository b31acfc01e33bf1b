//! A record decoder for v2 batches, for the few places that need individual records (ListOffsets
//! by timestamp, the compactor), and [`walk`], which reads each record's framing, timestamp and
//! whether it has a key without slicing or allocating, for the produce path's checks
//! ([`crate::validate`]). Fetch never decodes records.
//!
//! The records section is the batch's bytes after its 61-byte header. For a compressed batch it is
//! first decompressed ([`crate::compression`]) into one buffer of at most
//! [`MAX_DECOMPRESSED_RECORDS`] bytes (or the limit given to [`records_with_limit`]); an
//! uncompressed batch is read in place.
//!
//! Record layout (varint = zig-zag varint, see [`crate::varint`]):
//!
//! ```text
//! length varint, attributes i8, timestamp_delta varlong, offset_delta varint,
//! key_length varint (-1 = null), key, value_length varint (-1 = null), value,
//! header_count varint, then per header: key_length varint, key, value_length varint, value
//! ```
//!
//! Every length is checked against what remains before anything is sliced or allocated; keys
//! and values are zero-copy slices of the batch's `Bytes` (uncompressed) or of the decompressed
//! buffer (compressed).

use bytes::Bytes;

use crate::batch::{Batch, BatchHeader, Compression, Timestamps, BATCH_HEADER_LEN};
use crate::compression::{decompress, DecompressError};
use crate::varint::{read_varint, read_varlong, VarintError};

/// The largest decompressed records section [`records`] accepts: 64 MiB. A stored batch is at
/// most `max.message.bytes` compressed (1 MiB by default), so this allows a ratio of 64 on default
/// topics, far above what record data compresses at (under 10 for most), while a decompression
/// bomb costs a bounded amount of memory: the output, plus for zstd a window of at most the same
/// size (see [`crate::compression`]). A batch over the limit is [`RecordError::Decompress`] with
/// [`DecompressError::TooLarge`], and a caller falls back to batch granularity; the compactor may
/// pick its own limit with [`records_with_limit`].
pub const MAX_DECOMPRESSED_RECORDS: usize = 64 << 20;

/// Why the records of a batch could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("cannot decompress records: {0}")]
    Decompress(#[from] DecompressError),
    #[error("record data runs past the end of the batch")]
    Truncated,
    #[error("bad varint in record: {0}")]
    Varint(VarintError),
    #[error("invalid {what} length {len}")]
    InvalidLength { what: &'static str, len: i64 },
    #[error("record declares {declared} bytes but its fields take {read}")]
    SizeMismatch { declared: usize, read: usize },
    #[error("{0} bytes left after the batch's last record")]
    TrailingBytes(usize),
}

impl From<VarintError> for RecordError {
    fn from(e: VarintError) -> Self {
        match e {
            VarintError::Truncated => RecordError::Truncated,
            other => RecordError::Varint(other),
        }
    }
}

/// One header of a record. Keys may repeat; they are kept in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// A string in Kafka; kept as bytes (not checked for UTF-8).
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub attributes: i8,
    pub timestamp_delta: i64,
    /// `base_timestamp + timestamp_delta`, or `max_timestamp` for a `LogAppendTime` batch.
    pub timestamp: i64,
    pub offset_delta: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

/// The records of a batch, in order, compressed or not; a compressed batch is decompressed
/// first, up to [`MAX_DECOMPRESSED_RECORDS`].
pub fn records(batch: &Batch) -> Result<Records, RecordError> {
    records_with_limit(batch, MAX_DECOMPRESSED_RECORDS)
}

/// [`records`], with a compressed batch's records capped at `max_decompressed` bytes. An
/// uncompressed batch is not copied and ignores the limit.
pub fn records_with_limit(batch: &Batch, max_decompressed: usize) -> Result<Records, RecordError> {
    // Past the header and up to the batch's declared end, whichever is shorter.
    let end = batch.header.total_len().min(batch.bytes.len());
    let raw = if end >= BATCH_HEADER_LEN {
        batch.bytes.slice(BATCH_HEADER_LEN..end)
    } else {
        Bytes::new()
    };
    let data = match batch.header.compression() {
        Compression::None => raw,
        codec => decompress(codec, &raw, max_decompressed)?,
    };
    Ok(Records {
        header: batch.header,
        cursor: Cursor { data, pos: 0 },
        remaining: usize::try_from(batch.header.record_count).unwrap_or(0),
        done: false,
    })
}

/// The iterator returned by [`records`]. It stops after the first error.
#[derive(Debug)]
pub struct Records {
    header: BatchHeader,
    cursor: Cursor,
    remaining: usize,
    done: bool,
}

impl Iterator for Records {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            let left = self.cursor.left();
            return (left > 0).then_some(Err(RecordError::TrailingBytes(left)));
        }
        self.remaining -= 1;
        let result = read_record(&mut self.cursor, &self.header);
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

impl std::iter::FusedIterator for Records {}

/// The first record of a batch at offset delta `min_delta` or later whose timestamp is at or
/// after `timestamp`, as `(offset_delta, record timestamp)`; `None` when every such record is
/// older. `min_delta` skips what lies below the log start, as Kafka's search starts there.
pub fn first_offset_at_or_after(
    batch: &Batch,
    timestamp: i64,
    min_delta: i64,
) -> Result<Option<(i64, i64)>, RecordError> {
    for record in records(batch)? {
        let record = record?;
        if record.timestamp >= timestamp && i64::from(record.offset_delta) >= min_delta {
            return Ok(Some((i64::from(record.offset_delta), record.timestamp)));
        }
    }
    Ok(None)
}

/// The first record of a batch carrying the largest timestamp of its records, as
/// `(offset_delta, timestamp)`: what ListOffsets with `MAX_TIMESTAMP` (-3) answers, as Kafka
/// computes it from the records rather than trusting the header. `None` for a batch without
/// records. Every record is read, so a malformed record anywhere is an error.
pub fn max_timestamp(batch: &Batch) -> Result<Option<(i64, i64)>, RecordError> {
    let mut best: Option<(i64, i64)> = None;
    for record in records(batch)? {
        let record = record?;
        if best.is_none_or(|(_, ts)| record.timestamp > ts) {
            best = Some((i64::from(record.offset_delta), record.timestamp));
        }
    }
    Ok(best)
}

/// A batch's timestamps computed from its records, for a header that cannot be believed
/// ([`BatchHeader::trusted_timestamps`]): the first record's timestamp and the largest of all, as
/// Kafka's LogValidator computes the max. A record's timestamp is `base_timestamp + delta`
/// whatever the base says, so a base of -1 with deltas carrying real times gives those times.
/// Every record is read, so a malformed record anywhere is an error. A batch without records
/// (never a validated one) keeps its header's timestamps.
pub fn timestamps(batch: &Batch) -> Result<Timestamps, RecordError> {
    let mut found: Option<Timestamps> = None;
    for record in records(batch)? {
        let ts = record?.timestamp;
        let t = found.get_or_insert(Timestamps { first: ts, max: ts });
        t.max = t.max.max(ts);
    }
    Ok(found.unwrap_or(Timestamps {
        first: batch.header.base_timestamp,
        max: batch.header.max_timestamp,
    }))
}

/// What [`walk`] reads of each record: its place, timestamp and whether it has a key. Keys,
/// values and headers are skipped over, never sliced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSummary {
    /// The record's place in its batch, from 0: Kafka's `batch_index` (KIP-467).
    pub index: usize,
    pub offset_delta: i32,
    /// As [`Record::timestamp`].
    pub timestamp: i64,
    pub has_key: bool,
}

/// Reads every record of `batch` with `f`, checking each one's framing as [`records`] does
/// (the same errors for the same bytes) without allocating per record: an uncompressed batch is
/// read in place, a compressed one is decompressed once, into at most `max_decompressed` bytes.
/// For the produce path, which checks records (keys on compacted topics, timestamp bounds)
/// without needing them.
pub fn walk(
    batch: &Batch,
    max_decompressed: usize,
    mut f: impl FnMut(&RecordSummary),
) -> Result<(), RecordError> {
    let header = &batch.header;
    let end = header.total_len().min(batch.bytes.len());
    let raw = batch.bytes.get(BATCH_HEADER_LEN..end).unwrap_or_default();
    let decompressed;
    let data: &[u8] = match header.compression() {
        Compression::None => raw,
        codec => {
            decompressed = decompress(codec, raw, max_decompressed)?;
            &decompressed
        }
    };
    let count = usize::try_from(header.record_count).unwrap_or(0);
    let mut reader = SliceReader(data);
    for index in 0..count {
        let (timestamp_delta, offset_delta, has_key) = skim_record(&mut reader)?;
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(timestamp_delta)
        };
        f(&RecordSummary {
            index,
            offset_delta,
            timestamp,
            has_key,
        });
    }
    match reader.0.len() {
        0 => Ok(()),
        left => Err(RecordError::TrailingBytes(left)),
    }
}

/// One record's timestamp delta, offset delta and whether it has a key, checked as
/// [`read_record`] checks it.
fn skim_record(reader: &mut SliceReader<'_>) -> Result<(i64, i32, bool), RecordError> {
    let len = reader.length("record")?.ok_or(RecordError::InvalidLength {
        what: "record",
        len: -1,
    })?;
    let mut body = SliceReader(reader.take(len)?);
    body.take(1)?; // attributes
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    let has_key = body.skip_bytes("key")?;
    body.skip_bytes("value")?;
    let count = body.varint()?;
    let count = usize::try_from(count).map_err(|_| RecordError::InvalidLength {
        what: "header count",
        len: i64::from(count),
    })?;
    for _ in 0..count {
        if !body.skip_bytes("header key")? {
            return Err(RecordError::InvalidLength {
                what: "header key",
                len: -1,
            });
        }
        body.skip_bytes("header value")?;
    }
    if !body.0.is_empty() {
        return Err(RecordError::SizeMismatch {
            declared: len,
            read: len - body.0.len(),
        });
    }
    Ok((timestamp_delta, offset_delta, has_key))
}

/// A bounds-checked reader over a slice, for [`walk`].
struct SliceReader<'a>(&'a [u8]);

impl<'a> SliceReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(RecordError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<i32, RecordError> {
        let (v, n) = read_varint(self.0)?;
        self.take(n)?;
        Ok(v)
    }

    fn varlong(&mut self) -> Result<i64, RecordError> {
        let (v, n) = read_varlong(self.0)?;
        self.take(n)?;
        Ok(v)
    }

    /// As [`Cursor::length`].
    fn length(&mut self, what: &'static str) -> Result<Option<usize>, RecordError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| RecordError::InvalidLength {
            what,
            len: i64::from(len),
        })?;
        if n > self.0.len() {
            return Err(RecordError::Truncated);
        }
        Ok(Some(n))
    }

    /// Skips a length-prefixed, nullable byte string: whether it was not null.
    fn skip_bytes(&mut self, what: &'static str) -> Result<bool, RecordError> {
        match self.length(what)? {
            None => Ok(false),
            Some(n) => self.take(n).map(|_| true),
        }
    }
}

fn read_record(cursor: &mut Cursor, header: &BatchHeader) -> Result<Record, RecordError> {
    let len = cursor.length("record")?.ok_or(RecordError::InvalidLength {
        what: "record",
        len: -1,
    })?;
    let mut body = cursor.take(len)?;
    let attributes = body.take(1)?.data.first().map_or(0, |&b| b as i8);
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    let key = body.bytes("key")?;
    let value = body.bytes("value")?;
    let count = body.varint()?;
    let count = usize::try_from(count).map_err(|_| RecordError::InvalidLength {
        what: "header count",
        len: i64::from(count),
    })?;
    // Each header takes at least two bytes: cap the allocation by what is left.
    let mut headers = Vec::with_capacity(count.min(body.left() / 2));
    for _ in 0..count {
        let key = body
            .bytes("header key")?
            .ok_or(RecordError::InvalidLength {
                what: "header key",
                len: -1,
            })?;
        let value = body.bytes("header value")?;
        headers.push(RecordHeader { key, value });
    }
    if body.left() != 0 {
        return Err(RecordError::SizeMismatch {
            declared: len,
            read: body.pos,
        });
    }
    let timestamp = if header.is_log_append_time() {
        header.max_timestamp
    } else {
        header.base_timestamp.wrapping_add(timestamp_delta)
    };
    Ok(Record {
        attributes,
        timestamp_delta,
        timestamp,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// A bounds-checked reader over a `Bytes`.
#[derive(Debug)]
struct Cursor {
    data: Bytes,
    pos: usize,
}

impl Cursor {
    fn left(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn rest(&self) -> &[u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// The next `n` bytes as a cursor of their own.
    fn take(&mut self, n: usize) -> Result<Cursor, RecordError> {
        if n > self.left() {
            return Err(RecordError::Truncated);
        }
        let data = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(Cursor { data, pos: 0 })
    }

    fn varint(&mut self) -> Result<i32, RecordError> {
        let (v, n) = read_varint(self.rest())?;
        self.pos += n;
        Ok(v)
    }

    fn varlong(&mut self) -> Result<i64, RecordError> {
        let (v, n) = read_varlong(self.rest())?;
        self.pos += n;
        Ok(v)
    }

    /// A varint length: `None` for -1 (null), an error below that or past the end.
    fn length(&mut self, what: &'static str) -> Result<Option<usize>, RecordError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| RecordError::InvalidLength {
            what,
            len: i64::from(len),
        })?;
        if n > self.left() {
            return Err(RecordError::Truncated);
        }
        Ok(Some(n))
    }

    /// A length-prefixed, nullable byte string.
    fn bytes(&mut self, what: &'static str) -> Result<Option<Bytes>, RecordError> {
        match self.length(what)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.data)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "records_tests.rs"]
pub(crate) mod tests;
