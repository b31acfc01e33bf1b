//! Re-encoding a batch with some of its records left out: what log compaction writes.
//!
//! Kafka's cleaner keeps what it can of a batch as it was, and so does this:
//!
//! - the base offset and `last_offset_delta` stay, so the batch still spans the offsets it did
//!   (gaps inside it are fine, as in Kafka); every kept record keeps its offset delta;
//! - attributes stay (codec, timestamp type, transactional flag), and the records are compressed
//!   again with the batch's own codec;
//! - the base timestamp stays and each record keeps its timestamp delta, so every timestamp is
//!   unchanged; the max timestamp is that of the kept records (for `LogAppendTime` batches it is
//!   every record's timestamp and stays);
//! - producer id, epoch, base sequence and partition leader epoch stay;
//! - each kept record is written with its own attributes, key, value and headers, in order, with
//!   repeated header keys kept.

use bytes::Bytes;

use crate::batch::{Batch, BATCH_HEADER_LEN, CRC_START, LOG_OVERHEAD, MAGIC_V2};
use crate::compression::{compress, CompressError};
use crate::records::{records_with_limit, Record, RecordError};
use crate::varint::{write_varint, write_varlong};

/// What [`retain`] made of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retained {
    /// Every record was kept: the batch's bytes serve as they are.
    All,
    /// No record was kept: the batch goes.
    Nothing,
    /// The batch re-encoded with the kept records.
    Some(Bytes),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("{0}")]
    Records(#[from] RecordError),
    #[error("{0}")]
    Compress(#[from] CompressError),
    #[error("the rewritten batch would be too large")]
    TooLarge,
}

/// Decodes `batch` (decompressing at most `max_decompressed` bytes) and keeps the records `keep`
/// says yes to. `keep` sees every record, in order; a decoding error stops everything, so a batch
/// is never half rewritten.
pub fn retain(
    batch: &Batch,
    max_decompressed: usize,
    mut keep: impl FnMut(&Record) -> bool,
) -> Result<Retained, RewriteError> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    for record in records_with_limit(batch, max_decompressed)? {
        let record = record?;
        total += 1;
        if keep(&record) {
            kept.push(record);
        }
    }
    if kept.len() == total {
        return Ok(Retained::All);
    }
    if kept.is_empty() {
        return Ok(Retained::Nothing);
    }
    encode(batch, &kept).map(Retained::Some)
}

/// A batch like `original` holding exactly `records`.
fn encode(original: &Batch, records: &[Record]) -> Result<Bytes, RewriteError> {
    let h = &original.header;
    let mut section = Vec::new();
    let mut body = Vec::new();
    for r in records {
        body.clear();
        body.push(r.attributes as u8);
        write_varlong(&mut body, r.timestamp_delta);
        write_varint(&mut body, r.offset_delta);
        write_bytes(&mut body, r.key.as_deref())?;
        write_bytes(&mut body, r.value.as_deref())?;
        write_varint(&mut body, len_i32(r.headers.len())?);
        for header in &r.headers {
            write_bytes(&mut body, Some(&header.key))?;
            write_bytes(&mut body, header.value.as_deref())?;
        }
        write_varint(&mut section, len_i32(body.len())?);
        section.extend_from_slice(&body);
    }
    let section = compress(h.compression(), &section)?;
    let max_timestamp = if h.is_log_append_time() {
        h.max_timestamp
    } else {
        records
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(h.max_timestamp)
    };
    let total = BATCH_HEADER_LEN + section.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    out.extend_from_slice(&len_i32(total - LOG_OVERHEAD)?.to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&[0; 4]); // crc, below
    out.extend_from_slice(&h.attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&h.base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&len_i32(records.len())?.to_be_bytes());
    out.extend_from_slice(&section);
    let crc = crc32c::crc32c(out.get(CRC_START..).unwrap_or_default());
    if let Some(dst) = out.get_mut(17..21) {
        dst.copy_from_slice(&crc.to_be_bytes());
    }
    Ok(Bytes::from(out))
}

fn write_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<(), RewriteError> {
    match bytes {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, len_i32(b.len())?);
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

fn len_i32(len: usize) -> Result<i32, RewriteError> {
    i32::try_from(len).map_err(|_| RewriteError::TooLarge)
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
