//! Kafka v2 record batches: header parsing and validation, never record decoding.
//!
//! The produce path splits a partition's `records` field into batches with [`batches`], which
//! checks each header (lengths, magic, CRC-32C, record count, size limit) and yields zero-copy
//! slices of the input. Records stay as the producer sent them, compressed or not; they are
//! read only for the checks a topic asks for or when the header's timestamps cannot be believed
//! ([`crate::validate`], [`BatchHeader::trusted_timestamps`]).
//!
//! Layout of a v2 batch header (all big-endian), offsets in bytes:
//!
//! ```text
//!  0 base_offset i64            27 base_timestamp i64
//!  8 batch_length i32           35 max_timestamp i64
//! 12 partition_leader_epoch i32 43 producer_id i64
//! 16 magic i8                   51 producer_epoch i16
//! 17 crc u32 (CRC-32C of 21..)  53 base_sequence i32
//! 21 attributes i16             57 record_count i32
//! 23 last_offset_delta i32      61 records…
//! ```

use bytes::Bytes;

use crate::records::RecordError;

/// Size of a v2 batch header; records start here.
pub const BATCH_HEADER_LEN: usize = 61;
/// `base_offset` and `batch_length`: the bytes not counted by `batch_length`.
pub const LOG_OVERHEAD: usize = 12;
/// The smallest legal `batch_length`: a header with no records.
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only record-batch format Skiff accepts.
pub const MAGIC_V2: i8 = 2;
/// The CRC covers the batch from the attributes to its end.
pub const CRC_START: usize = 21;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

/// Kafka error codes for the ways a batch can be refused.
pub mod codes {
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const INVALID_RECORD: i16 = 87;
}

/// Why a batch was refused. Each variant maps to one Kafka error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("corrupt record batch: {0}")]
    Corrupt(Corruption),
    #[error("unsupported record batch magic {0}, only magic 2 is accepted")]
    UnsupportedMagic(i8),
    #[error("invalid record batch: record count {record_count} with last offset delta {last_offset_delta}")]
    InvalidRecord {
        record_count: i32,
        last_offset_delta: i32,
    },
    #[error("record batch of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The records had to be read (see [`BatchHeader::trusted_timestamps`]) and do not decode.
    #[error("invalid records in batch: {0}")]
    Records(RecordError),
}

/// The detail of a [`BatchError::Corrupt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("batch length {0} is below the minimum of 49")]
    InvalidLength(i32),
    #[error("{0} bytes after the end of the batch")]
    TrailingBytes(usize),
    #[error("crc mismatch: header says {expected:#010x}, bytes give {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
}

impl BatchError {
    /// The Kafka error code a produce response carries for this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            BatchError::Corrupt(_) => codes::CORRUPT_MESSAGE,
            BatchError::UnsupportedMagic(_) => codes::UNSUPPORTED_FOR_MESSAGE_FORMAT,
            BatchError::InvalidRecord { .. } => codes::INVALID_RECORD,
            BatchError::TooLarge { .. } => codes::MESSAGE_TOO_LARGE,
            // Kafka's record parser (DefaultRecord.readFrom) throws InvalidRecordException, which
            // is INVALID_RECORD: not retriable, as resending the same bytes cannot help.
            BatchError::Records(_) => codes::INVALID_RECORD,
        }
    }
}

impl From<Corruption> for BatchError {
    fn from(c: Corruption) -> Self {
        BatchError::Corrupt(c)
    }
}

/// The compression codec of a batch (attributes bits 0..3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    /// Codes 5..=7, which Kafka does not define.
    Unknown(u8),
}

/// The timestamps the metastore's index keeps for a batch: retention expires a batch by `max`,
/// ListOffsets by timestamp looks batches up by `max` and answers the base offset when `first`
/// is already late enough.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamps {
    /// The timestamp of the batch's first record.
    pub first: i64,
    /// The largest timestamp of its records.
    pub max: i64,
}

/// The fixed 61-byte header of a v2 record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf`. Checks that the header is present, that the magic
    /// is 2 and that `batch_length` is at least 49; it does not check the CRC nor that the whole
    /// batch is present (see [`batches`]).
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        let h: &[u8; BATCH_HEADER_LEN] = buf
            .get(..BATCH_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Corruption::Truncated {
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            })?;
        let magic = h[16] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let header = BatchHeader {
            base_offset: i64::from_be_bytes(arr(h, 0)),
            batch_length: i32::from_be_bytes(arr(h, 8)),
            partition_leader_epoch: i32::from_be_bytes(arr(h, 12)),
            magic,
            crc: u32::from_be_bytes(arr(h, 17)),
            attributes: i16::from_be_bytes(arr(h, 21)),
            last_offset_delta: i32::from_be_bytes(arr(h, 23)),
            base_timestamp: i64::from_be_bytes(arr(h, 27)),
            max_timestamp: i64::from_be_bytes(arr(h, 35)),
            producer_id: i64::from_be_bytes(arr(h, 43)),
            producer_epoch: i16::from_be_bytes(arr(h, 51)),
            base_sequence: i32::from_be_bytes(arr(h, 53)),
            record_count: i32::from_be_bytes(arr(h, 57)),
        };
        if header.batch_length < MIN_BATCH_LENGTH {
            return Err(Corruption::InvalidLength(header.batch_length).into());
        }
        Ok(header)
    }

    pub fn compression(&self) -> Compression {
        match (self.attributes & COMPRESSION_MASK) as u8 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => Compression::Unknown(other),
        }
    }

    /// Timestamps were set by the broker at append time (`LogAppendTime`): every record's
    /// timestamp is `max_timestamp`.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_FLAG != 0
    }

    /// The header's timestamps, when they can be believed without reading the records: a base
    /// (first) timestamp that is set and a max timestamp not below it. `None` otherwise, and the
    /// caller computes them from the records ([`crate::records::timestamps`]), as Kafka's
    /// LogValidator computes a batch's max timestamp instead of trusting the header: some
    /// producers (Sarama) write `max_timestamp = -1` in every batch. A `LogAppendTime` batch
    /// gives every record its max timestamp, so its header is all there is to read.
    pub fn trusted_timestamps(&self) -> Option<Timestamps> {
        if self.is_log_append_time() {
            return Some(Timestamps {
                first: self.max_timestamp,
                max: self.max_timestamp,
            });
        }
        (self.base_timestamp >= 0 && self.max_timestamp >= self.base_timestamp).then_some(
            Timestamps {
                first: self.base_timestamp,
                max: self.max_timestamp,
            },
        )
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// The whole batch's size in bytes: `12 + batch_length`.
    pub fn total_len(&self) -> usize {
        // A parsed header has batch_length >= 49; clamp anyway for hand-built values.
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }
}

