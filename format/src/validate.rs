//! The per-record checks of Kafka's `LogValidator` that Skiff makes on produce, and the header
//! rewrite of a `LogAppendTime` topic.
//!
//! Records are read only for the batches that need it ([`Checks::needed`]): a topic whose
//! `cleanup.policy` includes `compact` (every record needs a key), a `CreateTime` topic with a
//! timestamp bound (KIP-937: `message.timestamp.before.max.ms` / `after.max.ms`), and a batch
//! whose header cannot be believed for the index. An uncompressed batch is read in place; a
//! compressed one is decompressed once, up to a limit ([`crate::records::walk`]).
//!
//! Checking the header instead of the records would not be the same: a record's timestamp is
//! `base_timestamp + delta`, the header's `max_timestamp` is what the producer wrote (Kafka
//! recomputes it), and the smallest timestamp, which the `before` bound needs, is in no header.

use bytes::{Bytes, BytesMut};

use crate::batch::{Batch, BatchHeader, Timestamps, BATCH_HEADER_LEN, CRC_START};
use crate::records::{walk, RecordError};

const TIMESTAMP_TYPE_FLAG: i16 = 0x08;

/// How far a `CreateTime` record's timestamp may be from the broker's clock (KIP-937).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampBounds {
    /// The broker's clock, in milliseconds since the epoch.
    pub now: i64,
    /// `message.timestamp.before.max.ms`: how far in the past.
    pub before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future.
    pub after_max_ms: i64,
}

impl TimestampBounds {
    /// Whether no timestamp can be refused (both bounds `i64::MAX`, Kafka 3.x's defaults).
    pub fn unbounded(&self) -> bool {
        self.before_max_ms == i64::MAX && self.after_max_ms == i64::MAX
    }

    /// Whether `timestamp` is refused, with Kafka's arithmetic (Java's wrapping `long`s), so the
    /// same timestamps are refused as by Kafka. A record without a timestamp (-1) never is.
    pub fn refuses(&self, timestamp: i64) -> bool {
        if timestamp == NO_TIMESTAMP {
            return false;
        }
        let diff = self.now.wrapping_sub(timestamp);
        diff > self.before_max_ms || diff.wrapping_neg() > self.after_max_ms
    }

    /// The window Kafka names in its error message: `[now - before, now + after]`.
    pub fn window(&self) -> (i64, i64) {
        (
            self.now.wrapping_sub(self.before_max_ms),
            self.now.wrapping_add(self.after_max_ms),
        )
    }
}

/// A record's timestamp when it has none.
pub const NO_TIMESTAMP: i64 = -1;

/// What a topic asks of each produced record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// The topic is compacted: a record without a key is refused.
    pub require_key: bool,
    /// The topic is `CreateTime` with these bounds; `None` for a `LogAppendTime` topic.
    pub timestamps: Option<TimestampBounds>,
}

impl Checks {
    /// Whether `header`'s records must be read: for a check that can refuse something, for a
    /// producer's `LogAppendTime` batch (refused, record by record, as Kafka does), or for the
    /// index's timestamps of a `CreateTime` batch whose header cannot be believed.
    pub fn needed(&self, header: &BatchHeader) -> bool {
        self.require_key
            || header.is_log_append_time()
            || self
                .timestamps
                .is_some_and(|t| !t.unbounded() || header.trusted_timestamps().is_none())
    }
}

/// Why one record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A record without a key for a compacted topic: INVALID_RECORD.
    MissingKey,
    /// A `CreateTime` timestamp outside the bounds: INVALID_TIMESTAMP. `offset` is the record's
    /// offset as the producer numbered it (base offset plus delta), as Kafka reports it.
    Timestamp { timestamp: i64, offset: i64 },
    /// The producer set the `LogAppendTime` bit, which only a broker may: INVALID_TIMESTAMP.
    LogAppendTimeSet,
}

/// A refused record: its place in the batch (KIP-467's `batch_index`) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordViolation {
    pub index: usize,
    pub violation: Violation,
}

