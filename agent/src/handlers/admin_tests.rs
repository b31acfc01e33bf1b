//! The admin and describe handlers against a local metastore.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use skiff_metastore::types::TopicPartition;

use super::*;
use crate::brokers::Audience;
use crate::config::AgentConfig;
use crate::protocol::codes;
use crate::test_support::{self, TestAgent};

fn name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

async fn agent_with(topics: &[(&str, i32)]) -> TestAgent {
    let t = test_support::agent(AgentConfig::default()).await;
    for (n, p) in topics {
        t.agent
            .create_topic(n, *p, BTreeMap::new())
            .await
            .expect("create");
    }
    t
}

async fn page(
    t: &TestAgent,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|n| TopicRequest::default().with_name(name(n)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(n, p)| {
            Cursor::default()
                .with_topic_name(name(n))
                .with_partition_index(p)
        }));
    describe_topic_partitions::handle(
        &t.agent,
        &crate::test_support::anonymous(),
        req,
        &Audience::plaintext(false),
    )
    .await
}

fn described(r: &DescribeTopicPartitionsResponse) -> Vec<(String, i16, Vec<i32>)> {
    r.topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect()
}

fn cursor(r: &DescribeTopicPartitionsResponse) -> Option<(String, i32)> {
    r.next_cursor
        .as_ref()
        .map(|c| (c.topic_name.to_string(), c.partition_index))
}

#[tokio::test]
async fn describe_topic_partitions_pages_in_name_order() {
    let t = agent_with(&[("a", 5), ("b", 2), ("c", 1)]).await;
    let r = page(&t, &["b", "zz", "a"], 3, None).await;
    assert_eq!(described(&r), vec![("a".into(), 0, vec![0, 1, 2])]);
    assert_eq!(cursor(&r), Some(("a".into(), 3)));
    let r = page(&t, &["b", "zz", "a"], 3, Some(("a", 3))).await;
    assert_eq!(
        described(&r),
        vec![("a".into(), 0, vec![3, 4]), ("b".into(), 0, vec![0])]
    );
    assert_eq!(cursor(&r), Some(("b".into(), 1)));
    let r = page(&t, &["b", "zz", "a"], 3, Some(("b", 1))).await;
    assert_eq!(
        described(&r),
        vec![
            ("b".into(), 0, vec![1]),
            ("zz".into(), codes::UNKNOWN_TOPIC_OR_PARTITION, vec![])
        ]
    );
    assert_eq!(cursor(&r), None);
    // A page that ends exactly at a topic's end points at the next topic that exists.
    let r = page(&t, &["a", "aa", "b"], 5, None).await;
    assert_eq!(
        described(&r),
        vec![
            ("a".into(), 0, vec![0, 1, 2, 3, 4]),
            ("aa".into(), codes::UNKNOWN_TOPIC_OR_PARTITION, vec![])
        ]
    );
    assert_eq!(cursor(&r), Some(("b".into(), 0)));
    // No topics: all of them; the limit is capped at Kafka's 2000.
    let r = page(&t, &[], i32::MAX, None).await;
    assert_eq!(
        described(&r),
        vec![
            ("a".into(), 0, vec![0, 1, 2, 3, 4]),
            ("b".into(), 0, vec![0, 1]),
            ("c".into(), 0, vec![0])
        ]
    );
    assert_eq!(cursor(&r), None);
    // The cursor must name a topic asked for.
    let r = page(&t, &["a"], 3, Some(("b", 0))).await;
    assert_eq!(
        described(&r),
        vec![("a".into(), codes::INVALID_REQUEST, vec![])]
    );
}

async fn epoch_for(
    t: &TestAgent,
    topic: &str,
    partition: i32,
    current: i32,
    epoch: i32,
) -> (i16, i32, i64) {
    let req =
        OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)])]);
    let r = offset_for_leader_epoch::handle(&t.agent, req).await;
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[tokio::test]
async fn offset_for_leader_epoch_answers_the_high_watermark_for_known_epochs() {
    let t = agent_with(&[("t", 2)]).await;
    let meta = t.agent.topic_named("t").await.unwrap().unwrap();
    let tp = TopicPartition {
        topic_id: meta.topic_id,
        partition: 0,
    };
    test_support::commit_run(&t, tp, &[test_support::batch(0, 3, 10, |_| 1_000)]).await;
    // No heartbeat in a unit test: the live set's epoch is 0.
    let current = crate::brokers::Brokers::known(&t.agent, false).epoch;
    assert_eq!(current, 0);
    assert_eq!(epoch_for(&t, "t", 0, -1, 0).await, (codes::NONE, 0, 3));
    assert_eq!(epoch_for(&t, "t", 0, 0, 0).await, (codes::NONE, 0, 3));
    assert_eq!(epoch_for(&t, "t", 1, -1, 0).await, (codes::NONE, 0, 0));
    assert_eq!(epoch_for(&t, "t", 0, -1, -1).await, (codes::NONE, -1, -1));
    assert_eq!(epoch_for(&t, "t", 0, -1, 1).await, (codes::NONE, -1, -1));
    assert_eq!(
        epoch_for(&t, "t", 0, 1, 0).await.0,
        codes::UNKNOWN_LEADER_EPOCH
    );
    assert_eq!(
        epoch_for(&t, "t", 2, -1, 0).await.0,
        codes::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        epoch_for(&t, "u", 0, -1, 0).await.0,
        codes::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        offset_for_leader_epoch::check_current_epoch(3, 4),
        codes::FENCED_LEADER_EPOCH
    );
    assert_eq!(
        offset_for_leader_epoch::check_current_epoch(-1, 4),
        codes::NONE
    );
}

