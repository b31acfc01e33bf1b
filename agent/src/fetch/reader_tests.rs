//! Reads of runs: every fetch offset against a model of what Kafka answers, what a segment read
//! costs in GETs, and corrupt runs and indexes failing their partition only.

use skiff_format::run::{run_batches, RunOffsets, SegmentIndex, INDEX_INTERVAL_BYTES};
use skiff_metastore::types::RunLayout;

use super::*;
use crate::test_support::{batch, location, oid, segment, store_with};

/// One batch of the partition as a consumer must see it: its real offsets and stored bytes.
struct Expected {
    base: i64,
    last: i64,
    bytes: Bytes,
}

/// What Kafka answers a fetch at `offset` of `max_bytes`: the batches from the one holding the
/// offset (or the first after it), each with its real base offset, stopping before the first
/// that would pass the limit, except a first batch that must come whole.
fn model(all: &[Expected], offset: i64, max_bytes: u64, whole_first: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for b in all.iter().filter(|b| b.last >= offset) {
        if (out.len() + b.bytes.len()) as u64 > max_bytes && !(out.is_empty() && whole_first) {
            break;
        }
        let at = out.len();
        out.extend_from_slice(&b.bytes);
        out[at..at + 8].copy_from_slice(&b.base.to_be_bytes());
    }
    out
}

/// The base offsets of the batches in an answer, as its headers say.
fn bases(answer: &[u8]) -> Vec<i64> {
    run_batches(answer, RunOffsets::InHeaders)
        .map(|b| b.unwrap().base_offset)
        .collect()
}

/// The runs of `runs` a metastore answers for `offset`: from the one holding it, or the first
/// after it.
fn runs_from(runs: &[BatchLocation], offset: i64) -> &[BatchLocation] {
    let i = runs.partition_point(|r| r.last_offset < offset);
    &runs[i..]
}

/// Record counts of the flushed run's batches: offsets 100..=114.
const FLUSHED_COUNTS: [i32; 5] = [3, 1, 5, 2, 4];

/// A flushed run of batches whose headers all say base offset 0 (the producers'), at 17 in an
/// object with bytes on either side.
fn flushed_run(object: ObjectId) -> (Vec<u8>, BatchLocation, Vec<Expected>) {
    let batches: Vec<Bytes> = FLUSHED_COUNTS
        .iter()
        .enumerate()
        .map(|(i, &n)| batch(0, n, 40 + 10 * i, |r| 1_000 + i64::from(r)))
        .collect();
    let mut bytes = vec![0xAB; 17];
    for b in &batches {
        bytes.extend_from_slice(b);
    }
    bytes.extend_from_slice(&[0xCD; 23]);
    let run = location(object, 17, &batches, RunLayout::Flushed, 100);
    assert_eq!(run.last_offset, 114);
    let mut base = 100;
    let expected = batches
        .into_iter()
        .zip(FLUSHED_COUNTS)
        .map(|(bytes, n)| {
            let e = Expected {
                base,
                last: base + i64::from(n) - 1,
                bytes,
            };
            base += i64::from(n);
            e
        })
        .collect();
    (bytes, run, expected)
}

/// A segment of `count` batches of three ~7 KiB records (so an index point every few batches),
/// at real base offsets from `first` with a gap after each, a wide one every seventh.
fn segment_batches(first: i64, count: usize) -> Vec<Bytes> {
    let mut base = first;
    (0..count)
        .map(|i| {
            let b = batch(base, 3, 7_000, |r| 50_000 + 100 * i as i64 + i64::from(r));
            base += if i % 7 == 3 { 30 } else { 5 };
            b
        })
        .collect()
}

