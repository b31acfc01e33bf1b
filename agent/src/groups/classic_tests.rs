#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn limits() -> GroupLimits {
    GroupLimits {
        initial_rebalance_delay: Duration::ZERO,
        ..GroupLimits::default()
    }
}

fn join_req(member_id: &str, instance: Option<&str>, metadata: &'static [u8]) -> JoinRequest {
    JoinRequest {
        version: 7,
        member_id: member_id.into(),
        group_instance_id: instance.map(Into::into),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(metadata))],
    }
}

fn now_result<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Now(t) => t,
        Reply::Later(_) => panic!("expected an answer now"),
    }
}

fn later<T>(r: Reply<T>) -> oneshot::Receiver<T> {
    match r {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected to wait"),
    }
}

fn answered<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv().expect("answered by now")
}

/// KIP-394 first: an id, then the join with it.
fn join_new(g: &mut Group, now: Instant) -> (String, Reply<JoinResult>) {
    let first = now_result(g.join(join_req("", None, b"m"), now));
    assert_eq!(first.error, codes::MEMBER_ID_REQUIRED);
    let id = first.member_id;
    let reply = g.join(join_req(&id, None, b"m"), now);
    (id, reply)
}

fn sync_req(member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        member_id: member.into(),
        group_instance_id: None,
        generation_id: generation,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    }
}

/// Two members through a whole rebalance; returns their ids (a leads) and the generation.
fn stable_pair(g: &mut Group, now: Instant) -> (String, String, i32) {
    let (a, reply) = join_new(g, now);
    let mut a_join = later(reply);
    let first = answered(&mut a_join);
    assert_eq!((first.error, first.generation_id), (codes::NONE, 1));
    let (b, reply) = join_new(g, now);
    let mut b_join = later(reply);
    assert!(b_join.try_recv().is_err(), "b waits for a to rejoin");
    assert_eq!(g.heartbeat(&a, None, 1, now), codes::REBALANCE_IN_PROGRESS);
    let mut a_join = later(g.join(join_req(&a, None, b"m"), now));
    let (ra, rb) = (answered(&mut a_join), answered(&mut b_join));
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader, a);
    assert_eq!(rb.leader, a);
    assert_eq!(ra.members.len(), 2, "the leader gets everyone's metadata");
    assert!(rb.members.is_empty());
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));

    let mut b_sync = later(g.sync(sync_req(&b, 2, vec![]), now));
    let assignments = vec![
        (a.clone(), Bytes::from_static(b"A")),
        (b.clone(), Bytes::from_static(b"B")),
    ];
    let mut a_sync = later(g.sync(sync_req(&a, 2, assignments), now));
    assert_eq!(answered(&mut a_sync).assignment, Bytes::from_static(b"A"));
    assert_eq!(answered(&mut b_sync).assignment, Bytes::from_static(b"B"));
    assert_eq!(g.state(), GroupState::Stable);
    (a, b, 2)
}

#[test]
fn members_join_sync_and_get_their_assignments() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), limits());
    let (a, b, generation) = stable_pair(&mut g, now);
    assert_eq!(g.heartbeat(&a, None, generation, now), codes::NONE);
    assert_eq!(
        g.heartbeat(&b, None, generation - 1, now),
        codes::ILLEGAL_GENERATION
    );
    assert_eq!(
        g.heartbeat("nobody", None, generation, now),
        codes::UNKNOWN_MEMBER_ID
    );
    // A follower rejoining with the same metadata changes nothing.
    let again = now_result(g.join(join_req(&b, None, b"m"), now));
    assert_eq!(again.generation_id, generation);
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn a_leave_rebalances_the_rest() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), limits());
    let (a, b, generation) = stable_pair(&mut g, now);
    assert_eq!(g.leave(&b, None, now), codes::NONE);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&a, None, generation, now),
        codes::REBALANCE_IN_PROGRESS
    );
    let mut a_join = later(g.join(join_req(&a, None, b"m"), now));
    let r = answered(&mut a_join);
    assert_eq!((r.generation_id, r.members.len()), (generation + 1, 1));
    assert_eq!(g.leave(&b, None, now), codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_silent_member_expires_after_its_session_timeout() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), limits());
    let (a, b, generation) = stable_pair(&mut g, now);
    let later_on = now + SESSION - Duration::from_millis(1);
    assert_eq!(g.heartbeat(&a, None, generation, later_on), codes::NONE);
    g.tick(now + SESSION);
    assert_eq!(g.state(), GroupState::PreparingRebalance, "b expired");
    assert_eq!(
        g.heartbeat(&b, None, generation, now + SESSION),
        codes::UNKNOWN_MEMBER_ID
    );
    let mut a_join = later(g.join(join_req(&a, None, b"m"), now + SESSION));
    assert_eq!(answered(&mut a_join).members.len(), 1);
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), limits());
    let (a, b, _) = stable_pair(&mut g, now);
    // a asks for a new assignment; b never rejoins (but keeps heartbeating).
    let mut a_join = later(g.join(join_req(&a, None, b"new"), now));
    let t = now + REBALANCE - Duration::from_millis(1);
    assert_eq!(g.heartbeat(&b, None, 2, t), codes::REBALANCE_IN_PROGRESS);
    g.tick(t);
    assert!(a_join.try_recv().is_err());
    g.tick(now + REBALANCE);
    let r = answered(&mut a_join);
    assert_eq!((r.generation_id, r.members.len()), (3, 1));
}

