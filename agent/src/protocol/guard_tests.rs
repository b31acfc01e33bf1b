use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsRequest, AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_heartbeat_request::{
    ConsumerGroupHeartbeatRequest, TopicPartitions,
};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncrementalResource, AlterableConfig as IncrementalConfig,
    IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::{BrokerId, GroupId, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes, VersionRange};
use proptest::prelude::*;

use super::*;
use crate::protocol::versions::SUPPORTED;

#[path = "guard_admin_tests.rs"]
mod admin_samples;
#[path = "guard_security_tests.rs"]
mod security_samples;
#[path = "guard_txn_tests.rs"]
mod txn_samples;

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn name(v: &'static str) -> TopicName {
    TopicName(s(v))
}

fn group(v: &'static str) -> GroupId {
    GroupId(s(v))
}

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

/// An unknown tagged field, which kafka-protocol's encoders write only in flexible versions: it
/// exercises every struct's tagged-fields section.
fn tags() -> BTreeMap<i32, Bytes> {
    BTreeMap::from([(42, Bytes::from_static(b"unknown"))])
}

fn encode<T: Encodable>(req: T, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    req.encode(&mut out, version)
        .unwrap_or_else(|e| panic!("encode v{version}: {e}"));
    out.freeze()
}

fn produce(v: i16, null: bool) -> Bytes {
    let partition = |index, records: &'static [u8]| {
        PartitionProduceData::default()
            .with_index(index)
            .with_records((!null).then(|| Bytes::from_static(records)))
            .with_unknown_tagged_fields(tags())
    };
    let topic = |n, topic_name| {
        let t = TopicProduceData::default()
            .with_partition_data(vec![partition(0, b"some records"), partition(1, b"")])
            .with_unknown_tagged_fields(tags());
        match v {
            ..=12 => t.with_name(name(topic_name)),
            _ => t.with_topic_id(id(n)),
        }
    };
    let req = ProduceRequest::default()
        .with_transactional_id((!null).then(|| TransactionalId(s("txn"))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic(1, "a"), topic(2, "bb")])
        .with_unknown_tagged_fields(tags());
    encode(req, v)
}

fn fetch(v: i16, null: bool) -> Bytes {
    let partition = |p| {
        let mut fp = FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(100)
            .with_partition_max_bytes(1 << 20)
            .with_unknown_tagged_fields(tags());
        if v >= 9 {
            fp = fp.with_current_leader_epoch(5);
        }
        if v >= 12 {
            fp = fp.with_last_fetched_epoch(4);
        }
        if v >= 5 {
            fp = fp.with_log_start_offset(7);
        }
        if v >= 17 {
            fp = fp.with_replica_directory_id(id(9));
        }
        if v >= 18 {
            fp = fp.with_high_watermark(1000);
        }
        fp
    };
    let topic = |n, topic_name| {
        let t = FetchTopic::default()
            .with_partitions(vec![partition(0), partition(1)])
            .with_unknown_tagged_fields(tags());
        match v {
            ..=12 => t.with_topic(name(topic_name)),
            _ => t.with_topic_id(id(n)),
        }
    };
    let forgotten = |n, topic_name| {
        let t = ForgottenTopic::default()
            .with_partitions(vec![3, 4, 5])
            .with_unknown_tagged_fields(tags());
        match v {
            ..=12 => t.with_topic(name(topic_name)),
            _ => t.with_topic_id(id(n)),
        }
    };
    let mut req = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 24)
        .with_isolation_level(1)
        .with_topics(vec![topic(1, "a"), topic(2, "bb")])
        .with_unknown_tagged_fields(tags());
    if v <= 14 {
        req = req.with_replica_id(BrokerId(-1));
    } else {
        req = req.with_replica_state(ReplicaState::default().with_replica_id(BrokerId(3)));
    }
    if v >= 7 {
        req = req
            .with_session_id(11)
            .with_session_epoch(12)
            .with_forgotten_topics_data(vec![forgotten(3, "c"), forgotten(4, "dd")]);
    }
    if v >= 11 {
        req = req.with_rack_id(s("rack-1"));
    }
    if v >= 12 && !null {
        req = req.with_cluster_id(Some(s("cluster")));
    }
    encode(req, v)
}

fn list_offsets(v: i16) -> Bytes {
    let partition = |p| {
        let lp = ListOffsetsPartition::default()
            .with_partition_index(p)
            .with_timestamp(-1)
            .with_unknown_tagged_fields(tags());
        match v {
            ..=3 => lp,
            _ => lp.with_current_leader_epoch(2),
        }
    };
    let topic = |topic_name| {
        ListOffsetsTopic::default()
            .with_name(name(topic_name))
            .with_partitions(vec![partition(0), partition(1)])
            .with_unknown_tagged_fields(tags())
    };
    let mut req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![topic("a"), topic("bb")])
        .with_unknown_tagged_fields(tags());
    if v >= 2 {
        req = req.with_isolation_level(1);
    }
    if v >= 10 {
        req = req.with_timeout_ms(1500);
    }
    encode(req, v)
}

