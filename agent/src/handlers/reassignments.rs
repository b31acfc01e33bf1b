//! ElectLeaders, AlterPartitionReassignments and ListPartitionReassignments, answered as a
//! diskless system must: every live agent serves every partition, and there are no replicas to
//! elect among or to move. A partition's leader is already the one Metadata names, so an
//! election is never needed; no reassignment is ever in progress; and a reassignment is refused
//! with INVALID_REPLICA_ASSIGNMENT and a message that says why, rather than accepted and ignored,
//! so that a tool never reports a move that did not happen.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ElectLeadersRequest,
    ElectLeadersResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use skiff_metastore::types::TopicMeta;

use super::str_bytes;
use crate::context::Agent;
use crate::protocol::codes;
use crate::topics::is_internal_topic;

pub const NOT_NEEDED_MESSAGE: &str = "Leader election not needed for topic partition.";
pub const NO_REPLICAS_MESSAGE: &str = "Skiff is diskless: every live agent serves every \
    partition from the shared object store, so there are no replicas to reassign";

/// The topic, if it exists as an ordinary topic; `Err` is the code for a metastore failure.
async fn lookup(agent: &Agent, name: &str) -> Result<Option<TopicMeta>, i16> {
    if is_internal_topic(name) {
        return Ok(None);
    }
    agent
        .topic_named(name)
        .await
        .map_err(|e| codes::metastore_error(&e))
}

fn partition_code(topic: &Result<Option<TopicMeta>, i16>, partition: i32) -> i16 {
    match topic {
        Ok(Some(m)) if (0..m.partitions).contains(&partition) => codes::NONE,
        Ok(_) => codes::UNKNOWN_TOPIC_OR_PARTITION,
        Err(code) => *code,
    }
}

pub async fn elect(agent: &Agent, req: ElectLeadersRequest) -> ElectLeadersResponse {
    // Null asks for every partition; Kafka then reports only the elections it made, here none.
    let Some(requested) = req.topic_partitions else {
        return ElectLeadersResponse::default();
    };
    let mut results = Vec::with_capacity(requested.len());
    for t in requested {
        let topic = lookup(agent, &t.topic).await;
        let partitions = t
            .partitions
            .iter()
            .map(|&p| {
                let result = PartitionResult::default().with_partition_id(p);
                match partition_code(&topic, p) {
                    codes::NONE => result
                        .with_error_code(codes::ELECTION_NOT_NEEDED)
                        .with_error_message(Some(str_bytes(NOT_NEEDED_MESSAGE))),
                    code => result.with_error_code(code),
                }
            })
            .collect();
        results.push(
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partitions),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

pub async fn alter(
    agent: &Agent,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = lookup(agent, &t.name).await;
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let result = ReassignablePartitionResponse::default()
                    .with_partition_index(p.partition_index);
                match (partition_code(&topic, p.partition_index), &p.replicas) {
                    // Null replicas cancel a reassignment: there is none to cancel.
                    (codes::NONE, None) => result
                        .with_error_code(codes::NO_REASSIGNMENT_IN_PROGRESS)
                        .with_error_message(Some(str_bytes("No reassignment in progress"))),
                    (codes::NONE, Some(_)) => result
                        .with_error_code(codes::INVALID_REPLICA_ASSIGNMENT)
                        .with_error_message(Some(str_bytes(NO_REPLICAS_MESSAGE))),
                    (code, _) => result.with_error_code(code),
                }
            })
            .collect();
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
}

/// No reassignment is ever in progress: Kafka lists none, and leaves out unknown topics.
pub fn list(_req: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}
