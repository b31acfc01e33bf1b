#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::state_machine::StateMachine;
use crate::types::{
    AgentHeartbeat, BatchAppend, Command, CommandResponse, CommitBatch, CommitObject,
    CommitOffsets, CommittedOffset, CreateTopic, ExpireState, GroupPartition, InitProducerId,
    MetaError, ObjectId, StateExpired, TopicPartition,
};

const DAY: i64 = 86_400_000;

fn tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic_id: Uuid::from_u128(1),
        partition,
    }
}

fn state() -> StateMachine {
    let mut sm = StateMachine::new();
    sm.apply(&Command::CreateTopic(CreateTopic {
        name: "t".into(),
        topic_id: Uuid::from_u128(1),
        partitions: 2,
        configs: BTreeMap::new(),
        now_ms: 0,
    }));
    sm
}

fn init_pid(sm: &mut StateMachine) -> i64 {
    match sm.apply(&Command::InitProducerId(InitProducerId {
        transactional_id: None,
        now_ms: 0,
    })) {
        CommandResponse::ProducerId(Ok(p)) => p.producer_id,
        other => panic!("unexpected {other:?}"),
    }
}

fn idem(partition: i32, pid: i64, epoch: i16, seq: i32) -> CommitBatch {
    CommitBatch {
        tp: tp(partition),
        position: 0,
        len: 100,
        last_offset_delta: 0,
        record_count: 1,
        first_timestamp: 0,
        max_timestamp: 0,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        transactional: false,
    }
}

/// The id of object `n` made at `made_ms`: a commit of an object older than the commit age bound
/// is refused, unless it is a retry of one already committed.
fn oid(n: u128, made_ms: i64) -> ObjectId {
    ObjectId(ulid::Ulid::from_parts(
        u64::try_from(made_ms).unwrap_or(0),
        n,
    ))
}

/// Commits a new object `object`, made just now.
fn commit_at(
    sm: &mut StateMachine,
    object: u128,
    now_ms: i64,
    batches: Vec<CommitBatch>,
) -> Vec<Result<BatchAppend, MetaError>> {
    commit_id(sm, oid(object, now_ms), now_ms, batches)
}

