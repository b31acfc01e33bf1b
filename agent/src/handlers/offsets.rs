//! Committed offsets: OffsetCommit, OffsetFetch and OffsetDelete. The coordinator checks the
//! member and generation; the offsets themselves are stored in the metastore, so they survive
//! this agent and move with the group to whichever agent coordinates it next.

use std::collections::BTreeMap;
use std::time::Instant;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::types::{CommitOffsets, CommittedOffset, GroupPartition};

use super::group::{check_coordinator, subscribed_topics};
use super::str_bytes;
use crate::context::Agent;
use crate::groups::lock;
use crate::protocol::codes;

pub async fn commit(agent: &Agent, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = req.group_id.as_str();
    let checked = check_coordinator(agent, group_id).and_then(|()| {
        // v9+ from a KIP-848 member carries its member epoch where the generation was.
        if let Some(g) = agent.groups.existing_consumer(group_id) {
            return crate::groups::lock_consumer(&g)
                .check_member_epoch(req.member_id.as_str(), req.generation_id_or_member_epoch);
        }
        match agent.groups.existing(group_id) {
            Some(g) => lock(&g).check_commit(
                req.member_id.as_str(),
                req.group_instance_id.as_ref().map(|s| s.as_str()),
                req.generation_id_or_member_epoch,
                Instant::now(),
            ),
            // A group with no members here accepts commits from outside it only.
            None if req.generation_id_or_member_epoch < 0 => Ok(()),
            None => Err(codes::UNKNOWN_MEMBER_ID),
        }
    });
    let now_ms = agent.clock.now_ms();
    let max_metadata_bytes = agent.broker_view().offset_metadata_max_bytes();
    // Per partition: the code decided here, or None for "store it".
    let mut codes_by_partition: Vec<(usize, i32, Option<i16>)> = Vec::new();
    let mut offsets = Vec::new();
    for (t, topic) in req.topics.iter().enumerate() {
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_ref().map_or("", |m| m.as_str());
            let code = match checked {
                Err(code) => Some(code),
                Ok(()) if metadata.len() > max_metadata_bytes => {
                    Some(codes::OFFSET_METADATA_TOO_LARGE)
                }
                Ok(()) => {
                    offsets.push((
                        GroupPartition {
                            topic: topic.name.as_str().to_owned(),
                            partition: p.partition_index,
                        },
                        CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: metadata.to_owned(),
                            commit_timestamp_ms: now_ms,
                        },
                    ));
                    None
                }
            };
            codes_by_partition.push((t, p.partition_index, code));
        }
    }
    let mut stored = if offsets.is_empty() {
        Ok(Vec::new().into_iter())
    } else {
        let commit = CommitOffsets {
            group: group_id.to_owned(),
            offsets,
        };
        // Fenced by the metastore when this agent knows its broker id: a commit from an agent
        // whose view of the agents is stale must not land after the new coordinator's.
        match agent.membership.me() {
            Some(me) => {
                agent
                    .metastore
                    .commit_group_offsets(me.broker_id, commit)
                    .await
            }
            None => agent.metastore.commit_offsets(commit).await,
        }
        .map(Vec::into_iter)
        .map_err(|e| codes::coordinator_error(&e))
    };
    let mut topics: Vec<OffsetCommitResponseTopic> = req
        .topics
        .iter()
        .map(|t| OffsetCommitResponseTopic::default().with_name(t.name.clone()))
        .collect();
    for (t, partition, code) in codes_by_partition {
        let code = code.unwrap_or_else(|| stored_code(&mut stored));
        if let Some(topic) = topics.get_mut(t) {
            topic.partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(partition)
                    .with_error_code(code),
            );
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}

/// The code of the next partition the metastore was asked to store, in request order: its own
/// answer, or the code of the whole store's failure.
pub(super) fn stored_code(
    stored: &mut Result<std::vec::IntoIter<Result<(), skiff_metastore::types::MetaError>>, i16>,
) -> i16 {
    match stored {
        Ok(answers) => match answers.next() {
            Some(Ok(())) => codes::NONE,
            Some(Err(e)) => codes::meta_error(&e),
            None => codes::UNKNOWN_SERVER_ERROR,
        },
        Err(code) => *code,
    }
}

/// One partition's answer: its committed offset if it has one, or UNSTABLE_OFFSET_COMMIT.
#[derive(Clone)]
enum Found {
    Offset(Option<CommittedOffset>),
    /// `require_stable` (KIP-447) and a transaction still holds offsets of this partition:
    /// the consumer waits for it to end rather than start from an offset it may move.
    Unstable,
}

