//! DescribeTransactions and ListTransactions against a local metastore, with transactions made
//! through the metastore client directly.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest, ProducerId,
    TransactionalId,
};
use skiff_metastore::types::{
    AddPartitionsToTxn, EndTxn, InitTransactionalProducer, TopicPartition, TxnProducer,
};

use super::super::{describe_transactions, list_transactions, str_bytes};
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::protocol::codes;
use crate::test_support::{self, TestAgent};

/// A clock the test sets; the metastore stamps transactions with its own.
#[derive(Default)]
struct SetClock(AtomicI64);

impl Clock for SetClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

async fn agent(clock: Arc<SetClock>) -> TestAgent {
    let t = test_support::agent_with_clock(AgentConfig::default(), clock).await;
    for (n, p) in [("a", 3), ("b", 2)] {
        t.agent.create_topic(n, p, BTreeMap::new()).await.unwrap();
    }
    t
}

async fn tp(t: &TestAgent, topic: &str, partition: i32) -> TopicPartition {
    let meta = t.agent.topic_named(topic).await.unwrap().unwrap();
    TopicPartition {
        topic_id: meta.topic_id,
        partition,
    }
}

/// Starts `id`'s producer and, with `partitions`, a transaction on them.
async fn begin(t: &TestAgent, id: &str, partitions: Vec<TopicPartition>) -> TxnProducer {
    let pe = t
        .agent
        .metastore
        .init_transactional_producer(InitTransactionalProducer {
            transactional_id: id.into(),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            now_ms: 0,
        })
        .await
        .unwrap();
    let producer = TxnProducer {
        transactional_id: id.into(),
        producer_id: pe.producer_id,
        producer_epoch: pe.producer_epoch,
    };
    if !partitions.is_empty() {
        let added = t
            .agent
            .metastore
            .add_partitions_to_txn(AddPartitionsToTxn {
                producer: producer.clone(),
                partitions,
                now_ms: 0,
            })
            .await
            .unwrap();
        assert!(added.iter().all(|r| r.is_ok()), "{added:?}");
    }
    producer
}

async fn end(t: &TestAgent, producer: &TxnProducer, commit: bool) {
    t.agent
        .metastore
        .end_txn(EndTxn {
            producer: producer.clone(),
            commit,
            bump_epoch: false,
            now_ms: 0,
        })
        .await
        .unwrap();
}

async fn describe(t: &TestAgent, ids: &[&str]) -> DescribeTransactionsResponse {
    let req = DescribeTransactionsRequest::default().with_transactional_ids(
        ids.iter()
            .map(|id| TransactionalId(str_bytes(*id)))
            .collect(),
    );
    describe_transactions::handle(&t.agent, req).await
}

async fn list(
    t: &TestAgent,
    version: i16,
    states: &[&str],
    producers: &[i64],
    duration: i64,
) -> (Vec<(String, i64, String)>, Vec<String>, i16) {
    let req = ListTransactionsRequest::default()
        .with_state_filters(states.iter().map(|s| str_bytes(*s)).collect())
        .with_producer_id_filters(producers.iter().map(|p| ProducerId(*p)).collect())
        .with_duration_filter(duration);
    let r = list_transactions::handle(&t.agent, version, req).await;
    let mut listed: Vec<(String, i64, String)> = r
        .transaction_states
        .iter()
        .map(|s| {
            (
                s.transactional_id.0.to_string(),
                s.producer_id.0,
                s.transaction_state.to_string(),
            )
        })
        .collect();
    listed.sort();
    let unknown = r
        .unknown_state_filters
        .iter()
        .map(|s| s.to_string())
        .collect();
    (listed, unknown, r.error_code)
}

#[tokio::test]
async fn describe_shows_state_partitions_by_topic_name_and_unknown_ids() {
    let clock = Arc::new(SetClock::default());
    let t = agent(clock).await;
    let parts = vec![
        tp(&t, "a", 0).await,
        tp(&t, "a", 2).await,
        tp(&t, "b", 1).await,
    ];
    let ongoing = begin(&t, "tx-ongoing", parts).await;
    let committed = begin(&t, "tx-committed", vec![tp(&t, "b", 0).await]).await;
    end(&t, &committed, true).await;
    let aborted = begin(&t, "tx-aborted", vec![tp(&t, "a", 1).await]).await;
    end(&t, &aborted, false).await;
    let empty = begin(&t, "tx-empty", vec![]).await;

    let r = describe(
        &t,
        &[
            "tx-ongoing",
            "nope",
            "tx-committed",
            "tx-aborted",
            "tx-empty",
            "",
        ],
    )
    .await;
    let s = &r.transaction_states;
    assert_eq!(s.len(), 6);
    let ids: Vec<String> = s.iter().map(|s| s.transactional_id.0.to_string()).collect();
    assert_eq!(
        ids,
        [
            "tx-ongoing",
            "nope",
            "tx-committed",
            "tx-aborted",
            "tx-empty",
            ""
        ]
    );
    let codes_of: Vec<i16> = s.iter().map(|s| s.error_code).collect();
    assert_eq!(
        codes_of,
        [
            codes::NONE,
            codes::TRANSACTIONAL_ID_NOT_FOUND,
            codes::NONE,
            codes::NONE,
            codes::NONE,
            codes::INVALID_REQUEST
        ]
    );
    let states: Vec<String> = s.iter().map(|s| s.transaction_state.to_string()).collect();
    assert_eq!(
        states,
        [
            "Ongoing",
            "",
            "CompleteCommit",
            "CompleteAbort",
            "Empty",
            ""
        ]
    );

    let o = &s[0];
    assert_eq!(o.producer_id.0, ongoing.producer_id);
    assert_eq!(o.producer_epoch, ongoing.producer_epoch);
    assert_eq!(o.transaction_timeout_ms, 60_000);
    assert!(o.transaction_start_time_ms > 0);
    let mut topics: Vec<(String, Vec<i32>)> = o
        .topics
        .iter()
        .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        vec![("a".to_owned(), vec![0, 2]), ("b".to_owned(), vec![1])]
    );
    // A finished transaction has no partitions and no start time, as in Kafka.
    assert!(s[2].topics.is_empty() && s[3].topics.is_empty());
    assert_eq!(s[2].transaction_start_time_ms, -1);
    assert_eq!(s[4].producer_id.0, empty.producer_id);
    assert_eq!(s[1].producer_id.0, -1);
}

