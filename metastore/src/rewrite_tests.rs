#![allow(clippy::unwrap_used)]

use uuid::Uuid;

use crate::state_machine::StateMachine;
use crate::types::*;

fn tp() -> TopicPartition {
    TopicPartition {
        topic_id: Uuid::from_u128(7),
        partition: 0,
    }
}

fn oid(n: u128) -> ObjectId {
    ObjectId(ulid::Ulid(n))
}

/// A topic whose partition 0 holds five 10-record batches of 100 bytes, one object each
/// (objects 1 to 5), with timestamps 10, 20, … 50.
fn five_batches() -> StateMachine {
    let mut sm = StateMachine::new();
    sm.apply(&Command::CreateTopic(CreateTopic {
        name: "t".into(),
        topic_id: Uuid::from_u128(7),
        partitions: 1,
        configs: Default::default(),
        now_ms: 0,
    }));
    for n in 1..=5u128 {
        let ts = n as i64 * 10;
        sm.apply(&Command::CommitObject(CommitObject {
            object: oid(n),
            size: 100,
            batches: vec![CommitBatch {
                tp: tp(),
                position: 0,
                len: 100,
                last_offset_delta: 9,
                record_count: 10,
                first_timestamp: ts,
                max_timestamp: ts,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                transactional: false,
            }],
            now_ms: ts,
        }));
    }
    sm
}

fn index(sm: &StateMachine) -> Vec<BatchLocation> {
    sm.read_index(tp(), 0, u64::MAX).unwrap().batches
}

/// The merge of `bases` into object 100: same offsets, new positions.
fn merge(sm: &StateMachine, bases: &[i64]) -> ReplaceBatches {
    let old: Vec<_> = index(sm)
        .into_iter()
        .filter(|b| bases.contains(&b.base_offset))
        .collect();
    let mut position = 32;
    let batches = old
        .iter()
        .map(|b| {
            let moved = BatchLocation {
                object: oid(100),
                position,
                ..*b
            };
            position += u64::from(b.len);
            moved
        })
        .collect();
    ReplaceBatches {
        tp: tp(),
        object: oid(100),
        size: position + 100,
        replaced: old.iter().map(|b| (b.base_offset, b.object)).collect(),
        batches,
        now_ms: 1000,
    }
}

