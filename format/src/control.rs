//! Transaction markers: the control batches that end a transaction in a partition (KIP-98).
//!
//! Skiff never stores a marker's bytes on the write path: ending a transaction is one metastore
//! command, and the index entry it appends (`RunLayout::Marker`) holds everything a marker says.
//! Readers build the batch from it here, byte for byte as Kafka writes one, so a client cannot
//! tell the difference; a compactor writes the same bytes into the segments it makes.

use bytes::Bytes;

use crate::batch::BATCH_HEADER_LEN;
use crate::encode::BatchBuilder;

/// Attribute bits of a marker: transactional (bit 4) and control (bit 5).
pub const MARKER_ATTRIBUTES: i16 = 0x10 | 0x20;

/// A marker batch's length on the wire: a 61-byte header and one 17-byte control record.
pub const MARKER_BATCH_LEN: u32 = BATCH_HEADER_LEN as u32 + 17;

/// The control record types of Kafka's `ControlRecordType`: abort is 0, commit is 1.
const ABORT: i16 = 0;
const COMMIT: i16 = 1;

/// What one marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub timestamp: i64,
    /// The coordinator epoch Kafka writes in the marker's value; Skiff's coordinators are
    /// fenced by the metastore instead, so it is the producer epoch's coordinator epoch, 0.
    pub coordinator_epoch: i32,
}

impl Marker {
    /// The marker as a v2 control batch at `base_offset`.
    pub fn encode(&self, base_offset: i64) -> Bytes {
        let kind = if self.commit { COMMIT } else { ABORT };
        let mut key = [0u8; 4];
        key[2..].copy_from_slice(&kind.to_be_bytes());
        let mut value = [0u8; 6];
        value[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        BatchBuilder::new(self.timestamp)
            .base_offset(base_offset)
            .attributes(MARKER_ATTRIBUTES)
            .producer(self.producer_id, self.producer_epoch, -1)
            .record(self.timestamp, Some(&key), Some(&value))
            .build()
    }
}

/// Whether a control batch's key says commit (`Some(true)`), abort (`Some(false)`), or is
/// another kind of control record or malformed (`None`). `key` is the control record's key.
pub fn marker_kind(key: &[u8]) -> Option<bool> {
    let kind = i16::from_be_bytes([*key.get(2)?, *key.get(3)?]);
    match kind {
        COMMIT => Some(true),
        ABORT => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::batch::batches;

    #[test]
    fn a_marker_is_a_valid_control_batch_of_its_announced_length() {
        for commit in [true, false] {
            let m = Marker {
                producer_id: 7,
                producer_epoch: 3,
                commit,
                timestamp: 1_700_000_000_000,
                coordinator_epoch: 0,
            };
            let bytes = m.encode(42);
            assert_eq!(bytes.len() as u32, MARKER_BATCH_LEN);
            let batch = batches(bytes, 1 << 20).next().unwrap().unwrap();
            assert!(batch.header.is_control());
            assert!(batch.header.is_transactional());
            assert_eq!(batch.header.base_offset, 42);
            assert_eq!(batch.header.producer_id, 7);
            assert_eq!(batch.header.producer_epoch, 3);
            assert_eq!(batch.header.record_count, 1);
            let mut records = crate::records(&batch).unwrap();
            let record = records.next().unwrap().unwrap();
            assert!(records.next().is_none());
            let key = record.key.clone().unwrap();
            assert_eq!(record.value.unwrap().len(), 6);
            assert_eq!(marker_kind(&key), Some(commit));
        }
    }

    #[test]
    fn a_short_or_unknown_key_is_no_marker() {
        assert_eq!(marker_kind(&[0, 0, 0]), None);
        assert_eq!(marker_kind(&[0, 0, 0, 5]), None);
    }
}
