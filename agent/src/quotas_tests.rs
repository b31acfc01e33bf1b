use skiff_metastore::security::QuotaValue;

use super::*;

fn quotas(entries: Vec<(QuotaEntity, Vec<(&str, f64)>)>) -> Quotas {
    let q = Quotas::new(Window::default());
    q.replace(&ClientQuotas {
        version: 1,
        entries: entries
            .into_iter()
            .map(|(e, v)| {
                (
                    e,
                    v.into_iter()
                        .map(|(k, x)| (k.to_owned(), QuotaValue::new(x)))
                        .collect(),
                )
            })
            .collect(),
    });
    q
}

fn user(name: &str) -> Option<QuotaName> {
    Some(QuotaName::Named(name.to_owned()))
}

fn entity(user: Option<QuotaName>, client_id: Option<QuotaName>) -> QuotaEntity {
    QuotaEntity { user, client_id }
}

#[test]
fn no_quota_no_throttle() {
    let q = Quotas::new(Window::default());
    assert!(!q.any(Kind::Produce));
    let now = Instant::now();
    assert_eq!(
        q.record(Kind::Produce, "alice", "app", 1 << 30, now),
        Duration::ZERO
    );
}

#[test]
fn over_the_rate_is_throttled_in_proportion() {
    // 1000 B/s; the first bytes are measured over 10 s (all samples but one).
    let q = quotas(vec![(
        entity(user("alice"), None),
        vec![(PRODUCER_BYTE_RATE, 1000.0)],
    )]);
    assert!(q.any(Kind::Produce) && !q.any(Kind::Fetch));
    let now = Instant::now();
    assert_eq!(
        q.record(Kind::Produce, "alice", "app", 5_000, now),
        Duration::ZERO
    );
    // 20,000 bytes over 10 s is 2000 B/s: twice the quota, so one window's worth of wait.
    let t = q.record(Kind::Produce, "alice", "app", 15_000, now);
    assert_eq!(t, Duration::from_secs(10));
    // Fetches and other users are not counted against it.
    assert_eq!(
        q.record(Kind::Fetch, "alice", "app", 1 << 30, now),
        Duration::ZERO
    );
    assert_eq!(
        q.record(Kind::Produce, "bob", "app", 1 << 30, now),
        Duration::ZERO
    );
}

#[test]
fn the_throttle_is_bounded_by_the_window() {
    let q = quotas(vec![(
        entity(user("alice"), None),
        vec![(PRODUCER_BYTE_RATE, 1.0)],
    )]);
    let t = q.record(Kind::Produce, "alice", "app", 1 << 40, Instant::now());
    assert_eq!(t, Duration::from_secs(11));
}

#[test]
fn the_rate_forgets_old_samples() {
    let q = quotas(vec![(
        entity(None, user("app")),
        vec![(CONSUMER_BYTE_RATE, 1000.0)],
    )]);
    let start = Instant::now();
    assert!(!q.record(Kind::Fetch, "x", "app", 100_000, start).is_zero());
    let later = start + Duration::from_secs(12);
    assert_eq!(q.record(Kind::Fetch, "x", "app", 10, later), Duration::ZERO);
}

#[test]
fn a_fetch_within_the_quota_is_sent_and_one_over_it_is_emptied() {
    let q = quotas(vec![(
        entity(user("alice"), None),
        vec![(CONSUMER_BYTE_RATE, 1000.0)],
    )]);
    let now = Instant::now();
    // Within the quota before it: sent, even though it takes the caller far past it.
    let Fetched::Send(t) = q.record_fetch("alice", "c", 50_000, now) else {
        panic!("the first answer is sent");
    };
    assert!(!t.is_zero());
    // Now over: answered empty, and not counted.
    let Fetched::Empty(t2) = q.record_fetch("alice", "c", 50_000, now) else {
        panic!("an answer while over the quota is emptied");
    };
    assert_eq!(t2, t);
    // Others are unaffected.
    assert_eq!(
        q.record_fetch("bob", "c", 50_000, now),
        Fetched::Send(Duration::ZERO)
    );
    // Once the window has moved on, answers go out again.
    let later = now + Duration::from_secs(12);
    assert_eq!(
        q.record_fetch("alice", "c", 100, later),
        Fetched::Send(Duration::ZERO)
    );
}

