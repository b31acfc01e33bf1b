//! DescribeConfigs for topics (every topic config, the topic's own or the broker-wide default in
//! force) and for brokers (Kafka's broker settings, [`crate::broker_config::table`]).

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::broker_config::{
    table, BrokerView, Resolved, Synonym, SOURCE_DEFAULT, SOURCE_DYNAMIC_DEFAULT_BROKER,
    SOURCE_TOPIC,
};
use crate::context::Agent;
use crate::protocol::codes;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// How an entry is written: with its synonyms or not.
#[derive(Clone, Copy)]
struct Shape {
    synonyms: bool,
}

impl Shape {
    fn entry(
        self,
        name: &str,
        resolved: Resolved,
        read_only: bool,
        config_type: i8,
    ) -> DescribeConfigsResourceResult {
        let synonyms = if self.synonyms {
            resolved
                .synonyms
                .into_iter()
                .map(|s| {
                    DescribeConfigsSynonym::default()
                        .with_name(str_bytes(s.name))
                        .with_value(s.value.map(str_bytes))
                        .with_source(s.source)
                })
                .collect()
        } else {
            Vec::new()
        };
        DescribeConfigsResourceResult::default()
            .with_name(str_bytes(name))
            .with_value(resolved.value.map(str_bytes))
            .with_read_only(read_only)
            .with_config_source(resolved.source)
            .with_is_sensitive(false)
            .with_synonyms(synonyms)
            .with_config_type(config_type)
            .with_documentation(None)
    }
}

pub async fn handle(agent: &Agent, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let shape = Shape {
        synonyms: req.include_synonyms,
    };
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
        let result = match r.resource_type {
            RESOURCE_TOPIC => match agent.topic_named(&r.resource_name).await {
                Ok(Some(topic)) => {
                    let view = agent.broker_view();
                    let mut configs: Vec<_> =
                        crate::topic_config::defaults(agent.config.max_message_bytes)
                            .filter(|(name, _)| wanted(name))
                            .map(|(name, default)| {
                                let resolved = topic_value(&view, &topic.configs, name, default);
                                let ty = crate::topic_config::config_type(name);
                                shape.entry(name, resolved, false, ty)
                            })
                            .collect();
                    // Overrides of names this build does not list (set by an older one).
                    configs.extend(
                        topic
                            .configs
                            .iter()
                            .filter(|(name, _)| wanted(name) && !crate::topic_config::known(name))
                            .map(|(name, value)| {
                                let resolved = own(name, value.clone(), SOURCE_TOPIC);
                                shape.entry(name, resolved, false, 0)
                            }),
                    );
                    result.with_configs(configs)
                }
                Ok(None) => result.with_error_code(codes::UNKNOWN_TOPIC_OR_PARTITION),
                Err(e) => result.with_error_code(codes::metastore_error(&e)),
            },
            RESOURCE_BROKER => {
                let me = agent.broker_id();
                let name = r.resource_name.as_str();
                if name.is_empty() {
                    // Kafka's cluster-wide resource: the dynamic defaults set, nothing else.
                    let dynamic = agent.broker_configs.get();
                    let configs = dynamic
                        .cluster
                        .iter()
                        .filter(|(name, _)| wanted(name))
                        .map(|(name, value)| {
                            let ty = table::row(name).map_or(0, |r| r.ty as i8);
                            let resolved = own(name, value.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER);
                            shape.entry(name, resolved, false, ty)
                        })
                        .collect();
                    result.with_configs(configs)
                } else if name
                    .parse::<i32>()
                    .is_ok_and(|id| crate::brokers::is_id_of(id, me))
                {
                    let view = agent.broker_view();
                    let configs = table::ROWS
                        .iter()
                        .filter(|row| wanted(row.name))
                        .map(|row| {
                            let read_only = row.mode == table::Mode::Static;
                            shape.entry(row.name, view.setting(row), read_only, row.ty as i8)
                        })
                        .collect();
                    result.with_configs(configs)
                } else {
                    result
                        .with_error_code(codes::INVALID_REQUEST)
                        .with_error_message(Some(str_bytes(format!(
                        "Unexpected broker id, expected {me} or empty string, but received {name}"
                    ))))
                }
            }
            _ => result
                .with_error_code(codes::INVALID_REQUEST)
                .with_error_message(Some(str_bytes("unsupported resource type"))),
        };
        results.push(result);
    }
    DescribeConfigsResponse::default().with_results(results)
}

/// A value with one level: itself.
fn own(name: &str, value: String, source: i8) -> Resolved {
    // Synonym names are static; a name from the wire is found in the table, or shown without.
    let synonyms = table::row(name)
        .map(|row| Synonym {
            name: row.name,
            value: Some(value.clone()),
            source,
        })
        .into_iter()
        .collect();
    Resolved {
        value: Some(value),
        source,
        synonyms,
    }
}

/// A topic config in force: the topic's own, else the broker-wide default, else Kafka's.
fn topic_value(
    view: &BrokerView<'_>,
    overrides: &std::collections::BTreeMap<String, String>,
    name: &'static str,
    default: String,
) -> Resolved {
    let broker = view.topic_default(name);
    let mut synonyms = Vec::new();
    let (value, source) = match overrides.get(name) {
        Some(v) => {
            synonyms.push(Synonym {
                name,
                value: Some(v.clone()),
                source: SOURCE_TOPIC,
            });
            (Some(v.clone()), SOURCE_TOPIC)
        }
        None => match &broker {
            Some(Resolved {
                value: Some(v),
                source,
                ..
            }) => (Some(v.clone()), *source),
            _ => (Some(default.clone()), SOURCE_DEFAULT),
        },
    };
    match broker {
        Some(b) if !b.synonyms.is_empty() => synonyms.extend(b.synonyms),
        _ => synonyms.push(Synonym {
            name,
            value: Some(default),
            source: SOURCE_DEFAULT,
        }),
    }
    Resolved {
        value,
        source,
        synonyms,
    }
}
