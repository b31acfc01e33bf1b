//! Samples of the admin and describe requests for the guard's tests.

use bytes::Bytes;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    AlterPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_log_dirs_request::{
    DescribableLogDirTopic, DescribeLogDirsRequest,
};
use kafka_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest as ProducersTopic,
};
use kafka_protocol::messages::describe_topic_partitions_request::{
    Cursor, DescribeTopicPartitionsRequest, TopicRequest,
};
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::elect_leaders_request::{ElectLeadersRequest, TopicPartitions};
use kafka_protocol::messages::list_partition_reassignments_request::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsTopics,
};
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProducerId, TransactionalId};
use kafka_protocol::protocol::{Decodable, Message, VersionRange};

use super::{encode, name, tags};

pub(super) fn samples(api: ApiKey, v: i16) -> Option<Vec<Bytes>> {
    Some(match api {
        ApiKey::DescribeCluster => vec![encode(
            DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(true)
                .with_endpoint_type(if v >= 1 { 2 } else { 1 })
                .with_include_fenced_brokers(v >= 2)
                .with_unknown_tagged_fields(tags()),
            v,
        )],
        ApiKey::DescribeLogDirs => {
            let topic = DescribableLogDirTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![0, 1, 2])
                .with_unknown_tagged_fields(if v >= 2 { tags() } else { Default::default() });
            let some = DescribeLogDirsRequest::default()
                .with_topics(Some(vec![topic.clone(), topic]))
                .with_unknown_tagged_fields(if v >= 2 { tags() } else { Default::default() });
            let null = DescribeLogDirsRequest::default().with_topics(None);
            vec![encode(some, v), encode(null, v)]
        }
        ApiKey::OffsetForLeaderEpoch => {
            let flexible = v >= 4;
            let t = |n| {
                if flexible { tags() } else { Default::default() }
                    .into_iter()
                    .take(n)
                    .collect()
            };
            let partition = OffsetForLeaderPartition::default()
                .with_partition(3)
                .with_current_leader_epoch(7)
                .with_leader_epoch(5)
                .with_unknown_tagged_fields(t(1));
            let topic = OffsetForLeaderTopic::default()
                .with_topic(name("topic"))
                .with_partitions(vec![partition.clone(), partition])
                .with_unknown_tagged_fields(t(1));
            vec![encode(
                OffsetForLeaderEpochRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![topic.clone(), topic])
                    .with_unknown_tagged_fields(t(1)),
                v,
            )]
        }
        ApiKey::DescribeTopicPartitions => {
            let topic = TopicRequest::default()
                .with_name(name("a"))
                .with_unknown_tagged_fields(tags());
            let req = DescribeTopicPartitionsRequest::default()
                .with_topics(vec![topic.clone(), topic])
                .with_response_partition_limit(100);
            let with_cursor = req.clone().with_cursor(Some(
                Cursor::default()
                    .with_topic_name(name("a"))
                    .with_partition_index(4)
                    .with_unknown_tagged_fields(tags()),
            ));
            vec![
                encode(with_cursor.with_unknown_tagged_fields(tags()), v),
                encode(req, v),
            ]
        }
        ApiKey::ElectLeaders => {
            let flexible = v >= 2;
            let t = || if flexible { tags() } else { Default::default() };
            let topic = TopicPartitions::default()
                .with_topic(name("t"))
                .with_partitions(vec![0, 1])
                .with_unknown_tagged_fields(t());
            let some = ElectLeadersRequest::default()
                .with_election_type(if v >= 1 { 1 } else { 0 })
                .with_topic_partitions(Some(vec![topic.clone(), topic]))
                .with_timeout_ms(1000)
                .with_unknown_tagged_fields(t());
            let null = ElectLeadersRequest::default().with_topic_partitions(None);
            vec![encode(some, v), encode(null, v)]
        }
        ApiKey::AlterPartitionReassignments => {
            let partition = |replicas: Option<Vec<BrokerId>>| {
                ReassignablePartition::default()
                    .with_partition_index(1)
                    .with_replicas(replicas)
                    .with_unknown_tagged_fields(tags())
            };
            let topic = ReassignableTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    partition(Some(vec![BrokerId(1), BrokerId(2)])),
                    partition(None),
                ])
                .with_unknown_tagged_fields(tags());
            vec![encode(
                AlterPartitionReassignmentsRequest::default()
                    .with_timeout_ms(1000)
                    .with_topics(vec![topic.clone(), topic])
                    .with_unknown_tagged_fields(tags()),
                v,
            )]
        }
        ApiKey::ListPartitionReassignments => {
            let topic = ListPartitionReassignmentsTopics::default()
                .with_name(name("t"))
                .with_partition_indexes(vec![0, 1])
                .with_unknown_tagged_fields(tags());
            vec![
                encode(
                    ListPartitionReassignmentsRequest::default()
                        .with_topics(Some(vec![topic.clone(), topic]))
                        .with_unknown_tagged_fields(tags()),
                    v,
                ),
                encode(
                    ListPartitionReassignmentsRequest::default().with_topics(None),
                    v,
                ),
            ]
        }
        ApiKey::DescribeProducers => {
            let topic = ProducersTopic::default()
                .with_name(name("t"))
                .with_partition_indexes(vec![0, 1])
                .with_unknown_tagged_fields(tags());
            vec![encode(
                DescribeProducersRequest::default()
                    .with_topics(vec![topic.clone(), topic])
                    .with_unknown_tagged_fields(tags()),
                v,
            )]
        }
        ApiKey::DescribeTransactions => {
            let id = |s: &'static str| TransactionalId(name(s).0);
            vec![
                encode(
                    DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![id("a"), id(""), id("tx-2")])
                        .with_unknown_tagged_fields(tags()),
                    v,
                ),
                encode(DescribeTransactionsRequest::default(), v),
            ]
        }
        ApiKey::ListTransactions => {
            let full = ListTransactionsRequest::default()
                .with_state_filters(vec![name("Ongoing").0, name("Nope").0])
                .with_producer_id_filters(vec![ProducerId(7), ProducerId(-1)])
                .with_duration_filter(if v >= 1 { 1000 } else { -1 })
                .with_transactional_id_pattern((v >= 2).then(|| name("tx-.*").0))
                .with_unknown_tagged_fields(tags());
            vec![
                encode(full, v),
                encode(ListTransactionsRequest::default(), v),
            ]
        }
        _ => return None,
    })
}

