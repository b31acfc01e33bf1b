//! The authorizer's checks for the group, offset and transaction APIs, made before a request is
//! handled: what Kafka's `KafkaApis` checks, with the error it answers. A request wholly refused
//! gets its refusal here; one partly refused (some groups or topics of many) is trimmed to what
//! is allowed, and the refusals are added to the handler's answer.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, OffsetCommitRequest,
    OffsetCommitResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::protocol::codes;

pub fn group(agent: &Agent, caller: &Caller, op: Operation, group: &str) -> bool {
    agent.allowed(caller, op, resource::GROUP, group)
}

fn topic(agent: &Agent, caller: &Caller, op: Operation, name: &str) -> bool {
    agent.allowed(caller, op, resource::TOPIC, name)
}

fn txn_id(agent: &Agent, caller: &Caller, id: &str) -> bool {
    agent.allowed(caller, Operation::Write, resource::TRANSACTIONAL_ID, id)
}

/// OffsetCommit: READ on the group, then READ on each topic. Returns the refusal of the whole
/// request, or the topics refused (taken out of `req`) for [`add_offset_commit_refusals`].
pub fn offset_commit(
    agent: &Agent,
    caller: &Caller,
    req: &mut OffsetCommitRequest,
) -> Result<Vec<OffsetCommitResponseTopic>, OffsetCommitResponse> {
    let refuse = |t: &kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic,
                  code: i16| {
        OffsetCommitResponseTopic::default()
            .with_name(t.name.clone())
            .with_partitions(
                t.partitions
                    .iter()
                    .map(|p| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect(),
            )
    };
    if !group(agent, caller, Operation::Read, &req.group_id) {
        let topics = req
            .topics
            .iter()
            .map(|t| refuse(t, codes::GROUP_AUTHORIZATION_FAILED))
            .collect();
        return Err(OffsetCommitResponse::default().with_topics(topics));
    }
    let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut req.topics)
        .into_iter()
        .partition(|t| topic(agent, caller, Operation::Read, &t.name));
    req.topics = allowed;
    Ok(refused
        .iter()
        .map(|t| refuse(t, codes::TOPIC_AUTHORIZATION_FAILED))
        .collect())
}

/// FindCoordinator: DESCRIBE on the group, or WRITE on the transactional id (key type 1).
/// Returns the refusal when every key asked is refused; with v4's several keys, those refused
/// are answered as refused and taken out.
pub fn find_coordinator(
    agent: &Agent,
    caller: &Caller,
    version: i16,
    req: &mut FindCoordinatorRequest,
) -> (Vec<Coordinator>, Option<FindCoordinatorResponse>) {
    let transactional = req.key_type == 1;
    let code = if transactional {
        codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else {
        codes::GROUP_AUTHORIZATION_FAILED
    };
    let allowed = |key: &str| {
        let resource_type = if transactional {
            resource::TRANSACTIONAL_ID
        } else {
            resource::GROUP
        };
        agent.allowed(caller, Operation::Describe, resource_type, key)
    };
    if version < 4 {
        if allowed(&req.key) {
            return (Vec::new(), None);
        }
        return (
            Vec::new(),
            Some(
                FindCoordinatorResponse::default()
                    .with_error_code(code)
                    .with_node_id(kafka_protocol::messages::BrokerId(-1)),
            ),
        );
    }
    let (keep, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut req.coordinator_keys)
        .into_iter()
        .partition(|k| allowed(k));
    req.coordinator_keys = keep;
    let refused: Vec<Coordinator> = refused
        .into_iter()
        .map(|k| {
            Coordinator::default()
                .with_key(k)
                .with_node_id(kafka_protocol::messages::BrokerId(-1))
                .with_error_code(code)
        })
        .collect();
    if req.coordinator_keys.is_empty() {
        return (
            Vec::new(),
            Some(FindCoordinatorResponse::default().with_coordinators(refused)),
        );
    }
    (refused, None)
}

/// InitProducerId: WRITE on the transactional id; an idempotent producer (no id) needs
/// IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679), else
/// CLUSTER_AUTHORIZATION_FAILED.
pub fn init_producer_id(
    agent: &Agent,
    caller: &Caller,
    req: &InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let refused = |code| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(kafka_protocol::messages::ProducerId(-1))
            .with_producer_epoch(-1)
    };
    match req.transactional_id.as_ref() {
        Some(id) => (!txn_id(agent, caller, id))
            .then(|| refused(codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)),
        None => {
            let may = agent.allowed(
                caller,
                Operation::IdempotentWrite,
                resource::CLUSTER,
                resource::CLUSTER_NAME,
            ) || agent
                .acls
                .allowed_on_any(caller, Operation::Write, resource::TOPIC);
            (!may).then(|| refused(codes::CLUSTER_AUTHORIZATION_FAILED))
        }
    }
}