fn arr<const N: usize>(h: &[u8; BATCH_HEADER_LEN], at: usize) -> [u8; N] {
    let mut out = [0; N];
    if let Some(src) = h.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

/// One validated batch: its header and its bytes, a zero-copy slice of the produce request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub header: BatchHeader,
    pub bytes: Bytes,
}

impl Batch {
    /// Validates `bytes` as exactly one batch (no trailing bytes).
    pub fn parse(bytes: Bytes, max_batch_bytes: usize) -> Result<Self, BatchError> {
        let len = bytes.len();
        let batch = validate(&bytes, max_batch_bytes)?;
        if let Some(extra) = len.checked_sub(batch.total_len()).filter(|&n| n > 0) {
            return Err(Corruption::TrailingBytes(extra).into());
        }
        Ok(Batch {
            header: batch,
            bytes,
        })
    }
}

impl Batch {
    /// Validates `bytes` as exactly one batch read back from the store: as [`Batch::parse`], except
    /// that a compacted batch may hold fewer records than offsets.
    pub fn parse_stored(bytes: Bytes) -> Result<Self, BatchError> {
        let len = bytes.len();
        let batch = validate_as(&bytes, usize::MAX, Origin::Stored)?;
        if let Some(extra) = len.checked_sub(batch.total_len()).filter(|&n| n > 0) {
            return Err(Corruption::TrailingBytes(extra).into());
        }
        Ok(Batch {
            header: batch,
            bytes,
        })
    }
}

/// Splits the concatenated batches of one produce partition, validating each (see the module
/// docs). The iterator stops after the first error.
pub fn batches(records: Bytes, max_batch_bytes: usize) -> BatchIter {
    BatchIter {
        records,
        max_batch_bytes,
        done: false,
    }
}

/// The iterator returned by [`batches`].
#[derive(Debug)]
pub struct BatchIter {
    records: Bytes,
    max_batch_bytes: usize,
    done: bool,
}

impl Iterator for BatchIter {
    type Item = Result<Batch, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.records.is_empty() {
            return None;
        }
        match validate(&self.records, self.max_batch_bytes) {
            Ok(header) => {
                // `validate` checked that total_len <= records.len().
                let bytes = self.records.split_to(header.total_len());
                Some(Ok(Batch { header, bytes }))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for BatchIter {}

/// Validates the batch at the start of `buf`, which may be followed by others.
fn validate(buf: &[u8], max_batch_bytes: usize) -> Result<BatchHeader, BatchError> {
    validate_as(buf, max_batch_bytes, Origin::Produced)
}

/// Where a batch comes from, which decides how its record count must match its offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// From a producer: one record per offset, `record_count == last_offset_delta + 1`.
    Produced,
    /// From the store: log compaction may have left out records (never all of them), so
    /// `1 <= record_count <= last_offset_delta + 1`.
    Stored,
}

fn validate_as(
    buf: &[u8],
    max_batch_bytes: usize,
    origin: Origin,
) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    let total = header.total_len();
    if total > max_batch_bytes {
        return Err(BatchError::TooLarge {
            len: total,
            max: max_batch_bytes,
        });
    }
    let covered = buf.get(CRC_START..total).ok_or(Corruption::Truncated {
        needed: total,
        available: buf.len(),
    })?;
    let actual = crc32c::crc32c(covered);
    if actual != header.crc {
        return Err(Corruption::CrcMismatch {
            expected: header.crc,
            actual,
        }
        .into());
    }
    let span = i64::from(header.last_offset_delta) + 1;
    let count = i64::from(header.record_count);
    let fits = match origin {
        Origin::Produced => count == span,
        Origin::Stored => count <= span,
    };
    if count < 1 || !fits {
        return Err(BatchError::InvalidRecord {
            record_count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// Writes `base_offset` into the first 8 bytes of a batch. The CRC does not cover them, so the
/// batch stays valid. Does nothing if `batch` is shorter than 8 bytes.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    if let Some(dst) = batch.get_mut(..8) {
        dst.copy_from_slice(&base_offset.to_be_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "batch_tests.rs"]
mod tests;
