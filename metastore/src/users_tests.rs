use super::*;
use crate::security::{ScramDeletion, ScramUpsertion};

fn cred(iterations: u32) -> ScramCredential {
    ScramCredential {
        salt: b"salt".to_vec(),
        iterations,
        stored_key: vec![1; 32],
        server_key: vec![2; 32],
    }
}

fn upsert(user: &str, mechanism: ScramMechanism, iterations: u32) -> ScramUpsertion {
    ScramUpsertion {
        user: user.into(),
        mechanism,
        credential: cred(iterations),
    }
}

#[test]
fn credentials_are_upserted_described_and_deleted_per_user() {
    let mut sm = StateMachine::default();
    let answers = sm.alter_scram_credentials(&AlterScramCredentials {
        upsertions: vec![
            upsert("alice", ScramMechanism::Sha256, 4096),
            upsert("alice", ScramMechanism::Sha512, 8192),
            upsert("bob", ScramMechanism::Sha512, 4096),
        ],
        deletions: vec![],
    });
    assert_eq!(
        answers,
        vec![("alice".into(), Ok(())), ("bob".into(), Ok(()))]
    );
    assert_eq!(
        sm.scram_credential("alice", ScramMechanism::Sha512),
        Some(cred(8192))
    );
    assert_eq!(sm.scram_credential("bob", ScramMechanism::Sha256), None);
    assert_eq!(
        sm.scram_users(Some(&["alice".into(), "carol".into()])),
        vec![ScramUser {
            user: "alice".into(),
            mechanisms: vec![
                (ScramMechanism::Sha256, 4096),
                (ScramMechanism::Sha512, 8192)
            ],
        }]
    );

    // A deletion of what is not there fails that user's changes only, and leaves them undone.
    let answers = sm.alter_scram_credentials(&AlterScramCredentials {
        upsertions: vec![upsert("carol", ScramMechanism::Sha256, 4096)],
        deletions: vec![
            ScramDeletion {
                user: "bob".into(),
                mechanism: ScramMechanism::Sha256,
            },
            ScramDeletion {
                user: "alice".into(),
                mechanism: ScramMechanism::Sha256,
            },
        ],
    });
    assert_eq!(
        answers,
        vec![
            ("bob".into(), Err(MetaError::CredentialNotFound)),
            ("alice".into(), Ok(())),
            ("carol".into(), Ok(())),
        ]
    );
    assert_eq!(sm.scram_credential("alice", ScramMechanism::Sha256), None);
    assert!(sm.scram_credential("bob", ScramMechanism::Sha512).is_some());
    // A user whose last credential goes is gone.
    sm.alter_scram_credentials(&AlterScramCredentials {
        upsertions: vec![],
        deletions: vec![ScramDeletion {
            user: "carol".into(),
            mechanism: ScramMechanism::Sha256,
        }],
    });
    let names: Vec<String> = sm.scram_users(None).into_iter().map(|u| u.user).collect();
    assert_eq!(names, vec!["alice".to_string(), "bob".to_string()]);
}

#[test]
fn oversized_credentials_are_refused() {
    let mut sm = StateMachine::default();
    let mut long_salt = upsert("alice", ScramMechanism::Sha256, 4096);
    long_salt.credential.salt = vec![0; MAX_SCRAM_SALT_BYTES + 1];
    let long_name = upsert(
        &"x".repeat(MAX_USER_NAME_BYTES + 1),
        ScramMechanism::Sha256,
        4096,
    );
    let answers = sm.alter_scram_credentials(&AlterScramCredentials {
        upsertions: vec![long_salt, long_name],
        deletions: vec![],
    });
    assert!(answers
        .iter()
        .all(|(_, r)| *r == Err(MetaError::SecurityOverLimit)));
    assert!(sm.scram_users(None).is_empty());
}

fn acl(name: &str, pattern: i8, principal: &str, operation: i8, permission: i8) -> AclBinding {
    use crate::security::codes::TOPIC;
    AclBinding {
        resource_type: TOPIC,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: "*".into(),
        operation,
        permission_type: permission,
    }
}