pub(super) fn kafka_versions(api: ApiKey) -> Option<VersionRange> {
    Some(match api {
        ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS,
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::VERSIONS,
        ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsRequest::VERSIONS,
        ApiKey::ElectLeaders => ElectLeadersRequest::VERSIONS,
        ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::VERSIONS,
        ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::VERSIONS,
        ApiKey::DescribeProducers => DescribeProducersRequest::VERSIONS,
        ApiKey::DescribeTransactions => DescribeTransactionsRequest::VERSIONS,
        ApiKey::ListTransactions => ListTransactionsRequest::VERSIONS,
        _ => return None,
    })
}

pub(super) fn kafka_decode(api: ApiKey, v: i16, body: &[u8]) -> Option<Result<usize, String>> {
    fn len<T: Decodable>(v: i16, body: &[u8]) -> Result<usize, String> {
        let mut buf = Bytes::copy_from_slice(body);
        T::decode(&mut buf, v).map_err(|e| e.to_string())?;
        Ok(body.len() - buf.len())
    }
    Some(match api {
        ApiKey::DescribeCluster => len::<DescribeClusterRequest>(v, body),
        ApiKey::DescribeLogDirs => len::<DescribeLogDirsRequest>(v, body),
        ApiKey::OffsetForLeaderEpoch => len::<OffsetForLeaderEpochRequest>(v, body),
        ApiKey::DescribeTopicPartitions => len::<DescribeTopicPartitionsRequest>(v, body),
        ApiKey::ElectLeaders => len::<ElectLeadersRequest>(v, body),
        ApiKey::AlterPartitionReassignments => len::<AlterPartitionReassignmentsRequest>(v, body),
        ApiKey::ListPartitionReassignments => len::<ListPartitionReassignmentsRequest>(v, body),
        ApiKey::DescribeProducers => len::<DescribeProducersRequest>(v, body),
        ApiKey::DescribeTransactions => len::<DescribeTransactionsRequest>(v, body),
        ApiKey::ListTransactions => len::<ListTransactionsRequest>(v, body),
        _ => return None,
    })
}