fn metadata(v: i16, null: bool) -> Bytes {
    let topic = |n, topic_name| {
        let t = MetadataRequestTopic::default()
            .with_name(topic_name)
            .with_unknown_tagged_fields(tags());
        match v {
            ..=9 => t,
            _ => t.with_topic_id(id(n)),
        }
    };
    let topics = vec![topic(1, Some(name("a"))), topic(2, Some(name("bb")))];
    let mut req = MetadataRequest::default()
        .with_topics((!null).then_some(topics))
        .with_unknown_tagged_fields(tags());
    if v >= 4 {
        req = req.with_allow_auto_topic_creation(false);
    }
    if (8..=10).contains(&v) {
        req = req.with_include_cluster_authorized_operations(true);
    }
    if v >= 8 {
        req = req.with_include_topic_authorized_operations(true);
    }
    encode(req, v)
}

/// A topic with a null name: by id only, from v10 on (kafka-protocol takes it in any version).
fn metadata_null_name(v: i16) -> Bytes {
    let topic = MetadataRequestTopic::default().with_name(None);
    let topic = if v >= 10 {
        topic.with_topic_id(id(1))
    } else {
        topic
    };
    encode(MetadataRequest::default().with_topics(Some(vec![topic])), v)
}

fn api_versions(v: i16) -> Bytes {
    let mut req = ApiVersionsRequest::default().with_unknown_tagged_fields(tags());
    if v >= 3 {
        req = req
            .with_client_software_name(s("skiff-test"))
            .with_client_software_version(s("1.0"));
    }
    encode(req, v)
}

fn create_topics(v: i16, null: bool) -> Bytes {
    let assignment = |p, brokers: [i32; 2]| {
        CreatableReplicaAssignment::default()
            .with_partition_index(p)
            .with_broker_ids(brokers.map(BrokerId).to_vec())
            .with_unknown_tagged_fields(tags())
    };
    let config = |k, value| {
        CreatableTopicConfig::default()
            .with_name(s(k))
            .with_value(value)
            .with_unknown_tagged_fields(tags())
    };
    let value = |x| (!null).then(|| s(x));
    let topic = |topic_name| {
        CreatableTopic::default()
            .with_name(name(topic_name))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![assignment(0, [1, 2]), assignment(1, [2, 3])])
            .with_configs(vec![
                config("cleanup.policy", value("compact")),
                config("retention.ms", value("1000")),
            ])
            .with_unknown_tagged_fields(tags())
    };
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic("a"), topic("bb")])
        .with_timeout_ms(5000)
        .with_validate_only(true)
        .with_unknown_tagged_fields(tags());
    encode(req, v)
}

fn create_partitions(v: i16, null: bool) -> Bytes {
    let assignment = |brokers: [i32; 2]| {
        CreatePartitionsAssignment::default()
            .with_broker_ids(brokers.map(BrokerId).to_vec())
            .with_unknown_tagged_fields(tags())
    };
    let topic = |topic_name| {
        let assignments = (!null).then(|| vec![assignment([1, 2]), assignment([2, 3])]);
        CreatePartitionsTopic::default()
            .with_name(name(topic_name))
            .with_count(5)
            .with_assignments(assignments)
            .with_unknown_tagged_fields(tags())
    };
    let req = CreatePartitionsRequest::default()
        .with_topics(vec![topic("a"), topic("bb")])
        .with_timeout_ms(5000)
        .with_validate_only(true)
        .with_unknown_tagged_fields(tags());
    encode(req, v)
}

fn delete_topics(v: i16, null: bool) -> Bytes {
    let mut req = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_unknown_tagged_fields(tags());
    if v >= 6 {
        let topic = |n, topic_name: &'static str| {
            DeleteTopicState::default()
                .with_name((!null).then(|| name(topic_name)))
                .with_topic_id(id(n))
                .with_unknown_tagged_fields(tags())
        };
        req = req.with_topics(vec![topic(1, "a"), topic(2, "bb")]);
    } else {
        req = req.with_topic_names(vec![name("a"), name("bb")]);
    }
    encode(req, v)
}

fn init_producer_id(v: i16, null: bool) -> Bytes {
    let mut req = InitProducerIdRequest::default()
        .with_transactional_id((!null).then(|| TransactionalId(s("txn"))))
        .with_transaction_timeout_ms(60_000)
        .with_unknown_tagged_fields(tags());
    if v >= 3 {
        req = req.with_producer_id(ProducerId(7)).with_producer_epoch(2);
    }
    encode(req, v)
}

fn find_coordinator(v: i16) -> Bytes {
    let mut req = FindCoordinatorRequest::default().with_unknown_tagged_fields(tags());
    if v <= 3 {
        req = req.with_key(s("group-a"));
    } else {
        req = req.with_coordinator_keys(vec![s("group-a"), s("group-bb")]);
    }
    if v >= 1 {
        req = req.with_key_type(1);
    }
    encode(req, v)
}

fn describe_configs(v: i16, null: bool) -> Bytes {
    let resource = |resource_name, keys: Option<Vec<StrBytes>>| {
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(resource_name))
            .with_configuration_keys(keys)
            .with_unknown_tagged_fields(tags())
    };
    let keys = (!null).then(|| vec![s("retention.ms"), s("cleanup.policy")]);
    let mut req = DescribeConfigsRequest::default()
        .with_resources(vec![resource("a", keys), resource("bb", None)])
        .with_include_synonyms(true)
        .with_unknown_tagged_fields(tags());
    if v >= 3 {
        req = req.with_include_documentation(true);
    }
    encode(req, v)
}