/// What [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The batch's timestamps computed from its records, as Kafka's LogValidator computes the
    /// max: the first record's and the largest.
    pub timestamps: Timestamps,
    /// The refused records, in order, at most the `max_listed` asked for.
    pub violations: Vec<RecordViolation>,
    /// How many records were refused in all.
    pub refused: usize,
    /// Of those, how many for a missing key; the others are for their timestamps (Kafka's
    /// INVALID_TIMESTAMP then, as soon as there is one; INVALID_RECORD otherwise).
    pub missing_keys: usize,
}

impl Checked {
    /// Whether a timestamp was among the reasons, listed or not.
    pub fn invalid_timestamp(&self) -> bool {
        self.refused > self.missing_keys
    }
}

/// Reads every record of `batch` (decompressing at most `max_decompressed` bytes) and checks it
/// as Kafka's `LogValidator.validateRecord` does: the key first, then the timestamp. A record
/// has at most one violation. Records that do not decode are an error: the batch is refused
/// whole.
pub fn check(
    batch: &Batch,
    checks: &Checks,
    max_decompressed: usize,
    max_listed: usize,
) -> Result<Checked, RecordError> {
    let header = &batch.header;
    let mut violations = Vec::new();
    let mut refused = 0usize;
    let mut missing_keys = 0usize;
    let mut found: Option<Timestamps> = None;
    walk(batch, max_decompressed, |r| {
        let t = found.get_or_insert(Timestamps {
            first: r.timestamp,
            max: r.timestamp,
        });
        t.max = t.max.max(r.timestamp);
        let violation = if checks.require_key && !r.has_key {
            Some(Violation::MissingKey)
        } else if header.is_log_append_time() {
            Some(Violation::LogAppendTimeSet)
        } else {
            checks
                .timestamps
                .filter(|b| b.refuses(r.timestamp))
                .map(|_| Violation::Timestamp {
                    timestamp: r.timestamp,
                    offset: header.base_offset.wrapping_add(i64::from(r.offset_delta)),
                })
        };
        if let Some(violation) = violation {
            refused += 1;
            if violation == Violation::MissingKey {
                missing_keys += 1;
            }
            if violations.len() < max_listed {
                violations.push(RecordViolation {
                    index: r.index,
                    violation,
                });
            }
        }
    })?;
    Ok(Checked {
        timestamps: found.unwrap_or(Timestamps {
            first: header.base_timestamp,
            max: header.max_timestamp,
        }),
        violations,
        refused,
        missing_keys,
    })
}

/// The header of `batch` as a `LogAppendTime` topic stores it, as Kafka's
/// `DefaultRecordBatch.setMaxTimestamp(LOG_APPEND_TIME, now)` writes it: the timestamp-type bit
/// set in the attributes, `max_timestamp = now`, and the CRC-32C recomputed over the attributes
/// to the end of the batch (a read of the records, not a copy). Everything else stays, the base
/// timestamp and the records' deltas too: a consumer gives every record of a `LogAppendTime`
/// batch its `max_timestamp`. The answer is the new 61 bytes and their parsed header; the records
/// are the batch's own bytes after them. `None` for a batch shorter than its header, which
/// validation never lets through.
pub fn log_append_time_header(batch: &Batch, now: i64) -> Option<(Bytes, BatchHeader)> {
    let old = batch.bytes.get(..BATCH_HEADER_LEN)?;
    let end = batch.header.total_len().min(batch.bytes.len());
    let records = batch.bytes.get(BATCH_HEADER_LEN..end)?;
    let mut header = BytesMut::from(old);
    let attributes = batch.header.attributes | TIMESTAMP_TYPE_FLAG;
    header
        .get_mut(21..23)?
        .copy_from_slice(&attributes.to_be_bytes());
    header.get_mut(35..43)?.copy_from_slice(&now.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(header.get(CRC_START..)?), records);
    header.get_mut(17..21)?.copy_from_slice(&crc.to_be_bytes());
    let parsed = BatchHeader {
        attributes,
        max_timestamp: now,
        crc,
        ..batch.header
    };
    Some((header.freeze(), parsed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "validate_tests.rs"]
mod tests;