#[tokio::test]
async fn describe_log_dirs_sizes_each_partition() {
    let t = agent_with(&[("t", 2)]).await;
    let meta = t.agent.topic_named("t").await.unwrap().unwrap();
    let tp = TopicPartition {
        topic_id: meta.topic_id,
        partition: 1,
    };
    let batches = [
        test_support::batch(0, 3, 10, |_| 1_000),
        test_support::batch(0, 1, 50, |_| 1_000),
    ];
    test_support::commit_run(&t, tp, &batches).await;
    let stored = (batches[0].len() + batches[1].len()) as i64;
    let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default()
            .with_topic(name("t"))
            .with_partitions(vec![1, 0, 1, 9]),
        DescribableLogDirTopic::default()
            .with_topic(name("missing"))
            .with_partitions(vec![0]),
    ]));
    let r = describe_log_dirs::handle(&t.agent, req).await;
    let dir = &r.results[0];
    assert_eq!(dir.log_dir.as_str(), "skiff://skiff-cluster");
    assert_eq!((dir.total_bytes, dir.usable_bytes), (-1, -1));
    let sizes: Vec<(String, i32, i64)> = dir
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index, p.partition_size))
        })
        .collect();
    assert_eq!(sizes, vec![("t".into(), 0, 0), ("t".into(), 1, stored)]);
    let all = describe_log_dirs::handle(
        &t.agent,
        DescribeLogDirsRequest::default().with_topics(None),
    )
    .await;
    assert_eq!(all.results[0].topics[0].partitions.len(), 2);
}

#[tokio::test]
async fn create_topics_refuses_duplicates_and_internal_names() {
    let t = agent_with(&[]).await;
    let topic = |n: &str| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(1)
            .with_replication_factor(1)
    };
    let req = CreateTopicsRequest::default().with_topics(vec![
        topic("d"),
        topic("ok"),
        topic("d"),
        topic("d"),
        topic("__consumer_offsets"),
    ]);
    let r = create_topics::handle(&t.agent, &crate::test_support::anonymous(), 7, req).await;
    let got: Vec<(String, i16, String)> = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.error_code,
                t.error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "d".into(),
                codes::INVALID_REQUEST,
                "Duplicate topic name.".into()
            ),
            ("ok".into(), codes::NONE, String::new()),
            (
                "__consumer_offsets".into(),
                codes::INVALID_REQUEST,
                "Creation of internal topic __consumer_offsets is prohibited.".into()
            ),
        ]
    );
    assert!(t.agent.topic_named("d").await.unwrap().is_none());

    let req = DeleteTopicsRequest::default().with_topic_names(vec![name("ok"), name("ok")]);
    let r = delete_topics::handle(&t.agent, &crate::test_support::anonymous(), 5, req).await;
    assert_eq!(r.responses.len(), 1);
    assert_eq!(r.responses[0].error_code, codes::INVALID_REQUEST);
    assert!(t.agent.topic_named("ok").await.unwrap().is_some());
}

#[tokio::test]
async fn metadata_neither_creates_nor_lists_internal_topics_and_answers_operations() {
    let t = agent_with(&[("t", 1)]).await;
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("__consumer_offsets"))),
            MetadataRequestTopic::default().with_name(Some(name("t"))),
        ]))
        .with_allow_auto_topic_creation(true)
        .with_include_cluster_authorized_operations(true)
        .with_include_topic_authorized_operations(true);
    let r = metadata::handle(
        &t.agent,
        &crate::test_support::anonymous(),
        8,
        req.clone(),
        &Audience::plaintext(false),
    )
    .await;
    assert_eq!(r.topics[0].error_code, codes::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(r.topics[0].topic_authorized_operations, i32::MIN);
    assert_eq!(r.topics[1].topic_authorized_operations, 3576);
    assert_eq!(r.cluster_authorized_operations, 8096);
    assert!(t
        .agent
        .topic_named("__consumer_offsets")
        .await
        .unwrap()
        .is_none());
    // v11 moved the cluster's operations to DescribeCluster.
    let r = metadata::handle(
        &t.agent,
        &crate::test_support::anonymous(),
        11,
        req,
        &Audience::plaintext(false),
    )
    .await;
    assert_eq!(r.cluster_authorized_operations, i32::MIN);
    let r = metadata::handle(
        &t.agent,
        &crate::test_support::anonymous(),
        8,
        MetadataRequest::default().with_topics(None),
        &Audience::plaintext(false),
    )
    .await;
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].topic_authorized_operations, i32::MIN);
}