fn offset_commit(v: i16, null: bool) -> Bytes {
    let partition = |p, metadata| {
        let op = OffsetCommitRequestPartition::default()
            .with_partition_index(p)
            .with_committed_offset(100)
            .with_committed_metadata((!null).then(|| s(metadata)))
            .with_unknown_tagged_fields(tags());
        match v {
            ..=5 => op,
            _ => op.with_committed_leader_epoch(3),
        }
    };
    let topic = |topic_name| {
        OffsetCommitRequestTopic::default()
            .with_name(name(topic_name))
            .with_partitions(vec![partition(0, "meta"), partition(1, "")])
            .with_unknown_tagged_fields(tags())
    };
    let mut req = OffsetCommitRequest::default()
        .with_group_id(group("group-a"))
        .with_generation_id_or_member_epoch(4)
        .with_member_id(s("member-1"))
        .with_topics(vec![topic("a"), topic("bb")])
        .with_unknown_tagged_fields(tags());
    if v >= 7 && !null {
        req = req.with_group_instance_id(Some(s("instance-1")));
    }
    if v <= 4 {
        req = req.with_retention_time_ms(60_000);
    }
    encode(req, v)
}

fn offset_fetch(v: i16, null: bool) -> Bytes {
    let mut req = OffsetFetchRequest::default().with_unknown_tagged_fields(tags());
    if v <= 7 {
        let topic = |topic_name| {
            OffsetFetchRequestTopic::default()
                .with_name(name(topic_name))
                .with_partition_indexes(vec![0, 1, 2])
                .with_unknown_tagged_fields(tags())
        };
        req = req
            .with_group_id(group("group-a"))
            .with_topics((!null).then(|| vec![topic("a"), topic("bb")]));
    } else {
        let topic = |topic_name| {
            OffsetFetchRequestTopics::default()
                .with_name(name(topic_name))
                .with_partition_indexes(vec![0, 1, 2])
                .with_unknown_tagged_fields(tags())
        };
        let group = |group_id| {
            let g = OffsetFetchRequestGroup::default()
                .with_group_id(group(group_id))
                .with_topics((!null).then(|| vec![topic("a"), topic("bb")]))
                .with_unknown_tagged_fields(tags());
            match v {
                ..=8 => g,
                _ => g
                    .with_member_id((!null).then(|| s("member-1")))
                    .with_member_epoch(5),
            }
        };
        req = req.with_groups(vec![group("group-a"), group("group-bb")]);
    }
    if v >= 7 {
        req = req.with_require_stable(true);
    }
    encode(req, v)
}

fn join_group(v: i16, null: bool) -> Bytes {
    let protocol = |protocol_name, metadata: &'static [u8]| {
        JoinGroupRequestProtocol::default()
            .with_name(s(protocol_name))
            .with_metadata(Bytes::from_static(metadata))
            .with_unknown_tagged_fields(tags())
    };
    let mut req = JoinGroupRequest::default()
        .with_group_id(group("group-a"))
        .with_session_timeout_ms(45_000)
        .with_member_id(s("member-1"))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            protocol("range", b"metadata"),
            protocol("sticky", b""),
        ])
        .with_unknown_tagged_fields(tags());
    if v >= 1 {
        req = req.with_rebalance_timeout_ms(300_000);
    }
    if v >= 5 && !null {
        req = req.with_group_instance_id(Some(s("instance-1")));
    }
    if v >= 8 && !null {
        req = req.with_reason(Some(s("rejoin")));
    }
    encode(req, v)
}

fn heartbeat(v: i16, null: bool) -> Bytes {
    let mut req = HeartbeatRequest::default()
        .with_group_id(group("group-a"))
        .with_generation_id(4)
        .with_member_id(s("member-1"))
        .with_unknown_tagged_fields(tags());
    if v >= 3 && !null {
        req = req.with_group_instance_id(Some(s("instance-1")));
    }
    encode(req, v)
}

fn leave_group(v: i16, null: bool) -> Bytes {
    let member = |member_id| {
        let m = MemberIdentity::default()
            .with_member_id(s(member_id))
            .with_group_instance_id((!null).then(|| s("instance-1")))
            .with_unknown_tagged_fields(tags());
        match v {
            ..=4 => m,
            _ => m.with_reason((!null).then(|| s("shutdown"))),
        }
    };
    let req = LeaveGroupRequest::default()
        .with_group_id(group("group-a"))
        .with_unknown_tagged_fields(tags());
    let req = match v {
        ..=2 => req.with_member_id(s("member-1")),
        _ => req.with_members(vec![member("member-1"), member("member-22")]),
    };
    encode(req, v)
}

fn sync_group(v: i16, null: bool) -> Bytes {
    let assignment = |member_id, assignment: &'static [u8]| {
        SyncGroupRequestAssignment::default()
            .with_member_id(s(member_id))
            .with_assignment(Bytes::from_static(assignment))
            .with_unknown_tagged_fields(tags())
    };
    let mut req = SyncGroupRequest::default()
        .with_group_id(group("group-a"))
        .with_generation_id(4)
        .with_member_id(s("member-1"))
        .with_assignments(vec![
            assignment("member-1", b"assignment"),
            assignment("member-22", b""),
        ])
        .with_unknown_tagged_fields(tags());
    if v >= 3 && !null {
        req = req.with_group_instance_id(Some(s("instance-1")));
    }
    if v >= 5 && !null {
        req = req
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")));
    }
    encode(req, v)
}

