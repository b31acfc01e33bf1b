#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;
use crate::types::RunLayout;
use crate::types::{
    AbortedTxn, AddOffsetsToTxn, AddPartitionsToTxn, CommitBatch, CommitObject, CommittedOffset,
    EndTxn, ExpireTransactions, InitTransactionalProducer, ProducerIdAndEpoch, TxnCommitOffsets,
    TxnProducer, TxnStatus,
};

const TOPIC: u128 = 7;

fn setup(partitions: i32) -> StateMachine {
    let mut sm = StateMachine::new();
    let r = sm.apply(&Command::CreateTopic(CreateTopic {
        name: "orders".into(),
        topic_id: Uuid::from_u128(TOPIC),
        partitions,
        configs: BTreeMap::new(),
        now_ms: 1,
    }));
    assert!(matches!(r, CommandResponse::TopicCreated(Ok(_))));
    sm
}

fn tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic_id: Uuid::from_u128(TOPIC),
        partition,
    }
}

fn init(sm: &mut StateMachine, id: &str, now_ms: i64) -> Result<ProducerIdAndEpoch, MetaError> {
    match sm.apply(&Command::InitTransactionalProducer(
        InitTransactionalProducer {
            transactional_id: id.into(),
            transaction_timeout_ms: 1000,
            producer_id: -1,
            producer_epoch: -1,
            now_ms,
        },
    )) {
        CommandResponse::ProducerId(r) => r,
        other => panic!("{other:?}"),
    }
}

fn producer(id: &str, p: ProducerIdAndEpoch) -> TxnProducer {
    TxnProducer {
        transactional_id: id.into(),
        producer_id: p.producer_id,
        producer_epoch: p.producer_epoch,
    }
}

fn add(
    sm: &mut StateMachine,
    p: &TxnProducer,
    partitions: &[i32],
) -> Result<Vec<Result<(), MetaError>>, MetaError> {
    match sm.apply(&Command::AddPartitionsToTxn(AddPartitionsToTxn {
        producer: p.clone(),
        partitions: partitions.iter().map(|&i| tp(i)).collect(),
        now_ms: 10,
    })) {
        CommandResponse::PartitionsAddedToTxn(r) => r,
        other => panic!("{other:?}"),
    }
}

fn end(
    sm: &mut StateMachine,
    p: &TxnProducer,
    commit: bool,
    bump_epoch: bool,
) -> Result<ProducerIdAndEpoch, MetaError> {
    match sm.apply(&Command::EndTxn(EndTxn {
        producer: p.clone(),
        commit,
        bump_epoch,
        now_ms: 20,
    })) {
        CommandResponse::TxnEnded(r) => r,
        other => panic!("{other:?}"),
    }
}