#[tokio::test]
async fn elections_are_never_needed_and_reassignments_are_refused() {
    let t = agent_with(&[("t", 2)]).await;
    let req =
        ElectLeadersRequest::default()
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(name("t"))
                .with_partitions(vec![0, 1, 2])]));
    let r = reassignments::elect(&t.agent, req).await;
    let codes_of: Vec<i16> = r.replica_election_results[0]
        .partition_result
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(
        codes_of,
        vec![
            codes::ELECTION_NOT_NEEDED,
            codes::ELECTION_NOT_NEEDED,
            codes::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    let all = reassignments::elect(
        &t.agent,
        ElectLeadersRequest::default().with_topic_partitions(None),
    )
    .await;
    assert!(all.replica_election_results.is_empty());

    let req = AlterPartitionReassignmentsRequest::default().with_topics(vec![
        ReassignableTopic::default()
            .with_name(name("t"))
            .with_partitions(vec![
                ReassignablePartition::default()
                    .with_partition_index(0)
                    .with_replicas(Some(vec![BrokerId(1)])),
                ReassignablePartition::default().with_partition_index(1),
                ReassignablePartition::default()
                    .with_partition_index(5)
                    .with_replicas(Some(vec![BrokerId(1)])),
            ]),
    ]);
    let r = reassignments::alter(&t.agent, req).await;
    let got: Vec<i16> = r.responses[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(
        got,
        vec![
            codes::INVALID_REPLICA_ASSIGNMENT,
            codes::NO_REASSIGNMENT_IN_PROGRESS,
            codes::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    assert!(
        reassignments::list(ListPartitionReassignmentsRequest::default())
            .topics
            .is_empty()
    );
}

#[tokio::test]
async fn describe_cluster_answers_brokers_only() {
    let t = agent_with(&[]).await;
    let r = describe_cluster::handle(
        &t.agent,
        1,
        DescribeClusterRequest::default(),
        &Audience::plaintext(false),
    );
    assert_eq!((r.error_code, r.endpoint_type), (codes::NONE, 1));
    assert_eq!(r.brokers.len(), 1);
    assert_eq!(r.controller_id, r.brokers[0].broker_id);
    assert_eq!(r.cluster_id.as_str(), "skiff-cluster");
    assert_eq!(r.cluster_authorized_operations, i32::MIN);
    let r = describe_cluster::handle(
        &t.agent,
        1,
        DescribeClusterRequest::default().with_endpoint_type(2),
        &Audience::plaintext(false),
    );
    assert_eq!(r.error_code, codes::MISMATCHED_ENDPOINT_TYPE);
    assert!(r.brokers.is_empty());
    let r = describe_cluster::handle(
        &t.agent,
        1,
        DescribeClusterRequest::default().with_endpoint_type(9),
        &Audience::plaintext(false),
    );
    assert_eq!(r.error_code, codes::UNSUPPORTED_ENDPOINT_TYPE);
    let r = describe_cluster::handle(
        &t.agent,
        0,
        DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        &Audience::plaintext(false),
    );
    assert_eq!(r.cluster_authorized_operations, 8096);
}

#[tokio::test]
async fn describe_producers_marks_unknown_partitions() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest as ProducersTopic;
    let t = agent_with(&[("t", 2)]).await;
    let req = DescribeProducersRequest::default().with_topics(vec![
        ProducersTopic::default()
            .with_name(name("t"))
            .with_partition_indexes(vec![1, 2]),
        ProducersTopic::default()
            .with_name(name("__transaction_state"))
            .with_partition_indexes(vec![0]),
    ]);
    let r = describe_producers::handle(&t.agent, req).await;
    let got: Vec<(i32, i16, usize)> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code, p.active_producers.len()))
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, codes::NONE, 0),
            (2, codes::UNKNOWN_TOPIC_OR_PARTITION, 0),
            (0, codes::UNKNOWN_TOPIC_OR_PARTITION, 0)
        ]
    );
}