/// One group's committed offsets, by topic and partition, for the partitions asked (all of them
/// for `None`); a partition without one gets offset -1.
async fn fetch_group(
    agent: &Agent,
    group_id: &str,
    wanted: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<(TopicName, Vec<(i32, Found)>)>, i16> {
    let found = fetch_committed(agent, group_id, wanted).await?;
    if !require_stable {
        return Ok(found
            .into_iter()
            .map(|(t, ps)| {
                (
                    t,
                    ps.into_iter().map(|(p, c)| (p, Found::Offset(c))).collect(),
                )
            })
            .collect());
    }
    let pending: std::collections::BTreeSet<GroupPartition> = agent
        .metastore
        .pending_txn_offsets(group_id)
        .await
        .map_err(|e| codes::coordinator_error(&e))?
        .into_iter()
        .collect();
    Ok(found
        .into_iter()
        .map(|(t, ps)| {
            let ps = ps
                .into_iter()
                .map(|(p, c)| {
                    let key = GroupPartition {
                        topic: t.as_str().to_owned(),
                        partition: p,
                    };
                    let found = if pending.contains(&key) {
                        Found::Unstable
                    } else {
                        Found::Offset(c)
                    };
                    (p, found)
                })
                .collect();
            (t, ps)
        })
        .collect())
}

async fn fetch_committed(
    agent: &Agent,
    group_id: &str,
    wanted: Option<Vec<(TopicName, Vec<i32>)>>,
) -> Result<Vec<(TopicName, Vec<(i32, Option<CommittedOffset>)>)>, i16> {
    check_coordinator(agent, group_id)?;
    let committed: BTreeMap<GroupPartition, CommittedOffset> = agent
        .metastore
        .group_offsets(group_id)
        .await
        .map_err(|e| codes::coordinator_error(&e))?
        .into_iter()
        .collect();
    Ok(match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(name, partitions)| {
                let found = partitions
                    .into_iter()
                    .map(|p| {
                        let key = GroupPartition {
                            topic: name.as_str().to_owned(),
                            partition: p,
                        };
                        (p, committed.get(&key).cloned())
                    })
                    .collect();
                (name, found)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> =
                BTreeMap::new();
            for (gp, c) in committed {
                by_topic
                    .entry(gp.topic)
                    .or_default()
                    .push((gp.partition, Some(c)));
            }
            by_topic
                .into_iter()
                .map(|(name, found)| (TopicName(str_bytes(name)), found))
                .collect()
        }
    })
}

/// A partition's offset, leader epoch, metadata and error code.
fn offset_fields(found: Found) -> (i64, i32, Option<StrBytes>, i16) {
    match found {
        Found::Offset(Some(c)) => (
            c.offset,
            c.leader_epoch,
            Some(str_bytes(c.metadata)),
            codes::NONE,
        ),
        Found::Offset(None) => (-1, -1, Some(StrBytes::new()), codes::NONE),
        Found::Unstable => (-1, -1, Some(StrBytes::new()), codes::UNSTABLE_OFFSET_COMMIT),
    }
}

