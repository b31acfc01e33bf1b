#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use skiff_format::encode::BatchBuilder;
use skiff_format::run::SegmentIndex;
use skiff_metastore::types::{BatchLocation, ObjectId, RunLayout};

use super::*;

const OBJECT: ObjectId = ObjectId(ulid::Ulid(7));
const POSITION: u64 = 32;

/// A batch of `records` records whose header says base offset `header_base`.
fn batch(header_base: i64, records: usize) -> Bytes {
    padded(header_base, records, 0)
}

/// As [`batch`], each value `pad` bytes longer.
fn padded(header_base: i64, records: usize, pad: usize) -> Bytes {
    let value = vec![b'v'; 5 + pad];
    let mut b = BatchBuilder::new(1_000).base_offset(header_base);
    for r in 0..records {
        b = b.record(1_000 + r as i64, Some(b"k"), Some(&value));
    }
    b.build()
}

fn entry(base_offset: i64, last_offset: i64, len: usize, layout: RunLayout) -> BatchLocation {
    BatchLocation {
        base_offset,
        last_offset,
        object: OBJECT,
        position: POSITION,
        len: len as u32,
        first_timestamp: 1_000,
        max_timestamp: 5_000,
        layout,
    }
}

/// What [`batches`] would have read for `bytes` at the entry's position.
fn read(bytes: &[u8]) -> HashMap<(ObjectId, u64), Bytes> {
    HashMap::from([((OBJECT, POSITION), Bytes::copy_from_slice(bytes))])
}

fn corruption(result: Result<Vec<StoredBatch>, StoredBatchError>) -> RunCorruption {
    match result {
        Err(StoredBatchError::Corrupt { reason, .. }) => reason,
        other => panic!("not corrupt: {other:?}"),
    }
}

/// A flushed run of batches of 3, 1 and 2 records, all with header base offset 0.
fn flushed() -> Vec<u8> {
    [batch(0, 3), batch(0, 1), batch(0, 2)].concat()
}

#[test]
fn a_flushed_run_counts_its_offsets_from_the_entry() {
    let run = flushed();
    let got = stored_run(&read(&run), &entry(100, 105, run.len(), RunLayout::Flushed)).unwrap();
    let offsets: Vec<(i64, i64)> = got
        .iter()
        .map(|b| (b.base_offset, b.last_offset()))
        .collect();
    assert_eq!(offsets, [(100, 102), (103, 103), (104, 105)]);
    // The bytes are the run's own, headers untouched.
    assert_eq!(got[1].batch.header.base_offset, 0);
    let firsts: Vec<Option<i64>> = got.iter().map(|b| b.first_timestamp).collect();
    assert_eq!(firsts, [Some(1_000), None, None]);
    assert!(got.iter().all(|b| b.max_timestamp == 5_000));
}

#[test]
fn a_flushed_run_must_end_where_its_entry_does() {
    let run = flushed();
    let short = stored_run(&read(&run), &entry(100, 106, run.len(), RunLayout::Flushed));
    assert!(matches!(
        corruption(short),
        RunCorruption::End {
            walked: 105,
            entry: 106
        }
    ));
    let long = stored_run(&read(&run), &entry(100, 104, run.len(), RunLayout::Flushed));
    assert!(matches!(
        corruption(long),
        RunCorruption::OutOfPlace {
            base_offset: 104,
            ..
        }
    ));
}

#[test]
fn a_bad_checksum_truncation_or_empty_run_is_corruption() {
    let mut run = flushed();
    let last = run.len() - 1;
    run[last] ^= 0xff;
    let at = batch(0, 3).len() + batch(0, 1).len();
    let e = entry(0, 5, run.len(), RunLayout::Flushed);
    assert!(matches!(
        corruption(stored_run(&read(&run), &e)),
        RunCorruption::Batch { at: a, .. } if a == at
    ));
    // The entry's bytes stop short of the last batch's end.
    let run = flushed();
    let e = entry(0, 5, run.len() - 3, RunLayout::Flushed);
    assert!(matches!(
        corruption(stored_run(&read(&run[..run.len() - 3]), &e)),
        RunCorruption::Batch { at: a, .. } if a == at
    ));
    assert!(matches!(
        corruption(stored_run(&read(&[]), &entry(0, 0, 0, RunLayout::Flushed))),
        RunCorruption::Empty
    ));
}

#[test]
fn bytes_not_read_as_asked_are_missing() {
    let run = flushed();
    let e = entry(0, 5, run.len(), RunLayout::Flushed);
    assert!(matches!(
        stored_run(&read(&run[1..]), &e),
        Err(StoredBatchError::Missing { .. })
    ));
    assert!(matches!(
        stored_run(&HashMap::new(), &e),
        Err(StoredBatchError::Missing { .. })
    ));
}