/// The batches of a run as a consumer must see them, found by walking the run.
fn expected_of(batches: &[Bytes], offsets: RunOffsets) -> Vec<Expected> {
    let run: Vec<u8> = batches.iter().flat_map(|b| b.iter().copied()).collect();
    run_batches(&run, offsets)
        .zip(batches)
        .map(|(found, bytes)| {
            let found = found.unwrap();
            Expected {
                base: found.base_offset,
                last: found.last_offset(),
                bytes: bytes.clone(),
            }
        })
        .collect()
}

/// A read's outcome, short enough for a failure message.
fn outcome(r: &Result<Bytes, ReadError>) -> String {
    match r {
        Ok(bytes) => format!("batches at {:?}", bases(bytes)),
        Err(e) => format!("{e}"),
    }
}

#[tokio::test]
async fn a_flushed_run_answers_every_offset_from_the_right_batch_with_real_offsets() {
    let object = oid(1);
    let (bytes, run, all) = flushed_run(object);
    let (store, _) = store_with(&[(object, bytes)]).await;
    let reader = Reader::new(store);
    let sizes: Vec<u64> = all.iter().map(|b| b.bytes.len() as u64).collect();
    let limits = [
        0,
        1,
        sizes[0],
        sizes[0] + sizes[1],
        sizes[0] + sizes[1] + 1,
        500,
        u64::MAX,
    ];
    for offset in 90..=114 {
        for max_bytes in limits {
            for whole_first in [true, false] {
                let read = PartitionRead {
                    runs: std::slice::from_ref(&run),
                    offset,
                    max_bytes,
                    whole_first,
                    end_offset: i64::MAX,
                };
                let got = reader.read_many(&[read]).await.pop().unwrap().unwrap();
                let want = model(&all, offset, max_bytes, whole_first);
                assert_eq!(
                    got.as_ref(),
                    want.as_slice(),
                    "offset {offset}, limit {max_bytes}, whole first {whole_first}: {:?}",
                    bases(&got)
                );
            }
        }
    }
    // Spot checks that the model is the one meant: inside the third batch (104..=108), the
    // answer starts at that batch, at its real offset.
    let got = reader
        .read(std::slice::from_ref(&run), 106, u64::MAX)
        .await
        .unwrap();
    assert_eq!(bases(&got), [104, 109, 111]);
    let got = reader
        .read(std::slice::from_ref(&run), 114, 1)
        .await
        .unwrap();
    assert_eq!(bases(&got), [111]);
}

#[tokio::test]
async fn the_first_batch_comes_whole_past_the_limit_and_only_when_it_is_the_responses_first() {
    let object = oid(1);
    let (bytes, run, all) = flushed_run(object);
    let (store, _) = store_with(&[(object, bytes)]).await;
    let reader = Reader::new(store);
    let runs = std::slice::from_ref(&run);
    let whole = PartitionRead {
        runs,
        offset: 100,
        max_bytes: 10,
        whole_first: true,
        end_offset: i64::MAX,
    };
    let not_first = PartitionRead {
        whole_first: false,
        end_offset: i64::MAX,
        ..whole
    };
    let got = reader.read_many(&[whole, not_first]).await;
    let first = got[0].as_ref().unwrap();
    assert!(all[0].bytes.len() > 10);
    assert_eq!(first.len(), all[0].bytes.len());
    assert_eq!(bases(first), [100]);
    assert!(got[1].as_ref().unwrap().is_empty());
}