pub async fn fetch(agent: &Agent, version: i16, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            // v9: a KIP-848 member names itself, and must be current.
            if let (Some(member), Some(cg)) = (
                g.member_id.as_ref().filter(|m| !m.is_empty()),
                agent.groups.existing_consumer(g.group_id.as_str()),
            ) {
                let check = crate::groups::lock_consumer(&cg)
                    .check_member_epoch(member.as_str(), g.member_epoch);
                if let Err(code) = check {
                    groups.push(group.with_error_code(code));
                    continue;
                }
            }
            groups.push(
                match fetch_group(agent, g.group_id.as_str(), wanted, req.require_stable).await {
                    Err(code) => group.with_error_code(code),
                    Ok(found) => group.with_topics(
                        found
                            .into_iter()
                            .map(|(name, parts)| {
                                let partitions = parts
                                    .into_iter()
                                    .map(|(p, c)| {
                                        let (offset, epoch, metadata, code) = offset_fields(c);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(metadata)
                                            .with_error_code(code)
                                    })
                                    .collect();
                                OffsetFetchResponseTopics::default()
                                    .with_name(name)
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    ),
                },
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Option<Vec<(TopicName, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    // v7 on: a read_committed consumer asks for stable offsets only (KIP-447).
    let require_stable = version >= 7 && req.require_stable;
    match fetch_group(agent, req.group_id.as_str(), wanted.clone(), require_stable).await {
        Err(code) if version >= 2 => OffsetFetchResponse::default().with_error_code(code),
        // v1 has no top-level error: every partition asked for carries it.
        Err(code) => OffsetFetchResponse::default().with_topics(
            wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(name, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(-1)
                                .with_error_code(code)
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(name)
                        .with_partitions(partitions)
                })
                .collect(),
        ),
        Ok(found) => OffsetFetchResponse::default().with_topics(
            found
                .into_iter()
                .map(|(name, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|(p, c)| {
                            let (offset, epoch, metadata, code) = offset_fields(c);
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(if version >= 5 { epoch } else { -1 })
                                .with_metadata(metadata)
                                .with_error_code(code)
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(name)
                        .with_partitions(partitions)
                })
                .collect(),
        ),
    }
}

pub async fn delete(agent: &Agent, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = req.group_id.as_str();
    if let Err(code) = check_coordinator(agent, group_id) {
        return OffsetDeleteResponse::default().with_error_code(code);
    }
    // Offsets of a topic the group's members subscribe to cannot go while they are there.
    let subscribed: Option<Vec<String>> = agent.groups.existing(group_id).and_then(|g| {
        let g = lock(&g);
        if g.is_empty() {
            return None;
        }
        let protocol = g.protocol().unwrap_or_default().to_owned();
        let mut topics = Vec::new();
        for m in g.members() {
            // Metadata that is not a consumer subscription: assume everything is in use.
            topics.extend(
                subscribed_topics(&m.metadata(&protocol)).unwrap_or_else(|| {
                    req.topics
                        .iter()
                        .map(|t| t.name.as_str().to_owned())
                        .collect()
                }),
            );
        }
        Some(topics)
    });
    let in_use = |topic: &str| {
        subscribed
            .as_ref()
            .is_some_and(|s| s.iter().any(|t| t == topic))
    };
    let mut deletable = Vec::new();
    for t in &req.topics {
        if !in_use(t.name.as_str()) {
            deletable.extend(t.partitions.iter().map(|p| GroupPartition {
                topic: t.name.as_str().to_owned(),
                partition: p.partition_index,
            }));
        }
    }
    if !deletable.is_empty() {
        if let Err(e) = agent.metastore.delete_offsets(group_id, deletable).await {
            return OffsetDeleteResponse::default().with_error_code(codes::coordinator_error(&e));
        }
    }
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let code = if in_use(t.name.as_str()) {
                codes::GROUP_SUBSCRIBED_TO_TOPIC
            } else {
                codes::NONE
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, TopicName};
    use skiff_metastore::types::AgentHeartbeat;

    use super::*;
    use crate::config::AgentConfig;
    use crate::handlers::str_bytes;
    use crate::test_support;

    fn commit_request(group: &str, offset: i64) -> OffsetCommitRequest {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(str_bytes("t")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])])
    }

    fn code(answer: &OffsetCommitResponse) -> i16 {
        answer.topics[0].partitions[0].error_code
    }

    /// An agent that has not yet heard that another agent joined still thinks it coordinates a
    /// group that moved to the newcomer: the metastore refuses its commit, and the client, told
    /// NOT_COORDINATOR, looks the coordinator up again.
    #[tokio::test]
    async fn a_commit_from_an_agent_with_a_stale_view_of_the_agents_is_refused() {
        let t = test_support::agent(AgentConfig::default()).await;
        let agent = &t.agent;
        agent
            .create_topic("t", 1, std::collections::BTreeMap::new())
            .await
            .unwrap();
        agent
            .membership
            .heartbeat(agent.metastore.as_ref(), agent.clock.as_ref())
            .await
            .unwrap();
        let me = agent.membership.me().unwrap().broker_id;
        // Another agent joins; this one's view still holds only itself.
        let live = agent
            .metastore
            .agent_heartbeat(AgentHeartbeat {
                host: "other".into(),
                port: 1,
                session_timeout_ms: 60_000,
                now_ms: 0,
            })
            .await
            .unwrap();
        let moved = (0..100)
            .map(|i| format!("group-{i}"))
            .find(|g| {
                crate::membership::coordinator_of(g, &live.agents)
                    .unwrap()
                    .broker_id
                    != me
            })
            .unwrap();
        let stayed = (0..100)
            .map(|i| format!("group-{i}"))
            .find(|g| {
                crate::membership::coordinator_of(g, &live.agents)
                    .unwrap()
                    .broker_id
                    == me
            })
            .unwrap();
        assert!(agent.coordinates(&moved), "the agent's view is stale");
        assert_eq!(
            code(&commit(agent, commit_request(&moved, 5)).await),
            codes::NOT_COORDINATOR
        );
        assert!(agent
            .metastore
            .group_offsets(&moved)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            code(&commit(agent, commit_request(&stayed, 5)).await),
            codes::NONE
        );
        // Once its view catches up it no longer takes the group's commits at all.
        agent
            .membership
            .heartbeat(agent.metastore.as_ref(), agent.clock.as_ref())
            .await
            .unwrap();
        assert!(!agent.coordinates(&moved));
    }
}
