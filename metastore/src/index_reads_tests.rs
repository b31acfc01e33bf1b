#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;
use crate::types::{Command, CommandResponse};
use crate::types::{CommitBatch, CommitObject, CreateTopic, ObjectId};

fn tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic_id: Uuid::from_u128(1),
        partition,
    }
}

/// A topic of `partitions` partitions, each holding `batches` batches of `len` bytes.
fn state(partitions: i32, batches: usize, len: u32) -> StateMachine {
    let mut sm = StateMachine::new();
    sm.apply(&Command::CreateTopic(CreateTopic {
        name: "t".into(),
        topic_id: Uuid::from_u128(1),
        partitions,
        configs: BTreeMap::new(),
        now_ms: 0,
    }));
    for n in 0..batches {
        let batches = (0..partitions)
            .map(|p| CommitBatch {
                tp: tp(p),
                position: 0,
                len,
                last_offset_delta: 0,
                record_count: 1,
                first_timestamp: 0,
                max_timestamp: 0,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                transactional: false,
            })
            .collect();
        let answer = sm.apply(&Command::CommitObject(CommitObject {
            object: ObjectId(ulid::Ulid(n as u128 + 1)),
            size: 1,
            batches,
            now_ms: 0,
        }));
        assert!(matches!(answer, CommandResponse::Committed(a) if a.iter().all(Result::is_ok)));
    }
    sm
}

fn read(partition: i32, offset: i64, max_bytes: u64) -> IndexRead {
    IndexRead {
        tp: tp(partition),
        offset,
        max_bytes,
        offsets_only: false,
        aborted_upto: -1,
    }
}

fn lens(answers: &[IndexAnswer]) -> Vec<usize> {
    answers
        .iter()
        .map(|a| a.slice.as_ref().map_or(0, |s| s.batches.len()))
        .collect()
}

#[test]
fn one_budget_bounds_the_slices_of_all_partitions_in_request_order() {
    let sm = state(10, 100, 1000);
    let reads: Vec<IndexRead> = (0..10).map(|p| read(p, 0, u64::MAX)).collect();
    let answers = sm.read_indexes_within(&reads, 5_500);
    // The first partition takes the budget, its last batch whole; the rest get no batches but
    // still their offsets.
    assert_eq!(lens(&answers), [6, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(answers
        .iter()
        .all(|a| a.offsets.map(|o| o.high_watermark) == Some(100)));
    assert!(answers.iter().all(|a| a.slice.is_ok()));

    // Each partition's own limit still applies, and what it leaves goes on to the next.
    let reads: Vec<IndexRead> = (0..10).map(|p| read(p, 0, 2_000)).collect();
    let answers = sm.read_indexes_within(&reads, 5_500);
    assert_eq!(lens(&answers), [2, 2, 2, 0, 0, 0, 0, 0, 0, 0]);

    // Whatever the limits, the slices describe at most the budget plus one batch per partition.
    for total in [1, 999, 1000, 1001, 7_777, 50_000, 2_000_000] {
        let reads: Vec<IndexRead> = (0..10).map(|p| read(p, p.into(), u64::MAX)).collect();
        let answers = sm.read_indexes_within(&reads, total);
        let bytes: u64 = answers
            .iter()
            .filter_map(|a| a.slice.as_ref().ok())
            .map(|s| slice_bytes(s, u64::MAX))
            .sum();
        assert!(bytes <= total + 10 * 1000, "{total}: {bytes}");
        assert!(bytes >= total.min(10 * 90 * 1000), "{total}: {bytes}");
    }
}

#[test]
fn the_unbounded_batched_read_keeps_each_reads_own_limit() {
    let sm = state(3, 10, 1000);
    let reads: Vec<IndexRead> = (0..3).map(|p| read(p, 0, 2_500)).collect();
    assert_eq!(lens(&sm.read_indexes(&reads)), [3, 3, 3]);
}

#[test]
fn a_slice_holds_at_most_max_slice_batches_and_paging_reaches_the_end() {
    let batches = MAX_SLICE_BATCHES * 2 + 5;
    let sm = state(1, batches, 1);
    let slice = sm.read_index(tp(0), 0, u64::MAX).unwrap();
    assert_eq!(slice.batches.len(), MAX_SLICE_BATCHES);
    let answers = sm.read_indexes_within(&[read(0, 0, u64::MAX)], u64::MAX);
    assert_eq!(lens(&answers), [MAX_SLICE_BATCHES]);

    let mut offset = 0;
    let mut seen = 0;
    loop {
        let slice = sm.read_index(tp(0), offset, u64::MAX).unwrap();
        let Some(last) = slice.batches.last() else {
            break;
        };
        seen += slice.batches.len();
        offset = last.last_offset + 1;
    }
    assert_eq!(seen, batches);
}

#[test]
fn a_repeated_read_reuses_the_first_answer_within_what_is_left() {
    let sm = state(2, 10, 1000);
    let reads = [read(0, 3, 2_000), read(1, 0, 1_000), read(0, 3, 2_000)];
    let answers = sm.read_indexes_within(&reads, u64::MAX);
    assert_eq!(answers[0], answers[2]);
    assert_eq!(lens(&answers), [2, 1, 2]);

    // The repeat spends the budget too: here only one of its batches is left.
    let answers = sm.read_indexes_within(&reads, 4_000);
    assert_eq!(lens(&answers), [2, 1, 1]);
    assert_eq!(
        answers[2].slice.as_ref().unwrap().batches[..],
        answers[0].slice.as_ref().unwrap().batches[..1]
    );

    // An offsets-only read and a full one of the same offset are different reads.
    let only = IndexRead {
        offsets_only: true,
        aborted_upto: -1,
        ..read(0, 3, 2_000)
    };
    let answers = sm.read_indexes_within(&[only, read(0, 3, 2_000), only], u64::MAX);
    assert_eq!(lens(&answers), [0, 2, 0]);
    // And an error is repeated as it is.
    let answers = sm.read_indexes_within(&[read(0, 99, 1), read(0, 99, 1)], u64::MAX);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].slice, Err(MetaError::OffsetOutOfRange));
}
