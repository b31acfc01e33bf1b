use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::context::Agent;
use crate::protocol::codes;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's `ConfigSource` values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// Topic configs every topic has, with the values in force when the topic does not override them.
fn topic_defaults(agent: &Agent) -> impl Iterator<Item = (&'static str, String)> {
    crate::topic_config::defaults(agent.config.max_message_bytes)
}

pub async fn handle(agent: &Agent, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let wanted = |name: &str| {
            r.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        let entry = |name: &str, value: String, source: i8| {
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(name))
                .with_value(Some(str_bytes(value)))
                .with_config_source(source)
        };
        let result = match r.resource_type {
            RESOURCE_TOPIC => match agent.topic_named(&r.resource_name).await {
                Ok(Some(topic)) => {
                    let mut configs: Vec<_> = topic_defaults(agent)
                        .filter(|(name, _)| !topic.configs.contains_key(*name) && wanted(name))
                        .map(|(name, value)| entry(name, value, SOURCE_DEFAULT))
                        .collect();
                    configs.extend(
                        topic
                            .configs
                            .iter()
                            .filter(|(name, _)| wanted(name))
                            .map(|(name, value)| entry(name, value.clone(), SOURCE_TOPIC)),
                    );
                    result.with_configs(configs)
                }
                Ok(None) => result.with_error_code(codes::UNKNOWN_TOPIC_OR_PARTITION),
                Err(e) => result.with_error_code(codes::metastore_error(&e)),
            },
            RESOURCE_BROKER => {
                let configs = [
                    ("broker.id", agent.broker_id().to_string()),
                    (
                        "auto.create.topics.enable",
                        agent.config.auto_create_topics.to_string(),
                    ),
                    ("num.partitions", agent.config.num_partitions.to_string()),
                    (
                        "message.max.bytes",
                        agent.config.max_message_bytes.to_string(),
                    ),
                    (
                        "socket.request.max.bytes",
                        agent.config.max_request_bytes.to_string(),
                    ),
                ]
                .into_iter()
                .filter(|(name, _)| wanted(name))
                .map(|(name, value)| entry(name, value, SOURCE_STATIC_BROKER).with_read_only(true))
                .collect();
                result.with_configs(configs)
            }
            _ => result
                .with_error_code(codes::INVALID_REQUEST)
                .with_error_message(Some(str_bytes("unsupported resource type"))),
        };
        results.push(result);
    }
    DescribeConfigsResponse::default().with_results(results)
}
