//! DescribeTopicPartitions (KIP-966): Metadata's topics and partitions, paged. Topics go in name
//! order; at most `response_partition_limit` partitions (and never more than Kafka's
//! `max.request.partition.size.limit` default, 2000) are described per response, and
//! `next_cursor` names where the next request starts.

use std::collections::HashMap;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use skiff_metastore::types::TopicMeta;

use super::str_bytes;
use crate::authz::{self, Principal, Resource};
use crate::brokers::Brokers;
use crate::context::Agent;
use crate::protocol::codes;
use crate::topics::is_internal_topic;

/// Kafka's `max.request.partition.size.limit` default.
pub const MAX_PARTITIONS: i32 = 2000;

/// DescribeTopicPartitions, as `caller` may see it: a topic it may not describe is left out of
/// a listing of all and answered TOPIC_AUTHORIZATION_FAILED when named, before paging, so no
/// page or cursor gives it away.
pub async fn handle(
    agent: &Agent,
    caller: &crate::acl::Caller,
    req: DescribeTopicPartitionsRequest,
    audience: &crate::brokers::Audience,
) -> DescribeTopicPartitionsResponse {
    let may = |name: &str| {
        agent.allowed(
            caller,
            crate::acl::Operation::Describe,
            crate::acl::resource::TOPIC,
            name,
        )
    };
    let topic_ops = authz::authorized_operations(Resource::Topic, &Principal);
    let error_topic = |name: TopicName, code: i16| {
        DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(name))
            .with_error_code(code)
    };
    let all = match agent.all_topics().await {
        Ok(all) => all,
        Err(e) => {
            let code = codes::metastore_error(&e);
            let topics = req
                .topics
                .into_iter()
                .map(|t| error_topic(t.name, code))
                .collect();
            return DescribeTopicPartitionsResponse::default().with_topics(topics);
        }
    };
    let everything = req.topics.is_empty();
    // Names in order, each once; what is asked for but unknown is answered with an error.
    let mut names: Vec<String> = if everything {
        all.iter()
            .filter(|m| !is_internal_topic(&m.name) && may(&m.name))
            .map(|m| m.name.clone())
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort_unstable();
    names.dedup();
    if let Some(cursor) = &req.cursor {
        if !everything && !names.iter().any(|n| n == cursor.topic_name.as_str()) {
            // Kafka refuses the request: the cursor must name one of the topics asked for.
            let topics = names
                .into_iter()
                .map(|n| error_topic(TopicName(str_bytes(n)), codes::INVALID_REQUEST))
                .collect();
            return DescribeTopicPartitionsResponse::default().with_topics(topics);
        }
    }

    let by_name: HashMap<&str, &TopicMeta> = all
        .iter()
        .filter(|m| !is_internal_topic(&m.name))
        .map(|m| (m.name.as_str(), m))
        .collect();
    let brokers = Brokers::for_audience(agent, audience);
    let mut budget = req.response_partition_limit.clamp(1, MAX_PARTITIONS);
    let (start_name, mut start_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.to_string()), c.partition_index.max(0)),
        None => (None, 0),
    };
    let mut topics = Vec::new();
    let mut next_cursor = None;
    let mut pending = names
        .iter()
        .filter(|n| start_name.as_ref().is_none_or(|s| n.as_str() >= s.as_str()))
        .peekable();
    while let Some(name) = pending.next() {
        if start_name.as_deref() != Some(name.as_str()) {
            start_partition = 0;
        }
        if !may(name) {
            topics.push(error_topic(
                TopicName(str_bytes(name.clone())),
                codes::TOPIC_AUTHORIZATION_FAILED,
            ));
            continue;
        }
        let Some(&meta) = by_name.get(name.as_str()) else {
            topics.push(error_topic(
                TopicName(str_bytes(name.clone())),
                codes::UNKNOWN_TOPIC_OR_PARTITION,
            ));
            continue;
        };
        let end = meta.partitions.min(start_partition.saturating_add(budget));
        let described = (start_partition..end)
            .map(|p| partition(&brokers, meta, p))
            .collect::<Vec<_>>();
        budget -= end.saturating_sub(start_partition).max(0);
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(str_bytes(meta.name.clone()))))
                .with_topic_id(meta.topic_id)
                .with_partitions(described)
                .with_topic_authorized_operations(topic_ops),
        );
        if end < meta.partitions {
            next_cursor = Some(cursor_at(name, end));
            break;
        }
        if budget == 0 {
            // The next topic that exists is where the next page starts.
            while let Some(next) = pending.peek() {
                let allowed = may(next);
                if allowed && by_name.contains_key(next.as_str()) {
                    next_cursor = Some(cursor_at(next, 0));
                    break;
                }
                let refused = pending.next().cloned().unwrap_or_default();
                let code = if allowed {
                    codes::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    codes::TOPIC_AUTHORIZATION_FAILED
                };
                topics.push(error_topic(TopicName(str_bytes(refused)), code));
            }
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

fn cursor_at(name: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(str_bytes(name.to_owned())))
        .with_partition_index(partition)
}

fn partition(
    brokers: &Brokers,
    meta: &TopicMeta,
    p: i32,
) -> DescribeTopicPartitionsResponsePartition {
    let replicas = brokers.replicas(meta, p);
    DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(p)
        .with_leader_id(BrokerId(brokers.leader(meta, p)))
        .with_leader_epoch(brokers.epoch)
        .with_isr_nodes(replicas.clone())
        .with_replica_nodes(replicas)
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()))
}
