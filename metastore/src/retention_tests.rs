#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::state_machine::StateMachine;
use crate::types::*;

fn tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic_id: Uuid::from_u128(7),
        partition,
    }
}

fn oid(n: u128) -> ObjectId {
    ObjectId(ulid::Ulid(n))
}

fn create(sm: &mut StateMachine, configs: &[(&str, &str)]) {
    let r = sm.apply(&Command::CreateTopic(CreateTopic {
        name: "t".into(),
        topic_id: Uuid::from_u128(7),
        partitions: 2,
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        now_ms: 0,
    }));
    assert!(matches!(r, CommandResponse::TopicCreated(Ok(_))), "{r:?}");
}

/// One object per call holding one 10-record batch of 100 bytes for partition 0, at `ts`.
fn commit(sm: &mut StateMachine, object: u128, ts: i64) {
    let batch = CommitBatch {
        tp: tp(0),
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
    };
    sm.apply(&Command::CommitObject(CommitObject {
        object: oid(object),
        size: 100,
        batches: vec![batch],
        now_ms: ts,
    }));
}

fn retention(sm: &mut StateMachine, now_ms: i64) -> Vec<Trimmed> {
    match sm.apply(&Command::EnforceRetention(EnforceRetention {
        now_ms,
        default_retention_ms: 604_800_000,
        default_retention_bytes: -1,
    })) {
        CommandResponse::Retained(t) => t,
        other => panic!("{other:?}"),
    }
}

fn delete_records(sm: &mut StateMachine, offset: i64) -> Result<PartitionOffsets, MetaError> {
    match sm.apply(&Command::DeleteRecords { tp: tp(0), offset }) {
        CommandResponse::RecordsDeleted(r) => r,
        other => panic!("{other:?}"),
    }
}

fn unreferenced(sm: &StateMachine) -> Vec<ObjectId> {
    sm.unreferenced_objects().iter().map(|u| u.object).collect()
}

#[test]
fn retention_ms_trims_expired_batches_and_frees_their_objects() {
    let mut sm = StateMachine::new();
    create(&mut sm, &[("retention.ms", "1000")]);
    for (i, ts) in [(1, 10_000), (2, 11_000), (3, 12_000)] {
        commit(&mut sm, i, ts);
    }
    // At 11,500 only the first batch (newest record 10,000) is older than 1 s.
    let t = retention(&mut sm, 11_500);
    assert_eq!(
        t,
        vec![Trimmed {
            tp: tp(0),
            log_start_offset: 10
        }]
    );
    assert_eq!(sm.offsets(tp(0)).unwrap().log_start_offset, 10);
    assert_eq!(sm.read_index(tp(0), 5, 1), Err(MetaError::OffsetOutOfRange));
    assert_eq!(
        sm.read_index(tp(0), 10, 1).unwrap().batches[0].object,
        oid(2)
    );
    assert_eq!(unreferenced(&sm), vec![oid(1)]);
    // Nothing more to do at the same time: no entry, no change.
    assert!(retention(&mut sm, 11_500).is_empty());
    // Timestamps now start at the second batch.
    assert_eq!(
        sm.batch_for_timestamp(tp(0), 0)
            .unwrap()
            .unwrap()
            .base_offset,
        10
    );

    // Everything expired: the log is empty, log start = high watermark.
    retention(&mut sm, 100_000);
    let o = sm.offsets(tp(0)).unwrap();
    assert_eq!((o.log_start_offset, o.high_watermark), (30, 30));
    assert_eq!(unreferenced(&sm), vec![oid(1), oid(2), oid(3)]);
    assert!(sm.batch_with_max_timestamp(tp(0)).unwrap().is_none());
}

#[test]
fn retention_bytes_keeps_the_newest_within_the_limit() {
    let mut sm = StateMachine::new();
    create(
        &mut sm,
        &[("retention.bytes", "250"), ("retention.ms", "-1")],
    );
    for i in 1..=5 {
        commit(&mut sm, i, 1);
    }
    retention(&mut sm, 1_000_000_000);
    // 500 bytes; keeping 250 at most means the newest two batches.
    assert_eq!(sm.offsets(tp(0)).unwrap().log_start_offset, 30);
    assert_eq!(unreferenced(&sm), vec![oid(1), oid(2), oid(3)]);
}

