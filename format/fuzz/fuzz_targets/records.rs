//! Arbitrary bytes as the records of a batch with a valid header and CRC, so the record decoder
//! (and, for a compressed batch, the decompressor), not the CRC check, sees them. The first byte
//! picks the record count (low 4 bits) and the compression codec (high 3 bits: none, gzip, snappy,
//! lz4, zstd, and the undefined 5 to 7).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skiff_format::batch::Batch;
use skiff_format::encode::{update_crc, BatchBuilder};
use skiff_format::records::{
    first_offset_at_or_after, max_timestamp, records, records_with_limit, walk,
    MAX_DECOMPRESSED_RECORDS,
};
use skiff_format::validate::{check, log_append_time_header, Checks, TimestampBounds};

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let count = i32::from(first & 0x0f).max(1);
    let codec = i16::from(first >> 5);
    let mut v = BatchBuilder::new(0).record(0, None, None).build()[..61].to_vec();
    v.extend_from_slice(body);
    let len = (v.len() - 12) as i32;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    v[21..23].copy_from_slice(&codec.to_be_bytes());
    v[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    v[57..61].copy_from_slice(&count.to_be_bytes());
    update_crc(&mut v);
    let batch = Batch::parse(Bytes::from(v), usize::MAX).expect("framed batch is valid");
    if let Ok(it) = records(&batch) {
        it.for_each(drop);
    }
    // A small cap, so that the limit is hit often.
    if let Ok(it) = records_with_limit(&batch, 4096) {
        it.for_each(drop);
    }
    let _ = first_offset_at_or_after(&batch, 0, 0);
    let _ = max_timestamp(&batch);
    // The produce path's walk reads what the decoder reads, and fails where it fails.
    let decoded = records(&batch).map(|it| it.collect::<Result<Vec<_>, _>>());
    let mut walked = 0;
    let outcome = walk(&batch, MAX_DECOMPRESSED_RECORDS, |_| walked += 1);
    match decoded {
        Ok(Ok(all)) => assert!(outcome.is_ok() && walked == all.len()),
        Ok(Err(e)) | Err(e) => assert_eq!(outcome, Err(e)),
    }
    let checks = Checks {
        require_key: true,
        timestamps: Some(TimestampBounds {
            now: 0,
            before_max_ms: 1,
            after_max_ms: 1,
        }),
    };
    let _ = check(&batch, &checks, 4096, 16);
    let (header, _) = log_append_time_header(&batch, 7).expect("a validated batch has a header");
    let mut stamped = header.to_vec();
    stamped.extend_from_slice(&batch.bytes[61..]);
    Batch::parse(Bytes::from(stamped), usize::MAX).expect("a stamped batch is valid");
});
