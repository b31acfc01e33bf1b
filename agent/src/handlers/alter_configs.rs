//! IncrementalAlterConfigs and AlterConfigs for topics and for the dynamic broker configs (the
//! cluster's defaults, resource name "", or this agent's, its broker id; see
//! [`crate::broker_config`]).

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use skiff_metastore::types::{AlterBrokerConfigs, AlterTopicConfigs, ConfigOp};

use super::str_bytes;
use crate::broker_config::{self, AlterError};
use crate::context::Agent;
use crate::protocol::codes;
use crate::topic_config;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;

/// The error code and message of one resource.
type Outcome = (i16, Option<String>);

pub async fn incremental(
    agent: &Agent,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let ops: Result<Vec<ConfigOp>, String> = r
            .configs
            .iter()
            .map(|c| {
                let name = c.name.to_string();
                let value = c.value.as_ref().map(|v| v.to_string());
                match (c.config_operation, value) {
                    (0, Some(value)) => Ok(ConfigOp::Set { name, value }),
                    (1, _) => Ok(ConfigOp::Delete { name }),
                    (2, Some(value)) => Ok(ConfigOp::Append { name, value }),
                    (3, Some(value)) => Ok(ConfigOp::Subtract { name, value }),
                    (0 | 2 | 3, None) => Err(format!("Null value not supported for config {name}")),
                    (op, _) => Err(format!("Unknown config operation {op} for config {name}")),
                }
            })
            .collect();
        let (code, message) = match ops {
            Err(m) => (codes::INVALID_CONFIG, Some(m)),
            Ok(ops) => {
                alter(
                    agent,
                    r.resource_type,
                    r.resource_name.as_str(),
                    false,
                    ops,
                    req.validate_only,
                )
                .await
            }
        };
        responses.push(
            IncrementalResult::default()
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The older AlterConfigs: the topic's overrides become exactly the configs given.
pub async fn replace(agent: &Agent, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let ops: Result<Vec<ConfigOp>, String> = r
            .configs
            .iter()
            .map(|c| match &c.value {
                Some(v) => Ok(ConfigOp::Set {
                    name: c.name.to_string(),
                    value: v.to_string(),
                }),
                None => Err(format!(
                    "Null value not supported for config {}",
                    c.name.as_str()
                )),
            })
            .collect();
        let (code, message) = match ops {
            Err(m) => (codes::INVALID_CONFIG, Some(m)),
            Ok(ops) => {
                alter(
                    agent,
                    r.resource_type,
                    r.resource_name.as_str(),
                    true,
                    ops,
                    req.validate_only,
                )
                .await
            }
        };
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

async fn alter(
    agent: &Agent,
    resource_type: i8,
    name: &str,
    replace: bool,
    ops: Vec<ConfigOp>,
    validate_only: bool,
) -> Outcome {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => return alter_broker(agent, name, replace, ops, validate_only).await,
        RESOURCE_BROKER_LOGGER => {
            return (
                codes::INVALID_REQUEST,
                Some("Skiff has no broker loggers to configure: set RUST_LOG instead".into()),
            )
        }
        other => {
            return (
                codes::INVALID_REQUEST,
                Some(format!("unsupported resource type {other}")),
            )
        }
    }
    let topic = match agent.topic_named(name).await {
        Ok(Some(t)) => t,
        Ok(None) => return (codes::UNKNOWN_TOPIC_OR_PARTITION, None),
        Err(e) => return (codes::metastore_error(&e), Some(e.to_string())),
    };
    let current = if replace {
        BTreeMap::new()
    } else {
        topic.configs.clone()
    };
    let ops = topic_config::with_list_defaults(&current, ops);
    if let Err(e) = topic_config::validate_ops(&current, &ops) {
        return (codes::INVALID_CONFIG, Some(e.0));
    }
    if validate_only {
        return (codes::NONE, None);
    }
    let altered = agent
        .metastore
        .alter_topic_configs(AlterTopicConfigs {
            name: name.to_owned(),
            replace,
            ops,
        })
        .await;
    agent.topics.forget();
    match altered {
        Ok(_) => (codes::NONE, None),
        Err(e) => (codes::metastore_error(&e), Some(e.to_string())),
    }
}

/// A broker resource: "" is the cluster's defaults, a broker id this agent's overrides. As in
/// Kafka, a broker's own configs are altered through that broker (clients send the request to
/// it), so another id is refused.
async fn alter_broker(
    agent: &Agent,
    name: &str,
    replace: bool,
    ops: Vec<ConfigOp>,
    validate_only: bool,
) -> Outcome {
    let broker = if name.is_empty() {
        None
    } else {
        let me = agent.broker_id();
        match name.parse::<i32>() {
            // Any of this agent's slots names it; its configs are kept under its own id.
            Ok(id) if crate::brokers::is_id_of(id, me) => Some(me),
            Ok(_) => {
                return (
                    codes::INVALID_REQUEST,
                    Some(format!(
                        "Unexpected broker id, expected {me}, but received {name}"
                    )),
                )
            }
            Err(_) => {
                return (
                    codes::INVALID_REQUEST,
                    Some(format!("Node id must be an integer, but it is: {name}")),
                )
            }
        }
    };
    // List operations start from the newest value, not this agent's last read.
    let current = match agent.metastore.broker_configs().await {
        Ok(c) => c,
        Err(e) => return (codes::metastore_error(&e), Some(e.to_string())),
    };
    let resource = current.of(broker).cloned().unwrap_or_default();
    agent.broker_configs.set(current);
    let ops = match broker_config::check_alter(&resource, replace, &ops) {
        Ok(ops) => ops,
        Err(AlterError::Request(m)) => return (codes::INVALID_REQUEST, Some(m)),
        Err(AlterError::Config(m)) => return (codes::INVALID_CONFIG, Some(m)),
    };
    if validate_only {
        return (codes::NONE, None);
    }
    let altered = agent
        .metastore
        .alter_broker_configs(AlterBrokerConfigs {
            broker,
            replace,
            ops,
        })
        .await;
    match altered {
        Ok(all) => {
            // In force here at once; the other agents read it within their refresh interval.
            agent.broker_configs.set(all);
            (codes::NONE, None)
        }
        Err(e) => (codes::metastore_error(&e), Some(e.to_string())),
    }
}

#[cfg(test)]
#[path = "configs_tests.rs"]
mod tests;