fn describe_groups(v: i16) -> Bytes {
    let mut req = DescribeGroupsRequest::default()
        .with_groups(vec![group("group-a"), group("group-bb")])
        .with_unknown_tagged_fields(tags());
    if v >= 3 {
        req = req.with_include_authorized_operations(true);
    }
    encode(req, v)
}

fn list_groups(v: i16) -> Bytes {
    let mut req = ListGroupsRequest::default().with_unknown_tagged_fields(tags());
    if v >= 4 {
        req = req.with_states_filter(vec![s("Stable"), s("Empty")]);
    }
    if v >= 5 {
        req = req.with_types_filter(vec![s("classic"), s("consumer")]);
    }
    encode(req, v)
}

fn delete_groups(v: i16) -> Bytes {
    let req = DeleteGroupsRequest::default()
        .with_groups_names(vec![group("group-a"), group("group-bb")])
        .with_unknown_tagged_fields(tags());
    encode(req, v)
}

/// Never flexible, so no tagged fields.
fn offset_delete(v: i16) -> Bytes {
    let partition = |p| OffsetDeleteRequestPartition::default().with_partition_index(p);
    let topic = |topic_name| {
        OffsetDeleteRequestTopic::default()
            .with_name(name(topic_name))
            .with_partitions(vec![partition(0), partition(1)])
    };
    let req = OffsetDeleteRequest::default()
        .with_group_id(group("group-a"))
        .with_topics(vec![topic("a"), topic("bb")]);
    encode(req, v)
}

fn consumer_group_heartbeat(v: i16, null: bool) -> Bytes {
    let topic = |n| {
        TopicPartitions::default()
            .with_topic_id(id(n))
            .with_partitions(vec![0, 1, 2])
            .with_unknown_tagged_fields(tags())
    };
    let value = |x| (!null).then(|| s(x));
    let mut req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("group-a"))
        .with_member_id(s("member-1"))
        .with_member_epoch(3)
        .with_instance_id(value("instance-1"))
        .with_rack_id(value("rack-1"))
        .with_rebalance_timeout_ms(300_000)
        .with_subscribed_topic_names((!null).then(|| vec![name("a"), name("bb")]))
        .with_server_assignor(value("uniform"))
        .with_topic_partitions((!null).then(|| vec![topic(1), topic(2)]))
        .with_unknown_tagged_fields(tags());
    if v >= 1 {
        req = req.with_subscribed_topic_regex(value("topic-.*"));
    }
    encode(req, v)
}

fn consumer_group_describe(v: i16) -> Bytes {
    let req = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![group("group-a"), group("group-bb")])
        .with_include_authorized_operations(true)
        .with_unknown_tagged_fields(tags());
    encode(req, v)
}

fn delete_records(v: i16) -> Bytes {
    let partition = |p, offset| {
        DeleteRecordsPartition::default()
            .with_partition_index(p)
            .with_offset(offset)
            .with_unknown_tagged_fields(tags())
    };
    let topic = |n: &'static str| {
        DeleteRecordsTopic::default()
            .with_name(name(n))
            .with_partitions(vec![partition(0, 10), partition(3, -1)])
            .with_unknown_tagged_fields(tags())
    };
    let req = DeleteRecordsRequest::default()
        .with_topics(vec![topic("a"), topic("bb")])
        .with_timeout_ms(5000)
        .with_unknown_tagged_fields(tags());
    encode(req, v)
}

fn alter_configs(v: i16, nulls: bool) -> Bytes {
    let config = |n: &'static str, value: Option<&'static str>| {
        AlterableConfig::default()
            .with_name(s(n))
            .with_value(value.map(s))
            .with_unknown_tagged_fields(tags())
    };
    let resource = AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s("topic"))
        .with_configs(vec![
            config("retention.ms", Some("1000")),
            config("cleanup.policy", if nulls { None } else { Some("compact") }),
        ])
        .with_unknown_tagged_fields(tags());
    let req = AlterConfigsRequest::default()
        .with_resources(vec![resource.clone(), resource])
        .with_validate_only(true)
        .with_unknown_tagged_fields(tags());
    encode(req, v)
}

fn incremental_alter_configs(v: i16, nulls: bool) -> Bytes {
    let config = |n: &'static str, op: i8, value: Option<&'static str>| {
        IncrementalConfig::default()
            .with_name(s(n))
            .with_config_operation(op)
            .with_value(value.map(s))
            .with_unknown_tagged_fields(tags())
    };
    let resource = IncrementalResource::default()
        .with_resource_type(2)
        .with_resource_name(s("topic"))
        .with_configs(vec![
            config("retention.ms", 0, Some("1000")),
            config("cleanup.policy", 2, Some("compact")),
            config("segment.ms", 1, if nulls { None } else { Some("") }),
        ])
        .with_unknown_tagged_fields(tags());
    let req = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![resource.clone(), resource])
        .with_validate_only(false)
        .with_unknown_tagged_fields(tags());
    encode(req, v)
}

