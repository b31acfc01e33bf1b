//! What a fetch plans from the index: one budget across its partitions, and a partition named
//! twice read once.

use std::collections::BTreeMap;

use skiff_metastore::types::{CommitBatch, CommitObject, ObjectId};

use super::*;
use crate::config::AgentConfig;
use crate::test_support;

const BATCH: u32 = 1 << 20;

/// An agent with a topic of `partitions` partitions holding `batches` batches of 1 MiB each
/// (index entries only: planning reads no object).
async fn agent(partitions: i32, batches: usize) -> (test_support::TestAgent, Vec<TopicPartition>) {
    let t = test_support::agent(AgentConfig::default()).await;
    let meta = t
        .agent
        .create_topic("t", partitions, BTreeMap::new())
        .await
        .expect("create topic");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|partition| TopicPartition {
            topic_id: meta.topic_id,
            partition,
        })
        .collect();
    for _ in 0..batches {
        let batches = tps
            .iter()
            .map(|&tp| CommitBatch {
                tp,
                position: 0,
                len: BATCH,
                last_offset_delta: 0,
                record_count: 1,
                first_timestamp: 0,
                max_timestamp: 0,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
            })
            .collect();
        let answer = t
            .agent
            .metastore
            .commit_object(CommitObject {
                object: ObjectId(ulid::Ulid::new()),
                size: 1,
                batches,
                now_ms: 0,
            })
            .await
            .expect("commit");
        assert!(answer.iter().all(Result::is_ok));
    }
    (t, tps)
}

fn want(tp: TopicPartition, fetch_offset: i64, max_bytes: u64) -> Want {
    Want {
        topic: 0,
        partition: tp.partition,
        tp: Ok(tp),
        fetch_offset,
        max_bytes,
    }
}

fn planned(plans: &[Plan]) -> Vec<usize> {
    plans.iter().map(|p| p.batches.len()).collect()
}

#[tokio::test]
async fn huge_partition_limits_over_many_partitions_plan_within_the_response_budget() {
    let (t, tps) = agent(50, 8).await;
    let wants: Vec<Want> = tps.iter().map(|&tp| want(tp, 0, u64::MAX)).collect();
    let response_max = 10 * u64::from(BATCH) + 1;
    let plans = plan(&t.agent, &wants, response_max).await;
    let bytes: u64 = plans
        .iter()
        .flat_map(|p| &p.batches)
        .map(|b| u64::from(b.len))
        .sum();
    assert_eq!(bytes, 10 * u64::from(BATCH));
    assert_eq!(planned(&plans)[..3], [8, 2, 0]);
    assert!(plans
        .iter()
        .all(|p| p.error == codes::NONE && p.offsets.is_some()));

    // What the metastore answered is bounded the same way: the budget, passed once for them
    // all, plus the batch the second partition's slice ended on.
    let answers = t
        .agent
        .metastore
        .read_indexes_within(
            tps.iter()
                .map(|&tp| IndexRead {
                    tp,
                    offset: 0,
                    max_bytes: u64::MAX,
                    offsets_only: false,
                })
                .collect(),
            response_max,
        )
        .await
        .expect("read");
    let described: u64 = answers
        .iter()
        .filter_map(|a| a.slice.as_ref().ok())
        .flat_map(|s| &s.batches)
        .map(|b| u64::from(b.len))
        .sum();
    assert!(described <= response_max + u64::from(BATCH) * 50);
    assert_eq!(described, 11 * u64::from(BATCH));
}

#[tokio::test]
async fn the_first_batch_comes_whole_whatever_the_budget() {
    let (t, tps) = agent(2, 2).await;
    let wants = [want(tps[0], 0, 10), want(tps[1], 0, 10)];
    let plans = plan(&t.agent, &wants, 10).await;
    assert_eq!(planned(&plans), [1, 0]);
}

#[tokio::test]
async fn a_partition_named_twice_is_read_once_and_answered_within_the_budget() {
    let (t, tps) = agent(2, 4).await;
    let wants = [
        want(tps[0], 1, 2 * u64::from(BATCH)),
        want(tps[1], 0, u64::from(BATCH)),
        want(tps[0], 1, 2 * u64::from(BATCH)),
    ];
    let misses = t.agent.metrics.index_cache_misses.get();
    let plans = plan(&t.agent, &wants, u64::MAX).await;
    // Two distinct reads, not three.
    assert_eq!(t.agent.metrics.index_cache_misses.get() - misses, 2);
    assert_eq!(planned(&plans), [2, 1, 2]);
    assert_eq!(plans[0].batches, plans[2].batches);
    assert_eq!(plans[2].batches.first().map(|b| b.base_offset), Some(1));

    // Under a budget the repeat gets what is left of it.
    let plans = plan(&t.agent, &wants, 4 * u64::from(BATCH)).await;
    assert_eq!(planned(&plans), [2, 1, 1]);
}
