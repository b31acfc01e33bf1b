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