/// Requests of `api` at `version`, built and encoded by kafka-protocol: a full one with non-empty
/// nested arrays and every optional field set, then ones with nulls where the version allows.
fn samples(api: ApiKey, v: i16) -> Vec<Bytes> {
    match api {
        ApiKey::Produce => vec![produce(v, false), produce(v, true)],
        ApiKey::Fetch => vec![fetch(v, false), fetch(v, true)],
        ApiKey::ListOffsets => vec![list_offsets(v)],
        ApiKey::Metadata => vec![metadata(v, false), metadata(v, true), metadata_null_name(v)],
        ApiKey::ApiVersions => vec![api_versions(v)],
        ApiKey::CreateTopics => vec![create_topics(v, false), create_topics(v, true)],
        ApiKey::DeleteTopics => vec![delete_topics(v, false), delete_topics(v, true)],
        ApiKey::CreatePartitions => vec![create_partitions(v, false), create_partitions(v, true)],
        ApiKey::InitProducerId => vec![init_producer_id(v, false), init_producer_id(v, true)],
        ApiKey::DescribeConfigs => vec![describe_configs(v, false), describe_configs(v, true)],
        ApiKey::FindCoordinator => vec![find_coordinator(v)],
        ApiKey::OffsetCommit => vec![offset_commit(v, false), offset_commit(v, true)],
        ApiKey::OffsetFetch => vec![offset_fetch(v, false), offset_fetch(v, true)],
        ApiKey::JoinGroup => vec![join_group(v, false), join_group(v, true)],
        ApiKey::Heartbeat => vec![heartbeat(v, false), heartbeat(v, true)],
        ApiKey::LeaveGroup => vec![leave_group(v, false), leave_group(v, true)],
        ApiKey::SyncGroup => vec![sync_group(v, false), sync_group(v, true)],
        ApiKey::DescribeGroups => vec![describe_groups(v)],
        ApiKey::ListGroups => vec![list_groups(v)],
        ApiKey::DeleteGroups => vec![delete_groups(v)],
        ApiKey::OffsetDelete => vec![offset_delete(v)],
        ApiKey::DeleteRecords => vec![delete_records(v)],
        ApiKey::AlterConfigs => vec![alter_configs(v, false), alter_configs(v, true)],
        ApiKey::IncrementalAlterConfigs => vec![
            incremental_alter_configs(v, false),
            incremental_alter_configs(v, true),
        ],
        ApiKey::ConsumerGroupHeartbeat => vec![
            consumer_group_heartbeat(v, false),
            consumer_group_heartbeat(v, true),
        ],
        ApiKey::ConsumerGroupDescribe => vec![consumer_group_describe(v)],
        other => admin_samples::samples(other, v)
            .or_else(|| txn_samples::samples(other, v))
            .or_else(|| security_samples::samples(other, v))
            .unwrap_or_else(|| panic!("no samples for {other:?}")),
    }
}

fn kafka_versions(api: ApiKey) -> VersionRange {
    match api {
        ApiKey::Produce => ProduceRequest::VERSIONS,
        ApiKey::Fetch => FetchRequest::VERSIONS,
        ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
        ApiKey::Metadata => MetadataRequest::VERSIONS,
        ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
        ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
        ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
        ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
        ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
        ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
        ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
        ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
        ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
        ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
        ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
        ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
        ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
        ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
        ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
        ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
        ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
        ApiKey::DeleteRecords => DeleteRecordsRequest::VERSIONS,
        ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
        ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::VERSIONS,
        ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::VERSIONS,
        other => admin_samples::kafka_versions(other)
            .or_else(|| txn_samples::kafka_versions(other))
            .or_else(|| security_samples::kafka_versions(other))
            .unwrap_or_else(|| panic!("no request type for {other:?}")),
    }
}

/// Decodes `body` with kafka-protocol, as the router does; the bytes it took.
fn kafka_decode(api: ApiKey, v: i16, body: &[u8]) -> Result<usize, String> {
    fn len<T: Decodable>(v: i16, body: &[u8]) -> Result<usize, String> {
        let mut buf = Bytes::copy_from_slice(body);
        T::decode(&mut buf, v).map_err(|e| e.to_string())?;
        Ok(body.len() - buf.len())
    }
    match api {
        ApiKey::Produce => len::<ProduceRequest>(v, body),
        ApiKey::Fetch => len::<FetchRequest>(v, body),
        ApiKey::ListOffsets => len::<ListOffsetsRequest>(v, body),
        ApiKey::Metadata => len::<MetadataRequest>(v, body),
        ApiKey::ApiVersions => len::<ApiVersionsRequest>(v, body),
        ApiKey::CreateTopics => len::<CreateTopicsRequest>(v, body),
        ApiKey::DeleteTopics => len::<DeleteTopicsRequest>(v, body),
        ApiKey::CreatePartitions => len::<CreatePartitionsRequest>(v, body),
        ApiKey::InitProducerId => len::<InitProducerIdRequest>(v, body),
        ApiKey::DescribeConfigs => len::<DescribeConfigsRequest>(v, body),
        ApiKey::FindCoordinator => len::<FindCoordinatorRequest>(v, body),
        ApiKey::OffsetCommit => len::<OffsetCommitRequest>(v, body),
        ApiKey::OffsetFetch => len::<OffsetFetchRequest>(v, body),
        ApiKey::JoinGroup => len::<JoinGroupRequest>(v, body),
        ApiKey::Heartbeat => len::<HeartbeatRequest>(v, body),
        ApiKey::LeaveGroup => len::<LeaveGroupRequest>(v, body),
        ApiKey::SyncGroup => len::<SyncGroupRequest>(v, body),
        ApiKey::DescribeGroups => len::<DescribeGroupsRequest>(v, body),
        ApiKey::ListGroups => len::<ListGroupsRequest>(v, body),
        ApiKey::DeleteGroups => len::<DeleteGroupsRequest>(v, body),
        ApiKey::OffsetDelete => len::<OffsetDeleteRequest>(v, body),
        ApiKey::DeleteRecords => len::<DeleteRecordsRequest>(v, body),
        ApiKey::AlterConfigs => len::<AlterConfigsRequest>(v, body),
        ApiKey::IncrementalAlterConfigs => len::<IncrementalAlterConfigsRequest>(v, body),
        ApiKey::ConsumerGroupHeartbeat => len::<ConsumerGroupHeartbeatRequest>(v, body),
        ApiKey::ConsumerGroupDescribe => len::<ConsumerGroupDescribeRequest>(v, body),
        other => admin_samples::kafka_decode(other, v, body)
            .or_else(|| txn_samples::kafka_decode(other, v, body))
            .or_else(|| security_samples::kafka_decode(other, v, body))
            .unwrap_or_else(|| panic!("no request type for {other:?}")),
    }
}

