//! The transaction handlers over a local metastore.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, FindCoordinatorRequest, GroupId,
    InitProducerIdRequest, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};

use super::{
    add_partitions_to_txn, end_txn, find_coordinator, init_producer_id, str_bytes,
    txn_offset_commit,
};
use crate::config::AgentConfig;
use crate::protocol::codes;
use crate::test_support;

fn init(id: &str, timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(str_bytes(id))))
        .with_transaction_timeout_ms(timeout_ms)
}

fn add(id: &str, pid: i64, epoch: i16, topics: &[(&str, &[i32])]) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(str_bytes(id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(
            topics
                .iter()
                .map(|(name, ps)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(str_bytes(*name)))
                        .with_partitions(ps.to_vec())
                })
                .collect(),
        )
}

fn end(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(TransactionalId(str_bytes(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

#[tokio::test]
async fn find_coordinator_names_an_agent_for_a_transactional_id() {
    let t = test_support::agent(AgentConfig::default()).await;
    let ask = |key_type: i8, key: &str| {
        find_coordinator::handle(
            &t.agent,
            1,
            FindCoordinatorRequest::default()
                .with_key(str_bytes(key))
                .with_key_type(key_type),
        )
    };
    let found = ask(1, "txn-a");
    assert_eq!(found.error_code, codes::NONE);
    assert_eq!(found.node_id.0, t.agent.broker_id());
    assert_eq!(ask(1, "").error_code, codes::INVALID_REQUEST);
    assert_eq!(ask(2, "txn-a").error_code, codes::INVALID_REQUEST);
    // v4: one answer per key.
    let batched = find_coordinator::handle(
        &t.agent,
        4,
        FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![str_bytes("a"), str_bytes("")]),
    );
    let codes_: Vec<i16> = batched.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes_, vec![codes::NONE, codes::INVALID_REQUEST]);
}

#[tokio::test]
async fn the_transaction_timeout_is_bounded_by_transaction_max_timeout_ms() {
    let config = AgentConfig {
        transaction_max_timeout: Duration::from_millis(5_000),
        ..AgentConfig::default()
    };
    let t = test_support::agent(config).await;
    for timeout in [0, -1, 5_001, i32::MAX] {
        let answer = init_producer_id::handle(&t.agent, init("t", timeout)).await;
        assert_eq!(
            answer.error_code,
            codes::INVALID_TRANSACTION_TIMEOUT,
            "{timeout}"
        );
    }
    let first = init_producer_id::handle(&t.agent, init("t", 5_000)).await;
    assert_eq!(first.error_code, codes::NONE);
    // An id past the metastore's bound can never work: INVALID_REQUEST, not a retriable code.
    let longest = "t".repeat(skiff_metastore::limits::MAX_TRANSACTIONAL_ID_BYTES);
    let ok = init_producer_id::handle(&t.agent, init(&longest, 5_000)).await;
    assert_eq!(ok.error_code, codes::NONE);
    let too_long = format!("{longest}t");
    let refused = init_producer_id::handle(&t.agent, init(&too_long, 5_000)).await;
    assert_eq!(refused.error_code, codes::INVALID_REQUEST);
    // A second producer of the id: the same producer id, the next epoch.
    let second = init_producer_id::handle(&t.agent, init("t", 5_000)).await;
    assert_eq!(second.producer_id, first.producer_id);
    assert_eq!(second.producer_epoch, first.producer_epoch + 1);
    // KIP-360: the current producer recovers with a bump; the fenced one cannot.
    let fenced = init_producer_id::handle(
        &t.agent,
        init("t", 5_000)
            .with_producer_id(first.producer_id)
            .with_producer_epoch(first.producer_epoch),
    )
    .await;
    assert_eq!(fenced.error_code, codes::PRODUCER_FENCED);
    let recovered = init_producer_id::handle(
        &t.agent,
        init("t", 5_000)
            .with_producer_id(second.producer_id)
            .with_producer_epoch(second.producer_epoch),
    )
    .await;
    assert_eq!(recovered.error_code, codes::NONE);
    assert_eq!(recovered.producer_epoch, second.producer_epoch + 1);
}

#[tokio::test]
async fn add_partitions_end_txn_and_the_v5_epoch_bump() {
    let t = test_support::agent(AgentConfig::default()).await;
    let agent = &t.agent;
    agent
        .create_topic("t", 2, Default::default())
        .await
        .unwrap();
    let p = init_producer_id::handle(agent, init("x", 60_000)).await;
    let (pid, epoch) = (p.producer_id.0, p.producer_epoch);
    // One unknown partition: nothing is added.
    let answer =
        add_partitions_to_txn::handle(agent, add("x", pid, epoch, &[("t", &[0, 5])])).await;
    let got: Vec<(i32, i16)> = answer.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|r| (r.partition_index, r.partition_error_code))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, codes::OPERATION_NOT_ATTEMPTED),
            (5, codes::UNKNOWN_TOPIC_OR_PARTITION)
        ]
    );
    // Nothing was added, so there is no transaction to end.
    let none = end_txn::handle(agent, 3, end("x", pid, epoch, true)).await;
    assert_eq!(none.error_code, codes::INVALID_TXN_STATE);
    let answer =
        add_partitions_to_txn::handle(agent, add("x", pid, epoch, &[("t", &[0, 1])])).await;
    assert!(answer.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .all(|r| r.partition_error_code == codes::NONE));
    // v5 ends the transaction with the next epoch, and says so.
    let ended = end_txn::handle(agent, 5, end("x", pid, epoch, false)).await;
    assert_eq!(ended.error_code, codes::NONE);
    assert_eq!(
        (ended.producer_id.0, ended.producer_epoch),
        (pid, epoch + 1)
    );
    assert_eq!(agent.metrics.txn_aborted.get(), 1);
    // The old epoch is fenced now.
    let stale = add_partitions_to_txn::handle(agent, add("x", pid, epoch, &[("t", &[0])])).await;
    assert_eq!(
        stale.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        codes::PRODUCER_FENCED
    );
    // An empty transactional id is not a request for any transaction.
    let empty = end_txn::handle(agent, 1, end("", pid, epoch, true)).await;
    assert_eq!(empty.error_code, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn txn_offset_commit_from_a_member_this_coordinator_does_not_know_is_refused() {
    let t = test_support::agent(AgentConfig::default()).await;
    let agent = &t.agent;
    agent
        .create_topic("t", 1, Default::default())
        .await
        .unwrap();
    let p = init_producer_id::handle(agent, init("x", 60_000)).await;
    let commit = |generation: i32, member: &str| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(str_bytes("x")))
            .with_group_id(GroupId(str_bytes("g")))
            .with_producer_id(p.producer_id)
            .with_producer_epoch(p.producer_epoch)
            .with_generation_id(generation)
            .with_member_id(str_bytes(member))
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(str_bytes("t")))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(3)])])
    };
    let code =
        |r: kafka_protocol::messages::TxnOffsetCommitResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(
        code(txn_offset_commit::handle(agent, commit(-1, "someone")).await),
        codes::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        code(txn_offset_commit::handle(agent, commit(4, "")).await),
        codes::ILLEGAL_GENERATION
    );
    // Neither named: checked by the transaction only, which has not added the group.
    assert_eq!(
        code(txn_offset_commit::handle(agent, commit(-1, "")).await),
        codes::INVALID_TXN_STATE
    );
}