#[tokio::test]
async fn describe_leaves_out_a_deleted_topic() {
    let t = agent(Arc::new(SetClock::default())).await;
    let parts = vec![tp(&t, "a", 0).await, tp(&t, "b", 0).await];
    begin(&t, "tx", parts).await;
    t.agent.delete_topic("b").await.unwrap();
    let r = describe(&t, &["tx"]).await;
    let topics: Vec<String> = r.transaction_states[0]
        .topics
        .iter()
        .map(|t| t.topic.0.to_string())
        .collect();
    assert_eq!(topics, ["a"]);
}

#[tokio::test]
async fn list_filters_by_state_and_producer() {
    let t = agent(Arc::new(SetClock::default())).await;
    let ongoing = begin(&t, "tx-1", vec![tp(&t, "a", 0).await]).await;
    let committed = begin(&t, "tx-2", vec![tp(&t, "a", 1).await]).await;
    end(&t, &committed, true).await;
    let empty = begin(&t, "tx-3", vec![]).await;
    let row = |id: &str, p: &TxnProducer, s: &str| (id.to_owned(), p.producer_id, s.to_owned());

    let (all, unknown, code) = list(&t, 0, &[], &[], -1).await;
    assert_eq!(code, codes::NONE);
    assert!(unknown.is_empty());
    assert_eq!(
        all,
        vec![
            row("tx-1", &ongoing, "Ongoing"),
            row("tx-2", &committed, "CompleteCommit"),
            row("tx-3", &empty, "Empty"),
        ]
    );
    let (by_state, _, _) = list(&t, 0, &["Ongoing", "Empty"], &[], -1).await;
    assert_eq!(
        by_state,
        vec![
            row("tx-1", &ongoing, "Ongoing"),
            row("tx-3", &empty, "Empty")
        ]
    );
    let (by_producer, _, _) = list(&t, 0, &[], &[committed.producer_id, 999_999], -1).await;
    assert_eq!(by_producer, vec![row("tx-2", &committed, "CompleteCommit")]);
    let (both, _, _) = list(&t, 0, &["Ongoing"], &[committed.producer_id], -1).await;
    assert!(both.is_empty(), "{both:?}");
}

#[tokio::test]
async fn unknown_state_filters_match_nothing_and_are_answered() {
    let t = agent(Arc::new(SetClock::default())).await;
    begin(&t, "tx-1", vec![tp(&t, "a", 0).await]).await;
    let (listed, unknown, code) = list(&t, 0, &["Bogus", "ongoing"], &[], -1).await;
    assert_eq!(code, codes::NONE);
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(unknown, ["Bogus", "ongoing"]);
    // A Kafka state no Skiff transaction rests in: known, and matches nothing.
    let (listed, unknown, _) = list(&t, 0, &["PrepareCommit"], &[], -1).await;
    assert!(
        listed.is_empty() && unknown.is_empty(),
        "{listed:?} {unknown:?}"
    );
    // Next to a known state, an unknown one takes nothing away.
    let (listed, unknown, _) = list(&t, 0, &["Bogus", "Ongoing"], &[], -1).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(unknown, ["Bogus"]);
}

#[tokio::test]
async fn duration_filter_passes_transactions_running_longer() {
    let clock = Arc::new(SetClock::default());
    let t = agent(clock.clone()).await;
    begin(&t, "tx-old", vec![tp(&t, "a", 0).await]).await;
    let done = begin(&t, "tx-done", vec![tp(&t, "a", 1).await]).await;
    end(&t, &done, true).await;
    let start = describe(&t, &["tx-old"]).await.transaction_states[0].transaction_start_time_ms;
    clock.0.store(start + 3_600_000, Ordering::SeqCst);

    let ids = |l: Vec<(String, i64, String)>| l.into_iter().map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(ids(list(&t, 1, &[], &[], 60_000).await.0), ["tx-old"]);
    assert_eq!(ids(list(&t, 1, &[], &[], 3_599_999).await.0), ["tx-old"]);
    // Kafka passes only what has run longer than the filter.
    assert!(list(&t, 1, &[], &[], 3_600_000).await.0.is_empty());
    // v0 has no duration filter: whatever the body says, everything is listed.
    assert_eq!(
        ids(list(&t, 0, &[], &[], 7_200_000).await.0),
        ["tx-done", "tx-old"]
    );
}
