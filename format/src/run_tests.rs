use proptest::prelude::*;

use super::*;
use crate::encode::BatchBuilder;

/// Batches of `counts` records each, back to back, with header base offsets `header_bases`.
fn run(counts: &[i32], header_bases: impl Fn(usize) -> i64) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &n) in counts.iter().enumerate() {
        let mut b = BatchBuilder::new(1_000 + i as i64).base_offset(header_bases(i));
        for r in 0..n {
            b = b.record(1_000 + i as i64 + i64::from(r), Some(b"k"), Some(b"value"));
        }
        out.extend_from_slice(&b.build());
    }
    out
}

#[test]
fn consecutive_batches_follow_each_other_whatever_their_headers_say() {
    let bytes = run(&[3, 1, 5], |_| 0);
    let got: Vec<(i64, i64)> = run_batches(&bytes, RunOffsets::Consecutive(100))
        .map(|b| b.map(|b| (b.base_offset, b.last_offset())).unwrap())
        .collect();
    assert_eq!(got, vec![(100, 102), (103, 103), (104, 108)]);
}

#[test]
fn segment_batches_keep_their_headers_offsets_gaps_and_all() {
    let bases = [10, 20, 35];
    let bytes = run(&[2, 2, 2], |i| bases[i]);
    let got: Vec<i64> = run_batches(&bytes, RunOffsets::InHeaders)
        .map(|b| b.unwrap().base_offset)
        .collect();
    assert_eq!(got, bases);
}

#[test]
fn a_truncated_batch_is_one_error_and_the_end() {
    let bytes = run(&[2, 2], |_| 0);
    let cut = &bytes[..bytes.len() - 3];
    let got: Vec<_> = run_batches(cut, RunOffsets::Consecutive(0)).collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].is_ok());
    assert!(got[1].is_err());
}

#[test]
fn index_points_are_sparse_and_lookups_land_on_batch_boundaries() {
    let mut index = SegmentIndex::default();
    // 100 batches of 10 KiB: a point every 7th batch (70 KiB apart).
    for i in 0..100u32 {
        index.push(i64::from(i) * 10, i * 10_240, 5_000 + i64::from(i));
    }
    let points = index.points();
    assert_eq!(points.len(), 15);
    assert!(points.iter().all(|p| p.position % 10_240 == 0));
    let decoded = SegmentIndex::decode(&index.encode()).unwrap();
    assert_eq!(decoded, index);
    assert_eq!(decoded.encoded_len(), index.encode().len());
    // Offset 75 is in batch 7, the second point's batch.
    assert_eq!(index.position_for_offset(75), 7 * 10_240);
    assert_eq!(index.position_for_offset(69), 0);
    assert_eq!(index.position_for_offset(-1), 0);
    assert_eq!(index.end_at_or_after(7 * 10_240 + 1, 1 << 20), 14 * 10_240);
    assert_eq!(index.end_at_or_after(u64::MAX, 1 << 20), 1 << 20);
    // Batch 13 (timestamps 5,013) is in the stretch starting at batch 7.
    assert_eq!(index.position_for_timestamp(5_013), Some(7 * 10_240));
    assert_eq!(index.position_for_timestamp(6_000), None);
    assert_eq!(index.position_of_max_timestamp(), Some(98 * 10_240));
}

#[test]
fn corrupt_or_disordered_indexes_are_refused() {
    let mut index = SegmentIndex::default();
    index.push(0, 0, 1);
    index.push(10, 70_000, 2);
    let mut bytes = index.encode().to_vec();
    bytes[3] ^= 1;
    assert!(matches!(
        SegmentIndex::decode(&bytes),
        Err(IndexError::Checksum { .. })
    ));
    assert!(SegmentIndex::decode(&bytes[..5]).is_err());
    let backwards = SegmentIndex {
        points: vec![
            IndexPoint {
                base_offset: 10,
                position: 0,
                max_timestamp: 0,
            },
            IndexPoint {
                base_offset: 5,
                position: 70_000,
                max_timestamp: 0,
            },
        ],
    };
    assert_eq!(
        SegmentIndex::decode(&backwards.encode()),
        Err(IndexError::Order(1))
    );
}

proptest! {
    #[test]
    fn walking_any_bytes_never_panics_and_stays_inside(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for b in run_batches(&bytes, RunOffsets::Consecutive(0)).flatten() {
            prop_assert!(b.range.end <= bytes.len());
        }
        let _ = SegmentIndex::decode(&bytes);
    }
}