#[test]
fn compacted_topics_and_infinite_retention_are_left_alone() {
    let mut sm = StateMachine::new();
    create(
        &mut sm,
        &[("cleanup.policy", "compact"), ("retention.ms", "1")],
    );
    commit(&mut sm, 1, 0);
    assert!(retention(&mut sm, 1_000_000).is_empty());

    let mut sm = StateMachine::new();
    create(
        &mut sm,
        &[("cleanup.policy", "compact,delete"), ("retention.ms", "1")],
    );
    commit(&mut sm, 1, 0);
    assert_eq!(retention(&mut sm, 1_000_000).len(), 1);

    let mut sm = StateMachine::new();
    create(&mut sm, &[("retention.ms", "-1")]);
    commit(&mut sm, 1, 0);
    assert!(retention(&mut sm, i64::MAX).is_empty());
}

#[test]
fn delete_records_moves_the_log_start_inside_a_batch() {
    let mut sm = StateMachine::new();
    create(&mut sm, &[]);
    commit(&mut sm, 1, 0);
    commit(&mut sm, 2, 0);
    // Offset 15 is inside the second batch (10..=19): it stays, the first goes.
    let o = delete_records(&mut sm, 15).unwrap();
    assert_eq!((o.log_start_offset, o.high_watermark), (15, 20));
    assert_eq!(
        sm.read_index(tp(0), 15, 1).unwrap().batches[0].base_offset,
        10
    );
    assert_eq!(
        sm.read_index(tp(0), 14, 1),
        Err(MetaError::OffsetOutOfRange)
    );
    assert_eq!(unreferenced(&sm), vec![oid(1)]);
    // Never backwards; beyond the high watermark is out of range; -1 is the high watermark.
    assert_eq!(delete_records(&mut sm, 3).unwrap().log_start_offset, 15);
    assert_eq!(
        delete_records(&mut sm, 21),
        Err(MetaError::OffsetOutOfRange)
    );
    assert_eq!(
        delete_records(&mut sm, -2),
        Err(MetaError::OffsetOutOfRange)
    );
    assert_eq!(delete_records(&mut sm, -1).unwrap().log_start_offset, 20);
    // Producing goes on from the high watermark.
    commit(&mut sm, 3, 0);
    assert_eq!(sm.offsets(tp(0)).unwrap().high_watermark, 30);
}

#[test]
fn only_unreferenced_objects_are_forgotten() {
    let mut sm = StateMachine::new();
    create(&mut sm, &[]);
    commit(&mut sm, 1, 0);
    commit(&mut sm, 2, 0);
    delete_records(&mut sm, 10).unwrap();
    let r = sm.apply(&Command::ForgetObjects {
        objects: vec![oid(1), oid(2), oid(99)],
    });
    assert_eq!(r, CommandResponse::ObjectsForgotten(vec![oid(1)]));
    assert_eq!(sm.objects_known(&[oid(1), oid(2)]), vec![false, true]);
    assert!(unreferenced(&sm).is_empty());

    // A deleted topic's objects become unreferenced.
    sm.apply(&Command::DeleteTopic {
        name: "t".into(),
        now_ms: 0,
    });
    assert_eq!(unreferenced(&sm), vec![oid(2)]);
}

fn broker_defaults(sm: &mut StateMachine, broker: Option<i32>, pairs: &[(&str, &str)]) {
    let ops = pairs
        .iter()
        .map(|(k, v)| ConfigOp::Set {
            name: k.to_string(),
            value: v.to_string(),
        })
        .collect();
    let r = sm.apply(&Command::AlterBrokerConfigs(AlterBrokerConfigs {
        broker,
        replace: true,
        ops,
    }));
    assert!(
        matches!(r, CommandResponse::BrokerConfigsAltered(Ok(_))),
        "{r:?}"
    );
}

#[test]
fn the_clusters_dynamic_retention_defaults_apply_to_topics_without_their_own() {
    let mut sm = StateMachine::new();
    create(&mut sm, &[]);
    commit(&mut sm, 1, 1_000);
    commit(&mut sm, 2, 50_000);
    // An agent's own override does not count: retention is cluster-wide.
    broker_defaults(&mut sm, Some(0), &[("log.retention.ms", "1")]);
    assert!(retention(&mut sm, 60_000).is_empty());
    // A minute is 60,000 ms: both batches are younger.
    broker_defaults(&mut sm, None, &[("log.retention.minutes", "1")]);
    assert!(retention(&mut sm, 60_000).is_empty());
    // Milliseconds outrank minutes: the first batch is past 30 s, the second is not.
    broker_defaults(
        &mut sm,
        None,
        &[
            ("log.retention.minutes", "1"),
            ("log.retention.ms", "30000"),
        ],
    );
    let trimmed = retention(&mut sm, 60_000);
    assert_eq!(trimmed.len(), 1);
    assert_eq!(trimmed[0].log_start_offset, 10);
    // A cluster default of compact stops deletion.
    commit(&mut sm, 3, 100_000);
    broker_defaults(
        &mut sm,
        None,
        &[("log.retention.ms", "1"), ("log.cleanup.policy", "compact")],
    );
    assert!(retention(&mut sm, 200_000).is_empty());
}