#[tokio::test]
async fn a_transaction_past_its_timeout_is_aborted_by_the_agents_pass() {
    let t = test_support::agent(AgentConfig::default()).await;
    let agent = &t.agent;
    agent
        .create_topic("t", 1, Default::default())
        .await
        .unwrap();
    let p = init_producer_id::handle(agent, init("slow", 1)).await;
    let answer = add_partitions_to_txn::handle(
        agent,
        add("slow", p.producer_id.0, p.producer_epoch, &[("t", &[0])]),
    )
    .await;
    assert_eq!(
        answer.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        codes::NONE
    );
    // The metastore's clock judges the timeout: wait until it has certainly passed.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = crate::transactions::pass(agent).await.unwrap();
    assert_eq!(expired.timed_out, vec!["slow".to_owned()]);
    assert_eq!(agent.metrics.txn_timed_out.get(), 1);
    // Aborted and fenced: the producer's EndTxn finds its epoch gone.
    let late = end_txn::handle(
        agent,
        1,
        end("slow", p.producer_id.0, p.producer_epoch, true),
    )
    .await;
    assert_eq!(late.error_code, codes::PRODUCER_FENCED);
    // Nothing is due any more.
    let again = crate::transactions::pass(agent).await.unwrap();
    assert!(again.timed_out.is_empty());
}