/// Every (api, version) the schemas cover.
fn all_versions() -> Vec<(ApiKey, i16)> {
    API_SCHEMAS
        .iter()
        .flat_map(|a| (a.versions.0..=a.versions.1).map(move |v| (a.key, v)))
        .collect()
}

#[test]
fn schemas_cover_kafka_protocol_and_every_supported_version() {
    for a in API_SCHEMAS {
        let kafka = kafka_versions(a.key);
        assert_eq!(a.versions, (kafka.min, kafka.max), "{:?}", a.key);
    }
    for &(api, min, max) in SUPPORTED {
        for v in min..=max {
            assert!(
                all_versions().contains(&(api, v)),
                "{api:?} v{v} is served but has no schema"
            );
        }
    }
}

#[test]
fn walk_takes_exactly_what_kafka_protocol_encodes() {
    for (api, v) in all_versions() {
        for (i, body) in samples(api, v).into_iter().enumerate() {
            let at = format!("{api:?} v{v} sample {i}");
            assert_eq!(request_len(api as i16, v, &body), Ok(body.len()), "{at}");
            assert_eq!(kafka_decode(api, v, &body), Ok(body.len()), "{at}");
            // The router's body is followed by nothing, but trailing bytes are kafka-protocol's
            // business, not a length problem.
            let mut longer = BytesMut::from(&body[..]);
            longer.put_slice(b"trailing");
            assert_eq!(check_request_body(api as i16, v, &longer), Ok(()), "{at}");
        }
    }
}

#[test]
fn unknown_api_and_version_are_refused() {
    assert_eq!(
        check_request_body(ApiKey::DescribeDelegationToken as i16, 0, &[]),
        Err(GuardError::UnknownApi(
            ApiKey::DescribeDelegationToken as i16
        ))
    );
    assert_eq!(
        check_request_body(-1, 0, &[]),
        Err(GuardError::UnknownApi(-1))
    );
    assert_eq!(
        check_request_body(ApiKey::Fetch as i16, 3, &[]),
        Err(GuardError::UnknownVersion {
            api_key: 1,
            version: 3
        })
    );
}

/// Builds hand-made bodies.
#[derive(Default)]
struct Body(BytesMut);

impl Body {
    fn i8(mut self, x: i8) -> Self {
        self.0.put_i8(x);
        self
    }
    fn i16(mut self, x: i16) -> Self {
        self.0.put_i16(x);
        self
    }
    fn i32(mut self, x: i32) -> Self {
        self.0.put_i32(x);
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.put_slice(b);
        self
    }
    fn varint(mut self, mut x: u32) -> Self {
        while x >= 0x80 {
            self.0.put_u8(x as u8 | 0x80);
            x >>= 7;
        }
        self.0.put_u8(x as u8);
        self
    }
    /// A non-flexible string.
    fn str(self, x: &str) -> Self {
        self.i16(x.len() as i16).raw(x.as_bytes())
    }
    /// A compact (flexible) string.
    fn cstr(self, x: &str) -> Self {
        self.varint(x.len() as u32 + 1).raw(x.as_bytes())
    }
    fn check(&self, api: ApiKey, v: i16) -> Result<usize, GuardError> {
        request_len(api as i16, v, &self.0)
    }
}

fn too_many(r: Result<usize, GuardError>) -> bool {
    matches!(r, Err(GuardError::TooMany { .. }))
}

/// Produce up to its topic count: null transactional id, acks, timeout.
fn produce_head(flexible: bool) -> Body {
    let b = Body::default();
    let b = if flexible { b.varint(0) } else { b.i16(-1) };
    b.i16(-1).i32(30_000)
}

