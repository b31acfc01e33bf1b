//! AlterUserScramCredentials and DescribeUserScramCredentials (KIP-554): the SCRAM users kept in
//! the metastore, as kafka-configs.sh --entity-type users and the admin clients manage them.

use std::collections::BTreeSet;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::security::{
    AlterScramCredentials, ScramDeletion, ScramMechanism, ScramUpsertion,
};

use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::protocol::codes;
use crate::sasl::scram;

/// One user's answer: an error code and message, or success.
type Verdict = (i16, Option<&'static str>);

pub async fn alter(
    agent: &Agent,
    caller: &Caller,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !agent.allowed(
        caller,
        Operation::Alter,
        resource::CLUSTER,
        resource::CLUSTER_NAME,
    ) {
        let mut users: Vec<String> = req
            .deletions
            .iter()
            .map(|d| d.name.to_string())
            .chain(req.upsertions.iter().map(|u| u.name.to_string()))
            .collect();
        users.dedup();
        let results = users
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(codes::CLUSTER_AUTHORIZATION_FAILED)
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    // Users in the order the request first names them, each with the first problem found.
    let mut users: Vec<(String, Option<Verdict>)> = Vec::new();
    let mut note =
        |user: &str, verdict: Option<Verdict>| match users.iter_mut().find(|(u, _)| u == user) {
            Some((_, v)) => {
                if v.is_none() {
                    *v = verdict;
                }
            }
            None => users.push((user.to_owned(), verdict)),
        };
    let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
    let mut twice = BTreeSet::new();
    let named = req
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .chain(
            req.upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism)),
        );
    for key in named {
        if !seen.insert(key.clone()) {
            twice.insert(key.0);
        }
    }
    let mut change = AlterScramCredentials {
        upsertions: Vec::new(),
        deletions: Vec::new(),
    };
    for d in &req.deletions {
        let user = d.name.as_str();
        let verdict = check(user, d.mechanism, &twice).err();
        if let (None, Some(mechanism)) = (verdict, ScramMechanism::from_kafka_code(d.mechanism)) {
            change.deletions.push(ScramDeletion {
                user: user.to_owned(),
                mechanism,
            });
        }
        note(user, verdict);
    }
    for u in &req.upsertions {
        let user = u.name.as_str();
        let mut verdict = check(user, u.mechanism, &twice).err();
        if verdict.is_none() {
            verdict = if u.iterations < scram::MIN_ITERATIONS as i32 {
                Some((codes::UNACCEPTABLE_CREDENTIAL, Some("Too few iterations")))
            } else if u.iterations > scram::MAX_ITERATIONS as i32 {
                Some((codes::UNACCEPTABLE_CREDENTIAL, Some("Too many iterations")))
            } else if u.salt.is_empty() || u.salted_password.is_empty() {
                Some((
                    codes::UNACCEPTABLE_CREDENTIAL,
                    Some("Salt and salted password must not be empty"),
                ))
            } else {
                None
            };
        }
        if let (None, Some(mechanism)) = (verdict, ScramMechanism::from_kafka_code(u.mechanism)) {
            let credential = scram::credential(
                mechanism,
                &u.salted_password,
                u.salt.to_vec(),
                u.iterations as u32,
            );
            change.upsertions.push(ScramUpsertion {
                user: user.to_owned(),
                mechanism,
                credential,
            });
        }
        note(user, verdict);
    }
    // A user with any problem has none of its changes applied.
    let refused: BTreeSet<&str> = users
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(u, _)| u.as_str())
        .collect();
    change
        .deletions
        .retain(|d| !refused.contains(d.user.as_str()));
    change
        .upsertions
        .retain(|u| !refused.contains(u.user.as_str()));
    let applied = if change.deletions.is_empty() && change.upsertions.is_empty() {
        Ok(Vec::new())
    } else {
        agent.metastore.alter_scram_credentials(change).await
    };
    let answers: std::collections::HashMap<&str, &Result<(), skiff_metastore::types::MetaError>> =
        match &applied {
            Ok(answers) => answers.iter().map(|(u, r)| (u.as_str(), r)).collect(),
            Err(_) => Default::default(),
        };
    let results = users
        .iter()
        .map(|(user, verdict)| {
            let (code, message) = match (verdict, &applied) {
                (Some((code, message)), _) => (*code, message.map(str::to_owned)),
                (None, Ok(_)) => match answers.get(user.as_str()) {
                    Some(Err(e)) => (codes::meta_error(e), Some(e.to_string())),
                    _ => (codes::NONE, None),
                },
                (None, Err(e)) => (codes::metastore_error(e), Some(e.to_string())),
            };
            AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.clone()))
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn check(user: &str, mechanism: i8, twice: &BTreeSet<String>) -> Result<(), Verdict> {
    if user.is_empty() {
        return Err((
            codes::UNACCEPTABLE_CREDENTIAL,
            Some("Username must not be empty"),
        ));
    }
    if ScramMechanism::from_kafka_code(mechanism).is_none() {
        return Err((
            codes::UNSUPPORTED_SASL_MECHANISM,
            Some("Unknown SCRAM mechanism"),
        ));
    }
    if twice.contains(user) {
        return Err((
            codes::DUPLICATE_RESOURCE,
            Some("A user credential cannot be altered twice in the same request"),
        ));
    }
    Ok(())
}

pub async fn describe(
    agent: &Agent,
    caller: &Caller,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !agent.allowed(
        caller,
        Operation::Describe,
        resource::CLUSTER,
        resource::CLUSTER_NAME,
    ) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(codes::CLUSTER_AUTHORIZATION_FAILED)
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let names: Option<Vec<String>> = req
        .users
        .as_ref()
        .map(|users| users.iter().map(|u| u.name.to_string()).collect());
    let found = match agent.metastore.scram_users(names.clone()).await {
        Ok(found) => found,
        Err(e) => {
            return DescribeUserScramCredentialsResponse::default()
                .with_error_code(codes::metastore_error(&e))
                .with_error_message(Some(StrBytes::from_string(e.to_string())));
        }
    };
    let describe = |user: &skiff_metastore::security::ScramUser| {
        DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.user.clone()))
            .with_credential_infos(
                user.mechanisms
                    .iter()
                    .map(|(m, iterations)| {
                        CredentialInfo::default()
                            .with_mechanism(m.kafka_code())
                            .with_iterations(*iterations as i32)
                    })
                    .collect(),
            )
    };
    let results = match names {
        None => found.iter().map(describe).collect(),
        Some(names) => {
            let by_name: std::collections::HashMap<&str, &skiff_metastore::security::ScramUser> =
                found.iter().map(|u| (u.user.as_str(), u)).collect();
            let dup = crate::handlers::duplicates(names.iter());
            let mut answered = BTreeSet::new();
            names
                .iter()
                .filter(|n| answered.insert(n.as_str()))
                .map(|name| {
                    let result = DescribeUserScramCredentialsResult::default()
                        .with_user(StrBytes::from_string(name.clone()));
                    if dup.contains(name) {
                        result
                            .with_error_code(codes::DUPLICATE_RESOURCE)
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Cannot describe SCRAM credentials for the same user twice in a single request",
                            )))
                    } else if let Some(user) = by_name.get(name.as_str()) {
                        describe(user)
                    } else {
                        result
                            .with_error_code(codes::RESOURCE_NOT_FOUND)
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Attempt to describe a user credential that does not exist",
                            )))
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