/// A partition of three runs in one object: a segment, a flushed run after it, a small segment
/// after that; every fetch offset and a range of limits, against the model.
#[tokio::test]
async fn runs_of_both_kinds_answer_every_offset_from_the_right_batch() {
    let object = oid(7);
    let big = segment_batches(0, 24);
    let (big_bytes, big_index) = segment(&big);
    let big_all = expected_of(&big, RunOffsets::InHeaders);
    let after_big = big_all.last().unwrap().last + 3;
    let flushed: Vec<Bytes> = (0..4)
        .map(|i| batch(0, 2, 300, |r| 90_000 + i64::from(i * 2 + r)))
        .collect();
    let flushed_all = expected_of(&flushed, RunOffsets::Consecutive(after_big));
    let after_flushed = flushed_all.last().unwrap().last + 1;
    let small = segment_batches(after_flushed + 2, 3);
    let (small_bytes, small_index) = segment(&small);
    let small_all = expected_of(&small, RunOffsets::InHeaders);

    let mut object_bytes = vec![0u8; 5];
    let big_run = location(
        object,
        5,
        &big,
        RunLayout::Segment {
            index_len: big_index.len() as u32,
        },
        0,
    );
    object_bytes.extend_from_slice(&big_bytes);
    object_bytes.extend_from_slice(&big_index);
    let flushed_run = location(
        object,
        object_bytes.len() as u64,
        &flushed,
        RunLayout::Flushed,
        after_big,
    );
    for b in &flushed {
        object_bytes.extend_from_slice(b);
    }
    let small_run = location(
        object,
        object_bytes.len() as u64,
        &small,
        RunLayout::Segment {
            index_len: small_index.len() as u32,
        },
        after_flushed + 2,
    );
    object_bytes.extend_from_slice(&small_bytes);
    object_bytes.extend_from_slice(&small_index);
    object_bytes.extend_from_slice(&[9; 11]);
    assert!(
        SegmentIndex::decode(&big_index).unwrap().points().len() >= 5,
        "points enough to read parts of the segment"
    );

    let runs = [big_run, flushed_run, small_run];
    let all: Vec<Expected> = big_all
        .into_iter()
        .chain(flushed_all)
        .chain(small_all)
        .collect();
    let last = all.last().unwrap().last;
    let (store, _) = store_with(&[(object, object_bytes)]).await;
    let reader = Reader::new(store);
    let batch_len = all[0].bytes.len() as u64;
    let limits = [
        1,
        batch_len,
        batch_len * 3 + 7,
        INDEX_INTERVAL_BYTES * 2,
        big_run.len as u64 - 1_000,
        u64::MAX,
    ];
    for offset in 0..=last {
        let runs = runs_from(&runs, offset);
        for max_bytes in limits {
            for whole_first in [true, false] {
                let read = PartitionRead {
                    runs,
                    offset,
                    max_bytes,
                    whole_first,
                    end_offset: i64::MAX,
                };
                let got = reader.read_many(&[read]).await.pop().unwrap().unwrap();
                let want = model(&all, offset, max_bytes, whole_first);
                assert!(
                    got.as_ref() == want.as_slice(),
                    "offset {offset}, limit {max_bytes}, whole first {whole_first}: got {:?}, want {:?}",
                    bases(&got),
                    bases(&want)
                );
            }
        }
    }
}

#[tokio::test]
async fn a_fetch_into_a_segment_reads_its_index_once_and_only_the_part_it_needs() {
    let object = oid(3);
    let batches = segment_batches(1_000, 40);
    let (bytes, index) = segment(&batches);
    let all = expected_of(&batches, RunOffsets::InHeaders);
    let run = location(
        object,
        0,
        &batches,
        RunLayout::Segment {
            index_len: index.len() as u32,
        },
        1_000,
    );
    let mut object_bytes = bytes;
    object_bytes.extend_from_slice(&index);
    let (store, gets) = store_with(&[(object, object_bytes)]).await;
    let reader = Reader::new(store);

    let points = SegmentIndex::decode(&index).unwrap().points().to_vec();
    assert!(points.len() >= 8, "{} points", points.len());
    let got = reader
        .read(std::slice::from_ref(&run), 1_000, 1)
        .await
        .unwrap();
    assert_eq!(bases(&got), [1_000]);
    assert_eq!(
        gets.take(),
        [index.len() as u64, u64::from(points[2].position)],
        "the index, then the stretch holding the offset and the one the limit ends in"
    );

    let largest = all.iter().map(|b| b.bytes.len() as u64).max().unwrap();
    // Index points are at most a stretch and a batch apart: a read takes the stretch holding
    // the offset, what the limit can take, and up to the next point.
    let bound = |max_bytes: u64| max_bytes + 2 * (INDEX_INTERVAL_BYTES + largest);
    for b in &all {
        for max_bytes in [1, 30_000, 100_000] {
            let got = reader
                .read(std::slice::from_ref(&run), b.base + 1, max_bytes)
                .await
                .unwrap();
            assert_eq!(got, model(&all, b.base + 1, max_bytes, true));
            let read = gets.take();
            assert_eq!(read.len(), 1, "one GET of batches, the index is cached");
            assert!(
                read[0] <= bound(max_bytes) && read[0] < u64::from(run.len) / 2,
                "{} bytes read at {} for {max_bytes}",
                read[0],
                b.base + 1
            );
        }
    }
}