fn replace(sm: &mut StateMachine, req: &ReplaceBatches) -> Result<(), MetaError> {
    match sm.apply(&Command::ReplaceBatches(req.clone())) {
        CommandResponse::Replaced(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_merge_moves_batches_without_changing_offsets_and_frees_the_old_objects() {
    let mut sm = five_batches();
    let before = index(&sm);
    let req = merge(&sm, &[10, 20, 30]);
    replace(&mut sm, &req).unwrap();
    let after = index(&sm);
    assert_eq!(after.len(), 5);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(
            (a.base_offset, a.last_offset, a.len),
            (b.base_offset, b.last_offset, b.len)
        );
        assert_eq!(
            (a.first_timestamp, a.max_timestamp),
            (b.first_timestamp, b.max_timestamp)
        );
    }
    let objects: Vec<_> = after.iter().map(|b| b.object).collect();
    assert_eq!(objects, [oid(1), oid(100), oid(100), oid(100), oid(5)]);
    let mut unreferenced: Vec<_> = sm.unreferenced_objects().iter().map(|u| u.object).collect();
    unreferenced.sort();
    assert_eq!(unreferenced, [oid(2), oid(3), oid(4)]);
    assert_eq!(sm.objects_known(&[oid(100)]), [true]);
    // Lookups by time still find the same batches.
    assert_eq!(
        sm.batch_for_timestamp(tp(), 25)
            .unwrap()
            .unwrap()
            .base_offset,
        20
    );
    assert_eq!(
        sm.batch_with_max_timestamp(tp())
            .unwrap()
            .unwrap()
            .base_offset,
        40
    );
    // A retry of the same rewrite is a no-op that succeeds.
    replace(&mut sm, &req).unwrap();
    assert_eq!(index(&sm), after);
}

#[test]
fn a_rewrite_of_a_run_that_changed_is_refused_and_changes_nothing() {
    let mut sm = five_batches();
    // Another compactor got there first.
    let first = merge(&sm, &[0, 10]);
    let mut second = merge(&sm, &[0, 10, 20]);
    second.object = oid(101);
    for b in &mut second.batches {
        b.object = oid(101);
    }
    replace(&mut sm, &first).unwrap();
    let before = index(&sm);
    assert_eq!(replace(&mut sm, &second), Err(MetaError::RewriteConflict));
    assert_eq!(index(&sm), before);
    assert_eq!(sm.objects_known(&[oid(101)]), [false]);

    // Retention trimmed part of the run.
    let mut sm = five_batches();
    let req = merge(&sm, &[0, 10]);
    sm.apply(&Command::DeleteRecords {
        tp: tp(),
        offset: 15,
    });
    assert_eq!(replace(&mut sm, &req), Err(MetaError::RewriteConflict));

    // A descending run is refused, not a panic on every replica.
    let mut sm = five_batches();
    let mut req = merge(&sm, &[10, 20]);
    req.replaced.reverse();
    assert_eq!(replace(&mut sm, &req), Err(MetaError::RewriteConflict));

    // A run that leaves out an entry in its span would drop it from the index.
    let mut sm = five_batches();
    let mut req = merge(&sm, &[0, 20]);
    req.replaced.retain(|&(base, _)| base != 10);
    assert_eq!(replace(&mut sm, &req), Err(MetaError::RewriteConflict));
}

#[test]
fn new_entries_must_stay_inside_the_run_in_order() {
    let sm = five_batches();
    let mut outside = merge(&sm, &[10, 20]);
    outside.batches[1].last_offset = 30;
    let mut overlapping = merge(&sm, &[10, 20]);
    overlapping.batches[1].base_offset = 15;
    let mut elsewhere = merge(&sm, &[10, 20]);
    elsewhere.batches[0].object = oid(3);
    for req in [outside, overlapping, elsewhere] {
        let mut sm = sm.clone();
        assert_eq!(replace(&mut sm, &req), Err(MetaError::RewriteConflict));
        assert_eq!(index(&sm), index(&five_batches()));
    }
}

#[test]
fn compaction_may_leave_gaps_that_fetches_skip() {
    let mut sm = five_batches();
    // Key compaction kept only the batch at 20, rewritten with fewer records.
    let mut req = merge(&sm, &[0, 10, 20]);
    req.batches.retain(|b| b.base_offset == 20);
    req.batches[0].len = 50;
    replace(&mut sm, &req).unwrap();
    let bases: Vec<_> = index(&sm).iter().map(|b| b.base_offset).collect();
    assert_eq!(bases, [20, 30, 40]);
    // A fetch inside the gap starts at the next batch; the offsets do not move.
    assert_eq!(
        sm.read_index(tp(), 5, 1).unwrap().batches[0].base_offset,
        20
    );
    let offsets = sm.offsets(tp()).unwrap();
    assert_eq!((offsets.log_start_offset, offsets.high_watermark), (0, 50));
}

fn leases(sm: &mut StateMachine, holder: &str, keys: &[&str], now_ms: i64) -> Vec<bool> {
    match sm.apply(&Command::AcquireLeases(AcquireLeases {
        holder: holder.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        ttl_ms: 100,
        now_ms,
    })) {
        CommandResponse::Leases(l) => l,
        other => panic!("{other:?}"),
    }
}

#[test]
fn leases_go_to_one_holder_until_they_expire_or_are_released() {
    let mut sm = StateMachine::new();
    assert_eq!(leases(&mut sm, "a", &["p0", "p1"], 0), [true, true]);
    assert_eq!(leases(&mut sm, "b", &["p1", "p2"], 50), [false, true]);
    // Renewed by its holder at 90: held until 190.
    assert_eq!(leases(&mut sm, "a", &["p0"], 90), [true]);
    assert_eq!(leases(&mut sm, "b", &["p0", "p1"], 150), [false, true]);
    assert_eq!(leases(&mut sm, "b", &["p0"], 190), [true]);
    let released = sm.apply(&Command::ReleaseLeases {
        holder: "b".into(),
        keys: vec!["p0".into(), "p9".into()],
    });
    assert_eq!(released, CommandResponse::Leases(vec![true, false]));
    assert_eq!(leases(&mut sm, "a", &["p0"], 191), [true]);
}

#[test]
fn export_progress_moves_by_compare_and_set() {
    let mut sm = five_batches();
    let advance = |sm: &mut StateMachine, from, to| match sm.apply(&Command::AdvanceExport {
        tp: tp(),
        from,
        to,
    }) {
        CommandResponse::ExportAdvanced(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(sm.export_progress(&[tp()]), [None]);
    advance(&mut sm, None, 20).unwrap();
    // A retry of the same advance is fine; a stale or backward one is not.
    advance(&mut sm, None, 20).unwrap();
    assert_eq!(advance(&mut sm, None, 30), Err(MetaError::RewriteConflict));
    assert_eq!(
        advance(&mut sm, Some(10), 30),
        Err(MetaError::RewriteConflict)
    );
    advance(&mut sm, Some(20), 50).unwrap();
    assert_eq!(sm.export_progress(&[tp()]), [Some(50)]);
    sm.apply(&Command::DeleteTopic {
        name: "t".into(),
        now_ms: 0,
    });
    assert_eq!(sm.export_progress(&[tp()]), [None]);
}

/// `five_batches`, then a transaction of producer `pid` writing one batch (object 6, offsets
/// 50..=59) and committed: its marker is at offset 60. Answers the producer id.
fn with_committed_txn(sm: &mut StateMachine) -> i64 {
    let CommandResponse::ProducerId(Ok(p)) = sm.apply(&Command::InitTransactionalProducer(
        InitTransactionalProducer {
            transactional_id: "tx".into(),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            now_ms: 60,
        },
    )) else {
        panic!("no producer id");
    };
    let producer = TxnProducer {
        transactional_id: "tx".into(),
        producer_id: p.producer_id,
        producer_epoch: p.producer_epoch,
    };
    sm.apply(&Command::AddPartitionsToTxn(AddPartitionsToTxn {
        producer: producer.clone(),
        partitions: vec![tp()],
        now_ms: 61,
    }));
    sm.apply(&Command::CommitObject(CommitObject {
        object: oid(6),
        size: 100,
        batches: vec![CommitBatch {
            tp: tp(),
            position: 0,
            len: 100,
            last_offset_delta: 9,
            record_count: 10,
            first_timestamp: 62,
            max_timestamp: 62,
            producer_id: p.producer_id,
            producer_epoch: p.producer_epoch,
            base_sequence: 0,
            transactional: true,
        }],
        now_ms: 62,
    }));
    sm.apply(&Command::EndTxn(EndTxn {
        producer,
        commit: true,
        bump_epoch: false,
        now_ms: 63,
    }));
    p.producer_id
}

#[test]
fn a_merge_takes_a_marker_entry_into_its_segment_and_gc_never_sees_the_marker() {
    let mut sm = five_batches();
    with_committed_txn(&mut sm);
    let before = index(&sm);
    let marker = *before.last().unwrap();
    assert!(marker.is_marker(), "{marker:?}");
    assert_eq!((marker.base_offset, marker.object), (60, ObjectId::MARKER));
    let size_before = sm.partition_sizes(&[tp()])[0].clone().unwrap();
    // Offsets 40..=60 (object 5, object 6, the marker) into one segment, as a merge writes it:
    // the marker as its 78-byte control batch.
    let req = ReplaceBatches {
        tp: tp(),
        object: oid(100),
        size: 400,
        replaced: vec![(40, oid(5)), (50, oid(6)), (60, ObjectId::MARKER)],
        batches: vec![BatchLocation {
            base_offset: 40,
            last_offset: 60,
            object: oid(100),
            position: 32,
            len: 200 + MARKER_LEN,
            first_timestamp: 50,
            max_timestamp: 63,
            layout: RunLayout::Segment { index_len: 40 },
        }],
        now_ms: 1000,
    };
    replace(&mut sm, &req).unwrap();
    let after = index(&sm);
    assert_eq!(after.len(), 5);
    assert_eq!(after.last().unwrap().object, oid(100));
    assert_eq!(sm.partition_sizes(&[tp()])[0].clone().unwrap(), size_before);
    let unreferenced: Vec<_> = sm.unreferenced_objects().iter().map(|u| u.object).collect();
    assert_eq!(unreferenced.len(), 2, "{unreferenced:?}");
    assert!(unreferenced.contains(&oid(5)) && unreferenced.contains(&oid(6)));
    assert!(!unreferenced.contains(&ObjectId::MARKER));
    assert_eq!(sm.objects_known(&[ObjectId::MARKER]), [false]);
    // What the state derives again from scratch agrees with what the swap kept up to date.
    let mut rebuilt = sm.clone();
    rebuilt.rebuild_derived();
    assert_eq!(
        rebuilt.partition_sizes(&[tp()]),
        sm.partition_sizes(&[tp()])
    );
    assert_eq!(rebuilt.unreferenced_objects(), sm.unreferenced_objects());
    // The LSO is the high watermark: the transaction ended.
    let offsets = sm.offsets(tp()).unwrap();
    assert_eq!(offsets.last_stable_offset, offsets.high_watermark);
}

#[test]
fn a_rewrite_naming_the_marker_object_is_refused() {
    let mut sm = five_batches();
    with_committed_txn(&mut sm);
    let req = ReplaceBatches {
        tp: tp(),
        object: ObjectId::MARKER,
        size: 0,
        replaced: vec![(60, ObjectId::MARKER)],
        batches: Vec::new(),
        now_ms: 1000,
    };
    assert_eq!(replace(&mut sm, &req), Err(MetaError::RewriteConflict));
    assert!(index(&sm).last().unwrap().is_marker(), "the marker stays");
    assert_eq!(sm.objects_known(&[ObjectId::MARKER]), [false]);
}

#[test]
fn a_marker_raises_the_timestamp_highs_as_a_batch_does() {
    let mut sm = five_batches();
    with_committed_txn(&mut sm);
    // The batches' newest timestamp is 62, the marker's 63 (when the transaction ended).
    let marker = sm.batch_for_timestamp(tp(), 63).unwrap().unwrap();
    assert!(marker.is_marker(), "{marker:?}");
    assert_eq!(marker.base_offset, 60);
    assert_eq!(
        sm.batch_with_max_timestamp(tp())
            .unwrap()
            .map(|b| b.base_offset),
        Some(60)
    );
    assert_eq!(sm.batch_for_timestamp(tp(), 64).unwrap(), None);
}

#[test]
fn a_rewrite_whose_new_entries_are_markers_is_refused() {
    let mut sm = five_batches();
    with_committed_txn(&mut sm);
    let marker = *index(&sm).last().unwrap();
    // A new entry in the new object with a marker's layout: counted as a reference to the
    // object by the swap, skipped as a marker by a rebuild, so the two would disagree.
    let req = ReplaceBatches {
        tp: tp(),
        object: oid(100),
        size: 100,
        replaced: vec![(60, ObjectId::MARKER)],
        batches: vec![BatchLocation {
            object: oid(100),
            ..marker
        }],
        now_ms: 1000,
    };
    assert_eq!(replace(&mut sm, &req), Err(MetaError::RewriteConflict));
    assert_eq!(index(&sm).last(), Some(&marker));
    assert_eq!(sm.objects_known(&[oid(100)]), [false]);
}
