//! The age bound of a commit: an object older than [`MAX_COMMIT_AGE_MS`] may already have been
//! collected as an orphan, so its first commit is refused; a commit that landed in time is
//! answered again, however late the retry.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::limits::MAX_COMMIT_AGE_MS;
use crate::state_machine::StateMachine;
use crate::types::*;

/// The leader's clock in these tests.
const NOW_MS: i64 = 1_700_000_000_000;

fn tp() -> TopicPartition {
    TopicPartition {
        topic_id: Uuid::from_u128(9),
        partition: 0,
    }
}

fn with_topic() -> StateMachine {
    let mut sm = StateMachine::new();
    let r = sm.apply(&Command::CreateTopic(CreateTopic {
        name: "t".into(),
        topic_id: tp().topic_id,
        partitions: 1,
        configs: BTreeMap::new(),
        now_ms: NOW_MS,
    }));
    assert!(matches!(r, CommandResponse::TopicCreated(Ok(_))), "{r:?}");
    sm
}

/// An object made `age_ms` before [`NOW_MS`].
fn made_ago(age_ms: i64, n: u128) -> ObjectId {
    ObjectId(ulid::Ulid::from_parts((NOW_MS - age_ms) as u64, n))
}

fn commit(
    sm: &mut StateMachine,
    object: ObjectId,
    now_ms: i64,
) -> Vec<Result<BatchAppend, MetaError>> {
    let batch = CommitBatch {
        tp: tp(),
        position: 0,
        len: 100,
        last_offset_delta: 1,
        record_count: 2,
        first_timestamp: 0,
        max_timestamp: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
    match sm.apply(&Command::CommitObject(CommitObject {
        object,
        size: 100,
        batches: vec![batch.clone(), batch],
        now_ms,
    })) {
        CommandResponse::Committed(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

fn high_watermark(sm: &StateMachine) -> i64 {
    sm.offsets(tp()).unwrap().high_watermark
}

#[test]
fn an_object_past_the_bound_is_refused_and_not_remembered() {
    let mut sm = with_topic();
    let old = made_ago(MAX_COMMIT_AGE_MS + 1, 1);
    assert_eq!(
        commit(&mut sm, old, NOW_MS),
        vec![Err(MetaError::ObjectTooOld); 2]
    );
    assert_eq!(high_watermark(&sm), 0);
    // Unknown, so the compactor's orphan sweep deletes it.
    assert_eq!(sm.objects_known(&[old]), vec![false]);
}

#[test]
fn an_object_within_the_bound_is_committed() {
    let mut sm = with_topic();
    let at_bound = made_ago(MAX_COMMIT_AGE_MS, 1);
    let answer = commit(&mut sm, at_bound, NOW_MS);
    assert_eq!(
        answer
            .into_iter()
            .map(|r| r.unwrap().base_offset)
            .collect::<Vec<_>>(),
        vec![0, 2]
    );
    // An agent whose clock runs ahead dates its objects in the future: they are young.
    let ahead = made_ago(-3_600_000, 2);
    assert!(commit(&mut sm, ahead, NOW_MS).iter().all(Result::is_ok));
    assert_eq!(high_watermark(&sm), 8);
}

#[test]
fn a_late_retry_of_a_landed_commit_gets_its_first_answer() {
    let mut sm = with_topic();
    let object = made_ago(1_000, 1);
    let first = commit(&mut sm, object, NOW_MS);
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    // The retry of a commit whose outcome was unknown, stamped long after the bound.
    let retry = commit(&mut sm, object, NOW_MS + 10 * MAX_COMMIT_AGE_MS);
    assert_eq!(retry, first);
    assert_eq!(high_watermark(&sm), 4);
}

/// The leader stamps the time, whatever the agent sent: a skewed agent clock cannot get an old
/// object committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_judges_by_its_own_clock() {
    use crate::client::MetastoreClient;
    let dir = tempfile::tempdir().unwrap();
    let ms = crate::LocalMetastore::open(dir.path()).await.unwrap();
    ms.create_topic(CreateTopic {
        name: "t".into(),
        topic_id: tp().topic_id,
        partitions: 1,
        configs: BTreeMap::new(),
        now_ms: 0,
    })
    .await
    .unwrap();
    let now = ulid::Ulid::new().timestamp_ms();
    let batch = |object: ObjectId, now_ms: i64| CommitObject {
        object,
        size: 100,
        batches: vec![CommitBatch {
            tp: tp(),
            position: 0,
            len: 100,
            last_offset_delta: 0,
            record_count: 1,
            first_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
        }],
        now_ms,
    };
    let made = now - 2 * MAX_COMMIT_AGE_MS as u64;
    let old = ObjectId(ulid::Ulid::from_parts(made, 1));
    // The agent claims the object was just made.
    let refused = ms.commit_object(batch(old, made as i64)).await.unwrap();
    assert_eq!(refused, vec![Err(MetaError::ObjectTooOld)]);
    // A fresh object is committed whatever time the agent claims.
    let fresh = ObjectId(ulid::Ulid::from_parts(now, 2));
    let accepted = ms.commit_object(batch(fresh, 0)).await.unwrap();
    assert_eq!(accepted[0].as_ref().unwrap().base_offset, 0);
    ms.shutdown().await;
}