#[tokio::test]
async fn partitions_side_by_side_in_one_object_share_one_get() {
    let object = oid(1);
    let (bytes, p0, p0_all) = flushed_run(object);
    // A second partition right after the first: its run starts where the first one ends.
    let p1_batches = vec![batch(0, 2, 10, |_| 5), batch(0, 1, 10, |_| 6)];
    let mut bytes = bytes[..17 + p0.len as usize].to_vec();
    let p1 = location(
        object,
        bytes.len() as u64,
        &p1_batches,
        RunLayout::Flushed,
        7,
    );
    for b in &p1_batches {
        bytes.extend_from_slice(b);
    }
    let (store, gets) = store_with(&[(object, bytes)]).await;
    let reader = Reader::new(store);
    let reads = [
        PartitionRead {
            runs: std::slice::from_ref(&p0),
            offset: 104,
            max_bytes: u64::MAX,
            whole_first: true,
            end_offset: i64::MAX,
        },
        PartitionRead {
            runs: std::slice::from_ref(&p1),
            offset: 8,
            max_bytes: u64::MAX,
            whole_first: false,
            end_offset: i64::MAX,
        },
    ];
    let got = reader.read_many(&reads).await;
    assert_eq!(gets.take().len(), 1);
    assert_eq!(
        got[0].as_ref().unwrap().as_ref(),
        model(&p0_all, 104, u64::MAX, true)
    );
    assert_eq!(bases(got[1].as_ref().unwrap()), [7, 9]);
}

#[tokio::test]
async fn a_flushed_run_whose_batches_disagree_with_its_entry_is_a_read_error() {
    let object = oid(1);
    let (bytes, run, _) = flushed_run(object);
    let (store, _) = store_with(&[(object, bytes.clone())]).await;
    let reader = Reader::new(store);
    let read = |run: BatchLocation, offset| {
        let reader = reader.clone();
        async move { reader.read(&[run], offset, u64::MAX).await }
    };
    // Offsets that end one short of, or one past, what the batches hold.
    for last in [113, 115] {
        let mut wrong = run;
        wrong.last_offset = last;
        let got = read(wrong, 100).await;
        assert!(
            matches!(got, Err(ReadError::Offsets { .. })),
            "{}",
            outcome(&got)
        );
    }
    // A length cutting the last batch, or taking bytes after it.
    for len in [run.len - 1, run.len + 23] {
        let mut wrong = run;
        wrong.len = len;
        let got = read(wrong, 114).await;
        assert!(
            matches!(got, Err(ReadError::Batches { .. })),
            "{}",
            outcome(&got)
        );
    }
    // A batch length garbled in the middle of the run, even when the fetch wants only the
    // batches before it.
    let mut garbled = bytes;
    let first_len = run_batches(&garbled[17..], RunOffsets::Consecutive(0))
        .next()
        .unwrap()
        .unwrap()
        .range
        .len();
    garbled[17 + first_len + 8..17 + first_len + 12].copy_from_slice(&7i32.to_be_bytes());
    let (store, _) = store_with(&[(object, garbled)]).await;
    let got = Reader::new(store).read(&[run], 100, 1).await;
    assert!(
        matches!(got, Err(ReadError::Batches { .. })),
        "{}",
        outcome(&got)
    );
}

