//! Index runs: a commit's consecutive batches of one partition become one entry.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;
use crate::types::{CommitBatch, CommitObject, RunLayout, MAX_RUN_BYTES};
use crate::types::{EnforceRetention, ReplaceBatches};

fn tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic_id: Uuid::from_u128(1),
        partition,
    }
}

fn oid(n: u128) -> ObjectId {
    // Recent enough for the commit-age bound at `NOW`.
    ObjectId(ulid::Ulid::from_parts(NOW as u64, n))
}

const NOW: i64 = 1_700_000_000_000;

fn state(partitions: i32) -> StateMachine {
    let mut sm = StateMachine::new();
    sm.apply(&Command::CreateTopic(CreateTopic {
        name: "t".into(),
        topic_id: Uuid::from_u128(1),
        partitions,
        configs: BTreeMap::new(),
        now_ms: NOW,
    }));
    sm
}

/// `records` records at `position`, `len` bytes, timestamps `ts`.
fn batch(partition: i32, position: u64, len: u32, records: i32, ts: i64) -> CommitBatch {
    CommitBatch {
        tp: tp(partition),
        position,
        len,
        last_offset_delta: records - 1,
        record_count: records,
        first_timestamp: ts,
        max_timestamp: ts,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    }
}

fn commit(sm: &mut StateMachine, object: u128, batches: Vec<CommitBatch>) -> Vec<i64> {
    match sm.apply(&Command::CommitObject(CommitObject {
        object: oid(object),
        size: 1 << 20,
        batches,
        now_ms: NOW,
    })) {
        CommandResponse::Committed(r) => r.into_iter().map(|a| a.unwrap().base_offset).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

fn runs(sm: &StateMachine, partition: i32) -> Vec<BatchLocation> {
    sm.read_index(tp(partition), 0, u64::MAX).unwrap().batches
}

#[test]
fn a_flush_makes_one_run_per_partition() {
    let mut sm = state(2);
    // Partition 0's batches back to back, then partition 1's, as an agent lays them out.
    let bases = commit(
        &mut sm,
        1,
        vec![
            batch(0, 32, 100, 3, NOW + 5),
            batch(0, 132, 100, 2, NOW + 9),
            batch(0, 232, 50, 1, NOW + 7),
            batch(1, 282, 100, 4, NOW),
        ],
    );
    assert_eq!(
        bases,
        vec![0, 3, 5, 0],
        "each batch still gets its own offsets"
    );
    let p0 = runs(&sm, 0);
    assert_eq!(p0.len(), 1);
    let run = p0[0];
    assert_eq!(
        (run.base_offset, run.last_offset, run.position, run.len),
        (0, 5, 32, 250)
    );
    assert_eq!((run.first_timestamp, run.max_timestamp), (NOW + 5, NOW + 9));
    assert_eq!(run.layout, RunLayout::Flushed);
    assert_eq!(runs(&sm, 1).len(), 1);
    // Timestamp lookups land on the run; the reader finds the record inside it.
    let at = sm.batch_for_timestamp(tp(0), NOW + 8).unwrap().unwrap();
    assert_eq!(at.base_offset, 0);
    let max = sm.batch_with_max_timestamp(tp(0)).unwrap().unwrap();
    assert_eq!(max.base_offset, 0);
    // Two runs point at the object: GC counts entries, not batches.
    assert!(sm.unreferenced_objects().is_empty());
    sm.rebuild_derived();
    assert!(sm.unreferenced_objects().is_empty());
}

#[test]
fn runs_break_where_the_bytes_or_the_object_do() {
    let mut sm = state(1);
    // A gap (a duplicate's dead bytes, say) between two batches starts a new run.
    commit(
        &mut sm,
        1,
        vec![batch(0, 32, 100, 1, NOW), batch(0, 200, 100, 1, NOW)],
    );
    // Another object: another run, even at the "next" position.
    commit(&mut sm, 2, vec![batch(0, 300, 100, 1, NOW)]);
    // A run stops growing at MAX_RUN_BYTES.
    let big = MAX_RUN_BYTES / 2;
    commit(
        &mut sm,
        3,
        vec![
            batch(0, 32, big, 1, NOW),
            batch(0, 32 + u64::from(big), big, 1, NOW),
            batch(0, 32 + 2 * u64::from(big), 10, 1, NOW),
        ],
    );
    let got: Vec<(i64, i64, u32)> = runs(&sm, 0)
        .iter()
        .map(|r| (r.base_offset, r.last_offset, r.len))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0, 100),
            (1, 1, 100),
            (2, 2, 100),
            (3, 4, 2 * big),
            (5, 5, 10)
        ]
    );
}

