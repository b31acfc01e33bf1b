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
