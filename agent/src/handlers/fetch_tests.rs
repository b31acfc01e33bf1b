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
                transactional: false,
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
    let plans = plan(&t.agent, &wants, response_max, false).await;
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
                    aborted_upto: -1,
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
    let plans = plan(&t.agent, &wants, 10, false).await;
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
    let plans = plan(&t.agent, &wants, u64::MAX, false).await;
    // Two distinct reads, not three.
    assert_eq!(t.agent.metrics.index_cache_misses.get() - misses, 2);
    assert_eq!(planned(&plans), [2, 1, 2]);
    assert_eq!(plans[0].batches, plans[2].batches);
    assert_eq!(plans[2].batches.first().map(|b| b.base_offset), Some(1));

    // Under a budget the repeat gets what is left of it.
    let plans = plan(&t.agent, &wants, 4 * u64::from(BATCH), false).await;
    assert_eq!(planned(&plans), [2, 1, 1]);
}

#[tokio::test]
async fn a_partition_limit_below_its_first_run_still_reads_it() {
    let (t, tps) = agent(2, 2).await;
    let wants = [want(tps[0], 0, 10), want(tps[1], 0, 10)];
    let plans = plan(&t.agent, &wants, u64::MAX, false).await;
    // The reader answers from each what fits in 10 bytes; only the first batch of the
    // response may pass it.
    assert_eq!(planned(&plans), [1, 1]);
    let flags: Vec<(u64, bool)> = plans.iter().map(|p| (p.limit, p.whole_first)).collect();
    assert_eq!(flags, [(10, true), (10, false)]);
}

#[tokio::test]
async fn a_segment_costs_what_is_wanted_of_it_not_its_length() {
    let (t, tps) = agent(2, 8).await;
    let runs = t
        .agent
        .metastore
        .read_index(tps[0], 0, u64::MAX)
        .await
        .expect("index")
        .batches;
    assert_eq!(runs.len(), 8);
    // The index only: planning reads no object.
    let segment = BatchLocation {
        base_offset: 0,
        last_offset: 7,
        object: ObjectId(ulid::Ulid::new()),
        position: 0,
        len: 8 * BATCH,
        first_timestamp: 0,
        max_timestamp: 0,
        layout: skiff_metastore::types::RunLayout::Segment { index_len: 28 },
    };
    t.agent
        .metastore
        .replace_batches(skiff_metastore::types::ReplaceBatches {
            tp: tps[0],
            object: segment.object,
            size: 1,
            replaced: runs.iter().map(|r| (r.base_offset, r.object)).collect(),
            batches: vec![segment],
            now_ms: 0,
        })
        .await
        .expect("replace");
    let limit = u64::from(BATCH);
    let wants = [want(tps[0], 3, limit), want(tps[1], 0, limit)];
    let plans = plan(&t.agent, &wants, 2 * limit, false).await;
    assert_eq!(planned(&plans), [1, 1]);
    assert_eq!(plans[0].cost, limit, "charged what is read of it");
    assert_eq!(plans[1].limit, limit, "the segment left the next its share");
}

/// The base offsets of the batches of a fetched partition.
fn bases(records: &[u8]) -> Vec<i64> {
    skiff_format::run::run_batches(records, skiff_format::run::RunOffsets::InHeaders)
        .map(|b| b.expect("batch").base_offset)
        .collect()
}

async fn fetch_one(t: &test_support::TestAgent, offset: i64, max_bytes: i32) -> (i16, Vec<i64>) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(
                kafka_protocol::protocol::StrBytes::from_static_str("t"),
            ))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)])]);
    let resp = handle(&t.agent, &crate::test_support::anonymous(), 12, req).await;
    let p = &resp.responses[0].partitions[0];
    let records = p.records.clone().unwrap_or_default();
    (p.error_code, bases(&records))
}

#[tokio::test]
async fn fetches_inside_a_run_and_inside_the_segment_replacing_it_start_at_the_right_batch() {
    let t = test_support::agent(AgentConfig::default()).await;
    let meta = t
        .agent
        .create_topic("t", 1, BTreeMap::new())
        .await
        .expect("create topic");
    let tp = TopicPartition {
        topic_id: meta.topic_id,
        partition: 0,
    };
    // Producers' batches: base offset 0 in every header, 3, 1, 4 and 2 records.
    let counts = [3, 1, 4, 2];
    let flushed: Vec<_> = counts
        .iter()
        .map(|&n| test_support::batch(0, n, 20, |r| 1_000 + i64::from(r)))
        .collect();
    let object = test_support::commit_run(&t, tp, &flushed).await;
    let index = t
        .agent
        .metastore
        .read_index(tp, 0, u64::MAX)
        .await
        .expect("index");
    assert_eq!(index.batches.len(), 1, "one run");
    let starts = [0i64, 3, 4, 8];
    for offset in 0..10 {
        let from = starts.iter().rposition(|&s| s <= offset).expect("a batch");
        assert_eq!(
            fetch_one(&t, offset, i32::MAX).await,
            (codes::NONE, starts[from..].to_vec()),
            "offset {offset}"
        );
        // KIP-74: the first batch whole, past a limit of one byte.
        assert_eq!(
            fetch_one(&t, offset, 1).await,
            (codes::NONE, vec![starts[from]]),
            "offset {offset}"
        );
    }

    // Compaction keeps the first, third and fourth batches, with their real offsets.
    let kept: Vec<_> = [(0usize, 0i64), (2, 4), (3, 8)]
        .iter()
        .map(|&(i, base)| test_support::batch(base, counts[i], 20, |r| 1_000 + i64::from(r)))
        .collect();
    test_support::replace_with_segment(&t, tp, vec![(0, object)], &kept).await;
    for offset in 0..10 {
        let want: Vec<i64> = match offset {
            0..=2 => vec![0, 4, 8],
            3..=7 => vec![4, 8],
            _ => vec![8],
        };
        assert_eq!(
            fetch_one(&t, offset, i32::MAX).await,
            (codes::NONE, want),
            "offset {offset}"
        );
    }
}

#[tokio::test]
async fn a_corrupt_run_is_a_storage_error() {
    let t = test_support::agent(AgentConfig::default()).await;
    let meta = t
        .agent
        .create_topic("t", 1, BTreeMap::new())
        .await
        .expect("create topic");
    let tp = TopicPartition {
        topic_id: meta.topic_id,
        partition: 0,
    };
    let batches = [
        test_support::batch(0, 2, 20, |_| 5),
        test_support::batch(0, 2, 20, |_| 6),
    ];
    let object = test_support::commit_run(&t, tp, &batches).await;
    // The second batch's length field garbled, in place.
    let mut bytes = batches[0].to_vec();
    let mut second = batches[1].to_vec();
    second[8..12].copy_from_slice(&1_000i32.to_be_bytes());
    bytes.extend_from_slice(&second);
    t.store
        .put(&crate::storage::object_path(object), bytes.into())
        .await
        .expect("put");
    assert_eq!(
        fetch_one(&t, 0, i32::MAX).await,
        (codes::KAFKA_STORAGE_ERROR, vec![])
    );
}