/// A transaction of its own producer writes one 10-record batch of 100 bytes (object
/// `object`) to partition 0 and ends: its marker takes the next offset.
fn txn(sm: &mut StateMachine, id: &str, object: u128, commit: bool, ts: i64) {
    let CommandResponse::ProducerId(Ok(p)) = sm.apply(&Command::InitTransactionalProducer(
        InitTransactionalProducer {
            transactional_id: id.into(),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            now_ms: ts,
        },
    )) else {
        panic!("no producer id");
    };
    let producer = TxnProducer {
        transactional_id: id.into(),
        producer_id: p.producer_id,
        producer_epoch: p.producer_epoch,
    };
    sm.apply(&Command::AddPartitionsToTxn(AddPartitionsToTxn {
        producer: producer.clone(),
        partitions: vec![tp(0)],
        now_ms: ts,
    }));
    let r = sm.apply(&Command::CommitObject(CommitObject {
        object: oid(object),
        size: 100,
        batches: vec![CommitBatch {
            tp: tp(0),
            position: 0,
            len: 100,
            last_offset_delta: 9,
            record_count: 10,
            first_timestamp: ts,
            max_timestamp: ts,
            producer_id: p.producer_id,
            producer_epoch: p.producer_epoch,
            base_sequence: 0,
            transactional: true,
        }],
        now_ms: ts,
    }));
    assert!(
        matches!(&r, CommandResponse::Committed(a) if a.iter().all(Result::is_ok)),
        "{r:?}"
    );
    sm.apply(&Command::EndTxn(EndTxn {
        producer,
        commit,
        bump_epoch: false,
        now_ms: ts,
    }));
}

fn size(sm: &StateMachine) -> u64 {
    sm.partition_sizes(&[tp(0)])[0].clone().unwrap()
}

/// Partition 0: ten plain records (offsets 0..=9, 100 bytes), an aborted transaction's ten
/// (10..=19, 100 bytes) and its abort marker (20), ten plain records (21..=30, 100 bytes).
fn with_aborted_txn(retention_bytes: &str) -> StateMachine {
    let mut sm = StateMachine::new();
    create(&mut sm, &[("retention.bytes", retention_bytes)]);
    commit(&mut sm, 1, 10_000);
    txn(&mut sm, "a", 2, false, 11_000);
    commit(&mut sm, 3, 12_000);
    sm
}

#[test]
fn retention_bytes_counts_a_marker_as_its_control_batch_and_trims_the_aborted_index_with_the_log() {
    let sm = with_aborted_txn("-1");
    let offsets = sm.offsets(tp(0)).unwrap();
    assert_eq!(offsets.high_watermark, 31);
    assert_eq!(offsets.last_stable_offset, 31);
    assert_eq!(size(&sm), 300 + u64::from(MARKER_LEN));
    let aborted = sm.read_index(tp(0), 0, u64::MAX).unwrap().aborted;
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].first_offset, aborted[0].last_offset), (10, 20));

    // 200 bytes: the first two batches go (378 -> 178), the marker and the last batch stay.
    // The marker still in the log, its aborted transaction stays indexed.
    let mut sm = with_aborted_txn("200");
    retention(&mut sm, 13_000);
    assert_eq!(sm.offsets(tp(0)).unwrap().log_start_offset, 20);
    assert_eq!(size(&sm), 100 + u64::from(MARKER_LEN));
    let slice = sm.read_index(tp(0), 20, u64::MAX).unwrap();
    assert!(slice.batches[0].is_marker());
    assert_eq!(slice.aborted, aborted);
    let mut gone = unreferenced(&sm);
    gone.sort();
    assert_eq!(gone, [oid(1), oid(2)], "never the marker object");

    // 100 bytes: the marker goes too, and with it the aborted transaction.
    let mut sm = with_aborted_txn("100");
    retention(&mut sm, 13_000);
    assert_eq!(sm.offsets(tp(0)).unwrap().log_start_offset, 21);
    assert_eq!(size(&sm), 100);
    assert!(sm
        .read_index(tp(0), 21, u64::MAX)
        .unwrap()
        .aborted
        .is_empty());
    let mut derived = sm.clone();
    derived.rebuild_derived();
    assert_eq!(size(&derived), 100);
    assert_eq!(unreferenced(&derived).len(), 2);
}
