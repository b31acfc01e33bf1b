//! Arbitrary bytes as the records of an uncompressed batch with a valid header and CRC, so the
//! record decoder, not the CRC check, sees them. The first byte picks the record count.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skiff_format::batch::Batch;
use skiff_format::encode::{update_crc, BatchBuilder};
use skiff_format::records::{first_offset_at_or_after, records};

fuzz_target!(|data: &[u8]| {
    let Some((&count, body)) = data.split_first() else {
        return;
    };
    let count = i32::from(count % 16).max(1);
    let mut v = BatchBuilder::new(0).record(0, None, None).build()[..61].to_vec();
    v.extend_from_slice(body);
    let len = (v.len() - 12) as i32;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    v[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    v[57..61].copy_from_slice(&count.to_be_bytes());
    update_crc(&mut v);
    let batch = Batch::parse(Bytes::from(v), usize::MAX).expect("framed batch is valid");
    if let Ok(it) = records(&batch) {
        it.for_each(drop);
    }
    let _ = first_offset_at_or_after(&batch, 0);
});