#[test]
fn huge_top_level_counts_are_refused() {
    // The 30-byte request of the bug report: 2^31 - 1 topics.
    let b = produce_head(false).i32(i32::MAX);
    assert!(
        too_many(b.check(ApiKey::Produce, 3)),
        "{:?}",
        b.check(ApiKey::Produce, 3)
    );
    // u32::MAX as a compact count: u32::MAX - 1 topics.
    let b = produce_head(true).varint(u32::MAX);
    assert!(too_many(b.check(ApiKey::Produce, 9)));
    // The same, with a 5-byte varint whose top bits kafka-protocol drops.
    let b = produce_head(true).raw(&[0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(too_many(b.check(ApiKey::Produce, 9)));
    // Metadata's topics are nullable: -1 is null, other negatives are not counts.
    let b = Body::default().i32(i32::MAX);
    assert!(too_many(b.check(ApiKey::Metadata, 0)));
    assert_eq!(Body::default().i32(-1).check(ApiKey::Metadata, 0), Ok(4));
    assert_eq!(
        Body::default().i32(i32::MIN).check(ApiKey::Metadata, 0),
        Err(GuardError::Negative {
            at: 0,
            len: i32::MIN.into()
        })
    );
    // Produce's topics are not.
    let b = produce_head(false).i32(-1);
    assert_eq!(b.check(ApiKey::Produce, 3), Err(GuardError::Null(8)));
    let b = produce_head(true).varint(0);
    assert_eq!(b.check(ApiKey::Produce, 9), Err(GuardError::Null(7)));
}

#[test]
fn huge_nested_counts_are_refused() {
    // Fetch v4: one topic "a" claiming i32::MAX partitions.
    let fetch_head = |b: Body| b.i32(-1).i32(500).i32(1).i32(1 << 20).i8(0);
    let b = fetch_head(Body::default()).i32(1).str("a").i32(i32::MAX);
    assert!(too_many(b.check(ApiKey::Fetch, 4)));
    // Fetch v12, flexible: the same with compact lengths.
    let b = fetch_head(Body::default())
        .i32(0)
        .i32(-1)
        .varint(2)
        .cstr("a")
        .varint(u32::MAX);
    assert!(too_many(b.check(ApiKey::Fetch, 12)));
    // Fetch v7: a forgotten topic claiming i32::MAX partitions (an array of int32).
    let b = fetch_head(Body::default())
        .i32(0)
        .i32(-1)
        .i32(0)
        .i32(1)
        .str("a")
        .i32(i32::MAX);
    assert!(too_many(b.check(ApiKey::Fetch, 7)));
    // CreateTopics v5: one topic, one assignment, u32::MAX - 1 broker ids.
    let b = Body::default()
        .varint(2)
        .cstr("t")
        .i32(1)
        .i16(1)
        .varint(2)
        .i32(0)
        .varint(u32::MAX);
    assert!(too_many(b.check(ApiKey::CreateTopics, 5)));
    // DescribeConfigs v1: one resource claiming i32::MAX configuration keys.
    let b = Body::default().i32(1).i8(2).str("t").i32(i32::MAX);
    assert!(too_many(b.check(ApiKey::DescribeConfigs, 1)));
    // OffsetCommit v2: one topic "a" claiming i32::MAX partitions.
    let b = Body::default()
        .str("g")
        .i32(1)
        .str("m")
        .raw(&[0; 8])
        .i32(1)
        .str("a")
        .i32(i32::MAX);
    assert!(too_many(b.check(ApiKey::OffsetCommit, 2)));
    // OffsetFetch v8: one group claiming u32::MAX - 1 topics (a nullable array).
    let b = Body::default().varint(2).cstr("g").varint(u32::MAX);
    assert!(too_many(b.check(ApiKey::OffsetFetch, 8)));
}

#[test]
fn group_bytes_are_not_nullable() {
    // JoinGroup v0: one protocol "range", then its metadata's length at byte 30.
    let head = Body::default()
        .str("g")
        .i32(45_000)
        .str("")
        .str("consumer")
        .i32(1)
        .str("range");
    let b = Body(head.0.clone()).i32(0);
    assert_eq!(b.check(ApiKey::JoinGroup, 0), Ok(34));
    assert_eq!(kafka_decode(ApiKey::JoinGroup, 0, &b.0), Ok(34));
    let b = Body(head.0.clone()).i32(-1);
    assert_eq!(b.check(ApiKey::JoinGroup, 0), Err(GuardError::Null(30)));
    assert!(kafka_decode(ApiKey::JoinGroup, 0, &b.0).is_err());
    let b = Body(head.0).i32(-2);
    assert_eq!(
        b.check(ApiKey::JoinGroup, 0),
        Err(GuardError::Negative { at: 30, len: -2 })
    );
    // SyncGroup v4, flexible: a null group instance id, then one assignment with null bytes.
    let b = Body::default()
        .cstr("g")
        .i32(1)
        .cstr("m")
        .varint(0)
        .varint(2)
        .cstr("m")
        .varint(0);
    assert_eq!(b.check(ApiKey::SyncGroup, 4), Err(GuardError::Null(12)));
    assert!(kafka_decode(ApiKey::SyncGroup, 4, &b.0).is_err());
}

#[test]
fn huge_tagged_field_counts_and_sizes_are_refused() {
    let head = Body::default().cstr("name").cstr("1.0");
    let b = Body(head.0.clone()).varint(u32::MAX);
    assert!(too_many(b.check(ApiKey::ApiVersions, 3)));
    // One tagged field of u32::MAX bytes.
    let b = Body(head.0.clone()).varint(1).varint(42).varint(u32::MAX);
    assert!(matches!(
        b.check(ApiKey::ApiVersions, 3),
        Err(GuardError::Truncated(_))
    ));
    let b = Body(head.0.clone())
        .varint(1)
        .varint(42)
        .varint(2)
        .raw(b"ab");
    assert_eq!(b.check(ApiKey::ApiVersions, 3), Ok(b.0.len()));
    let b = Body(head.0).raw(&[0x80; 6]);
    assert_eq!(
        b.check(ApiKey::ApiVersions, 3),
        Err(GuardError::LongVarint(9))
    );
}

#[test]
fn a_known_tagged_field_must_fill_its_declared_size() {
    // Fetch v12 with no topics, then cluster_id (tag 0) "c" declared as 3 bytes but taking 2.
    let head = Body::default()
        .i32(-1)
        .i32(500)
        .i32(1)
        .i32(1 << 20)
        .i8(0)
        .i32(0)
        .i32(-1)
        .varint(1)
        .varint(1)
        .cstr("")
        .varint(1)
        .varint(0);
    let ok = Body(head.0.clone()).varint(2).cstr("c");
    assert_eq!(ok.check(ApiKey::Fetch, 12), Ok(ok.0.len()));
    assert_eq!(kafka_decode(ApiKey::Fetch, 12, &ok.0), Ok(ok.0.len()));
    let bad = Body(head.0).varint(3).cstr("c").raw(b"x");
    assert!(matches!(
        bad.check(ApiKey::Fetch, 12),
        Err(GuardError::TagSize {
            tag: 0,
            size: 3,
            used: 2,
            ..
        })
    ));
    // replica_state (tag 1) only exists from v15.
    let b = Body::default()
        .i32(-1)
        .i32(500)
        .i32(1)
        .i32(1 << 20)
        .i8(0)
        .i32(0)
        .i32(-1)
        .varint(1)
        .varint(1)
        .cstr("")
        .varint(1)
        .varint(1)
        .varint(1)
        .varint(0);
    assert!(matches!(
        b.check(ApiKey::Fetch, 12),
        Err(GuardError::TagNotInVersion { tag: 1, .. })
    ));
}

#[test]
fn counts_that_exactly_fit_pass_and_one_more_does_not() {
    // Metadata v0 is only its topic array, so 100 null-named topics (2 bytes each) fill the body.
    let topics = |count| (0..100).fold(Body::default().i32(count), |b, _| b.i16(-1));
    assert_eq!(topics(100).check(ApiKey::Metadata, 0), Ok(204));
    assert!(too_many(topics(101).check(ApiKey::Metadata, 0)));
    // Metadata v9, flexible: 100 topics of a null name and a tagged-fields count (2 bytes each),
    // then 4 bytes (three booleans and a tagged-fields count) that would hold two more topics.
    // So 102 topics pass the count check (and run out of bytes later), 103 do not.
    let topics = |count: u32| {
        (0..100)
            .fold(Body::default().varint(count + 1), |b, _| {
                b.varint(0).varint(0)
            })
            .raw(&[1, 0, 0, 0])
    };
    assert_eq!(topics(100).check(ApiKey::Metadata, 9), Ok(205));
    let r = topics(102).check(ApiKey::Metadata, 9);
    assert!(matches!(r, Err(e) if !matches!(e, GuardError::TooMany { .. })));
    assert!(too_many(topics(103).check(ApiKey::Metadata, 9)));
    // Produce v3: a topic's minimum is a name and a partition count, 6 bytes.
    let b = produce_head(false).i32(2).str("").i32(0).str("").i32(0);
    assert_eq!(b.check(ApiKey::Produce, 3), Ok(b.0.len()));
    let b = produce_head(false).i32(3).str("").i32(0).str("").i32(0);
    assert!(too_many(b.check(ApiKey::Produce, 3)));
}

#[test]
fn truncated_samples_are_refused_everywhere() {
    for (api, v) in all_versions() {
        let body = &samples(api, v)[0];
        for cut in 0..body.len() {
            assert!(
                request_len(api as i16, v, &body[..cut]).is_err(),
                "{api:?} v{v} cut at {cut}"
            );
        }
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Overwrite(usize, u8),
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Overwrite(i, b)),
        (any::<usize>(), 0..8u8).prop_map(|(i, bit)| Edit::Flip(i, bit)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
    ]
}

fn apply(body: &mut Vec<u8>, edit: &Edit) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *edit {
        Edit::Overwrite(i, b) if !body.is_empty() => {
            let i = at(i, body.len());
            body[i] = b;
        }
        Edit::Flip(i, bit) if !body.is_empty() => {
            let i = at(i, body.len());
            body[i] ^= 1 << bit;
        }
        Edit::Truncate(n) => body.truncate(at(n, body.len() + 1)),
        Edit::Insert(i, b) => body.insert(at(i, body.len() + 1), b),
        _ => {}
    }
}

/// What the guard promises: it never panics, and what it accepts kafka-protocol decodes without
/// panicking, and reads as the same number of bytes when it decodes it at all.
fn guard_then_decode(api: ApiKey, v: i16, body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(len) = request_len(api as i16, v, body) {
        prop_assert!(len <= body.len());
        if let Ok(decoded) = kafka_decode(api, v, body) {
            prop_assert_eq!(decoded, len, "{:?} v{} {:?}", api, v, body);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(
        which in any::<prop::sample::Index>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let versions = all_versions();
        let (api, v) = versions[which.index(versions.len())];
        guard_then_decode(api, v, &body)?;
    }

    #[test]
    fn mutated_requests(
        which in any::<prop::sample::Index>(),
        sample in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let versions = all_versions();
        let (api, v) = versions[which.index(versions.len())];
        let samples = samples(api, v);
        let mut body = samples[sample.index(samples.len())].to_vec();
        for e in &edits {
            apply(&mut body, e);
        }
        guard_then_decode(api, v, &body)?;
    }
}