#[test]
fn kip_394_ids_lapse_and_unknown_ids_are_refused() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), limits());
    let first = now_result(g.join(join_req("", None, b"m"), now));
    assert_eq!(first.error, codes::MEMBER_ID_REQUIRED);
    assert!(!first.member_id.is_empty());
    g.tick(now + SESSION);
    let late = now_result(g.join(join_req(&first.member_id, None, b"m"), now + SESSION));
    assert_eq!(late.error, codes::UNKNOWN_MEMBER_ID);
    // Old clients (v3 and before) join at once.
    let mut old = join_req("", None, b"m");
    old.version = 3;
    let mut rx = later(g.join(old, now));
    assert_eq!(answered(&mut rx).generation_id, 1);
}

#[test]
fn a_restarted_static_member_keeps_its_assignment_without_a_rebalance() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), limits());
    let mut a_join = later(g.join(join_req("", Some("i-a"), b"m"), now));
    let a = answered(&mut a_join);
    let mut b_join = later(g.join(join_req("", Some("i-b"), b"m"), now));
    let mut a_join = later(g.join(join_req(&a.member_id, Some("i-a"), b"m"), now));
    let (ra, rb) = (answered(&mut a_join), answered(&mut b_join));
    let assignments = vec![
        (ra.member_id.clone(), Bytes::from_static(b"A")),
        (rb.member_id.clone(), Bytes::from_static(b"B")),
    ];
    let mut b_sync = later(g.sync(sync_req(&rb.member_id, 2, vec![]), now));
    let mut a_sync = later(g.sync(sync_req(&ra.member_id, 2, assignments), now));
    answered(&mut a_sync);
    answered(&mut b_sync);

    // b restarts: a new process, no member id, the same instance id.
    let back = now_result(g.join(join_req("", Some("i-b"), b"m"), now));
    assert_eq!(back.error, codes::NONE);
    assert_eq!(back.generation_id, 2, "no new generation");
    assert_ne!(back.member_id, rb.member_id);
    assert_eq!(g.state(), GroupState::Stable);
    let mut sync = sync_req(&back.member_id, 2, vec![]);
    sync.group_instance_id = Some("i-b".into());
    assert_eq!(
        now_result(g.sync(sync, now)).assignment,
        Bytes::from_static(b"B")
    );
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(&rb.member_id, Some("i-b"), 2, now),
        codes::FENCED_INSTANCE_ID
    );
    assert_eq!(g.heartbeat(&ra.member_id, Some("i-a"), 2, now), codes::NONE);
}

#[test]
fn protocols_must_match_the_group() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), limits());
    let _ = stable_pair(&mut g, now);
    let mut other = join_req("", None, b"m");
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    assert_eq!(
        now_result(g.join(other, now)).error,
        codes::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut short = join_req("", None, b"m");
    short.session_timeout = Duration::from_millis(100);
    assert_eq!(
        now_result(g.join(short, now)).error,
        codes::INVALID_SESSION_TIMEOUT
    );
}

#[test]
fn commits_are_checked_against_the_generation() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), limits());
    assert_eq!(g.check_commit("", None, -1, now), Ok(()), "no members yet");
    let (a, _, generation) = stable_pair(&mut g, now);
    assert_eq!(g.check_commit(&a, None, generation, now), Ok(()));
    assert_eq!(
        g.check_commit(&a, None, generation - 1, now),
        Err(codes::ILLEGAL_GENERATION)
    );
    assert_eq!(
        g.check_commit("", None, -1, now),
        Err(codes::UNKNOWN_MEMBER_ID)
    );
}

#[test]
fn the_initial_delay_gathers_members_into_one_generation() {
    let now = Instant::now();
    let mut g = Group::new(
        "g".into(),
        GroupLimits {
            initial_rebalance_delay: Duration::from_secs(3),
            ..GroupLimits::default()
        },
    );
    let (_, a) = join_new(&mut g, now);
    let mut a = later(a);
    let (_, b) = join_new(&mut g, now + Duration::from_secs(1));
    let mut b = later(b);
    g.tick(now + Duration::from_secs(3));
    assert!(a.try_recv().is_err(), "b's arrival pushed the delay back");
    g.tick(now + Duration::from_secs(4));
    let (ra, rb) = (answered(&mut a), answered(&mut b));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
}