#[test]
fn precedence_is_kafkas() {
    let d = || Some(QuotaName::Default);
    let q = quotas(vec![
        (
            entity(user("alice"), user("app")),
            vec![(PRODUCER_BYTE_RATE, 1.0)],
        ),
        (entity(user("alice"), None), vec![(PRODUCER_BYTE_RATE, 2.0)]),
        (entity(d(), d()), vec![(PRODUCER_BYTE_RATE, 3.0)]),
        (entity(d(), None), vec![(PRODUCER_BYTE_RATE, 4.0)]),
        (entity(None, user("tool")), vec![(PRODUCER_BYTE_RATE, 5.0)]),
    ]);
    let quota = |u: &str, c: &str| q.resolve(Kind::Produce, u, c).map(|(_, r)| r);
    assert_eq!(quota("alice", "app"), Some(1.0));
    assert_eq!(quota("alice", "other"), Some(2.0));
    assert_eq!(quota("bob", "app"), Some(3.0));
    // A user quota (default or not) comes before a client-id one.
    assert_eq!(quota("bob", "tool"), Some(3.0));
    assert_eq!(q.resolve(Kind::Fetch, "bob", "tool"), None);
}

#[test]
fn a_default_quota_is_each_callers_own() {
    let q = quotas(vec![(
        entity(Some(QuotaName::Default), None),
        vec![(PRODUCER_BYTE_RATE, 1000.0)],
    )]);
    let now = Instant::now();
    assert!(!q.record(Kind::Produce, "alice", "a", 30_000, now).is_zero());
    assert_eq!(
        q.record(Kind::Produce, "bob", "b", 5_000, now),
        Duration::ZERO
    );
    // ... while a user's quota is shared by all their client ids.
    assert!(!q
        .record(Kind::Produce, "alice", "another", 1, now)
        .is_zero());
}

#[test]
fn an_older_copy_is_ignored() {
    let q = quotas(vec![(
        entity(user("alice"), None),
        vec![(PRODUCER_BYTE_RATE, 1.0)],
    )]);
    q.replace(&ClientQuotas {
        version: 0,
        entries: vec![],
    });
    assert!(q.any(Kind::Produce));
    q.replace(&ClientQuotas {
        version: 2,
        entries: vec![],
    });
    assert!(!q.any(Kind::Produce));
}

#[test]
fn trackers_are_bounded() {
    let q = quotas(vec![(
        entity(None, Some(QuotaName::Default)),
        vec![(PRODUCER_BYTE_RATE, 1e12)],
    )]);
    let now = Instant::now();
    for i in 0..(MAX_TRACKERS + 100) {
        q.record(Kind::Produce, "u", &format!("client-{i}"), 1, now);
    }
    assert!(q.trackers.lock().expect("lock").len() <= MAX_TRACKERS + 1);
}

#[test]
fn a_mute_lasts_its_throttle() {
    let m = Mute::default();
    assert!(m.until().is_none());
    m.extend(Duration::ZERO);
    assert!(m.until().is_none());
    m.extend(Duration::from_secs(5));
    let until = m.until().expect("muted");
    m.extend(Duration::from_secs(1));
    assert_eq!(
        m.until(),
        Some(until),
        "a shorter throttle does not shorten the mute"
    );
}

#[test]
fn a_caller_over_its_quota_is_admitted_only_once_back_within_it() {
    let q = quotas(vec![(
        entity(user("alice"), None),
        vec![(PRODUCER_BYTE_RATE, 1000.0)],
    )]);
    let now = Instant::now();
    // Within: admitted, and told how long to hold off.
    let t = q
        .try_record(Kind::Produce, "alice", "a", 20_000, now)
        .expect("admitted");
    assert_eq!(t, Duration::from_secs(10));
    // Over, from any connection or client id of the same user: not admitted, not counted.
    let wait = q
        .try_record(Kind::Produce, "alice", "b", 1, now)
        .expect_err("over");
    assert_eq!(wait, t);
    // Once the window has passed, admitted again.
    let later = now + Duration::from_secs(12);
    assert_eq!(
        q.try_record(Kind::Produce, "alice", "b", 100, later),
        Ok(Duration::ZERO)
    );
}
