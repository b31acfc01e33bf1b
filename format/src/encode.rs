//! Building uncompressed v2 batches: for tests, fuzz seeds and tools. Brokers never re-encode what
//! producers send.

use bytes::Bytes;

use crate::batch::{BATCH_HEADER_LEN, CRC_START, LOG_OVERHEAD, MAGIC_V2};
use crate::varint::{write_varint, write_varlong};

/// Builds one uncompressed v2 record batch.
///
/// ```
/// use skiff_format::encode::BatchBuilder;
/// let bytes = BatchBuilder::new(1_000).record(1_000, Some(b"k"), Some(b"v")).build();
/// let batch = skiff_format::batch::batches(bytes, 1 << 20).next().unwrap().unwrap();
/// assert_eq!(batch.header.record_count, 1);
/// ```
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: i32,
    records: Vec<u8>,
}

impl BatchBuilder {
    /// A batch with no records yet, not idempotent (producer id, epoch and sequence -1).
    pub fn new(base_timestamp: i64) -> Self {
        BatchBuilder {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            base_timestamp,
            max_timestamp: base_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            count: 0,
            records: Vec::new(),
        }
    }

    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the raw attributes. Setting compression bits does not compress anything: the
    /// records stay plain, which is enough to test header-only paths.
    pub fn attributes(mut self, attributes: i16) -> Self {
        self.attributes = attributes;
        self
    }

    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn record(self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Self {
        self.record_with_headers(timestamp, key, value, &[])
    }

    pub fn record_with_headers(
        mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Self {
        let mut body = vec![0u8]; // attributes
        write_varlong(&mut body, timestamp.wrapping_sub(self.base_timestamp));
        write_varint(&mut body, self.count);
        write_bytes(&mut body, key);
        write_bytes(&mut body, value);
        write_varint(&mut body, len_i32(headers.len()));
        for (k, v) in headers {
            write_bytes(&mut body, Some(k));
            write_bytes(&mut body, *v);
        }
        write_varint(&mut self.records, len_i32(body.len()));
        self.records.extend_from_slice(&body);
        self.max_timestamp = if self.count == 0 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
        self.count = self.count.saturating_add(1);
        self
    }

    /// The batch's bytes, with `batch_length` and the CRC filled in.
    pub fn build(&self) -> Bytes {
        let total = BATCH_HEADER_LEN + self.records.len();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&len_i32(total - LOG_OVERHEAD).to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&[0; 4]); // crc, below
        out.extend_from_slice(&self.attributes.to_be_bytes());
        out.extend_from_slice(&(self.count - 1).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.records);
        update_crc(&mut out);
        Bytes::from(out)
    }
}

/// Recomputes the CRC-32C of a batch in place (after a test edited it). Does nothing if `batch`
/// is shorter than a header.
pub fn update_crc(batch: &mut [u8]) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    let crc = crc32c::crc32c(batch.get(CRC_START..).unwrap_or_default());
    if let Some(dst) = batch.get_mut(17..21) {
        dst.copy_from_slice(&crc.to_be_bytes());
    }
}

fn write_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, len_i32(b.len()));
            out.extend_from_slice(b);
        }
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}
