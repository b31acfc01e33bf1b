//! DescribeClientQuotas and AlterClientQuotas (KIP-546): the quotas kept in the metastore, as
//! kafka-configs.sh --entity-type users/clients manages them. Entities are a user, a client id,
//! or both, each named or `<default>` (a null name on the wire).

use kafka_protocol::messages::{
    alter_client_quotas_request, alter_client_quotas_response, describe_client_quotas_response,
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::limits::MAX_USER_NAME_BYTES;
use skiff_metastore::security::{QuotaAlteration, QuotaEntity, QuotaName, QuotaValue};

use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::protocol::codes;
use crate::quotas::KNOWN_KEYS;

const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
const IP: &str = "ip";

// DescribeClientQuotas' match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

pub async fn describe(
    agent: &Agent,
    caller: &Caller,
    req: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let fail = |code: i16, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if !agent.allowed(
        caller,
        Operation::DescribeConfigs,
        resource::CLUSTER,
        resource::CLUSTER_NAME,
    ) {
        return fail(
            codes::CLUSTER_AUTHORIZATION_FAILED,
            "not authorized to describe client quotas".into(),
        );
    }
    let mut filter = Filter::default();
    for c in &req.components {
        let wanted = match (c.match_type, &c._match) {
            (MATCH_EXACT, Some(name)) => Want::Named(name.to_string()),
            (MATCH_DEFAULT, _) => Want::Default,
            (MATCH_ANY, _) => Want::Any,
            _ => {
                return fail(
                    codes::INVALID_REQUEST,
                    format!(
                        "match type {} of entity type {} is not one of 0 (exact, with a name), 1 (default), 2 (any)",
                        c.match_type, c.entity_type
                    ),
                )
            }
        };
        let slot = match c.entity_type.as_str() {
            USER => &mut filter.user,
            CLIENT_ID => &mut filter.client_id,
            IP => {
                // No ip quotas are ever stored: a filter on them matches nothing.
                return DescribeClientQuotasResponse::default().with_entries(Some(Vec::new()));
            }
            other => {
                return fail(
                    codes::INVALID_REQUEST,
                    format!("unknown entity type {other:?}"),
                )
            }
        };
        if slot.replace(wanted).is_some() {
            return fail(
                codes::INVALID_REQUEST,
                format!("entity type {} given twice", c.entity_type),
            );
        }
    }
    let quotas = match agent.metastore.client_quotas().await {
        Ok(q) => q,
        Err(e) => return fail(codes::metastore_error(&e), e.to_string()),
    };
    let entries = quotas
        .entries
        .iter()
        .filter(|(entity, _)| filter.matches(entity, req.strict))
        .map(|(entity, values)| {
            describe_client_quotas_response::EntryData::default()
                .with_entity(wire_entity(entity, |t, n| {
                    describe_client_quotas_response::EntityData::default()
                        .with_entity_type(StrBytes::from_static_str(t))
                        .with_entity_name(n)
                }))
                .with_values(
                    values
                        .iter()
                        .map(|(k, v)| {
                            describe_client_quotas_response::ValueData::default()
                                .with_key(StrBytes::from_string(k.clone()))
                                .with_value(v.get())
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

#[derive(Default)]
struct Filter {
    user: Option<Want>,
    client_id: Option<Want>,
}

enum Want {
    Named(String),
    Default,
    Any,
}

impl Filter {
    fn matches(&self, entity: &QuotaEntity, strict: bool) -> bool {
        let part = |want: &Option<Want>, have: &Option<QuotaName>| match (want, have) {
            // Not in the filter: a strict filter wants the type absent.
            (None, None) => true,
            (None, Some(_)) => !strict,
            (Some(_), None) => false,
            (Some(Want::Any), Some(_)) => true,
            (Some(Want::Default), Some(QuotaName::Default)) => true,
            (Some(Want::Named(n)), Some(QuotaName::Named(m))) => n == m,
            _ => false,
        };
        part(&self.user, &entity.user) && part(&self.client_id, &entity.client_id)
    }
}

fn wire_entity<T>(
    entity: &QuotaEntity,
    make: impl Fn(&'static str, Option<StrBytes>) -> T,
) -> Vec<T> {
    let name = |n: &QuotaName| match n {
        QuotaName::Default => None,
        QuotaName::Named(s) => Some(StrBytes::from_string(s.clone())),
    };
    let mut out = Vec::new();
    if let Some(u) = &entity.user {
        out.push(make(USER, name(u)));
    }
    if let Some(c) = &entity.client_id {
        out.push(make(CLIENT_ID, name(c)));
    }
    out
}

pub async fn alter(
    agent: &Agent,
    caller: &Caller,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let echo = |entry: &alter_client_quotas_request::EntryData| {
        entry
            .entity
            .iter()
            .map(|e| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(e.entity_type.clone())
                    .with_entity_name(e.entity_name.clone())
            })
            .collect::<Vec<_>>()
    };
    let answer =
        |entry: &alter_client_quotas_request::EntryData, code: i16, message: Option<String>| {
            alter_client_quotas_response::EntryData::default()
                .with_entity(echo(entry))
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
        };
    if !agent.allowed(
        caller,
        Operation::AlterConfigs,
        resource::CLUSTER,
        resource::CLUSTER_NAME,
    ) {
        let entries = req
            .entries
            .iter()
            .map(|e| answer(e, codes::CLUSTER_AUTHORIZATION_FAILED, None))
            .collect();
        return AlterClientQuotasResponse::default().with_entries(entries);
    }
    // Each entry checked; the valid ones go to the metastore in one command.
    let checked: Vec<Result<QuotaAlteration, String>> =
        req.entries.iter().map(alteration).collect();
    let valid: Vec<QuotaAlteration> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let mut applied = if req.validate_only || valid.is_empty() {
        Ok(vec![Ok(()); valid.len()].into_iter())
    } else {
        agent
            .metastore
            .alter_client_quotas(valid)
            .await
            .map(Vec::into_iter)
    };
    let entries = req
        .entries
        .iter()
        .zip(checked)
        .map(|(entry, checked)| match (checked, &mut applied) {
            (Err(reason), _) => answer(entry, codes::INVALID_REQUEST, Some(reason)),
            (Ok(_), Ok(results)) => match results.next() {
                Some(Ok(())) | None => answer(entry, codes::NONE, None),
                // Past the metastore's bounds on quotas: the request, not the credentials.
                Some(Err(skiff_metastore::types::MetaError::SecurityOverLimit)) => answer(
                    entry,
                    codes::INVALID_REQUEST,
                    Some("past the bounds on client quotas".into()),
                ),
                Some(Err(e)) => answer(entry, codes::meta_error(&e), Some(e.to_string())),
            },
            (Ok(_), Err(e)) => answer(entry, codes::metastore_error(e), Some(e.to_string())),
        })
        .collect();
    if !req.validate_only {
        // This agent applies the change at once; the others at their next read.
        if let Err(e) = agent.quotas.refresh(agent.metastore.as_ref()).await {
            tracing::debug!(error = %e, "re-reading the client quotas failed");
        }
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// One entry as the metastore takes it, or why it is invalid.
fn alteration(entry: &alter_client_quotas_request::EntryData) -> Result<QuotaAlteration, String> {
    let mut entity = QuotaEntity::default();
    for e in &entry.entity {
        let name = match &e.entity_name {
            None => QuotaName::Default,
            Some(n) if n.is_empty() => return Err("an entity name is empty".into()),
            Some(n) if n.len() > MAX_USER_NAME_BYTES => {
                return Err(format!(
                    "an entity name is over {MAX_USER_NAME_BYTES} bytes"
                ))
            }
            Some(n) => QuotaName::Named(n.to_string()),
        };
        let slot = match e.entity_type.as_str() {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            IP => return Err("ip quotas (connection_creation_rate) are not supported".into()),
            other => return Err(format!("unknown entity type {other:?}")),
        };
        if slot.replace(name).is_some() {
            return Err(format!("entity type {} given twice", e.entity_type));
        }
    }
    if entity.user.is_none() && entity.client_id.is_none() {
        return Err("an entity names a user, a client id, or both".into());
    }
    let mut set = Vec::new();
    let mut remove = Vec::new();
    for op in &entry.ops {
        let key = op.key.as_str();
        if !KNOWN_KEYS.contains(&key) {
            return Err(format!("unknown quota key {key:?}"));
        }
        if set.iter().any(|(k, _): &(String, QuotaValue)| k == key)
            || remove.iter().any(|k| k == key)
        {
            return Err(format!("quota key {key} given twice"));
        }
        if op.remove {
            remove.push(key.to_owned());
        } else if !(op.value.is_finite() && op.value > 0.0) {
            return Err(format!("{key} must be a positive number, not {}", op.value));
        } else {
            set.push((key.to_owned(), QuotaValue::new(op.value)));
        }
    }
    Ok(QuotaAlteration {
        entity,
        set,
        remove,
    })
}
