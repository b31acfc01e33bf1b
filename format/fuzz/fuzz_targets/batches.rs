//! Arbitrary produce `records` through batch splitting and validation; every valid batch then
//! goes through the record decoder and the base-offset rewrite.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skiff_format::batch::{batches, set_base_offset, Batch};
use skiff_format::records::records;

fuzz_target!(|data: &[u8]| {
    let max = data.len().saturating_sub(1).max(61);
    for batch in batches(Bytes::copy_from_slice(data), max).flatten() {
        assert!(batch.bytes.len() <= max);
        if let Ok(it) = records(&batch) {
            it.for_each(drop);
        }
        let mut owned = batch.bytes.to_vec();
        set_base_offset(&mut owned, 42);
        let again = Batch::parse(Bytes::from(owned), max)
            .expect("rewriting the base offset keeps a batch valid");
        assert_eq!(again.header.base_offset, 42);
    }
});
