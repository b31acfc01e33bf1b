//! KIP-848's consumer protocol: ConsumerGroupHeartbeat and ConsumerGroupDescribe. The rules are
//! in [`crate::groups::consumer`]; this resolves topic names and ids, and shapes the messages.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member as DescribedMember,
    TopicPartitions as DescribedTopicPartitions,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::group::check_coordinator;
use super::str_bytes;
use crate::context::Agent;
use crate::groups::consumer::{HeartbeatRequest, TopicsMeta, Tp};
use crate::groups::lock_consumer;
use crate::protocol::codes;

fn error(code: i16, message: &'static str) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_static_str(message)))
}

/// Every topic, by name, as KIP-848's assignors need them.
async fn topics_meta(agent: &Agent) -> Result<(TopicsMeta, BTreeMap<Uuid, String>), i16> {
    let all = agent
        .all_topics()
        .await
        .map_err(|e| codes::coordinator_error(&e))?;
    let meta = all
        .iter()
        .map(|t| (t.name.clone(), (t.topic_id, t.partitions)))
        .collect();
    let names = all.iter().map(|t| (t.topic_id, t.name.clone())).collect();
    Ok((meta, names))
}

fn by_topic(tps: &BTreeSet<Tp>) -> BTreeMap<Uuid, Vec<i32>> {
    let mut out: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    for (t, p) in tps {
        out.entry(*t).or_default().push(*p);
    }
    out
}

pub async fn heartbeat(
    agent: &Agent,
    version: i16,
    client_id: String,
    client_host: String,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = req.group_id.as_str();
    if let Err(code) = check_coordinator(agent, group_id) {
        return error(code, "not the coordinator of this group");
    }
    if agent.groups.has_classic_members(group_id) {
        return error(codes::GROUP_ID_NOT_FOUND, "the group is a classic group");
    }
    let (topics, _) = match topics_meta(agent).await {
        Ok(t) => t,
        Err(code) => return error(code, "cannot read the topics"),
    };
    let request = HeartbeatRequest {
        version,
        member_id: req.member_id.as_str().to_owned(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.as_str().to_owned()),
        rack_id: req.rack_id.map(|s| s.as_str().to_owned()),
        rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|names| names.iter().map(|n| n.as_str().to_owned()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.map(|s| s.as_str().to_owned()),
        server_assignor: req.server_assignor.map(|s| s.as_str().to_owned()),
        owned: req.topic_partitions.map(|tps| {
            tps.iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
                .collect()
        }),
        client_id,
        client_host,
    };
    let group = agent.groups.consumer_group(group_id);
    let result = lock_consumer(&group).heartbeat(request, &topics, Instant::now());
    let interval = agent
        .groups
        .consumer_limits()
        .heartbeat_interval
        .as_millis();
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(result.error)
        .with_error_message(result.error_message.map(str_bytes))
        .with_member_id(result.member_id.map(str_bytes))
        .with_member_epoch(result.member_epoch)
        .with_heartbeat_interval_ms(i32::try_from(interval).unwrap_or(i32::MAX))
        .with_assignment(result.assignment.map(|tps| {
            Assignment::default().with_topic_partitions(
                by_topic(&tps)
                    .into_iter()
                    .map(|(topic_id, partitions)| {
                        TopicPartitions::default()
                            .with_topic_id(topic_id)
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
        }))
}

pub async fn describe(
    agent: &Agent,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let names = topics_meta(agent).await.map(|(_, names)| names);
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for id in req.group_ids {
        let described = DescribedGroup::default().with_group_id(id.clone());
        if let Err(code) = check_coordinator(agent, id.as_str()) {
            groups.push(described.with_error_code(code));
            continue;
        }
        let names = match &names {
            Ok(n) => n,
            Err(code) => {
                groups.push(described.with_error_code(*code));
                continue;
            }
        };
        let Some(group) = agent.groups.existing_consumer(id.as_str()) else {
            let why = if agent.groups.has_classic_members(id.as_str()) {
                "the group is a classic group"
            } else {
                "no such consumer group"
            };
            groups.push(
                described
                    .with_error_code(codes::GROUP_ID_NOT_FOUND)
                    .with_error_message(Some(StrBytes::from_static_str(why))),
            );
            continue;
        };
        let g = lock_consumer(&group);
        let assignment = |tps: Option<&BTreeSet<Tp>>| {
            let tps = tps.cloned().unwrap_or_default();
            DescribedAssignment::default().with_topic_partitions(
                by_topic(&tps)
                    .into_iter()
                    .map(|(topic_id, partitions)| {
                        let name = names.get(&topic_id).cloned().unwrap_or_default();
                        DescribedTopicPartitions::default()
                            .with_topic_id(topic_id)
                            .with_topic_name(TopicName(str_bytes(name)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
        };
        let members = g
            .members()
            .map(|m| {
                DescribedMember::default()
                    .with_member_id(str_bytes(m.id.clone()))
                    .with_instance_id(m.instance_id.clone().map(str_bytes))
                    .with_rack_id(m.rack_id.clone().map(str_bytes))
                    .with_member_epoch(m.epoch)
                    .with_client_id(str_bytes(m.client_id.clone()))
                    .with_client_host(str_bytes(m.client_host.clone()))
                    .with_subscribed_topic_names(
                        m.subscribed
                            .iter()
                            .map(|n| TopicName(str_bytes(n.clone())))
                            .collect(),
                    )
                    .with_subscribed_topic_regex(m.regex.clone().map(str_bytes))
                    .with_assignment(assignment(Some(&m.current)))
                    .with_target_assignment(assignment(g.target.get(&m.id)))
            })
            .collect();
        groups.push(
            described
                .with_group_state(StrBytes::from_static_str(g.state_name()))
                .with_group_epoch(g.group_epoch())
                .with_assignment_epoch(g.assignment_epoch())
                .with_assignor_name(StrBytes::from_static_str(
                    crate::groups::consumer::ASSIGNORS[0],
                ))
                .with_members(members),
        );
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
