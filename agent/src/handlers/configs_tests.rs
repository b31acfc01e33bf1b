//! IncrementalAlterConfigs, AlterConfigs and DescribeConfigs on broker resources, through the
//! handlers, against an agent with a metastore of its own.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource, AlterableConfig as LegacyConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncrementalResource, AlterableConfig,
};
use kafka_protocol::messages::DescribeConfigsRequest;

use super::*;
use crate::broker_config::{SOURCE_DEFAULT, SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT_BROKER};
use crate::config::AgentConfig;
use crate::test_support;

async fn incremental_one(
    agent: &Agent,
    resource_type: i8,
    name: &str,
    configs: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let configs = configs
        .iter()
        .map(|(n, op, v)| {
            AlterableConfig::default()
                .with_name(str_bytes(*n))
                .with_config_operation(*op)
                .with_value(v.map(str_bytes))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![IncrementalResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(str_bytes(name))
            .with_configs(configs)]);
    let r = incremental(agent, req).await.responses.remove(0);
    (r.error_code, r.error_message.map(|m| m.to_string()))
}

async fn describe(
    agent: &Agent,
    resource_type: i8,
    name: &str,
) -> Vec<DescribeConfigsResourceResult> {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(None)]);
    let mut result = crate::handlers::describe_configs::handle(agent, req)
        .await
        .results
        .remove(0);
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    std::mem::take(&mut result.configs)
}

fn entry<'a>(
    configs: &'a [DescribeConfigsResourceResult],
    name: &str,
) -> &'a DescribeConfigsResourceResult {
    configs
        .iter()
        .find(|c| c.name.as_str() == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test]
async fn broker_resources_are_altered_and_described_as_kafka_does() {
    let t = test_support::agent(AgentConfig::default()).await;
    let agent = &t.agent;
    let topic = agent.create_topic("t", 1, BTreeMap::new()).await.unwrap();
    let me = agent.broker_id().to_string();

    // validate_only stores nothing; a refused alter neither.
    let set = |v| [("message.max.bytes", 0, Some(v))];
    assert_eq!(
        incremental_one(agent, RESOURCE_BROKER, "", &set("2000"), true)
            .await
            .0,
        0
    );
    assert!(agent.broker_configs.get().is_empty());
    let (code, message) = incremental_one(
        agent,
        RESOURCE_BROKER,
        "",
        &[("broker.id", 0, Some("3"))],
        false,
    )
    .await;
    assert_eq!(code, codes::INVALID_REQUEST);
    assert_eq!(
        message.as_deref(),
        Some("Cannot update these configs dynamically: Set(broker.id)")
    );
    let other = (agent.broker_id() + 1).to_string();
    let (code, message) =
        incremental_one(agent, RESOURCE_BROKER, &other, &set("2000"), false).await;
    assert_eq!(code, codes::INVALID_REQUEST);
    assert!(message.unwrap().starts_with("Unexpected broker id"));
    let (code, _) = incremental_one(agent, RESOURCE_BROKER, "x", &set("2000"), false).await;
    assert_eq!(code, codes::INVALID_REQUEST);
    let (code, _) =
        incremental_one(agent, RESOURCE_BROKER, "", &[("nope", 0, Some("1"))], false).await;
    assert_eq!(code, codes::INVALID_CONFIG);
    assert!(agent.metastore.broker_configs().await.unwrap().is_empty());

    // The cluster default is in force here at once, for topics and the produce path.
    assert_eq!(
        incremental_one(agent, RESOURCE_BROKER, "", &set("2000"), false).await,
        (0, None)
    );
    assert_eq!(agent.max_message_bytes(&topic), 2000);
    let cluster = describe(agent, RESOURCE_BROKER, "").await;
    assert_eq!(cluster.len(), 1);
    assert_eq!(cluster[0].config_source, SOURCE_DYNAMIC_DEFAULT_BROKER);
    let topic_configs = describe(agent, RESOURCE_TOPIC, "t").await;
    let max = entry(&topic_configs, "max.message.bytes");
    assert_eq!(max.value.as_ref().unwrap().as_str(), "2000");
    assert_eq!(max.config_source, SOURCE_DYNAMIC_DEFAULT_BROKER);
    assert_eq!(max.synonyms[0].name.as_str(), "message.max.bytes");

    // This agent's override shadows it; AlterConfigs replaces the override set.
    assert_eq!(
        incremental_one(agent, RESOURCE_BROKER, &me, &set("3000"), false).await,
        (0, None)
    );
    assert_eq!(agent.max_message_bytes(&topic), 3000);
    let req = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(RESOURCE_BROKER)
        .with_resource_name(str_bytes(me.clone()))
        .with_configs(vec![LegacyConfig::default()
            .with_name(str_bytes("offset.metadata.max.bytes"))
            .with_value(Some(str_bytes("10")))])]);
    assert_eq!(replace(agent, req).await.responses[0].error_code, 0);
    assert_eq!(
        agent.max_message_bytes(&topic),
        2000,
        "the override set was replaced"
    );
    assert_eq!(agent.broker_view().offset_metadata_max_bytes(), 10);
    let broker = describe(agent, RESOURCE_BROKER, &me).await;
    let metadata = entry(&broker, "offset.metadata.max.bytes");
    assert_eq!(metadata.config_source, SOURCE_DYNAMIC_BROKER);
    assert!(!metadata.read_only);
    let partitions = entry(&broker, "num.partitions");
    assert!(partitions.read_only);
    assert_eq!(partitions.config_source, SOURCE_DEFAULT);
    assert_eq!(partitions.config_type, 3, "INT");

    // Deleting brings back the agent's setting.
    let delete = [("message.max.bytes", 1, None)];
    assert_eq!(
        incremental_one(agent, RESOURCE_BROKER, "", &delete, false).await,
        (0, None)
    );
    assert_eq!(
        agent.max_message_bytes(&topic),
        agent.config.max_message_bytes
    );
}