/// A segment of batches with header offsets `bases` (two records each, values padded with
/// `pad` bytes), its index as `index` makes it from the batches' (base offset, position), and
/// its entry from `first` to `last`.
fn segment(
    bases: &[i64],
    pad: usize,
    first: i64,
    last: i64,
    index: impl Fn(&[(i64, u32)]) -> Bytes,
) -> (Vec<u8>, BatchLocation) {
    let mut run = Vec::new();
    let mut starts = Vec::new();
    for &base in bases {
        starts.push((base, run.len() as u32));
        run.extend_from_slice(&padded(base, 2, pad));
    }
    let len = run.len();
    let index = index(&starts);
    run.extend_from_slice(&index);
    let e = entry(
        first,
        last,
        len,
        RunLayout::Segment {
            index_len: index.len() as u32,
        },
    );
    (run, e)
}

/// An index with max timestamps 10, 20, ... for the batches in turn: a point at each when
/// they are over [`skiff_format::run::INDEX_INTERVAL_BYTES`] apart.
fn every_batch(starts: &[(i64, u32)]) -> Bytes {
    let mut index = SegmentIndex::default();
    for (n, &(base, position)) in starts.iter().enumerate() {
        index.push(base, position, 10 * (n as i64 + 1));
    }
    index.encode()
}

/// Batches big enough for a point each.
const BIG: usize = 40 * 1024;

#[test]
fn a_segment_keeps_the_offsets_in_its_headers_and_bounds_timestamps_by_its_index() {
    let (run, e) = segment(&[10, 20, 35], BIG, 10, 36, every_batch);
    assert_eq!(
        SegmentIndex::decode(&run[e.len as usize..])
            .unwrap()
            .points()
            .len(),
        3
    );
    let got = stored_run(&read(&run), &e).unwrap();
    let offsets: Vec<(i64, i64)> = got
        .iter()
        .map(|b| (b.base_offset, b.last_offset()))
        .collect();
    assert_eq!(offsets, [(10, 11), (20, 21), (35, 36)]);
    let maxes: Vec<i64> = got.iter().map(|b| b.max_timestamp).collect();
    assert_eq!(maxes, [10, 20, 30]);
    assert_eq!(got[0].first_timestamp, Some(1_000));
}

#[test]
fn a_sparse_index_bounds_each_batch_by_its_stretch() {
    let first_only = |starts: &[(i64, u32)]| {
        let mut index = SegmentIndex::default();
        for &(base, position) in starts {
            index.push(base, position, 4_000);
        }
        index.encode()
    };
    let (run, e) = segment(&[10, 20, 35], 0, 10, 36, first_only);
    let got = stored_run(&read(&run), &e).unwrap();
    assert!(got.iter().all(|b| b.max_timestamp == 4_000));
}

#[test]
fn segment_batches_out_of_order_or_outside_the_entry_are_corruption() {
    for (bases, first, last) in [
        (&[10, 5][..], 5, 11),   // descending
        (&[10, 11][..], 10, 12), // overlapping: 10..=11 then 11
        (&[10, 20][..], 11, 21), // before the entry's start
        (&[10, 20][..], 10, 20), // past the entry's end
    ] {
        let (run, e) = segment(bases, 0, first, last, every_batch);
        assert!(
            matches!(
                corruption(stored_run(&read(&run), &e)),
                RunCorruption::OutOfPlace { .. }
            ),
            "{bases:?} in {first}..={last}"
        );
    }
}

#[test]
fn a_segment_index_that_is_corrupt_or_off_the_batch_boundaries_is_corruption() {
    let (mut run, e) = segment(&[10, 20], 0, 10, 21, every_batch);
    let last = run.len() - 1;
    run[last] ^= 1;
    assert!(matches!(
        corruption(stored_run(&read(&run), &e)),
        RunCorruption::Index(_)
    ));
    let off_boundary = |starts: &[(i64, u32)]| {
        let mut index = SegmentIndex::default();
        index.push(starts[0].0, 0, 1);
        index.push(starts[1].0, starts[1].1 + 1 + 64 * 1024, 1);
        index.encode()
    };
    let (run, e) = segment(&[10, 20], 0, 10, 21, off_boundary);
    assert!(matches!(
        corruption(stored_run(&read(&run), &e)),
        RunCorruption::IndexPoint(1)
    ));
    let wrong_offset = |starts: &[(i64, u32)]| {
        let mut index = SegmentIndex::default();
        index.push(starts[0].0 + 1, 0, 1);
        index.encode()
    };
    let (run, e) = segment(&[10, 20], 0, 10, 21, wrong_offset);
    assert!(matches!(
        corruption(stored_run(&read(&run), &e)),
        RunCorruption::IndexPoint(0)
    ));
    let (run, e) = segment(&[10, 20], 0, 10, 21, |_| SegmentIndex::default().encode());
    assert!(matches!(
        corruption(stored_run(&read(&run), &e)),
        RunCorruption::IndexPoint(0)
    ));
}
