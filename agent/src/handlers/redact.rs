//! The authorizer's checks for the APIs that only describe: made on the handler's answer, as
//! Kafka's `KafkaApis` makes them, so that what the principal may not see is answered with
//! Kafka's authorization error (a resource it named) or left out (a resource it listed). Nothing
//! these handlers do changes state, so handling a refused part costs only the work.

use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, DescribeProducersResponse, DescribeTransactionsResponse,
    ListTransactionsResponse, OffsetForLeaderEpochResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::protocol::codes;

/// DescribeProducers: READ on each topic.
pub fn describe_producers(agent: &Agent, caller: &Caller, answer: &mut DescribeProducersResponse) {
    for t in &mut answer.topics {
        if agent.allowed(caller, Operation::Read, resource::TOPIC, &t.name) {
            continue;
        }
        for p in &mut t.partitions {
            p.error_code = codes::TOPIC_AUTHORIZATION_FAILED;
            p.error_message = None;
            p.active_producers.clear();
        }
    }
}

/// DescribeTransactions: DESCRIBE on each transactional id, and of its partitions only the
/// topics the principal may describe.
pub fn describe_transactions(
    agent: &Agent,
    caller: &Caller,
    answer: &mut DescribeTransactionsResponse,
) {
    for s in &mut answer.transaction_states {
        if !agent.allowed(
            caller,
            Operation::Describe,
            resource::TRANSACTIONAL_ID,
            &s.transactional_id,
        ) {
            let id = s.transactional_id.clone();
            *s = Default::default();
            s.transactional_id = id;
            s.error_code = codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            s.producer_id = kafka_protocol::messages::ProducerId(-1);
            s.producer_epoch = -1;
            s.transaction_start_time_ms = -1;
            continue;
        }
        s.topics
            .retain(|t| agent.allowed(caller, Operation::Describe, resource::TOPIC, &t.topic));
    }
}

/// ListTransactions: only the ids the principal may describe.
pub fn list_transactions(agent: &Agent, caller: &Caller, answer: &mut ListTransactionsResponse) {
    answer.transaction_states.retain(|s| {
        agent.allowed(
            caller,
            Operation::Describe,
            resource::TRANSACTIONAL_ID,
            &s.transactional_id,
        )
    });
}

/// OffsetForLeaderEpoch (a client's): DESCRIBE on each topic.
pub fn offset_for_leader_epoch(
    agent: &Agent,
    caller: &Caller,
    answer: &mut OffsetForLeaderEpochResponse,
) {
    for t in &mut answer.topics {
        if agent.allowed(caller, Operation::Describe, resource::TOPIC, &t.topic) {
            continue;
        }
        for p in &mut t.partitions {
            p.error_code = codes::TOPIC_AUTHORIZATION_FAILED;
            p.leader_epoch = -1;
            p.end_offset = -1;
        }
    }
}

/// ConsumerGroupDescribe: DESCRIBE on each group.
pub fn consumer_group_describe(
    agent: &Agent,
    caller: &Caller,
    answer: &mut ConsumerGroupDescribeResponse,
) {
    for g in &mut answer.groups {
        if agent.allowed(caller, Operation::Describe, resource::GROUP, &g.group_id) {
            continue;
        }
        let id = g.group_id.clone();
        *g = Default::default();
        g.group_id = id;
        g.error_code = codes::GROUP_AUTHORIZATION_FAILED;
        g.error_message = Some(StrBytes::from_static_str(
            "not authorized to describe the group",
        ));
    }
}

/// Whether the caller may `op` the cluster: the admin APIs Kafka checks against it whole
/// (DescribeLogDirs, ElectLeaders, the partition reassignments).
pub fn cluster(agent: &Agent, caller: &Caller, op: Operation) -> bool {
    agent.allowed(caller, op, resource::CLUSTER, resource::CLUSTER_NAME)
}
