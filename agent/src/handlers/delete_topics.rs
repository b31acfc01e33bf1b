use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::str_bytes;
use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::protocol::codes;

pub async fn handle(
    agent: &Agent,
    caller: &Caller,
    version: i16,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // v6 names topics by name or id; earlier versions by name only.
    let mut targets: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    // Kafka refuses every name (and id) the request repeats, once, and goes on with the others.
    let dup_names = super::duplicates(
        targets
            .iter()
            .filter_map(|(n, _)| n.as_ref().map(|n| n.to_string())),
    );
    let dup_ids = super::duplicates(
        targets
            .iter()
            .filter(|(n, id)| n.is_none() && !id.is_nil())
            .map(|(_, id)| *id),
    );
    let mut answered = std::collections::BTreeSet::new();
    for (name, id) in targets.drain(..) {
        let duplicate = match &name {
            Some(n) if dup_names.contains(&n.to_string()) => {
                Some(("Duplicate topic name.", n.to_string()))
            }
            None if dup_ids.contains(&id) => Some(("Duplicate topic id.", id.to_string())),
            _ => None,
        };
        if let Some((message, key)) = duplicate {
            if answered.insert(key) {
                responses.push(
                    DeletableTopicResult::default()
                        .with_name(name)
                        .with_topic_id(id)
                        .with_error_code(codes::INVALID_REQUEST)
                        .with_error_message(Some(str_bytes(message))),
                );
            }
            continue;
        }
        let name = match name {
            Some(n) => Some(n),
            None => match agent.topic_with_id(id).await {
                Ok(found) => found.map(|t| TopicName(str_bytes(t.name))),
                Err(_) => None,
            },
        };
        let result = DeletableTopicResult::default().with_topic_id(id);
        let Some(name) = name else {
            responses.push(result.with_error_code(codes::UNKNOWN_TOPIC_ID));
            continue;
        };
        let result = result.with_name(Some(name.clone()));
        if !agent.allowed(caller, Operation::Delete, resource::TOPIC, &name) {
            responses.push(result.with_error_code(codes::TOPIC_AUTHORIZATION_FAILED));
            continue;
        }
        responses.push(match agent.delete_topic(&name).await {
            Ok(meta) => result.with_topic_id(meta.topic_id),
            Err(e) => result
                .with_error_code(codes::metastore_error(&e))
                .with_error_message(Some(str_bytes(e.to_string()))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