fn commit_id(
    sm: &mut StateMachine,
    object: ObjectId,
    now_ms: i64,
    batches: Vec<CommitBatch>,
) -> Vec<Result<BatchAppend, MetaError>> {
    match sm.apply(&Command::CommitObject(CommitObject {
        object,
        size: 1234,
        batches,
        now_ms,
    })) {
        CommandResponse::Committed(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// A pass with bounds: producers, commit answers, offsets, addresses.
fn expire(sm: &mut StateMachine, now_ms: i64, bounds: [i64; 4]) -> StateExpired {
    match sm.apply(&Command::ExpireState(ExpireState {
        now_ms,
        producer_id_expiration_ms: bounds[0],
        commit_answer_retention_ms: bounds[1],
        offsets_retention_ms: bounds[2],
        broker_id_retention_ms: bounds[3],
    })) {
        CommandResponse::StateExpired(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

const FOREVER: i64 = -1;

#[test]
fn producers_expire_a_day_after_their_last_write_per_partition() {
    let mut sm = state();
    let pid = init_pid(&mut sm);
    assert!(commit_at(&mut sm, 1, 1000, vec![idem(0, pid, 0, 0)])[0].is_ok());
    assert!(commit_at(&mut sm, 2, 1000, vec![idem(1, pid, 0, 0)])[0].is_ok());
    // Partition 0 is written again later: its clock restarts, partition 1's does not.
    assert!(commit_at(&mut sm, 3, 5000, vec![idem(0, pid, 0, 1)])[0].is_ok());
    let bounds = [DAY, FOREVER, FOREVER, FOREVER];
    let r = expire(&mut sm, 1000 + DAY - 1, bounds);
    assert_eq!((r.producers_expired, r.left.producers), (0, 2));
    let r = expire(&mut sm, 1000 + DAY, bounds);
    assert_eq!((r.producers_expired, r.left.producers), (1, 1));
    let r = expire(&mut sm, 5000 + DAY, bounds);
    assert_eq!((r.producers_expired, r.left.producers), (1, 0));
    // As in Kafka, a producer with no state is accepted at whatever sequence it is at, and
    // that starts its state again: an idle producer is not failed by the expiry.
    let resumed = commit_at(&mut sm, 4, 6000 + DAY, vec![idem(0, pid, 0, 2)]);
    assert_eq!(resumed[0].clone().unwrap().base_offset, 2);
    assert_eq!(sm.state_counts().producers, 1);
    // …and its duplicates are recognised again from there.
    let dup = commit_at(&mut sm, 5, 6001 + DAY, vec![idem(0, pid, 0, 2)]);
    assert!(dup[0].clone().unwrap().duplicate);
    // The expired producer's epoch is forgotten too, as Kafka forgets it.
    assert_eq!(sm.offsets(tp(0)).unwrap().high_watermark, 3);
}

#[test]
fn refused_batches_do_not_keep_a_producer_alive() {
    let mut sm = state();
    let pid = init_pid(&mut sm);
    assert!(commit_at(&mut sm, 1, 0, vec![idem(0, pid, 1, 0)])[0].is_ok());
    // A fenced (older) epoch is refused, and does not count as a write.
    let fenced = commit_at(&mut sm, 2, DAY / 2, vec![idem(0, pid, 0, 1)]);
    assert_eq!(fenced[0], Err(MetaError::InvalidProducerEpoch));
    let r = expire(&mut sm, DAY, [DAY, FOREVER, FOREVER, FOREVER]);
    assert_eq!(r.producers_expired, 1);
}

#[test]
fn commit_answers_go_after_their_bound_and_a_late_retry_changes_nothing() {
    let mut sm = state();
    let batches = vec![idem(0, -1, -1, -1), idem(1, -1, -1, -1)];
    let first = commit_at(&mut sm, 1, 1000, batches.clone());
    assert_eq!(first.len(), 2);
    commit_at(&mut sm, 2, 2000, vec![idem(0, -1, -1, -1)]);
    let bounds = [FOREVER, 600_000, FOREVER, FOREVER];
    let r = expire(&mut sm, 1000 + 600_000, bounds);
    assert_eq!((r.commit_answers_dropped, r.left.commit_answers), (1, 1));
    // The object itself stays, for the compactor.
    let entry = sm.object(&oid(1, 1000)).unwrap();
    assert_eq!((entry.size, entry.created_ms), (1234, 1000));
    assert!(entry.answer.is_empty());
    // A retry after the bound cannot arrive; one that did would get no answers (the agent
    // answers its batches with a retriable error) and append nothing twice.
    let before = sm.clone();
    assert!(commit_id(&mut sm, oid(1, 1000), 700_000, batches).is_empty());
    assert_eq!(sm, before);
    // The newer object keeps its answer until its own bound.
    let again = commit_id(&mut sm, oid(2, 2000), 700_000, vec![idem(0, -1, -1, -1)]);
    assert_eq!(again.len(), 1);
}

fn offsets(sm: &mut StateMachine, group: &str, partition: i32, at: i64) {
    sm.apply(&Command::CommitOffsets(CommitOffsets {
        group: group.into(),
        offsets: vec![(
            GroupPartition {
                topic: "t".into(),
                partition,
            },
            CommittedOffset {
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: at,
            },
        )],
    }));
}

#[test]
fn a_groups_offsets_expire_together_once_its_newest_commit_is_old() {
    let mut sm = state();
    let week = 7 * DAY;
    offsets(&mut sm, "old", 0, 0);
    offsets(&mut sm, "active", 0, 0);
    // One recent commit keeps every partition of the group, however old the others are.
    offsets(&mut sm, "active", 1, week);
    let bounds = [FOREVER, FOREVER, week, FOREVER];
    let r = expire(&mut sm, week - 1, bounds);
    assert_eq!((r.groups_expired, r.left.groups), (0, 2));
    let r = expire(&mut sm, week, bounds);
    assert_eq!((r.groups_expired, r.left.groups), (1, 1));
    assert_eq!(sm.groups(), vec!["active".to_owned()]);
    assert_eq!(sm.group_offsets("active").len(), 2);
    assert!(sm.group_offsets("old").is_empty());
}

fn heartbeat(sm: &mut StateMachine, port: u16, now_ms: i64) -> Vec<(u16, i32)> {
    match sm.apply(&Command::AgentHeartbeat(AgentHeartbeat {
        host: "h".into(),
        port,
        session_timeout_ms: 1000,
        now_ms,
    })) {
        CommandResponse::Agents(live) => {
            live.agents.iter().map(|a| (a.port, a.broker_id)).collect()
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn departed_addresses_are_forgotten_and_their_ids_not_reused() {
    let mut sm = state();
    heartbeat(&mut sm, 1, 0);
    heartbeat(&mut sm, 2, 0);
    // Port 1 goes on heartbeating; port 2 stops.
    heartbeat(&mut sm, 1, DAY);
    let bounds = [FOREVER, FOREVER, FOREVER, DAY];
    let r = expire(&mut sm, DAY, bounds);
    assert_eq!((r.broker_ids_forgotten, r.left.broker_ids), (1, 1));
    // Port 2 comes back: a new id, above every id ever given, not its old one reused.
    assert_eq!(heartbeat(&mut sm, 2, DAY + 1), vec![(1, 0), (2, 2)]);
    assert_eq!(heartbeat(&mut sm, 3, DAY + 2), vec![(1, 0), (2, 2), (3, 3)]);
    // Expired sessions still listed go with their ids, and the live set changes with them.
    let epoch = sm.live_agents().epoch;
    let r = expire(&mut sm, 5 * DAY, bounds);
    assert_eq!(r.broker_ids_forgotten, 3, "none heartbeated since DAY + 2");
    assert!(sm.live_agents().agents.is_empty());
    assert!(sm.live_agents().epoch > epoch);
    assert_eq!(heartbeat(&mut sm, 1, 5 * DAY), vec![(1, 4)]);
    let r = expire(&mut sm, 10 * DAY, [FOREVER; 4]);
    assert_eq!((r.broker_ids_forgotten, r.left.broker_ids), (0, 1));
}

#[test]
fn negative_bounds_keep_everything() {
    let mut sm = state();
    let pid = init_pid(&mut sm);
    commit_at(&mut sm, 1, 0, vec![idem(0, pid, 0, 0)]);
    offsets(&mut sm, "g", 0, 0);
    heartbeat(&mut sm, 1, 0);
    let r = expire(&mut sm, i64::MAX, [FOREVER; 4]);
    assert_eq!(
        (
            r.producers_expired,
            r.commit_answers_dropped,
            r.groups_expired,
            r.broker_ids_forgotten
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(r.left.producers, 1);
    assert_eq!(r.left.commit_answers, 1);
    assert_eq!(r.left.groups, 1);
    assert_eq!(r.left.broker_ids, 1);
}

#[test]
fn state_from_before_the_bounds_gets_its_clock_at_the_first_pass() {
    let mut sm = state();
    let pid = init_pid(&mut sm);
    commit_at(&mut sm, 1, 0, vec![idem(0, pid, 0, 0)]);
    heartbeat(&mut sm, 1, 0);
    // As an older snapshot holds them: no last write, no last heartbeat.
    let part = sm.partition_mut(tp(0)).unwrap();
    part.producers.get_mut(&pid).unwrap().last_write_ms = None;
    sm.broker_last_seen.clear();
    let bounds = [DAY, FOREVER, FOREVER, DAY];
    let r = expire(&mut sm, 10 * DAY, bounds);
    assert_eq!((r.producers_expired, r.broker_ids_forgotten), (0, 0));
    let r = expire(&mut sm, 11 * DAY - 1, bounds);
    assert_eq!((r.producers_expired, r.broker_ids_forgotten), (0, 0));
    let r = expire(&mut sm, 11 * DAY, bounds);
    assert_eq!((r.producers_expired, r.broker_ids_forgotten), (1, 1));
}