#[test]
fn timestamp_highs_follow_a_run_that_rises() {
    let mut sm = state(1);
    commit(&mut sm, 1, vec![batch(0, 32, 100, 1, NOW + 10)]);
    commit(
        &mut sm,
        2,
        vec![
            batch(0, 32, 100, 1, NOW + 5),
            batch(0, 132, 100, 1, NOW + 20),
            batch(0, 232, 100, 1, NOW + 30),
        ],
    );
    let base_of = |sm: &StateMachine, t| {
        sm.batch_for_timestamp(tp(0), t)
            .unwrap()
            .map(|r| r.base_offset)
    };
    assert_eq!(base_of(&sm, NOW + 10), Some(0));
    assert_eq!(base_of(&sm, NOW + 11), Some(1));
    assert_eq!(base_of(&sm, NOW + 30), Some(1));
    assert_eq!(base_of(&sm, NOW + 31), None);
    // Rebuilding them from the index (as a snapshot load does) gives the same.
    let part = sm.partition(tp(0)).unwrap();
    let mut rebuilt = part.clone();
    rebuilt.rebuild_timestamp_highs();
    assert_eq!(rebuilt.timestamp_highs, part.timestamp_highs);
}

#[test]
fn retention_and_delete_records_take_whole_runs() {
    let mut sm = state(1);
    commit(
        &mut sm,
        1,
        vec![
            batch(0, 32, 100, 5, NOW - 10_000),
            batch(0, 132, 100, 5, NOW),
        ],
    );
    commit(&mut sm, 2, vec![batch(0, 32, 100, 5, NOW)]);
    // Offset 3 is inside the first run: the log starts there, the run stays.
    sm.apply(&Command::DeleteRecords {
        tp: tp(0),
        offset: 3,
    });
    assert_eq!(sm.offsets(tp(0)).unwrap().log_start_offset, 3);
    assert_eq!(runs_from(&sm, 3)[0].base_offset, 0);
    // Past the run's end, the run goes.
    sm.apply(&Command::DeleteRecords {
        tp: tp(0),
        offset: 10,
    });
    assert_eq!(runs_from(&sm, 10)[0].base_offset, 10);
    // Retention goes by a run's max timestamp: the last run is recent, it stays.
    sm.apply(&Command::EnforceRetention(EnforceRetention {
        now_ms: NOW + 1,
        default_retention_ms: 5_000,
        default_retention_bytes: -1,
    }));
    assert_eq!(runs_from(&sm, 10).len(), 1);
}

fn runs_from(sm: &StateMachine, offset: i64) -> Vec<BatchLocation> {
    sm.read_index(tp(0), offset, u64::MAX).unwrap().batches
}

#[test]
fn a_segment_replaces_runs_as_one_entry() {
    let mut sm = state(1);
    commit(
        &mut sm,
        1,
        vec![batch(0, 32, 100, 2, NOW), batch(0, 132, 100, 2, NOW + 1)],
    );
    commit(&mut sm, 2, vec![batch(0, 32, 100, 2, NOW + 2)]);
    let segment = BatchLocation {
        base_offset: 0,
        last_offset: 5,
        object: oid(3),
        position: 32,
        len: 300,
        first_timestamp: NOW,
        max_timestamp: NOW + 2,
        layout: RunLayout::Segment { index_len: 28 },
    };
    let got = sm.apply(&Command::ReplaceBatches(ReplaceBatches {
        tp: tp(0),
        object: oid(3),
        size: 400,
        replaced: vec![(0, oid(1)), (4, oid(2))],
        batches: vec![segment],
        now_ms: NOW,
    }));
    assert_eq!(got, CommandResponse::Replaced(Ok(())));
    assert_eq!(runs(&sm, 0), vec![segment]);
    let gone: Vec<ObjectId> = sm.unreferenced_objects().iter().map(|o| o.object).collect();
    assert_eq!(gone, vec![oid(1), oid(2)]);
    // A segment costs a reader what it wants of it, not its whole length.
    assert_eq!(segment.read_cost(10), 10);
    assert_eq!(runs(&sm, 0)[0].read_cost(u64::MAX), 300);
}