/// One batch of `count` records on `partition`: transactional with `p`, or plain.
fn write(
    sm: &mut StateMachine,
    object: u128,
    partition: i32,
    p: Option<(&TxnProducer, i32)>,
    count: i32,
) -> Result<BatchAppend, MetaError> {
    let (producer_id, producer_epoch, base_sequence, transactional) = match p {
        Some((p, seq)) => (p.producer_id, p.producer_epoch, seq, true),
        None => (-1, -1, -1, false),
    };
    let batch = CommitBatch {
        tp: tp(partition),
        position: 0,
        len: 100,
        last_offset_delta: count - 1,
        record_count: count,
        first_timestamp: 5,
        max_timestamp: 5,
        producer_id,
        producer_epoch,
        base_sequence,
        transactional,
    };
    match sm.apply(&Command::CommitObject(CommitObject {
        object: ObjectId(ulid::Ulid(object)),
        size: 100,
        batches: vec![batch],
        now_ms: 30,
    })) {
        CommandResponse::Committed(mut r) => r.remove(0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_committed_transaction_ends_with_a_marker_and_moves_the_lso() {
    let mut sm = setup(2);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    assert_eq!(add(&mut sm, &p, &[0, 1]).unwrap(), vec![Ok(()), Ok(())]);
    write(&mut sm, 1, 0, None, 2).unwrap();
    assert_eq!(
        write(&mut sm, 2, 0, Some((&p, 0)), 3).unwrap().base_offset,
        2
    );
    write(&mut sm, 3, 0, None, 1).unwrap();
    let o = sm.offsets(tp(0)).unwrap();
    assert_eq!((o.high_watermark, o.last_stable_offset), (6, 2));
    let described = sm.producers(&[tp(0)]).remove(0).unwrap();
    assert_eq!(
        described[0].current_txn_start_offset, 2,
        "DescribeProducers"
    );
    // Partition 1 was added but never written: no marker there.
    assert_eq!(end(&mut sm, &p, true, false).unwrap().producer_epoch, 0);
    let o = sm.offsets(tp(0)).unwrap();
    assert_eq!((o.high_watermark, o.last_stable_offset), (7, 7));
    assert_eq!(sm.offsets(tp(1)).unwrap().high_watermark, 0);
    let described = sm.producers(&[tp(0)]).remove(0).unwrap();
    assert_eq!(described[0].current_txn_start_offset, -1);
    let slice = sm.read_index(tp(0), 0, u64::MAX).unwrap();
    let marker = slice.batches.last().unwrap();
    assert_eq!((marker.base_offset, marker.last_offset), (6, 6));
    assert_eq!(
        marker.layout,
        RunLayout::Marker {
            producer_id: p.producer_id,
            producer_epoch: 0,
            commit: true
        }
    );
    assert_eq!(marker.object, ObjectId::MARKER);
    assert!(slice.aborted.is_empty());
    // A retry of the same EndTxn gets the same answer; the opposite outcome is refused.
    assert!(end(&mut sm, &p, true, false).is_ok());
    assert_eq!(
        end(&mut sm, &p, false, false),
        Err(MetaError::InvalidTxnState)
    );
    assert_eq!(sm.offsets(tp(0)).unwrap().high_watermark, 7);
}

#[test]
fn an_aborted_transaction_is_in_the_aborted_index_of_reads_that_overlap_it() {
    let mut sm = setup(1);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    add(&mut sm, &p, &[0]).unwrap();
    write(&mut sm, 1, 0, Some((&p, 0)), 2).unwrap();
    write(&mut sm, 2, 0, None, 1).unwrap();
    write(&mut sm, 3, 0, Some((&p, 2)), 1).unwrap();
    end(&mut sm, &p, false, false).unwrap();
    let aborted = AbortedTxn {
        producer_id: p.producer_id,
        first_offset: 0,
        last_offset: 4,
    };
    assert_eq!(
        sm.read_index(tp(0), 0, u64::MAX).unwrap().aborted,
        vec![aborted]
    );
    assert_eq!(
        sm.read_index(tp(0), 4, u64::MAX).unwrap().aborted,
        vec![aborted]
    );
    assert_eq!(sm.read_index(tp(0), 5, u64::MAX).unwrap().aborted, vec![]);
    // Batches after it do not see it.
    write(&mut sm, 4, 0, None, 1).unwrap();
    assert_eq!(sm.read_index(tp(0), 5, u64::MAX).unwrap().aborted, vec![]);
    // Trimmed with the log.
    sm.apply(&Command::DeleteRecords {
        tp: tp(0),
        offset: 5,
    });
    assert_eq!(sm.partition(tp(0)).unwrap().aborted.len(), 0);
}

#[test]
fn a_long_aborted_transaction_is_found_past_many_short_ones() {
    let mut sm = setup(1);
    let long = producer("long", init(&mut sm, "long", 1).unwrap());
    add(&mut sm, &long, &[0]).unwrap();
    write(&mut sm, 1, 0, Some((&long, 0)), 1).unwrap();
    // Short aborted transactions of another producer, all after the long one began.
    let short_pid = init(&mut sm, "short", 1).unwrap();
    let mut short = producer("short", short_pid);
    for i in 0..50u128 {
        add(&mut sm, &short, &[0]).unwrap();
        write(&mut sm, 10 + i, 0, Some((&short, 0)), 1).unwrap();
        short.producer_epoch = end(&mut sm, &short, false, true).unwrap().producer_epoch;
    }
    end(&mut sm, &long, false, false).unwrap();
    let hwm = sm.offsets(tp(0)).unwrap().high_watermark;
    // A read of offset 0 alone overlaps the long transaction, whose marker is last.
    let part = sm.partition(tp(0)).unwrap();
    let found = part.aborted_between(0, 0);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].producer_id, found[0].last_offset),
        (long.producer_id, hwm - 1)
    );
    // A read of the middle sees the one short transaction there and the long one.
    let found = part.aborted_between(21, 21);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn transactional_batches_need_an_ongoing_transaction_with_the_partition() {
    let mut sm = setup(2);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    assert_eq!(
        write(&mut sm, 1, 0, Some((&p, 0)), 1),
        Err(MetaError::InvalidTxnState)
    );
    add(&mut sm, &p, &[0]).unwrap();
    assert_eq!(
        write(&mut sm, 2, 1, Some((&p, 0)), 1),
        Err(MetaError::InvalidTxnState)
    );
    let mut stale = p.clone();
    stale.producer_epoch = 3;
    assert_eq!(
        write(&mut sm, 3, 0, Some((&stale, 0)), 1),
        Err(MetaError::InvalidProducerEpoch)
    );
    let mut unknown = p.clone();
    unknown.producer_id = 99;
    assert_eq!(
        write(&mut sm, 4, 0, Some((&unknown, 0)), 1),
        Err(MetaError::InvalidProducerIdMapping)
    );
    assert!(write(&mut sm, 5, 0, Some((&p, 0)), 1).is_ok());
    end(&mut sm, &p, true, false).unwrap();
    // KIP-890 part 1: a late write into the finished transaction is refused.
    assert_eq!(
        write(&mut sm, 6, 0, Some((&p, 1)), 1),
        Err(MetaError::InvalidTxnState)
    );
    assert_eq!(sm.offsets(tp(0)).unwrap().high_watermark, 2);
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_transaction() {
    let mut sm = setup(1);
    let old = producer("t", init(&mut sm, "t", 1).unwrap());
    add(&mut sm, &old, &[0]).unwrap();
    write(&mut sm, 1, 0, Some((&old, 0)), 2).unwrap();
    let new = producer("t", init(&mut sm, "t", 2).unwrap());
    assert_eq!(new.producer_id, old.producer_id);
    assert_eq!(new.producer_epoch, 1);
    // The old transaction was aborted in the same apply.
    let o = sm.offsets(tp(0)).unwrap();
    assert_eq!((o.high_watermark, o.last_stable_offset), (3, 3));
    assert_eq!(sm.read_index(tp(0), 0, u64::MAX).unwrap().aborted.len(), 1);
    assert_eq!(add(&mut sm, &old, &[0]), Err(MetaError::ProducerFenced));
    assert_eq!(
        end(&mut sm, &old, true, false),
        Err(MetaError::ProducerFenced)
    );
    assert_eq!(
        write(&mut sm, 2, 0, Some((&old, 2)), 1),
        Err(MetaError::InvalidProducerEpoch)
    );
    // KIP-360: the old producer cannot take the id back with its stale epoch.
    let r = sm.apply(&Command::InitTransactionalProducer(
        InitTransactionalProducer {
            transactional_id: "t".into(),
            transaction_timeout_ms: 1000,
            producer_id: old.producer_id,
            producer_epoch: old.producer_epoch,
            now_ms: 3,
        },
    ));
    assert!(matches!(
        r,
        CommandResponse::ProducerId(Err(MetaError::ProducerFenced))
    ));
}

#[test]
fn offsets_become_the_groups_only_when_the_transaction_commits() {
    let mut sm = setup(1);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    let gp = GroupPartition {
        topic: "orders".into(),
        partition: 0,
    };
    let offset = |n| CommittedOffset {
        offset: n,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 5,
    };
    let commit_offsets =
        |sm: &mut StateMachine, n| match sm.apply(&Command::TxnCommitOffsets(TxnCommitOffsets {
            producer: p.clone(),
            coordinator: 0,
            commit: CommitOffsets {
                group: "g".into(),
                offsets: vec![(gp.clone(), offset(n))],
            },
        })) {
            CommandResponse::OffsetsCommitted(r) => r,
            other => panic!("{other:?}"),
        };
    // Not before AddOffsetsToTxn.
    assert_eq!(
        commit_offsets(&mut sm, 1),
        vec![Err(MetaError::InvalidTxnState)]
    );
    let added = sm.apply(&Command::AddOffsetsToTxn(AddOffsetsToTxn {
        producer: p.clone(),
        group: "g".into(),
        now_ms: 5,
    }));
    assert!(matches!(added, CommandResponse::TxnUpdated(Ok(()))));
    assert_eq!(commit_offsets(&mut sm, 1), vec![Ok(())]);
    assert_eq!(sm.pending_txn_offsets("g"), vec![gp.clone()]);
    assert!(sm.group_offsets("g").is_empty());
    end(&mut sm, &p, false, false).unwrap();
    assert!(
        sm.group_offsets("g").is_empty(),
        "aborted offsets are dropped"
    );
    assert!(sm.pending_txn_offsets("g").is_empty());
    sm.apply(&Command::AddOffsetsToTxn(AddOffsetsToTxn {
        producer: p.clone(),
        group: "g".into(),
        now_ms: 6,
    }));
    assert_eq!(commit_offsets(&mut sm, 9), vec![Ok(())]);
    end(&mut sm, &p, true, false).unwrap();
    assert_eq!(sm.group_offsets("g"), vec![(gp, offset(9))]);
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let mut sm = setup(1);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    add(&mut sm, &p, &[0]).unwrap(); // begins at 10, timeout 1000
    write(&mut sm, 1, 0, Some((&p, 0)), 1).unwrap();
    assert!(!sm.transactions_due(1010, -1));
    assert!(sm.transactions_due(1011, -1));
    let pass = |now_ms, exp| {
        Command::ExpireTransactions(ExpireTransactions {
            now_ms,
            transactional_id_expiration_ms: exp,
        })
    };
    match sm.apply(&pass(1011, -1)) {
        CommandResponse::TransactionsExpired(r) => assert_eq!(r.timed_out, vec!["t".to_owned()]),
        other => panic!("{other:?}"),
    }
    let o = sm.offsets(tp(0)).unwrap();
    assert_eq!((o.high_watermark, o.last_stable_offset), (2, 2));
    assert_eq!(
        end(&mut sm, &p, true, false),
        Err(MetaError::ProducerFenced)
    );
    let t = sm.describe_transactions(&["t".into()]).remove(0).unwrap();
    assert_eq!((t.status, t.producer_epoch), (TxnStatus::CompleteAbort, 1));
    // Idle ids go after the expiration; an ongoing one never does.
    match sm.apply(&pass(1011 + 500, 100)) {
        CommandResponse::TransactionsExpired(r) => assert_eq!(r.forgotten, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(sm.describe_transactions(&["t".into()]), vec![None]);
}

#[test]
fn end_txn_v5_bumps_the_epoch_and_a_retry_with_the_old_one_gets_the_same_answer() {
    let mut sm = setup(1);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    add(&mut sm, &p, &[0]).unwrap();
    write(&mut sm, 1, 0, Some((&p, 0)), 1).unwrap();
    let next = end(&mut sm, &p, true, true).unwrap();
    assert_eq!(next.producer_epoch, 1);
    assert_eq!(end(&mut sm, &p, true, true).unwrap(), next);
    assert_eq!(
        end(&mut sm, &p, false, true),
        Err(MetaError::InvalidTxnState)
    );
    // The new epoch restarts the sequence.
    let p1 = producer("t", next);
    add(&mut sm, &p1, &[0]).unwrap();
    assert!(write(&mut sm, 2, 0, Some((&p1, 0)), 1).is_ok());
}

#[test]
fn add_partitions_refuses_unknown_partitions_and_adds_none() {
    let mut sm = setup(1);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    let r = add(&mut sm, &p, &[0, 5]).unwrap();
    assert_eq!(r, vec![Ok(()), Err(MetaError::UnknownTopicOrPartition)]);
    let t = sm.describe_transactions(&["t".into()]).remove(0).unwrap();
    assert_eq!(t.status, TxnStatus::Empty);
    assert!(t.partitions.is_empty());
    let mut unknown = p.clone();
    unknown.transactional_id = "nobody".into();
    assert_eq!(
        add(&mut sm, &unknown, &[0]),
        Err(MetaError::InvalidProducerIdMapping)
    );
    assert_eq!(
        end(&mut sm, &unknown, true, false),
        Err(MetaError::InvalidProducerIdMapping)
    );
}

#[test]
fn transactions_survive_a_snapshot_round_trip() {
    let mut sm = setup(1);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    add(&mut sm, &p, &[0]).unwrap();
    write(&mut sm, 1, 0, Some((&p, 0)), 2).unwrap();
    let bytes = crate::codec::encode(&sm).unwrap();
    let mut back: StateMachine = crate::codec::decode(&bytes).unwrap();
    back.rebuild_derived();
    assert_eq!(back, sm);
    assert_eq!(back.offsets(tp(0)).unwrap().last_stable_offset, 0);
    end(&mut back, &p, false, false).unwrap();
    assert_eq!(
        back.read_index(tp(0), 0, u64::MAX).unwrap().aborted.len(),
        1
    );
}

#[test]
fn an_offsets_only_read_answers_the_aborted_transactions_of_the_cached_batches() {
    let mut sm = setup(1);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    add(&mut sm, &p, &[0]).unwrap();
    write(&mut sm, 1, 0, Some((&p, 0)), 2).unwrap();
    end(&mut sm, &p, false, false).unwrap();
    write(&mut sm, 2, 0, None, 1).unwrap();
    let read = |offset, aborted_upto| crate::types::IndexRead {
        tp: tp(0),
        offset,
        max_bytes: 1000,
        offsets_only: true,
        aborted_upto,
    };
    let answers = sm.read_indexes_within(&[read(0, 3), read(0, -1), read(3, 3)], u64::MAX);
    let aborted = |i: usize| answers[i].slice.as_ref().unwrap().aborted.len();
    assert!(answers
        .iter()
        .all(|a| a.slice.as_ref().unwrap().batches.is_empty()));
    assert_eq!((aborted(0), aborted(1), aborted(2)), (1, 0, 0));
}

#[test]
fn a_transaction_holds_at_most_max_partitions_per_txn() {
    use crate::limits::{MAX_PARTITIONS_PER_TOPIC, MAX_PARTITIONS_PER_TXN};
    // One topic cannot hold that many: a second one takes the rest and one more.
    let mut sm = setup(MAX_PARTITIONS_PER_TOPIC);
    let other = Uuid::from_u128(TOPIC + 1);
    let extra = (MAX_PARTITIONS_PER_TXN as i32 - MAX_PARTITIONS_PER_TOPIC) + 1;
    let r = sm.apply(&Command::CreateTopic(CreateTopic {
        name: "more".into(),
        topic_id: other,
        partitions: extra,
        configs: BTreeMap::new(),
        now_ms: 1,
    }));
    assert!(matches!(r, CommandResponse::TopicCreated(Ok(_))));
    let p = producer("big", init(&mut sm, "big", 1).unwrap());
    let all: Vec<i32> = (0..MAX_PARTITIONS_PER_TOPIC).collect();
    assert!(add(&mut sm, &p, &all).unwrap().iter().all(Result::is_ok));
    let add_other = |sm: &mut StateMachine, partitions: std::ops::Range<i32>| match sm.apply(
        &Command::AddPartitionsToTxn(AddPartitionsToTxn {
            producer: p.clone(),
            partitions: partitions
                .map(|partition| TopicPartition {
                    topic_id: other,
                    partition,
                })
                .collect(),
            now_ms: 10,
        }),
    ) {
        CommandResponse::PartitionsAddedToTxn(r) => r,
        other => panic!("{other:?}"),
    };
    // Up to the bound, then one past it is refused and changes nothing.
    assert!(add_other(&mut sm, 0..extra - 1)
        .unwrap()
        .iter()
        .all(Result::is_ok));
    assert_eq!(
        add_other(&mut sm, extra - 1..extra),
        Err(MetaError::TooManyTxnPartitions)
    );
    // Adding one it already holds is no growth.
    assert!(add(&mut sm, &p, &[0]).unwrap().iter().all(Result::is_ok));
    let held = |sm: &StateMachine| {
        sm.describe_transactions(&["big".to_string()])[0]
            .as_ref()
            .unwrap()
            .partitions
            .len()
    };
    assert_eq!(held(&sm), MAX_PARTITIONS_PER_TXN);
    // The transaction still ends, with a marker on every partition it holds.
    end(&mut sm, &p, false, false).unwrap();
    assert_eq!(held(&sm), 0);
}

#[test]
fn a_transaction_holds_offsets_of_at_most_max_groups_per_txn() {
    use crate::limits::MAX_GROUPS_PER_TXN;
    let mut sm = setup(1);
    let p = producer("t", init(&mut sm, "t", 1).unwrap());
    let add_group = |sm: &mut StateMachine, group: String| match sm.apply(
        &Command::AddOffsetsToTxn(AddOffsetsToTxn {
            producer: p.clone(),
            group,
            now_ms: 5,
        }),
    ) {
        CommandResponse::TxnUpdated(r) => r,
        other => panic!("{other:?}"),
    };
    for g in 0..MAX_GROUPS_PER_TXN {
        assert_eq!(add_group(&mut sm, format!("g{g}")), Ok(()));
    }
    assert_eq!(
        add_group(&mut sm, "one-too-many".into()),
        Err(MetaError::TooManyTxnPartitions)
    );
    // A group already in it may be named again.
    assert_eq!(add_group(&mut sm, "g0".into()), Ok(()));
    end(&mut sm, &p, true, false).unwrap();
    // A new transaction starts with none.
    assert_eq!(add_group(&mut sm, "one-too-many".into()), Ok(()));
}

#[test]
fn a_transactional_id_is_at_most_max_transactional_id_bytes() {
    use crate::limits::MAX_TRANSACTIONAL_ID_BYTES;
    let mut sm = setup(1);
    let longest = "t".repeat(MAX_TRANSACTIONAL_ID_BYTES);
    assert!(init(&mut sm, &longest, 1).is_ok());
    let too_long = "t".repeat(MAX_TRANSACTIONAL_ID_BYTES + 1);
    assert_eq!(
        init(&mut sm, &too_long, 1),
        Err(MetaError::InvalidProducerIdMapping)
    );
    assert_eq!(
        init(&mut sm, "", 1),
        Err(MetaError::InvalidProducerIdMapping)
    );
}