#[test]
fn acls_are_created_once_and_deleted_by_filter() {
    use crate::security::codes::{ALLOW, ANY, DENY, LITERAL, MATCH, PREFIXED};
    let mut sm = StateMachine::default();
    let read = 3;
    let write = 4;
    let bindings = vec![
        acl("orders", LITERAL, "User:alice", read, ALLOW),
        acl("ord", PREFIXED, "User:bob", write, ALLOW),
        acl("*", LITERAL, "User:carol", read, DENY),
        acl("payments", LITERAL, "User:alice", read, ALLOW),
    ];
    assert!(sm.create_acls(&bindings).iter().all(Result::is_ok));
    let v = sm.acls().version;
    // Again: nothing new, but still answered Ok.
    assert!(sm.create_acls(&bindings[..1]).iter().all(Result::is_ok));
    assert_eq!(sm.acls().bindings.len(), 4);
    assert!(sm.acls().version > v);
    // MATCH "orders" finds the literal, the prefix and the wildcard that apply to it.
    let filter = AclFilter {
        resource_type: ANY,
        resource_name: Some("orders".into()),
        pattern_type: MATCH,
        principal: None,
        host: None,
        operation: ANY,
        permission_type: ANY,
    };
    let deleted = sm.delete_acls(std::slice::from_ref(&filter));
    assert_eq!(deleted[0].len(), 3);
    assert_eq!(sm.acls().bindings, vec![bindings[3].clone()]);
    assert_eq!(sm.delete_acls(&[filter]), vec![vec![]]);
}

#[test]
fn acls_past_their_bound_are_refused() {
    use crate::security::codes::{ALLOW, LITERAL};
    let mut sm = StateMachine::default();
    let many: Vec<AclBinding> = (0..crate::limits::MAX_ACLS + 1)
        .map(|i| acl(&format!("t{i}"), LITERAL, "User:a", 3, ALLOW))
        .collect();
    let answers = sm.create_acls(&many);
    assert!(answers[..crate::limits::MAX_ACLS].iter().all(Result::is_ok));
    assert_eq!(
        answers[crate::limits::MAX_ACLS],
        Err(MetaError::SecurityOverLimit)
    );
    assert_eq!(sm.acls().bindings.len(), crate::limits::MAX_ACLS);
    let long = acl(
        &"x".repeat(MAX_USER_NAME_BYTES + 1),
        LITERAL,
        "User:a",
        3,
        ALLOW,
    );
    let mut sm = StateMachine::default();
    assert_eq!(
        sm.create_acls(&[long]),
        vec![Err(MetaError::SecurityOverLimit)]
    );
}

#[test]
fn scram_users_past_their_bound_are_refused() {
    let mut sm = StateMachine::default();
    let upsertions: Vec<_> = (0..MAX_SCRAM_USERS + 1)
        .map(|i| upsert(&format!("u{i}"), ScramMechanism::Sha256, 4096))
        .collect();
    let answers = sm.alter_scram_credentials(&AlterScramCredentials {
        upsertions,
        deletions: vec![],
    });
    assert!(answers[..MAX_SCRAM_USERS].iter().all(|(_, r)| r.is_ok()));
    assert_eq!(
        answers[MAX_SCRAM_USERS].1,
        Err(MetaError::SecurityOverLimit)
    );
    assert_eq!(sm.scram_users(None).len(), MAX_SCRAM_USERS);
}

fn named(name: &str) -> Option<QuotaName> {
    Some(QuotaName::Named(name.into()))
}

fn entity(user: Option<QuotaName>, client_id: Option<QuotaName>) -> QuotaEntity {
    QuotaEntity { user, client_id }
}

fn alteration(entity: QuotaEntity, set: &[(&str, f64)], remove: &[&str]) -> QuotaAlteration {
    QuotaAlteration {
        entity,
        set: set
            .iter()
            .map(|(k, v)| ((*k).to_owned(), QuotaValue::new(*v)))
            .collect(),
        remove: remove.iter().map(|k| (*k).to_owned()).collect(),
    }
}

fn keys(sm: &StateMachine, e: &QuotaEntity) -> Option<Vec<(String, f64)>> {
    let quotas = sm.client_quotas();
    let (_, keys) = quotas.entries.into_iter().find(|(x, _)| x == e)?;
    Some(keys.into_iter().map(|(k, v)| (k, v.get())).collect())
}

