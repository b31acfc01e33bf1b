#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const T: Uuid = Uuid::from_u128(7);

fn topics(partitions: i32) -> TopicsMeta {
    BTreeMap::from([("t".to_string(), (T, partitions))])
}

fn req(member_id: &str, epoch: i32, owned: Option<BTreeSet<Tp>>) -> HeartbeatRequest {
    HeartbeatRequest {
        version: 0,
        member_id: member_id.into(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout: Duration::from_secs(30),
        subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_string()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn group() -> ConsumerGroup {
    ConsumerGroup::new(
        "g".into(),
        ConsumerLimits {
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            ..Default::default()
        },
    )
}

fn ps(list: &[i32]) -> BTreeSet<Tp> {
    list.iter().map(|&p| (T, p)).collect()
}

#[test]
fn a_second_member_gets_partitions_only_once_the_first_released_them() {
    let now = Instant::now();
    let mut g = group();
    let a = g.heartbeat(req("", 0, None), &topics(4), now);
    assert_eq!(a.error, codes::NONE);
    let a_id = a.member_id.clone().unwrap();
    assert_eq!(a.member_epoch, 1);
    assert_eq!(a.assignment, Some(ps(&[0, 1, 2, 3])));

    let b = g.heartbeat(req("", 0, None), &topics(4), now);
    let b_id = b.member_id.clone().unwrap();
    assert_eq!(b.member_epoch, 2);
    // a still holds everything: b gets nothing yet.
    assert_eq!(b.assignment, Some(BTreeSet::new()));
    assert_eq!(g.state_name(), "Reconciling");

    // a is told to keep only its target half, at its old epoch.
    let a2 = g.heartbeat(req(&a_id, 1, Some(ps(&[0, 1, 2, 3]))), &topics(4), now);
    let keep = a2.assignment.clone().unwrap();
    assert_eq!(keep.len(), 2);
    assert_eq!(a2.member_epoch, 1);
    // It releases them and moves to the new epoch.
    let a3 = g.heartbeat(req(&a_id, 1, Some(keep.clone())), &topics(4), now);
    assert_eq!(a3.member_epoch, 2);
    assert_eq!(
        a3.assignment,
        Some(keep.clone()),
        "the same partitions, at the new epoch"
    );
    let a4 = g.heartbeat(req(&a_id, 2, None), &topics(4), now);
    assert_eq!((a4.member_epoch, a4.assignment), (2, None), "nothing new");
    // Now b gets the other half.
    let b2 = g.heartbeat(req(&b_id, 2, Some(BTreeSet::new())), &topics(4), now);
    let theirs = b2.assignment.unwrap();
    assert_eq!(theirs.len(), 2);
    assert!(theirs.is_disjoint(&keep));
    assert_eq!(g.state_name(), "Stable");
}

#[test]
fn stale_epochs_are_fenced_and_unknown_members_refused() {
    let now = Instant::now();
    let mut g = group();
    let a = g.heartbeat(req("", 0, None), &topics(2), now);
    let a_id = a.member_id.unwrap();
    let r = g.heartbeat(req(&a_id, 7, None), &topics(2), now);
    assert_eq!(r.error, codes::FENCED_MEMBER_EPOCH);
    let r = g.heartbeat(req("nobody", 1, None), &topics(2), now);
    assert_eq!(r.error, codes::UNKNOWN_MEMBER_ID);
    let mut bad = req("", 0, None);
    bad.subscribed_topic_names = None;
    assert_eq!(
        g.heartbeat(bad, &topics(2), now).error,
        codes::INVALID_REQUEST
    );
    let mut bad = req("", 0, None);
    bad.server_assignor = Some("sticky-ish".into());
    assert_eq!(
        g.heartbeat(bad, &topics(2), now).error,
        codes::UNSUPPORTED_ASSIGNOR
    );
}

#[test]
fn leaving_and_expiring_free_partitions_for_the_rest() {
    let now = Instant::now();
    let mut g = group();
    let a = g
        .heartbeat(req("", 0, None), &topics(2), now)
        .member_id
        .unwrap();
    let b = g
        .heartbeat(req("", 0, None), &topics(2), now)
        .member_id
        .unwrap();
    let left = g.heartbeat(req(&a, -1, None), &topics(2), now);
    assert_eq!((left.error, left.member_epoch), (codes::NONE, -1));
    let r = g.heartbeat(req(&b, 2, Some(BTreeSet::new())), &topics(2), now);
    assert_eq!(r.assignment, Some(ps(&[0, 1])));

    // b goes silent: after its session it is gone.
    g.tick(now + Duration::from_secs(10));
    assert!(g.is_empty());
    assert_eq!(g.state_name(), "Empty");
}

#[test]
fn new_partitions_are_assigned_when_the_topic_grows() {
    let now = Instant::now();
    let mut g = group();
    let a = g.heartbeat(req("", 0, None), &topics(2), now);
    let a_id = a.member_id.unwrap();
    let r = g.heartbeat(req(&a_id, 1, Some(ps(&[0, 1]))), &topics(3), now);
    assert_eq!(r.member_epoch, 2);
    assert_eq!(r.assignment, Some(ps(&[0, 1, 2])));
}

#[test]
fn range_gives_contiguous_ranges_and_uniform_is_sticky() {
    let subs: BTreeMap<&str, BTreeSet<&str>> = ["a", "b", "c"]
        .into_iter()
        .map(|m| (m, BTreeSet::from(["t"])))
        .collect();
    let range = range_assign(&subs, &topics(7));
    assert_eq!(range["a"], ps(&[0, 1, 2]));
    assert_eq!(range["b"], ps(&[3, 4]));
    assert_eq!(range["c"], ps(&[5, 6]));

    let two: BTreeMap<&str, BTreeSet<&str>> = ["a", "b"]
        .into_iter()
        .map(|m| (m, BTreeSet::from(["t"])))
        .collect();
    let before = uniform_assign(&two, &topics(6), &BTreeMap::new());
    let after = uniform_assign(&subs, &topics(6), &before);
    for m in ["a", "b"] {
        assert_eq!(after[m].len(), 2);
        assert!(after[m].is_subset(&before[m]), "{m} kept what it could");
    }
    assert_eq!(after["c"].len(), 2);
    let all: BTreeSet<Tp> = after.values().flatten().copied().collect();
    assert_eq!(all, ps(&[0, 1, 2, 3, 4, 5]));
}

#[test]
fn a_static_member_that_comes_back_keeps_its_partitions() {
    let now = Instant::now();
    let mut g = group();
    let mut join = req("", 0, None);
    join.instance_id = Some("i".into());
    let first = g.heartbeat(join, &topics(3), now);
    let epoch = g.group_epoch();
    let mut leave = req(first.member_id.as_deref().unwrap(), -2, None);
    leave.instance_id = Some("i".into());
    g.heartbeat(leave, &topics(3), now);
    let mut back = req("", 0, None);
    back.instance_id = Some("i".into());
    let again = g.heartbeat(back, &topics(3), now);
    assert_eq!(again.assignment, Some(ps(&[0, 1, 2])));
    assert_eq!(g.group_epoch(), epoch, "no new group epoch");
    assert_eq!(g.members().count(), 1);
}

const U: Uuid = Uuid::from_u128(8);
const V: Uuid = Uuid::from_u128(9);

fn tps(list: &[(Uuid, i32)]) -> BTreeSet<Tp> {
    list.iter().copied().collect()
}

#[test]
fn a_regex_subscription_gets_the_matching_topics_and_those_created_later() {
    let now = Instant::now();
    let mut g = group();
    let mut all: TopicsMeta = BTreeMap::from([
        ("orders-eu".to_string(), (T, 1)),
        ("orders-us".to_string(), (U, 2)),
        ("payments".to_string(), (V, 1)),
    ]);
    let mut join = req("", 0, None);
    join.subscribed_topic_names = None;
    join.subscribed_topic_regex = Some("orders-.*".into());
    let a = g.heartbeat(join, &all, now);
    assert_eq!(a.error, codes::NONE);
    let a_id = a.member_id.unwrap();
    // Whole names only: "orders-.*" does not match "xorders-eu".
    assert_eq!(a.assignment, Some(tps(&[(T, 0), (U, 0), (U, 1)])));
    let held = tps(&[(T, 0), (U, 0), (U, 1)]);
    let nothing = g.heartbeat(req(&a_id, a.member_epoch, Some(held.clone())), &all, now);
    assert_eq!(nothing.assignment, None);

    // A new matching topic is assigned on the next heartbeat; one that does not match is not.
    let w = Uuid::from_u128(10);
    all.insert("orders-apac".into(), (w, 1));
    all.insert("xorders-eu".into(), (Uuid::from_u128(11), 1));
    let r = g.heartbeat(req(&a_id, a.member_epoch, Some(held.clone())), &all, now);
    assert_eq!(r.member_epoch, a.member_epoch + 1);
    assert_eq!(r.assignment, Some(tps(&[(T, 0), (U, 0), (U, 1), (w, 0)])));

    // The regex changed to another one: what it no longer matches is revoked.
    let mut change = req(&a_id, r.member_epoch, Some(r.assignment.clone().unwrap()));
    change.subscribed_topic_regex = Some("payments|orders-eu".into());
    let r2 = g.heartbeat(change, &all, now);
    assert_eq!(r2.assignment, Some(tps(&[(T, 0)])));
    assert_eq!(
        g.member(&a_id).and_then(|m| m.regex.clone()).as_deref(),
        Some("payments|orders-eu")
    );
}

#[test]
fn names_and_a_regex_together_are_one_subscription() {
    let now = Instant::now();
    let mut g = group();
    let all: TopicsMeta = BTreeMap::from([
        ("t".to_string(), (T, 1)),
        ("logs-1".to_string(), (U, 1)),
        ("other".to_string(), (V, 1)),
    ]);
    let mut join = req("", 0, None);
    join.subscribed_topic_regex = Some("logs-[0-9]+".into());
    let a = g.heartbeat(join, &all, now);
    assert_eq!(a.assignment, Some(tps(&[(T, 0), (U, 0)])));
    // An empty regex clears it: the names stay.
    let mut clear = req(
        a.member_id.as_deref().unwrap(),
        a.member_epoch,
        a.assignment.clone(),
    );
    clear.subscribed_topic_regex = Some(String::new());
    let r = g.heartbeat(clear, &all, now);
    assert_eq!(r.assignment, Some(tps(&[(T, 0)])));
}

#[test]
fn an_invalid_regex_is_refused_and_joins_nothing() {
    let now = Instant::now();
    let mut g = group();
    let mut join = req("", 0, None);
    join.subscribed_topic_names = None;
    join.subscribed_topic_regex = Some("orders-(".into());
    let r = g.heartbeat(join, &topics(1), now);
    assert_eq!(r.error, codes::INVALID_REGULAR_EXPRESSION);
    let message = r.error_message.unwrap();
    assert!(
        message.starts_with("SubscribedTopicRegex `orders-(` is not a valid regular expression"),
        "{message}"
    );
    assert!(g.is_empty());
    // Neither names nor a regex on the first heartbeat.
    let mut bare = req("", 0, None);
    bare.subscribed_topic_names = None;
    let r = g.heartbeat(bare, &topics(1), now);
    assert_eq!(r.error, codes::INVALID_REQUEST);
    assert_eq!(
        r.error_message.as_deref(),
        Some("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
    );
}

fn static_join(instance: &str) -> HeartbeatRequest {
    let mut join = req("", 0, None);
    join.instance_id = Some(instance.into());
    join
}

#[test]
fn an_instance_id_held_by_an_active_member_is_not_released_to_another() {
    let now = Instant::now();
    let mut g = group();
    let first = g.heartbeat(static_join("i"), &topics(2), now);
    let first_id = first.member_id.clone().unwrap();
    assert_eq!(first.assignment, Some(ps(&[0, 1])));

    let second = g.heartbeat(static_join("i"), &topics(2), now);
    assert_eq!(second.error, codes::UNRELEASED_INSTANCE_ID);
    assert!(second.member_id.is_none());
    assert_eq!(g.members().count(), 1);
    // The holder carries on undisturbed.
    let mut hb = req(&first_id, first.member_epoch, Some(ps(&[0, 1])));
    hb.instance_id = Some("i".into());
    let r = g.heartbeat(hb, &topics(2), now);
    assert_eq!((r.error, r.member_epoch), (codes::NONE, first.member_epoch));

    // Once it leaves with -2, the next member with the instance id takes its place and
    // partitions over, at its epoch, without a new group epoch.
    let epoch = g.group_epoch();
    let mut leave = req(&first_id, -2, None);
    leave.instance_id = Some("i".into());
    assert_eq!(g.heartbeat(leave, &topics(2), now).member_epoch, -2);
    let back = g.heartbeat(static_join("i"), &topics(2), now);
    assert_eq!(back.error, codes::NONE);
    let back_id = back.member_id.clone().unwrap();
    assert_ne!(back_id, first_id);
    assert_eq!(
        (back.member_epoch, back.assignment),
        (first.member_epoch, Some(ps(&[0, 1])))
    );
    assert_eq!(g.group_epoch(), epoch);

    // The old member id is fenced now.
    let mut old = req(&first_id, first.member_epoch, None);
    old.instance_id = Some("i".into());
    assert_eq!(
        g.heartbeat(old, &topics(2), now).error,
        codes::FENCED_INSTANCE_ID
    );
    // And a heartbeat with an instance id nobody holds is an unknown member.
    let mut stranger = req(&back_id, back.member_epoch, None);
    stranger.instance_id = Some("j".into());
    assert_eq!(
        g.heartbeat(stranger, &topics(2), now).error,
        codes::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_full_group_refuses_new_members_but_not_its_own() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new(
        "g".into(),
        ConsumerLimits {
            max_size: 2,
            ..Default::default()
        },
    );
    let a = g.heartbeat(req("", 0, None), &topics(2), now);
    let b = g.heartbeat(req("", 0, None), &topics(2), now);
    assert_eq!((a.error, b.error), (codes::NONE, codes::NONE));
    let c = g.heartbeat(req("", 0, None), &topics(2), now);
    assert_eq!(c.error, codes::GROUP_MAX_SIZE_REACHED);
    // A member of the group rejoining (epoch 0 again) still may.
    let a_id = a.member_id.expect("id");
    let again = g.heartbeat(req(&a_id, 0, None), &topics(2), now);
    assert_eq!(again.error, codes::NONE);
}
