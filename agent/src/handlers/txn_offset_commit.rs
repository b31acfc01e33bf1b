//! TxnOffsetCommit: a transactional producer's consumer offsets, sent to the group's
//! coordinator. The coordinator checks the member and generation (KIP-447: a zombie of an older
//! generation is fenced here), then the offsets wait in the transaction in the metastore and
//! become the group's only if the transaction commits. Fenced like OffsetCommit: the metastore
//! refuses them from an agent that no longer coordinates the group.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use skiff_metastore::types::{CommitOffsets, CommittedOffset, GroupPartition, TxnCommitOffsets};

use super::group::check_coordinator;
use super::txn;
use crate::context::Agent;
use crate::groups::{lock, lock_consumer};
use crate::protocol::codes;

/// The member check Kafka's group coordinator makes before it takes transactional offsets.
fn check_member(agent: &Agent, req: &TxnOffsetCommitRequest) -> Result<(), i16> {
    let group = req.group_id.as_str();
    check_coordinator(agent, group)?;
    let member = req.member_id.as_str();
    if let Some(g) = agent.groups.existing_consumer(group) {
        return lock_consumer(&g).check_txn_commit(member, req.generation_id);
    }
    match agent.groups.existing(group) {
        Some(g) => lock(&g).check_txn_commit(
            member,
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            req.generation_id,
        ),
        // A group this agent has no members of: only a commit that names none.
        None if !member.is_empty() => Err(codes::UNKNOWN_MEMBER_ID),
        None if req.generation_id >= 0 => Err(codes::ILLEGAL_GENERATION),
        None => Ok(()),
    }
}

pub async fn handle(agent: &Agent, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let checked = txn::producer(
        req.transactional_id.as_str(),
        req.producer_id.0,
        req.producer_epoch,
    )
    .and_then(|p| check_member(agent, &req).map(|()| p));
    let now_ms = agent.clock.now_ms();
    let max_metadata_bytes = agent.broker_view().offset_metadata_max_bytes();
    // Per partition: the code decided here, or None for "the metastore's answer".
    let mut decided: Vec<(usize, i32, Option<i16>)> = Vec::new();
    let mut offsets = Vec::new();
    for (t, topic) in req.topics.iter().enumerate() {
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_ref().map_or("", |m| m.as_str());
            let code = match &checked {
                Err(code) => Some(*code),
                Ok(_) if metadata.len() > max_metadata_bytes => {
                    Some(codes::OFFSET_METADATA_TOO_LARGE)
                }
                Ok(_) => {
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
            decided.push((t, p.partition_index, code));
        }
    }
    let mut stored = match checked {
        Ok(producer) if !offsets.is_empty() => agent
            .metastore
            .txn_commit_offsets(TxnCommitOffsets {
                producer,
                coordinator: agent.broker_id(),
                commit: CommitOffsets {
                    group: req.group_id.as_str().to_owned(),
                    offsets,
                },
            })
            .await
            .map(Vec::into_iter)
            .map_err(|e| txn::error(&e)),
        _ => Ok(Vec::new().into_iter()),
    };
    let mut topics: Vec<TxnOffsetCommitResponseTopic> = req
        .topics
        .iter()
        .map(|t| TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()))
        .collect();
    for (t, partition, code) in decided {
        let code = code.unwrap_or_else(|| super::offsets::stored_code(&mut stored));
        if let Some(topic) = topics.get_mut(t) {
            topic.partitions.push(
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(partition)
                    .with_error_code(code),
            );
        }
    }
    TxnOffsetCommitResponse::default().with_topics(topics)
}