#[tokio::test]
async fn a_corrupt_or_misleading_segment_index_fails_its_partition_only() {
    let batches = segment_batches(1_000, 20);
    let (bytes, index) = segment(&batches);
    let layout = RunLayout::Segment {
        index_len: index.len() as u32,
    };
    let with_index = |index: &[u8]| {
        let mut object = bytes.clone();
        object.extend_from_slice(index);
        object
    };
    let mut flipped = index.to_vec();
    flipped[2] ^= 0x40;
    // A valid index whose points claim offsets far below their batches': a fetch past the
    // first batch is sent to batches past its offset.
    let mut lying = SegmentIndex::default();
    for (i, p) in SegmentIndex::decode(&index)
        .unwrap()
        .points()
        .iter()
        .enumerate()
    {
        lying.push(1_000 + i as i64, p.position, p.max_timestamp);
    }
    let (good, corrupt, misleading, flushed) = (oid(1), oid(2), oid(3), oid(4));
    let (flushed_bytes, flushed_run, _) = flushed_run(flushed);
    let (store, _) = store_with(&[
        (good, with_index(&index)),
        (corrupt, with_index(&flipped)),
        (misleading, with_index(&lying.encode())),
        (flushed, flushed_bytes),
    ])
    .await;
    let reader = Reader::new(store.clone());
    let run_in = |object| location(object, 0, &batches, layout, 1_000);
    let (good_run, corrupt_run, misleading_run) =
        (run_in(good), run_in(corrupt), run_in(misleading));
    let read = |runs, offset| PartitionRead {
        runs,
        offset,
        max_bytes: u64::MAX,
        whole_first: true,
        end_offset: i64::MAX,
    };
    let got = reader
        .read_many(&[
            read(std::slice::from_ref(&corrupt_run), 1_000),
            read(std::slice::from_ref(&good_run), 1_050),
            read(std::slice::from_ref(&misleading_run), 1_050),
            read(std::slice::from_ref(&flushed_run), 100),
        ])
        .await;
    assert!(
        matches!(got[0], Err(ReadError::Index { .. })),
        "{}",
        outcome(&got[0])
    );
    assert_eq!(bases(got[1].as_ref().unwrap())[0], 1_050);
    assert!(
        matches!(got[2], Err(ReadError::Offsets { .. })),
        "{}",
        outcome(&got[2])
    );
    assert!(got[3].is_ok());
    // An index length no run this long can need is not even read.
    // (The cache would answer for the run at this place in this object: do without it.)
    let mut long = good_run;
    long.layout = RunLayout::Segment { index_len: 1 << 30 };
    let got = Reader::with_index_cache(store, 0)
        .read(&[long], 1_000, 1)
        .await;
    assert!(
        matches!(got, Err(ReadError::IndexBounds { .. })),
        "{}",
        outcome(&got)
    );
}

#[test]
fn close_ranges_of_one_object_make_one_span() {
    let a = oid(1);
    let b = ObjectId(ulid::Ulid::from_parts(2, 2));
    let far = 13 + COALESCE_GAP + 1;
    let ranges = [
        (b, far..far + 3),
        (a, 15..20),
        (b, 0..3),
        (a, 10..15),
        (b, 10..13),
        (a, 30..30),
    ];
    let s = spans(ranges.into_iter());
    let got: Vec<_> = s.iter().map(|s| (s.object, s.range.clone())).collect();
    assert_eq!(got, vec![(a, 10..20), (b, 0..13), (b, far..far + 3)]);
}

