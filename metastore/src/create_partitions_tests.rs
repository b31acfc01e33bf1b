#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;
use crate::types::{CommitBatch, CommitObject};

fn id(n: u128) -> TopicId {
    Uuid::from_u128(n)
}

fn create(sm: &mut StateMachine, name: &str, n: u128, partitions: i32) -> TopicMeta {
    match sm.apply(&Command::CreateTopic(CreateTopic {
        name: name.into(),
        topic_id: id(n),
        partitions,
        configs: BTreeMap::new(),
        now_ms: 1000,
    })) {
        CommandResponse::TopicCreated(r) => r.unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

fn grow(sm: &mut StateMachine, name: &str, n: u128, count: i32) -> Result<TopicMeta, MetaError> {
    match sm.apply(&Command::CreatePartitions(CreatePartitions {
        name: name.into(),
        topic_id: id(n),
        count,
    })) {
        CommandResponse::PartitionsCreated(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

fn commit_one(sm: &mut StateMachine, object: u128, tp: TopicPartition) -> i64 {
    let batch = CommitBatch {
        tp,
        position: 0,
        len: 100,
        last_offset_delta: 1,
        record_count: 2,
        first_timestamp: 5,
        max_timestamp: 5,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
    match sm.apply(&Command::CommitObject(CommitObject {
        object: ObjectId(ulid::Ulid(object)),
        size: 100,
        batches: vec![batch],
        now_ms: 2000,
    })) {
        CommandResponse::Committed(mut r) => r.remove(0).unwrap().base_offset,
        other => panic!("unexpected {other:?}"),
    }
}

fn tp(n: u128, partition: i32) -> TopicPartition {
    TopicPartition {
        topic_id: id(n),
        partition,
    }
}

#[test]
fn new_partitions_start_empty_and_take_writes_while_old_ones_keep_theirs() {
    let mut sm = StateMachine::new();
    create(&mut sm, "t", 1, 2);
    assert_eq!(commit_one(&mut sm, 1, tp(1, 1)), 0);
    assert_eq!(
        sm.offsets(tp(1, 2)),
        Err(MetaError::UnknownTopicOrPartition)
    );

    let meta = grow(&mut sm, "t", 1, 5).unwrap();
    assert_eq!(meta.partitions, 5);
    assert_eq!(sm.topic_by_name("t").unwrap().partitions, 5);
    for p in 2..5 {
        let o = sm.offsets(tp(1, p)).unwrap();
        assert_eq!(
            (o.log_start_offset, o.high_watermark),
            (0, 0),
            "partition {p}"
        );
    }
    assert_eq!(sm.offsets(tp(1, 1)).unwrap().high_watermark, 2);
    assert_eq!(
        sm.offsets(tp(1, 5)),
        Err(MetaError::UnknownTopicOrPartition)
    );
    assert_eq!(commit_one(&mut sm, 2, tp(1, 4)), 0);
    assert_eq!(commit_one(&mut sm, 3, tp(1, 4)), 2);

    // Offsets commit to the new partitions too.
    let offsets = match sm.apply(&Command::CommitOffsets(crate::types::CommitOffsets {
        group: "g".into(),
        offsets: vec![(
            GroupPartition {
                topic: "t".into(),
                partition: 4,
            },
            crate::types::CommittedOffset {
                offset: 2,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1,
            },
        )],
    })) {
        CommandResponse::OffsetsCommitted(r) => r,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(offsets, vec![Ok(())]);

    // Deleting the topic lets go of the new partitions' objects as well.
    sm.apply(&Command::DeleteTopic {
        name: "t".into(),
        now_ms: 3000,
    });
    assert_eq!(sm.unreferenced_objects().len(), 3);
}

#[test]
fn a_grow_never_shrinks_and_stays_within_the_limit() {
    let mut sm = StateMachine::new();
    create(&mut sm, "t", 1, 3);
    assert_eq!(grow(&mut sm, "t", 1, 2), Err(MetaError::InvalidPartitions));
    assert_eq!(grow(&mut sm, "t", 1, 0), Err(MetaError::InvalidPartitions));
    assert_eq!(grow(&mut sm, "t", 1, -1), Err(MetaError::InvalidPartitions));
    assert_eq!(
        grow(&mut sm, "t", 1, MAX_PARTITIONS_PER_TOPIC + 1),
        Err(MetaError::InvalidPartitions)
    );
    assert_eq!(sm.topic_by_name("t").unwrap().partitions, 3);
    assert_eq!(
        grow(&mut sm, "t", 1, MAX_PARTITIONS_PER_TOPIC)
            .unwrap()
            .partitions,
        MAX_PARTITIONS_PER_TOPIC
    );
}

#[test]
fn a_resent_grow_gets_the_same_answer() {
    let mut sm = StateMachine::new();
    create(&mut sm, "t", 1, 1);
    let first = grow(&mut sm, "t", 1, 4).unwrap();
    assert_eq!(grow(&mut sm, "t", 1, 4), Ok(first));
    assert_eq!(sm.topic_by_name("t").unwrap().partitions, 4);
}

#[test]
fn a_grow_of_a_topic_that_is_gone_or_was_recreated_is_refused() {
    let mut sm = StateMachine::new();
    assert_eq!(
        grow(&mut sm, "nope", 1, 4),
        Err(MetaError::UnknownTopicOrPartition)
    );
    create(&mut sm, "t", 1, 1);
    sm.apply(&Command::DeleteTopic {
        name: "t".into(),
        now_ms: 2,
    });
    create(&mut sm, "t", 2, 1);
    // Read as topic 1, which is gone: the new topic 2 under the same name is left alone.
    assert_eq!(
        grow(&mut sm, "t", 1, 4),
        Err(MetaError::UnknownTopicOrPartition)
    );
    assert_eq!(sm.topic_by_name("t").unwrap().partitions, 1);
}

#[test]
fn a_grown_topic_survives_a_snapshot() {
    let mut sm = StateMachine::new();
    create(&mut sm, "t", 1, 1);
    grow(&mut sm, "t", 1, 3).unwrap();
    commit_one(&mut sm, 1, tp(1, 2));
    let bytes = crate::codec::encode(&sm).unwrap();
    let back: StateMachine = crate::codec::decode(&bytes).unwrap();
    assert_eq!(back.topic_by_name("t").unwrap().partitions, 3);
    assert_eq!(back.offsets(tp(1, 2)).unwrap().high_watermark, 2);
}

#[test]
fn the_cluster_holds_at_most_max_partitions() {
    use crate::limits::MAX_PARTITIONS;
    let per = MAX_PARTITIONS_PER_TOPIC;
    let full = (MAX_PARTITIONS / per as u64) as u128;
    let mut sm = StateMachine::new();
    for n in 1..full {
        create(&mut sm, &format!("t{n}"), n, per);
    }
    // One short of the bound.
    create(&mut sm, "last", full, per - 1);
    let new_topic = |sm: &mut StateMachine, partitions| {
        sm.apply(&Command::CreateTopic(CreateTopic {
            name: "over".into(),
            topic_id: id(full + 1),
            partitions,
            configs: BTreeMap::new(),
            now_ms: 1000,
        }))
    };
    let refused = CommandResponse::TopicCreated(Err(MetaError::PartitionLimit));
    assert_eq!(new_topic(&mut sm, 2), refused);
    // Growing to the bound is allowed; past it, nothing more.
    assert_eq!(
        grow(&mut sm, "last", full, per).map(|t| t.partitions),
        Ok(per)
    );
    assert_eq!(new_topic(&mut sm, 1), refused);
    assert!(sm.topic_by_name("over").is_none());
}