/// The bound: at most 64 bytes of snapshot per index run, whatever it holds.
#[test]
fn a_run_costs_under_64_snapshot_bytes() {
    let mut sm = state(1);
    let empty = crate::codec::encoded_len(&sm).unwrap();
    let runs = 10_000u32;
    for i in 0..runs {
        // Realistic: offsets in the hundreds of millions, ~1 MiB runs of 50 batches.
        let mut batches = Vec::new();
        for b in 0..50u64 {
            batches.push(batch(0, 32 + b * 20_000, 20_000, 100, NOW + i64::from(i)));
        }
        commit(&mut sm, u128::from(i) + 10, batches);
    }
    // Objects are counted apart (one per flush, shared by its partitions): only the index.
    let mut index_only = sm.clone();
    index_only.objects = OrdMap::new();
    let per_run =
        (crate::codec::encoded_len(&index_only).unwrap() - empty) as f64 / f64::from(runs);
    assert_eq!(runs_from(&sm, 0).len(), 10_000.min(MAX_SLICE_BATCHES));
    eprintln!("{per_run:.1} snapshot bytes per run");
    assert!(per_run <= 64.0, "{per_run} bytes per run");
}

#[test]
fn markers_keep_the_timestamp_highs_a_rebuild_computes() {
    use crate::types::{AddPartitionsToTxn, EndTxn, InitTransactionalProducer, TxnProducer};
    let mut sm = state(1);
    commit(&mut sm, 1, vec![batch(0, 32, 100, 5, NOW - 100)]);
    let CommandResponse::ProducerId(Ok(p)) = sm.apply(&Command::InitTransactionalProducer(
        InitTransactionalProducer {
            transactional_id: "t".into(),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            now_ms: NOW,
        },
    )) else {
        panic!("no producer id");
    };
    let producer = TxnProducer {
        transactional_id: "t".into(),
        producer_id: p.producer_id,
        producer_epoch: p.producer_epoch,
    };
    // Two transactions: one whose marker is the newest entry, one whose marker is older than
    // a batch before it (a producer's clock ahead): only the first raises the highs.
    for (end_ms, batch_ts) in [(NOW + 50, NOW - 50), (NOW + 60, NOW + 500)] {
        sm.apply(&Command::AddPartitionsToTxn(AddPartitionsToTxn {
            producer: producer.clone(),
            partitions: vec![tp(0)],
            now_ms: NOW,
        }));
        let mut b = batch(0, 32, 100, 5, batch_ts);
        b.producer_id = p.producer_id;
        b.producer_epoch = p.producer_epoch;
        b.base_sequence = if end_ms == NOW + 50 { 0 } else { 5 };
        b.transactional = true;
        commit(&mut sm, end_ms as u128, vec![b]);
        sm.apply(&Command::EndTxn(EndTxn {
            producer: producer.clone(),
            commit: true,
            bump_epoch: false,
            now_ms: end_ms,
        }));
    }
    let index = runs(&sm, 0);
    assert_eq!(index.iter().filter(|b| b.is_marker()).count(), 2);
    let part = sm.partition(tp(0)).unwrap();
    let mut rebuilt = part.clone();
    rebuilt.rebuild_timestamp_highs();
    assert_eq!(part.timestamp_highs, rebuilt.timestamp_highs);
    // The first marker (offset 10) is the first entry at its time.
    let at = |t| {
        sm.batch_for_timestamp(tp(0), t)
            .unwrap()
            .map(|b| b.base_offset)
    };
    assert_eq!(at(NOW + 1), Some(10));
    assert_eq!(at(NOW + 51), Some(11));
}