#[test]
fn quotas_are_set_and_removed_and_an_entity_without_keys_goes() {
    let mut sm = StateMachine::default();
    assert_eq!(sm.client_quotas(), ClientQuotas::default());
    let alice = entity(named("alice"), Some(QuotaName::Default));
    let apps = entity(None, Some(QuotaName::Default));
    let answers = sm.alter_client_quotas(&[
        alteration(
            alice.clone(),
            &[
                ("producer_byte_rate", 1024.5),
                ("consumer_byte_rate", 2048.0),
            ],
            &[],
        ),
        alteration(apps.clone(), &[("request_percentage", 50.0)], &[]),
    ]);
    assert_eq!(answers, vec![Ok(()), Ok(())]);
    let v1 = sm.client_quotas().version;
    assert!(v1 > 0);
    assert_eq!(
        keys(&sm, &alice),
        Some(vec![
            ("consumer_byte_rate".into(), 2048.0),
            ("producer_byte_rate".into(), 1024.5)
        ])
    );

    // Removals, then sets: a key both removed and set keeps the new value.
    let answers = sm.alter_client_quotas(&[alteration(
        alice.clone(),
        &[("producer_byte_rate", 10.0)],
        &["producer_byte_rate", "consumer_byte_rate"],
    )]);
    assert_eq!(answers, vec![Ok(())]);
    assert_eq!(
        keys(&sm, &alice),
        Some(vec![("producer_byte_rate".into(), 10.0)])
    );
    let v2 = sm.client_quotas().version;
    assert!(v2 > v1);

    // Nothing changes (a key not there, the same value again): the version stays.
    let answers = sm.alter_client_quotas(&[
        alteration(apps.clone(), &[("request_percentage", 50.0)], &["absent"]),
        alteration(entity(named("nobody"), None), &[], &["producer_byte_rate"]),
    ]);
    assert_eq!(answers, vec![Ok(()), Ok(())]);
    assert_eq!(sm.client_quotas().version, v2);
    assert_eq!(keys(&sm, &entity(named("nobody"), None)), None);

    // The last key goes, and the entity with it.
    sm.alter_client_quotas(&[alteration(apps.clone(), &[], &["request_percentage"])]);
    assert_eq!(keys(&sm, &apps), None);
    assert_eq!(sm.client_quotas().entries.len(), 1);
    assert!(sm.client_quotas().version > v2);
}

#[test]
fn each_quota_alteration_applies_or_is_refused_on_its_own() {
    let mut sm = StateMachine::default();
    let ok = entity(named("alice"), None);
    let too_many: Vec<(String, f64)> = (0..=MAX_QUOTA_KEYS)
        .map(|i| (format!("k{i}"), 1.0))
        .collect();
    let too_many: Vec<(&str, f64)> = too_many.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let long_key = "k".repeat(MAX_QUOTA_KEY_BYTES + 1);
    let long_name = "u".repeat(MAX_USER_NAME_BYTES + 1);
    let answers = sm.alter_client_quotas(&[
        alteration(entity(None, None), &[("producer_byte_rate", 1.0)], &[]),
        alteration(ok.clone(), &[("producer_byte_rate", 1.0)], &[]),
        alteration(entity(named("bob"), None), &too_many, &[]),
        alteration(entity(named("carol"), None), &[(&long_key, 1.0)], &[]),
        alteration(
            entity(None, named(&long_name)),
            &[("producer_byte_rate", 1.0)],
            &[],
        ),
        // Refused whole: the removal before the bad set does not happen either.
        alteration(ok.clone(), &[(&long_key, 1.0)], &["producer_byte_rate"]),
    ]);
    assert_eq!(
        answers,
        vec![
            Err(MetaError::InvalidRequest),
            Ok(()),
            Err(MetaError::SecurityOverLimit),
            Err(MetaError::SecurityOverLimit),
            Err(MetaError::SecurityOverLimit),
            Err(MetaError::SecurityOverLimit),
        ]
    );
    let quotas = sm.client_quotas();
    assert_eq!(quotas.version, 1);
    assert_eq!(
        quotas.entries,
        vec![(
            ok,
            vec![("producer_byte_rate".into(), QuotaValue::new(1.0))]
        )]
    );
    // Exactly the bound of keys is fine.
    let answers =
        sm.alter_client_quotas(&[alteration(entity(named("bob"), None), &too_many[1..], &[])]);
    assert_eq!(answers, vec![Ok(())]);
}

#[test]
fn quota_entities_past_their_bound_are_refused() {
    let mut sm = StateMachine::default();
    let many: Vec<QuotaAlteration> = (0..MAX_QUOTA_ENTITIES + 1)
        .map(|i| {
            alteration(
                entity(None, named(&format!("c{i}"))),
                &[("producer_byte_rate", 1.0)],
                &[],
            )
        })
        .collect();
    let answers = sm.alter_client_quotas(&many);
    assert!(answers[..MAX_QUOTA_ENTITIES].iter().all(Result::is_ok));
    assert_eq!(
        answers[MAX_QUOTA_ENTITIES],
        Err(MetaError::SecurityOverLimit)
    );
    assert_eq!(sm.client_quotas().entries.len(), MAX_QUOTA_ENTITIES);
    // An entity already kept may still change, and one may go to make room.
    let first = entity(None, named("c0"));
    let answers = sm.alter_client_quotas(&[
        alteration(first.clone(), &[("consumer_byte_rate", 2.0)], &[]),
        alteration(many[MAX_QUOTA_ENTITIES].entity.clone(), &[("x", 1.0)], &[]),
        alteration(first, &[], &["producer_byte_rate", "consumer_byte_rate"]),
        alteration(many[MAX_QUOTA_ENTITIES].entity.clone(), &[("x", 1.0)], &[]),
    ]);
    assert_eq!(
        answers,
        vec![Ok(()), Err(MetaError::SecurityOverLimit), Ok(()), Ok(())]
    );
}

