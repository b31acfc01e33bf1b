//! Walking a run's batches and decoding a segment index: bytes from the object store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_format::run::{run_batches, RunOffsets, SegmentIndex};

fuzz_target!(|data: &[u8]| {
    for batch in run_batches(data, RunOffsets::InHeaders).flatten() {
        assert!(batch.range.end <= data.len());
    }
    if let Ok(index) = SegmentIndex::decode(data) {
        let _ = index.position_for_offset(i64::MAX);
        let _ = index.end_at_or_after(u64::MAX, u32::MAX);
        assert_eq!(index.encode().as_ref(), data);
    }
});