/// AddPartitionsToTxn (v0-3): WRITE on the transactional id, then on every topic; Kafka refuses
/// the whole request if any topic is refused (the others get OPERATION_NOT_ATTEMPTED).
pub fn add_partitions_to_txn(
    agent: &Agent,
    caller: &Caller,
    req: &AddPartitionsToTxnRequest,
) -> Option<AddPartitionsToTxnResponse> {
    let id_ok = txn_id(agent, caller, &req.v3_and_below_transactional_id);
    let refused_topic = |name: &str| !topic(agent, caller, Operation::Write, name);
    if id_ok
        && !req
            .v3_and_below_topics
            .iter()
            .any(|t| refused_topic(&t.name))
    {
        return None;
    }
    let results = req
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let code = if !id_ok {
                codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            } else if refused_topic(&t.name) {
                codes::TOPIC_AUTHORIZATION_FAILED
            } else {
                codes::OPERATION_NOT_ATTEMPTED
            };
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results))
}

/// AddOffsetsToTxn: WRITE on the transactional id, READ on the group.
pub fn add_offsets_to_txn(
    agent: &Agent,
    caller: &Caller,
    req: &AddOffsetsToTxnRequest,
) -> Option<AddOffsetsToTxnResponse> {
    let code = if !txn_id(agent, caller, &req.transactional_id) {
        codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else if !group(agent, caller, Operation::Read, &req.group_id) {
        codes::GROUP_AUTHORIZATION_FAILED
    } else {
        return None;
    };
    Some(AddOffsetsToTxnResponse::default().with_error_code(code))
}

/// EndTxn: WRITE on the transactional id.
pub fn end_txn(agent: &Agent, caller: &Caller, req: &EndTxnRequest) -> Option<EndTxnResponse> {
    (!txn_id(agent, caller, &req.transactional_id)).then(|| {
        EndTxnResponse::default()
            .with_error_code(codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            .with_producer_id(kafka_protocol::messages::ProducerId(-1))
            .with_producer_epoch(-1)
    })
}

/// TxnOffsetCommit: WRITE on the transactional id, READ on the group, READ on each topic.
pub fn txn_offset_commit(
    agent: &Agent,
    caller: &Caller,
    req: &TxnOffsetCommitRequest,
) -> Option<TxnOffsetCommitResponse> {
    let whole = if !txn_id(agent, caller, &req.transactional_id) {
        Some(codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else if !group(agent, caller, Operation::Read, &req.group_id) {
        Some(codes::GROUP_AUTHORIZATION_FAILED)
    } else {
        None
    };
    let refused_topic = |name: &str| !topic(agent, caller, Operation::Read, name);
    if whole.is_none() && !req.topics.iter().any(|t| refused_topic(&t.name)) {
        return None;
    }
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let code = whole.unwrap_or(if refused_topic(&t.name) {
                codes::TOPIC_AUTHORIZATION_FAILED
            } else {
                codes::OPERATION_NOT_ATTEMPTED
            });
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(TxnOffsetCommitResponse::default().with_topics(topics))
}

/// A config resource's check (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs): a topic
/// (type 2) against its ACLs, a broker or broker logger (4, 8) against the cluster's. `None` when
/// allowed, else the error to answer.
pub fn config_resource(
    agent: &Agent,
    caller: &Caller,
    op: Operation,
    resource_type: i8,
    name: &str,
) -> Option<i16> {
    match resource_type {
        2 => (!topic(agent, caller, op, name)).then_some(codes::TOPIC_AUTHORIZATION_FAILED),
        4 | 8 => (!agent.allowed(caller, op, resource::CLUSTER, resource::CLUSTER_NAME))
            .then_some(codes::CLUSTER_AUTHORIZATION_FAILED),
        _ => None,
    }
}

pub fn topic_allowed(agent: &Agent, caller: &Caller, op: Operation, name: &str) -> bool {
    topic(agent, caller, op, name)
}