#[tokio::test]
async fn a_run_whose_range_overflows_is_not_read() {
    let a = oid(1);
    let (store, gets) = store_with(&[(a, vec![0u8; 61])]).await;
    let reader = Reader::new(store);
    let mut run = location(a, 0, &[batch(0, 1, 0, |_| 0)], RunLayout::Flushed, 0);
    run.position = u64::MAX - 10;
    let got = reader.read(&[run], 0, u64::MAX).await;
    assert!(
        matches!(got, Err(ReadError::NotRead { .. })),
        "{}",
        outcome(&got)
    );
    assert!(gets.take().is_empty());
}

#[tokio::test]
async fn a_missing_object_fails_only_the_partitions_that_need_it() {
    let (a, truncated, gone) = (oid(1), oid(2), oid(3));
    let (bytes, run, _) = flushed_run(a);
    let (store, _) = store_with(&[(a, bytes.clone()), (truncated, bytes[..40].to_vec())]).await;
    let reader = Reader::new(store);
    let mut in_gone = run;
    in_gone.object = gone;
    let mut in_truncated = run;
    in_truncated.object = truncated;
    fn read(run: &BatchLocation) -> PartitionRead<'_> {
        PartitionRead {
            runs: std::slice::from_ref(run),
            offset: 100,
            max_bytes: u64::MAX,
            whole_first: true,
            end_offset: i64::MAX,
        }
    }
    let got = reader
        .read_many(&[read(&run), read(&in_gone), read(&in_truncated)])
        .await;
    assert!(got[0].is_ok());
    assert!(
        matches!(got[1], Err(ReadError::Store(_))),
        "{}",
        outcome(&got[1])
    );
    assert!(
        got[2].is_err(),
        "a truncated object is an error, not a short batch"
    );
}

/// A marker entry is answered as Kafka's control batch at its offset, built from the entry with
/// no GET, and a read_committed end offset stops the answer before the batches at or past it.
#[tokio::test]
async fn markers_are_built_from_their_entry_and_end_offsets_cut_the_answer() {
    assert_eq!(
        skiff_metastore::types::MARKER_LEN,
        skiff_format::control::MARKER_BATCH_LEN
    );
    let object = oid(1);
    let (bytes, run, expected) = flushed_run(object);
    let (store, gets) = store_with(&[(object, bytes)]).await;
    let reader = Reader::new(store);
    let marker = BatchLocation {
        base_offset: run.last_offset + 1,
        last_offset: run.last_offset + 1,
        object: ObjectId::MARKER,
        position: 0,
        len: skiff_metastore::types::MARKER_LEN,
        first_timestamp: 9_000,
        max_timestamp: 9_000,
        layout: RunLayout::Marker {
            producer_id: 42,
            producer_epoch: 3,
            commit: false,
        },
    };
    let runs = [run, marker];
    let all = reader.read(&runs, 0, u64::MAX).await.unwrap();
    let found: Vec<_> = run_batches(&all, RunOffsets::InHeaders)
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(found.len(), expected.len() + 1);
    let last = found.last().unwrap();
    assert_eq!(last.base_offset, marker.base_offset);
    let header = skiff_format::BatchHeader::parse(&all[last.range.clone()]).unwrap();
    assert!(header.is_control() && header.is_transactional());
    assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
    assert_eq!(
        gets.take().len(),
        1,
        "one GET for the flushed run, none for the marker"
    );
    // Only the marker, read alone: no GET at all.
    let alone = reader
        .read(&runs[1..], marker.base_offset, u64::MAX)
        .await
        .unwrap();
    assert_eq!(alone.len() as u32, skiff_metastore::types::MARKER_LEN);
    assert!(gets.take().is_empty());
    // An end offset at the third batch answers the first two only.
    let cut = PartitionRead {
        runs: &runs,
        offset: 0,
        max_bytes: u64::MAX,
        whole_first: true,
        end_offset: expected[2].base,
    };
    let got = reader.read_many(&[cut]).await.pop().unwrap().unwrap();
    let want: usize = expected[..2].iter().map(|e| e.bytes.len()).sum();
    assert_eq!(got.len(), want);
}
