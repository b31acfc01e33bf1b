//! The classic consumer-group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups,
//! DescribeGroups and DeleteGroups. The rules live in [`crate::groups::classic`]; this turns
//! Kafka's messages into its calls and back, and checks that this agent is the group's
//! coordinator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::types::MetaError;

use super::str_bytes;
use crate::context::Agent;
use crate::groups::classic::{JoinRequest, JoinResult, Reply, SyncRequest, SyncResult};
use crate::groups::{lock, GroupState};
use crate::protocol::codes;

/// Whether this agent answers for `group`: the coordinator's error code if not.
pub(crate) fn check_coordinator(agent: &Agent, group: &str) -> Result<(), i16> {
    if group.is_empty() {
        return Err(codes::INVALID_GROUP_ID);
    }
    if agent.coordinates(group) {
        Ok(())
    } else {
        Err(codes::NOT_COORDINATOR)
    }
}

fn opt(s: Option<StrBytes>) -> Option<String> {
    s.map(|s| s.as_str().to_owned())
}

fn opt_str(s: Option<String>) -> Option<StrBytes> {
    s.map(str_bytes)
}

async fn wait<T>(reply: Reply<T>, gone: impl FnOnce() -> T) -> T {
    match reply {
        Reply::Now(t) => t,
        // The group was dropped (deleted, or no longer coordinated here) while we waited.
        Reply::Later(rx) => rx.await.unwrap_or_else(|_| gone()),
    }
}

pub async fn join(
    agent: &Agent,
    version: i16,
    client_id: String,
    peer: String,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let fail = |code: i16, member: &StrBytes| {
        JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1)
            .with_member_id(member.clone())
    };
    if let Err(code) = check_coordinator(agent, req.group_id.as_str()) {
        return fail(code, &req.member_id);
    }
    if agent
        .groups
        .existing_consumer(req.group_id.as_str())
        .is_some()
    {
        // The id is taken by a KIP-848 group; the two protocols do not mix here.
        return fail(codes::INCONSISTENT_GROUP_PROTOCOL, &req.member_id);
    }
    let session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance_timeout = if version >= 1 {
        Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64)
    } else {
        session_timeout
    };
    let request = JoinRequest {
        version,
        member_id: req.member_id.as_str().to_owned(),
        group_instance_id: opt(req.group_instance_id),
        client_id,
        client_host: peer,
        session_timeout,
        rebalance_timeout,
        protocol_type: req.protocol_type.as_str().to_owned(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.as_str().to_owned(), p.metadata))
            .collect(),
    };
    let group = agent.groups.group(req.group_id.as_str());
    let reply = lock(&group).join(request, Instant::now());
    let member_id = req.member_id.as_str().to_owned();
    let result = wait(reply, || JoinResult {
        error: codes::NOT_COORDINATOR,
        generation_id: -1,
        member_id,
        ..JoinResult::default()
    })
    .await;
    JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation_id)
        // kafka-protocol refuses to encode a field the version does not have, so each is set
        // only where it exists.
        .with_protocol_type(opt_str(result.protocol_type).filter(|_| version >= 7))
        .with_protocol_name(opt_str(result.protocol_name).or_else(|| {
            // Before v7 the name is not nullable.
            (version < 7).then(StrBytes::new)
        }))
        .with_leader(str_bytes(result.leader))
        .with_skip_assignment(result.skip_assignment && version >= 9)
        .with_member_id(str_bytes(result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(
                            opt_str(m.group_instance_id).filter(|_| version >= 5),
                        )
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}

pub async fn sync(agent: &Agent, version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    if let Err(code) = check_coordinator(agent, req.group_id.as_str()) {
        return SyncGroupResponse::default().with_error_code(code);
    }
    let Some(group) = agent.groups.existing(req.group_id.as_str()) else {
        return SyncGroupResponse::default().with_error_code(codes::UNKNOWN_MEMBER_ID);
    };
    let request = SyncRequest {
        member_id: req.member_id.as_str().to_owned(),
        group_instance_id: opt(req.group_instance_id),
        generation_id: req.generation_id,
        protocol_type: opt(req.protocol_type),
        protocol_name: opt(req.protocol_name),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.as_str().to_owned(), a.assignment))
            .collect(),
    };
    let reply = lock(&group).sync(request, Instant::now());
    let result = wait(reply, || SyncResult {
        error: codes::NOT_COORDINATOR,
        ..SyncResult::default()
    })
    .await;
    let v5 = |s: Option<String>| opt_str(s).filter(|_| version >= 5);
    SyncGroupResponse::default()
        .with_error_code(result.error)
        .with_protocol_type(v5(result.protocol_type))
        .with_protocol_name(v5(result.protocol_name))
        .with_assignment(result.assignment)
}