fn heartbeat(sm: &mut StateMachine, host: &str, now_ms: i64) {
    sm.apply(&crate::types::Command::AgentHeartbeat(
        crate::types::AgentHeartbeat {
            host: host.into(),
            port: 9092,
            session_timeout_ms: 10_000,
            now_ms,
        },
    ));
}

fn listener(name: &str, host: &str) -> AdvertisedListener {
    AdvertisedListener {
        name: name.into(),
        host: host.into(),
        port: 9093,
    }
}

#[test]
fn only_a_known_agent_sets_its_listeners_within_their_bounds() {
    let mut sm = StateMachine::default();
    let mine = vec![
        listener("PLAINTEXT", "a"),
        listener("SASL_SSL", "a.example"),
    ];
    assert_eq!(
        sm.set_agent_listeners("a:9092", &mine),
        Err(MetaError::UnknownAgent)
    );
    heartbeat(&mut sm, "a", 0);
    assert_eq!(sm.set_agent_listeners("a:9092", &mine), Ok(()));
    // "host:port", as heartbeats key agents: the host alone is no agent.
    assert_eq!(
        sm.set_agent_listeners("a", &mine),
        Err(MetaError::UnknownAgent)
    );
    let too_many = vec![listener("L", "a"); MAX_AGENT_LISTENERS + 1];
    let long_name = vec![listener(&"n".repeat(MAX_LISTENER_NAME_BYTES + 1), "a")];
    let long_host = vec![listener("L", &"h".repeat(MAX_LISTENER_HOST_BYTES + 1))];
    for refused in [too_many, long_name, long_host] {
        assert_eq!(
            sm.set_agent_listeners("a:9092", &refused),
            Err(MetaError::SecurityOverLimit)
        );
    }
    assert_eq!(
        sm.agent_listeners(),
        &BTreeMap::from([("a:9092".to_owned(), mine)])
    );
    // A new list replaces the old; an empty one leaves no entry.
    let bound = vec![listener("L", "a"); MAX_AGENT_LISTENERS];
    assert_eq!(sm.set_agent_listeners("a:9092", &bound), Ok(()));
    assert_eq!(sm.agent_listeners()["a:9092"], bound);
    assert_eq!(sm.set_agent_listeners("a:9092", &[]), Ok(()));
    assert!(sm.agent_listeners().is_empty());
}

#[test]
fn listeners_go_when_the_agents_address_is_forgotten() {
    const DAY: i64 = 86_400_000;
    let mut sm = StateMachine::default();
    heartbeat(&mut sm, "a", 0);
    heartbeat(&mut sm, "b", 0);
    let answer = |sm: &mut StateMachine, agent: &str| {
        sm.apply(&crate::types::Command::SetAgentListeners {
            agent: agent.into(),
            listeners: vec![listener("PLAINTEXT", agent)],
        })
    };
    for agent in ["a:9092", "b:9092"] {
        assert_eq!(
            answer(&mut sm, agent),
            crate::types::CommandResponse::AgentListenersSet(Ok(()))
        );
    }
    // b goes on heartbeating; a's session lapses, but its address (and listeners) are kept
    // until the expiry pass forgets it, as its broker id is.
    heartbeat(&mut sm, "b", DAY);
    assert_eq!(sm.agent_listeners().len(), 2);
    let pass = |now_ms| {
        crate::types::Command::ExpireState(crate::types::ExpireState {
            now_ms,
            producer_id_expiration_ms: -1,
            commit_answer_retention_ms: -1,
            offsets_retention_ms: -1,
            broker_id_retention_ms: DAY,
        })
    };
    sm.apply(&pass(DAY + 1));
    let left: Vec<&String> = sm.agent_listeners().keys().collect();
    assert_eq!(left, vec!["b:9092"]);
    // Gone with its address: a must heartbeat again before it sets any.
    assert_eq!(
        answer(&mut sm, "a:9092"),
        crate::types::CommandResponse::AgentListenersSet(Err(MetaError::UnknownAgent))
    );
}
