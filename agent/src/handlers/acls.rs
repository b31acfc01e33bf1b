//! CreateAcls, DescribeAcls and DeleteAcls (KIP-140), as kafka-acls.sh and the admin clients use
//! them. The bindings live in the metastore; every agent applies them within a refresh interval.
//! Creating and deleting need ALTER on the cluster, describing DESCRIBE, as in Kafka.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::security::codes::{ALL, ALLOW, ANY, DENY, LITERAL, MATCH, PREFIXED};
use skiff_metastore::security::{AclBinding, AclFilter};

use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::protocol::codes;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn may(agent: &Agent, caller: &Caller, op: Operation) -> bool {
    agent.allowed(caller, op, resource::CLUSTER, resource::CLUSTER_NAME)
}

/// What Kafka refuses in a binding to create, as INVALID_REQUEST.
fn invalid(b: &AclBinding) -> Option<&'static str> {
    let concrete_type = (resource::TOPIC..=7).contains(&b.resource_type);
    if !concrete_type {
        return Some("Invalid resource type");
    }
    if b.pattern_type != LITERAL && b.pattern_type != PREFIXED {
        return Some("Invalid resource pattern type");
    }
    if b.resource_name.is_empty() {
        return Some("Resource name must not be empty");
    }
    if b.resource_type == resource::CLUSTER && b.resource_name != resource::CLUSTER_NAME {
        return Some("The only valid name for the CLUSTER resource is kafka-cluster");
    }
    if !(ALL..=14).contains(&b.operation) {
        return Some("Invalid operation");
    }
    if b.permission_type != ALLOW && b.permission_type != DENY {
        return Some("Invalid permission type");
    }
    match b.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => return Some("Principal must be of the form Type:name, e.g. User:alice"),
    }
    if b.host.is_empty() {
        return Some("Host must not be empty (* for any)");
    }
    None
}

pub async fn create(agent: &Agent, caller: &Caller, req: CreateAclsRequest) -> CreateAclsResponse {
    let allowed = may(agent, caller, Operation::Alter);
    let mut results: Vec<Option<(i16, &'static str)>> = Vec::with_capacity(req.creations.len());
    let mut valid = Vec::new();
    for c in &req.creations {
        let b = AclBinding {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission_type: c.permission_type,
        };
        let verdict = if !allowed {
            Some((
                codes::CLUSTER_AUTHORIZATION_FAILED,
                "Cluster authorization failed.",
            ))
        } else {
            invalid(&b).map(|m| (codes::INVALID_REQUEST, m))
        };
        if verdict.is_none() {
            valid.push(b);
        }
        results.push(verdict);
    }
    let applied = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        agent.metastore.create_acls(valid).await
    };
    let mut applied_answers = match &applied {
        Ok(a) => a
            .iter()
            .map(|r| r.as_ref().err().cloned())
            .collect::<Vec<_>>()
            .into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let out = results
        .into_iter()
        .map(|verdict| {
            let (code, message) = match verdict {
                Some((code, message)) => (code, Some(message.to_owned())),
                None => match (&applied, applied_answers.next()) {
                    (Err(e), _) => (codes::metastore_error(e), Some(e.to_string())),
                    (Ok(_), Some(Some(e))) => (codes::meta_error(&e), Some(e.to_string())),
                    _ => (codes::NONE, None),
                },
            };
            AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
        })
        .collect();
    CreateAclsResponse::default().with_results(out)
}

fn filter_of(
    resource_type: i8,
    name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission_type: i8,
) -> AclFilter {
    AclFilter {
        resource_type,
        resource_name: name.as_ref().map(|n| n.to_string()),
        pattern_type,
        principal: principal.as_ref().map(|p| p.to_string()),
        host: host.as_ref().map(|h| h.to_string()),
        operation,
        permission_type,
    }
}

/// A filter Kafka refuses: UNKNOWN (0) in any of its enumerations.
fn filter_invalid(f: &AclFilter) -> bool {
    f.resource_type <= 0
        || !(ANY..=PREFIXED).contains(&f.pattern_type)
        || f.operation <= 0
        || f.permission_type <= 0
}

pub async fn describe(
    agent: &Agent,
    caller: &Caller,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    if !may(agent, caller, Operation::Describe) {
        return DescribeAclsResponse::default()
            .with_error_code(codes::CLUSTER_AUTHORIZATION_FAILED)
            .with_error_message(Some(text("Cluster authorization failed.")));
    }
    let filter = filter_of(
        req.resource_type_filter,
        &req.resource_name_filter,
        req.pattern_type_filter,
        &req.principal_filter,
        &req.host_filter,
        req.operation,
        req.permission_type,
    );
    if filter_invalid(&filter) {
        return DescribeAclsResponse::default()
            .with_error_code(codes::INVALID_REQUEST)
            .with_error_message(Some(text("Invalid ACL filter")));
    }
    let acls = match agent.metastore.acls().await {
        Ok(acls) => acls,
        Err(e) => {
            return DescribeAclsResponse::default()
                .with_error_code(codes::metastore_error(&e))
                .with_error_message(Some(StrBytes::from_string(e.to_string())))
        }
    };
    // Grouped by resource, as Kafka answers.
    let mut resources: std::collections::BTreeMap<(i8, String, i8), Vec<AclDescription>> =
        Default::default();
    for b in acls.bindings.iter().filter(|b| filter.matches(b)) {
        resources
            .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(text(&b.principal))
                    .with_host(text(&b.host))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission_type),
            );
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn delete(agent: &Agent, caller: &Caller, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let allowed = may(agent, caller, Operation::Alter);
    let filters: Vec<AclFilter> = req
        .filters
        .iter()
        .map(|f| {
            filter_of(
                f.resource_type_filter,
                &f.resource_name_filter,
                f.pattern_type_filter,
                &f.principal_filter,
                &f.host_filter,
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let refusal = |code: i16, message: &str| {
        DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(Some(text(message)))
    };
    if !allowed {
        let results = filters
            .iter()
            .map(|_| {
                refusal(
                    codes::CLUSTER_AUTHORIZATION_FAILED,
                    "Cluster authorization failed.",
                )
            })
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let valid: Vec<AclFilter> = filters
        .iter()
        .filter(|f| !filter_invalid(f))
        .cloned()
        .collect();
    let deleted = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        agent.metastore.delete_acls(valid).await
    };
    let mut deleted_iter = match &deleted {
        Ok(d) => d.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = filters
        .iter()
        .map(|f| {
            if filter_invalid(f) {
                return refusal(codes::INVALID_REQUEST, "Invalid ACL filter");
            }
            if let Err(e) = &deleted {
                return refusal(codes::metastore_error(e), &e.to_string());
            }
            let matching = deleted_iter
                .next()
                .unwrap_or_default()
                .into_iter()
                .map(|b| {
                    DeleteAclsMatchingAcl::default()
                        .with_resource_type(b.resource_type)
                        .with_resource_name(StrBytes::from_string(b.resource_name))
                        .with_pattern_type(b.pattern_type)
                        .with_principal(StrBytes::from_string(b.principal))
                        .with_host(StrBytes::from_string(b.host))
                        .with_operation(b.operation)
                        .with_permission_type(b.permission_type)
                })
                .collect();
            DeleteAclsFilterResult::default().with_matching_acls(matching)
        })
        .collect();
    let _ = MATCH;
    DeleteAclsResponse::default().with_filter_results(results)
}