pub fn heartbeat(agent: &Agent, req: HeartbeatRequest) -> HeartbeatResponse {
    let code = match check_coordinator(agent, req.group_id.as_str()) {
        Err(code) => code,
        Ok(()) => match agent.groups.existing(req.group_id.as_str()) {
            None => codes::UNKNOWN_MEMBER_ID,
            Some(group) => lock(&group).heartbeat(
                req.member_id.as_str(),
                req.group_instance_id.as_ref().map(|s| s.as_str()),
                req.generation_id,
                Instant::now(),
            ),
        },
    };
    HeartbeatResponse::default().with_error_code(code)
}

pub fn leave(agent: &Agent, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    if let Err(code) = check_coordinator(agent, req.group_id.as_str()) {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    // v0-2 name one member; v3+ a batch, each by member id and/or instance id.
    let leaving: Vec<(StrBytes, Option<StrBytes>)> = if version >= 3 {
        req.members
            .into_iter()
            .map(|m| (m.member_id, m.group_instance_id))
            .collect()
    } else {
        vec![(req.member_id, None)]
    };
    let group = agent.groups.existing(req.group_id.as_str());
    let now = Instant::now();
    let mut results = Vec::with_capacity(leaving.len());
    for (member_id, instance) in leaving {
        let code = match &group {
            None => codes::UNKNOWN_MEMBER_ID,
            Some(g) => lock(g).leave(
                member_id.as_str(),
                instance.as_ref().map(|s| s.as_str()),
                now,
            ),
        };
        results.push(
            MemberResponse::default()
                .with_member_id(member_id)
                .with_group_instance_id(instance)
                .with_error_code(code),
        );
    }
    if version >= 3 {
        LeaveGroupResponse::default().with_members(results)
    } else {
        let code = results.first().map_or(codes::NONE, |r| r.error_code);
        LeaveGroupResponse::default().with_error_code(code)
    }
}

/// What ListGroups and DescribeGroups say about a group this agent coordinates.
struct Summary {
    state: GroupState,
    protocol_type: String,
    protocol: String,
    members: Vec<DescribedGroupMember>,
}

async fn summarize(agent: &Agent, group_id: &str, version: i16) -> Result<Option<Summary>, i16> {
    if let Some(group) = agent.groups.existing(group_id) {
        let g = lock(&group);
        if g.state() != GroupState::Empty || !g.is_empty() {
            let protocol = g.protocol().unwrap_or_default().to_owned();
            let members = g
                .members()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.id.clone()))
                        .with_group_instance_id(
                            opt_str(m.group_instance_id.clone()).filter(|_| version >= 4),
                        )
                        .with_client_id(str_bytes(m.client_id.clone()))
                        .with_client_host(str_bytes(m.client_host.clone()))
                        .with_member_metadata(m.metadata(&protocol))
                        .with_member_assignment(m.assignment.clone())
                })
                .collect();
            return Ok(Some(Summary {
                state: g.state(),
                protocol_type: g.protocol_type().unwrap_or_default().to_owned(),
                protocol,
                members,
            }));
        }
    }
    // No members: the group exists if it has committed offsets.
    let offsets = agent
        .metastore
        .group_offsets(group_id)
        .await
        .map_err(|e| codes::coordinator_error(&e))?;
    Ok((!offsets.is_empty()).then(|| Summary {
        state: GroupState::Empty,
        protocol_type: "consumer".into(),
        protocol: String::new(),
        members: Vec::new(),
    }))
}

pub async fn list(agent: &Agent, version: i16, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut ids: Vec<String> = match agent.metastore.groups().await {
        Ok(ids) => ids,
        Err(e) => {
            return ListGroupsResponse::default().with_error_code(codes::coordinator_error(&e))
        }
    };
    for g in agent.groups.all() {
        ids.push(lock(&g).id.clone());
    }
    let mut consumer_groups = BTreeMap::new();
    for g in agent.groups.all_consumers() {
        let g = crate::groups::lock_consumer(&g);
        if !g.is_empty() {
            consumer_groups.insert(g.id.clone(), g.state_name());
        }
    }
    ids.sort();
    ids.dedup();
    let states: Vec<&str> = if version >= 4 {
        req.states_filter.iter().map(|s| s.as_str()).collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if version >= 5 {
        req.types_filter
            .iter()
            .map(|s| s.as_str().to_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    let mut groups = Vec::new();
    for (id, state) in &consumer_groups {
        if !agent.coordinates(id)
            || (!states.is_empty() && !states.iter().any(|s| s.eq_ignore_ascii_case(state)))
            || (!types.is_empty() && !types.iter().any(|t| t == "consumer"))
        {
            continue;
        }
        groups.push(
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id.clone())))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_group_state(if version >= 4 {
                    StrBytes::from_static_str(state)
                } else {
                    StrBytes::new()
                })
                .with_group_type(if version >= 5 {
                    StrBytes::from_static_str("consumer")
                } else {
                    StrBytes::new()
                }),
        );
    }
    for id in ids {
        if consumer_groups.contains_key(&id) || !agent.coordinates(&id) {
            continue;
        }
        // ListGroups shows no members: any version will do.
        let Ok(Some(summary)) = summarize(agent, &id, 0).await else {
            continue;
        };
        let state = summary.state.name();
        if !states.is_empty() && !states.iter().any(|s| s.eq_ignore_ascii_case(state)) {
            continue;
        }
        // Every group here runs the classic protocol (KIP-848 groups are "consumer").
        if !types.is_empty() && !types.iter().any(|t| t == "classic") {
            continue;
        }
        groups.push(
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(summary.protocol_type))
                .with_group_state(if version >= 4 {
                    StrBytes::from_static_str(state)
                } else {
                    StrBytes::new()
                })
                .with_group_type(if version >= 5 {
                    StrBytes::from_static_str("classic")
                } else {
                    StrBytes::new()
                }),
        );
    }
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn describe(
    agent: &Agent,
    version: i16,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(req.groups.len());
    let operations = crate::authz::if_requested(
        version >= 3 && req.include_authorized_operations,
        crate::authz::Resource::Group,
        &crate::authz::Principal,
    );
    for id in req.groups {
        let described = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(operations);
        if let Err(code) = check_coordinator(agent, id.as_str()) {
            groups.push(described.with_error_code(code));
            continue;
        }
        groups.push(match summarize(agent, id.as_str(), version).await {
            Err(code) => described.with_error_code(code),
            // Kafka describes a group it does not know as Dead, without an error.
            Ok(None) => described.with_group_state(StrBytes::from_static_str("Dead")),
            Ok(Some(s)) => described
                .with_group_state(StrBytes::from_static_str(s.state.name()))
                .with_protocol_type(str_bytes(s.protocol_type))
                .with_protocol_data(str_bytes(s.protocol))
                .with_members(s.members),
        });
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn delete(agent: &Agent, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let code = delete_one(agent, id.as_str()).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

async fn delete_one(agent: &Agent, id: &str) -> i16 {
    if let Err(code) = check_coordinator(agent, id) {
        return code;
    }
    let known_here = match agent.groups.existing(id) {
        Some(g) => {
            let g = lock(&g);
            if !g.is_empty() {
                return codes::NON_EMPTY_GROUP;
            }
            true
        }
        None => false,
    };
    let code = match agent.metastore.delete_group(id).await {
        Ok(()) => codes::NONE,
        Err(skiff_metastore::client::MetastoreError::Rejected(MetaError::GroupIdNotFound))
            if known_here =>
        {
            codes::NONE
        }
        Err(e) => codes::coordinator_error(&e),
    };
    if code == codes::NONE {
        agent.groups.remove(id);
    }
    code
}

/// The topics a consumer subscribes to, from its JoinGroup metadata (ConsumerProtocol
/// Subscription: version, then an array of topic names). Parsed by hand, with bounds checks:
/// these bytes come from clients. `None` when they are not that format.
pub(crate) fn subscribed_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let end = at.checked_add(n)?;
        let s = metadata.get(*at..end)?;
        *at = end;
        Some(s)
    };
    let mut at = 0usize;
    take(&mut at, 2)?; // the version
    let count = i32::from_be_bytes(take(&mut at, 4)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    // Each name takes at least its two length bytes.
    if count > metadata.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let len = i16::from_be_bytes(take(&mut at, 2)?.try_into().ok()?);
        let name = take(&mut at, usize::try_from(len).ok()?)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_parse_and_garbage_does_not() {
        let mut m = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 9, 9];
        assert_eq!(
            subscribed_topics(&Bytes::from(m.clone())),
            Some(vec!["a".into(), "bc".into()])
        );
        m[5] = 200; // more names than bytes
        assert_eq!(subscribed_topics(&Bytes::from(m.clone())), None);
        assert_eq!(subscribed_topics(&Bytes::from_static(&[0, 1, 0])), None);
        static HUGE: [u8; 6] = [0, 1, 0x7f, 0xff, 0xff, 0xff];
        assert_eq!(subscribed_topics(&Bytes::from_static(&HUGE)), None);
    }
}
