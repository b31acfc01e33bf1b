//! Length checks run on a request body before `kafka-protocol` decodes it.
//!
//! kafka-protocol 0.18 sizes every array with `Vec::with_capacity(count)`, the count read off the
//! wire, so a 30-byte request claiming 2^31 elements aborts the process on allocation. Strings,
//! bytes and unknown tagged fields are safe (it checks their length against the buffer first).
//! So before decoding, the body is walked by a copy of the request's schema, and any count that
//! the remaining bytes cannot hold is refused. The walk itself allocates nothing, recurses only
//! as deep as the static schema, and reads every length the way kafka-protocol does, so the two
//! never disagree about where a field starts.
//!
//! The schemas are transcribed from kafka-protocol 0.18's generated `decode` functions, for every
//! version it implements (which covers [`super::versions::SUPPORTED`]); the tests check them
//! against its encoders byte for byte.

use kafka_protocol::messages::ApiKey;
use Ty::*;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    /// Fails closed: an API added to the router without a schema here gets refused, not waved
    /// through unchecked.
    #[error("no schema for api key {0}")]
    UnknownApi(i16),
    #[error("no schema for version {version} of api key {api_key}")]
    UnknownVersion { api_key: i16, version: i16 },
    #[error("body ends in the middle of a field at byte {0}")]
    Truncated(usize),
    #[error("varint longer than 5 bytes at byte {0}")]
    LongVarint(usize),
    #[error("length {len} at byte {at} is negative")]
    Negative { at: usize, len: i64 },
    #[error("null at byte {0} in a field that is not nullable")]
    Null(usize),
    #[error(
        "{count} elements at byte {at} need at least {min_size} bytes each, {remaining} bytes left"
    )]
    TooMany {
        at: usize,
        count: u64,
        min_size: usize,
        remaining: usize,
    },
    #[error("tagged field {tag} at byte {at} is not valid in this version")]
    TagNotInVersion { at: usize, tag: u32 },
    #[error("tagged field {tag} at byte {at} declares {size} bytes but its value takes {used}")]
    TagSize {
        at: usize,
        tag: u32,
        size: usize,
        used: usize,
    },
}

/// Checks that kafka-protocol can decode `body` (a request after its header) allocating only in
/// proportion to `body.len()`. Bytes after the request are allowed, as kafka-protocol ignores them.
pub fn check_request_body(api_key: i16, version: i16, body: &[u8]) -> Result<(), GuardError> {
    request_len(api_key, version, body).map(|_| ())
}

/// How many bytes at the start of `body` the request takes.
pub(crate) fn request_len(api_key: i16, version: i16, body: &[u8]) -> Result<usize, GuardError> {
    let api = API_SCHEMAS
        .iter()
        .find(|a| a.key as i16 == api_key)
        .ok_or(GuardError::UnknownApi(api_key))?;
    if !(api.versions.0..=api.versions.1).contains(&version) {
        return Err(GuardError::UnknownVersion { api_key, version });
    }
    let mut walk = Walk {
        body,
        pos: 0,
        end: body.len(),
        version,
        flexible: version >= api.first_flexible,
    };
    walk.fields(api.fields)?;
    Ok(walk.pos)
}

/// A wire type. In flexible versions strings, bytes and arrays carry an unsigned varint of their
/// length + 1 (0 for null) and every struct ends with a tagged-fields section.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Int8,
    Int16,
    Int32,
    Int64,
    Uuid,
    Bool,
    Str,
    NullableStr,
    /// Group protocol metadata and assignments.
    Bytes,
    /// Produce records.
    NullableBytes,
    Array(&'static Ty),
    NullableArray(&'static Ty),
    Struct(&'static [Field]),
    /// A struct behind an Int8 marker: 1 for present, anything else for null (kafka-protocol's
    /// `OptionStruct`).
    NullableStruct(&'static [Field]),
}

/// A field present in versions `min..=max`. A field with a tag lives in its struct's tagged-fields
/// section instead of in line.
#[derive(Clone, Copy, Debug)]
struct Field {
    ty: Ty,
    min: i16,
    max: i16,
    tag: Option<u32>,
}

impl Field {
    fn in_version(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

const fn f(ty: Ty, min: i16, max: i16) -> Field {
    Field {
        ty,
        min,
        max,
        tag: None,
    }
}

const fn tagged(tag: u32, ty: Ty, min: i16, max: i16) -> Field {
    Field {
        ty,
        min,
        max,
        tag: Some(tag),
    }
}

/// No upper bound: the field is in every later version.
const N: i16 = i16::MAX;

struct ApiSchema {
    key: ApiKey,
    versions: (i16, i16),
    first_flexible: i16,
    fields: &'static [Field],
}

const fn api(
    key: ApiKey,
    min: i16,
    max: i16,
    first_flexible: i16,
    fields: &'static [Field],
) -> ApiSchema {
    ApiSchema {
        key,
        versions: (min, max),
        first_flexible,
        fields,
    }
}

/// Versions `min..=max` are all those kafka-protocol decodes, a superset of what we serve.
const API_SCHEMAS: &[ApiSchema] = &[
    // key, min, max, first flexible version, fields
    api(ApiKey::Produce, 3, 13, 9, PRODUCE),
    api(ApiKey::Fetch, 4, 18, 12, FETCH),
    api(ApiKey::ListOffsets, 1, 10, 6, LIST_OFFSETS),
    api(ApiKey::Metadata, 0, 13, 9, METADATA),
    api(ApiKey::ApiVersions, 0, 4, 3, API_VERSIONS),
    api(ApiKey::CreateTopics, 2, 7, 5, CREATE_TOPICS),
    api(ApiKey::DeleteTopics, 1, 6, 4, DELETE_TOPICS),
    api(ApiKey::CreatePartitions, 0, 3, 2, CREATE_PARTITIONS),
    api(ApiKey::InitProducerId, 0, 5, 2, INIT_PRODUCER_ID),
    api(ApiKey::DescribeConfigs, 1, 4, 4, DESCRIBE_CONFIGS),
    api(ApiKey::AlterConfigs, 0, 2, 2, ALTER_CONFIGS),
    api(
        ApiKey::IncrementalAlterConfigs,
        0,
        1,
        1,
        INCREMENTAL_ALTER_CONFIGS,
    ),
    api(ApiKey::FindCoordinator, 0, 6, 3, FIND_COORDINATOR),
    api(ApiKey::OffsetCommit, 2, 9, 8, OFFSET_COMMIT),
    api(ApiKey::OffsetFetch, 1, 9, 6, OFFSET_FETCH),
    api(ApiKey::JoinGroup, 0, 9, 6, JOIN_GROUP),
    api(ApiKey::Heartbeat, 0, 4, 4, HEARTBEAT),
    api(ApiKey::LeaveGroup, 0, 5, 4, LEAVE_GROUP),
    api(ApiKey::SyncGroup, 0, 5, 4, SYNC_GROUP),
    api(ApiKey::DescribeGroups, 0, 6, 5, DESCRIBE_GROUPS),
    api(ApiKey::ListGroups, 0, 5, 3, LIST_GROUPS),
    api(ApiKey::DeleteGroups, 0, 2, 2, DELETE_GROUPS),
    api(ApiKey::OffsetDelete, 0, 0, N, OFFSET_DELETE), // never flexible
    api(ApiKey::DeleteRecords, 0, 2, 2, DELETE_RECORDS),
    api(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        1,
        0,
        CONSUMER_GROUP_HEARTBEAT,
    ),
    api(
        ApiKey::ConsumerGroupDescribe,
        0,
        1,
        0,
        CONSUMER_GROUP_DESCRIBE,
    ),
    api(ApiKey::DescribeCluster, 0, 2, 0, admin::DESCRIBE_CLUSTER),
    api(ApiKey::SaslHandshake, 0, 1, N, security::SASL_HANDSHAKE), // never flexible
    api(ApiKey::DescribeAcls, 1, 3, 2, security::DESCRIBE_ACLS),
    api(ApiKey::CreateAcls, 1, 3, 2, security::CREATE_ACLS),
    api(ApiKey::DeleteAcls, 1, 3, 2, security::DELETE_ACLS),
    api(
        ApiKey::DescribeClientQuotas,
        0,
        1,
        1,
        security::DESCRIBE_CLIENT_QUOTAS,
    ),
    api(
        ApiKey::AlterClientQuotas,
        0,
        1,
        1,
        security::ALTER_CLIENT_QUOTAS,
    ),
    api(
        ApiKey::SaslAuthenticate,
        0,
        2,
        2,
        security::SASL_AUTHENTICATE,
    ),
    api(
        ApiKey::AlterUserScramCredentials,
        0,
        0,
        0,
        security::ALTER_USER_SCRAM_CREDENTIALS,
    ),
    api(
        ApiKey::DescribeUserScramCredentials,
        0,
        0,
        0,
        security::DESCRIBE_USER_SCRAM_CREDENTIALS,
    ),
    api(ApiKey::DescribeLogDirs, 1, 4, 2, admin::DESCRIBE_LOG_DIRS),
    api(
        ApiKey::OffsetForLeaderEpoch,
        2,
        4,
        4,
        admin::OFFSET_FOR_LEADER_EPOCH,
    ),
    api(
        ApiKey::DescribeTopicPartitions,
        0,
        0,
        0,
        admin::DESCRIBE_TOPIC_PARTITIONS,
    ),
    api(ApiKey::ElectLeaders, 0, 2, 2, admin::ELECT_LEADERS),
    api(
        ApiKey::AlterPartitionReassignments,
        0,
        1,
        0,
        admin::ALTER_PARTITION_REASSIGNMENTS,
    ),
    api(
        ApiKey::ListPartitionReassignments,
        0,
        0,
        0,
        admin::LIST_PARTITION_REASSIGNMENTS,
    ),
    api(
        ApiKey::DescribeProducers,
        0,
        0,
        0,
        admin::DESCRIBE_PRODUCERS,
    ),
    api(
        ApiKey::DescribeTransactions,
        0,
        0,
        0,
        admin::DESCRIBE_TRANSACTIONS,
    ),
    api(ApiKey::ListTransactions, 0, 2, 0, admin::LIST_TRANSACTIONS),
    api(
        ApiKey::AddPartitionsToTxn,
        0,
        5,
        3,
        txn::ADD_PARTITIONS_TO_TXN,
    ),
    api(ApiKey::AddOffsetsToTxn, 0, 4, 3, txn::ADD_OFFSETS_TO_TXN),
    api(ApiKey::TxnOffsetCommit, 0, 5, 3, txn::TXN_OFFSET_COMMIT),
    api(ApiKey::EndTxn, 0, 5, 3, txn::END_TXN),
];

const PRODUCE: &[Field] = &[
    f(NullableStr, 0, N),                   // transactional_id
    f(Int16, 0, N),                         // acks
    f(Int32, 0, N),                         // timeout_ms
    f(Array(&Struct(PRODUCE_TOPIC)), 0, N), // topic_data
];
const PRODUCE_TOPIC: &[Field] = &[
    f(Str, 0, 12),                              // name
    f(Uuid, 13, N),                             // topic_id
    f(Array(&Struct(PRODUCE_PARTITION)), 0, N), // partition_data
];
const PRODUCE_PARTITION: &[Field] = &[
    f(Int32, 0, N),         // index
    f(NullableBytes, 0, N), // records
];

const FETCH: &[Field] = &[
    tagged(0, NullableStr, 0, N),                   // cluster_id
    f(Int32, 0, 14),                                // replica_id
    tagged(1, Struct(FETCH_REPLICA_STATE), 15, N),  // replica_state
    f(Int32, 0, N),                                 // max_wait_ms
    f(Int32, 0, N),                                 // min_bytes
    f(Int32, 0, N),                                 // max_bytes
    f(Int8, 0, N),                                  // isolation_level
    f(Int32, 7, N),                                 // session_id
    f(Int32, 7, N),                                 // session_epoch
    f(Array(&Struct(FETCH_TOPIC)), 0, N),           // topics
    f(Array(&Struct(FETCH_FORGOTTEN_TOPIC)), 7, N), // forgotten_topics_data
    f(Str, 11, N),                                  // rack_id
];
const FETCH_REPLICA_STATE: &[Field] = &[
    f(Int32, 15, N), // replica_id
    f(Int64, 15, N), // replica_epoch
];
const FETCH_TOPIC: &[Field] = &[
    f(Str, 0, 12),                            // topic
    f(Uuid, 13, N),                           // topic_id
    f(Array(&Struct(FETCH_PARTITION)), 0, N), // partitions
];
const FETCH_PARTITION: &[Field] = &[
    f(Int32, 0, N),          // partition
    f(Int32, 9, N),          // current_leader_epoch
    f(Int64, 0, N),          // fetch_offset
    f(Int32, 12, N),         // last_fetched_epoch
    f(Int64, 5, N),          // log_start_offset
    f(Int32, 0, N),          // partition_max_bytes
    tagged(0, Uuid, 17, N),  // replica_directory_id
    tagged(1, Int64, 18, N), // high_watermark
];
const FETCH_FORGOTTEN_TOPIC: &[Field] = &[
    f(Str, 7, 12),          // topic
    f(Uuid, 13, N),         // topic_id
    f(Array(&Int32), 7, N), // partitions
];

const LIST_OFFSETS: &[Field] = &[
    f(Int32, 0, N),                              // replica_id
    f(Int8, 2, N),                               // isolation_level
    f(Array(&Struct(LIST_OFFSETS_TOPIC)), 0, N), // topics
    f(Int32, 10, N),                             // timeout_ms
];
const LIST_OFFSETS_TOPIC: &[Field] = &[
    f(Str, 0, N),                                    // name
    f(Array(&Struct(LIST_OFFSETS_PARTITION)), 0, N), // partitions
];
const LIST_OFFSETS_PARTITION: &[Field] = &[
    f(Int32, 0, N), // partition_index
    f(Int32, 4, N), // current_leader_epoch
    f(Int64, 0, N), // timestamp
];

const METADATA: &[Field] = &[
    // Null is "all topics"; kafka-protocol takes it in every version, v0 included.
    f(NullableArray(&Struct(METADATA_TOPIC)), 0, N), // topics
    f(Bool, 4, N),                                   // allow_auto_topic_creation
    f(Bool, 8, 10),                                  // include_cluster_authorized_operations
    f(Bool, 8, N),                                   // include_topic_authorized_operations
];
const METADATA_TOPIC: &[Field] = &[
    f(Uuid, 10, N),       // topic_id
    f(NullableStr, 0, N), // name
];

const API_VERSIONS: &[Field] = &[
    f(Str, 3, N), // client_software_name
    f(Str, 3, N), // client_software_version
];

const CREATE_TOPICS: &[Field] = &[
    f(Array(&Struct(CREATE_TOPICS_TOPIC)), 0, N), // topics
    f(Int32, 0, N),                               // timeout_ms
    f(Bool, 0, N),                                // validate_only
];
const CREATE_TOPICS_TOPIC: &[Field] = &[
    f(Str, 0, N),                                      // name
    f(Int32, 0, N),                                    // num_partitions
    f(Int16, 0, N),                                    // replication_factor
    f(Array(&Struct(CREATE_TOPICS_ASSIGNMENT)), 0, N), // assignments
    f(Array(&Struct(CREATE_TOPICS_CONFIG)), 0, N),     // configs
];
const CREATE_TOPICS_ASSIGNMENT: &[Field] = &[
    f(Int32, 0, N),         // partition_index
    f(Array(&Int32), 0, N), // broker_ids
];
const CREATE_TOPICS_CONFIG: &[Field] = &[
    f(Str, 0, N),         // name
    f(NullableStr, 0, N), // value
];

const CREATE_PARTITIONS: &[Field] = &[
    f(Array(&Struct(CREATE_PARTITIONS_TOPIC)), 0, N), // topics
    f(Int32, 0, N),                                   // timeout_ms
    f(Bool, 0, N),                                    // validate_only
];
const CREATE_PARTITIONS_TOPIC: &[Field] = &[
    f(Str, 0, N),                                                  // name
    f(Int32, 0, N),                                                // count
    f(NullableArray(&Struct(CREATE_PARTITIONS_ASSIGNMENT)), 0, N), // assignments
];
const CREATE_PARTITIONS_ASSIGNMENT: &[Field] = &[
    f(Array(&Int32), 0, N), // broker_ids
];

const DELETE_TOPICS: &[Field] = &[
    f(Array(&Struct(DELETE_TOPICS_TOPIC)), 6, N), // topics
    f(Array(&Str), 0, 5),                         // topic_names
    f(Int32, 0, N),                               // timeout_ms
];
const DELETE_TOPICS_TOPIC: &[Field] = &[
    f(NullableStr, 6, N), // name
    f(Uuid, 6, N),        // topic_id
];

const INIT_PRODUCER_ID: &[Field] = &[
    f(NullableStr, 0, N), // transactional_id
    f(Int32, 0, N),       // transaction_timeout_ms
    f(Int64, 3, N),       // producer_id
    f(Int16, 3, N),       // producer_epoch
];

const FIND_COORDINATOR: &[Field] = &[
    f(Str, 0, 3),         // key
    f(Int8, 1, N),        // key_type
    f(Array(&Str), 4, N), // coordinator_keys
];

const DESCRIBE_CONFIGS: &[Field] = &[
    f(Array(&Struct(DESCRIBE_CONFIGS_RESOURCE)), 0, N), // resources
    f(Bool, 0, N),                                      // include_synonyms
    f(Bool, 3, N),                                      // include_documentation
];
const DESCRIBE_CONFIGS_RESOURCE: &[Field] = &[
    f(Int8, 0, N),                // resource_type
    f(Str, 0, N),                 // resource_name
    f(NullableArray(&Str), 0, N), // configuration_keys
];

const ALTER_CONFIGS: &[Field] = &[
    f(Array(&Struct(ALTER_CONFIGS_RESOURCE)), 0, N), // resources
    f(Bool, 0, N),                                   // validate_only
];
const ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f(Int8, 0, N),                                 // resource_type
    f(Str, 0, N),                                  // resource_name
    f(Array(&Struct(ALTER_CONFIGS_CONFIG)), 0, N), // configs
];
const ALTER_CONFIGS_CONFIG: &[Field] = &[
    f(Str, 0, N),         // name
    f(NullableStr, 0, N), // value
];

const INCREMENTAL_ALTER_CONFIGS: &[Field] = &[
    f(Array(&Struct(INCREMENTAL_ALTER_CONFIGS_RESOURCE)), 0, N), // resources
    f(Bool, 0, N),                                               // validate_only
];
const INCREMENTAL_ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f(Int8, 0, N),                                             // resource_type
    f(Str, 0, N),                                              // resource_name
    f(Array(&Struct(INCREMENTAL_ALTER_CONFIGS_CONFIG)), 0, N), // configs
];
const INCREMENTAL_ALTER_CONFIGS_CONFIG: &[Field] = &[
    f(Str, 0, N),         // name
    f(Int8, 0, N),        // config_operation
    f(NullableStr, 0, N), // value
];

const OFFSET_COMMIT: &[Field] = &[
    f(Str, 0, N),                                 // group_id
    f(Int32, 0, N),                               // generation_id_or_member_epoch
    f(Str, 0, N),                                 // member_id
    f(NullableStr, 7, N),                         // group_instance_id
    f(Int64, 2, 4),                               // retention_time_ms
    f(Array(&Struct(OFFSET_COMMIT_TOPIC)), 0, N), // topics
];
const OFFSET_COMMIT_TOPIC: &[Field] = &[
    // topic_id is in no version kafka-protocol 0.18 implements.
    f(Str, 0, N),                                     // name
    f(Array(&Struct(OFFSET_COMMIT_PARTITION)), 0, N), // partitions
];
const OFFSET_COMMIT_PARTITION: &[Field] = &[
    f(Int32, 0, N),       // partition_index
    f(Int64, 0, N),       // committed_offset
    f(Int32, 6, N),       // committed_leader_epoch
    f(NullableStr, 0, N), // committed_metadata
];

const OFFSET_FETCH: &[Field] = &[
    f(Str, 0, 7), // group_id
    // Null is "all topics"; kafka-protocol takes it in every version, v1 included.
    f(NullableArray(&Struct(OFFSET_FETCH_TOPIC)), 0, 7), // topics
    f(Array(&Struct(OFFSET_FETCH_GROUP)), 8, N),         // groups
    f(Bool, 7, N),                                       // require_stable
];
const OFFSET_FETCH_TOPIC: &[Field] = &[
    f(Str, 0, 7),           // name
    f(Array(&Int32), 0, 7), // partition_indexes
];
const OFFSET_FETCH_GROUP: &[Field] = &[
    f(Str, 8, N),                                              // group_id
    f(NullableStr, 9, N),                                      // member_id
    f(Int32, 9, N),                                            // member_epoch
    f(NullableArray(&Struct(OFFSET_FETCH_GROUP_TOPIC)), 8, N), // topics
];
const OFFSET_FETCH_GROUP_TOPIC: &[Field] = &[
    // topic_id is in no version kafka-protocol 0.18 implements.
    f(Str, 8, N),           // name
    f(Array(&Int32), 8, N), // partition_indexes
];

const JOIN_GROUP: &[Field] = &[
    f(Str, 0, N),                                 // group_id
    f(Int32, 0, N),                               // session_timeout_ms
    f(Int32, 1, N),                               // rebalance_timeout_ms
    f(Str, 0, N),                                 // member_id
    f(NullableStr, 5, N),                         // group_instance_id
    f(Str, 0, N),                                 // protocol_type
    f(Array(&Struct(JOIN_GROUP_PROTOCOL)), 0, N), // protocols
    f(NullableStr, 8, N),                         // reason
];
const JOIN_GROUP_PROTOCOL: &[Field] = &[
    f(Str, 0, N),   // name
    f(Bytes, 0, N), // metadata
];

const HEARTBEAT: &[Field] = &[
    f(Str, 0, N),         // group_id
    f(Int32, 0, N),       // generation_id
    f(Str, 0, N),         // member_id
    f(NullableStr, 3, N), // group_instance_id
];

const LEAVE_GROUP: &[Field] = &[
    f(Str, 0, N),                                // group_id
    f(Str, 0, 2),                                // member_id
    f(Array(&Struct(LEAVE_GROUP_MEMBER)), 3, N), // members
];
const LEAVE_GROUP_MEMBER: &[Field] = &[
    f(Str, 3, N),         // member_id
    f(NullableStr, 3, N), // group_instance_id
    f(NullableStr, 5, N), // reason
];

const SYNC_GROUP: &[Field] = &[
    f(Str, 0, N),                                   // group_id
    f(Int32, 0, N),                                 // generation_id
    f(Str, 0, N),                                   // member_id
    f(NullableStr, 3, N),                           // group_instance_id
    f(NullableStr, 5, N),                           // protocol_type
    f(NullableStr, 5, N),                           // protocol_name
    f(Array(&Struct(SYNC_GROUP_ASSIGNMENT)), 0, N), // assignments
];
const SYNC_GROUP_ASSIGNMENT: &[Field] = &[
    f(Str, 0, N),   // member_id
    f(Bytes, 0, N), // assignment
];

const DESCRIBE_GROUPS: &[Field] = &[
    f(Array(&Str), 0, N), // groups
    f(Bool, 3, N),        // include_authorized_operations
];

const LIST_GROUPS: &[Field] = &[
    f(Array(&Str), 4, N), // states_filter
    f(Array(&Str), 5, N), // types_filter
];

const DELETE_GROUPS: &[Field] = &[
    f(Array(&Str), 0, N), // groups_names
];

const DELETE_RECORDS: &[Field] = &[
    f(Array(&Struct(DELETE_RECORDS_TOPIC)), 0, N), // topics
    f(Int32, 0, N),                                // timeout_ms
];
const DELETE_RECORDS_TOPIC: &[Field] = &[
    f(Str, 0, N),                                      // name
    f(Array(&Struct(DELETE_RECORDS_PARTITION)), 0, N), // partitions
];
const DELETE_RECORDS_PARTITION: &[Field] = &[
    f(Int32, 0, N), // partition_index
    f(Int64, 0, N), // offset
];

const OFFSET_DELETE: &[Field] = &[
    f(Str, 0, N),                                 // group_id
    f(Array(&Struct(OFFSET_DELETE_TOPIC)), 0, N), // topics
];
const OFFSET_DELETE_TOPIC: &[Field] = &[
    f(Str, 0, N),                                     // name
    f(Array(&Struct(OFFSET_DELETE_PARTITION)), 0, N), // partitions
];
const OFFSET_DELETE_PARTITION: &[Field] = &[
    f(Int32, 0, N), // partition_index
];

const CONSUMER_GROUP_HEARTBEAT: &[Field] = &[
    f(Str, 0, N),                                                    // group_id
    f(Str, 0, N),                                                    // member_id
    f(Int32, 0, N),                                                  // member_epoch
    f(NullableStr, 0, N),                                            // instance_id
    f(NullableStr, 0, N),                                            // rack_id
    f(Int32, 0, N),                                                  // rebalance_timeout_ms
    f(NullableArray(&Str), 0, N),                                    // subscribed_topic_names
    f(NullableStr, 1, N),                                            // subscribed_topic_regex
    f(NullableStr, 0, N),                                            // server_assignor
    f(NullableArray(&Struct(CONSUMER_GROUP_HEARTBEAT_TOPIC)), 0, N), // topic_partitions
];
const CONSUMER_GROUP_HEARTBEAT_TOPIC: &[Field] = &[
    f(Uuid, 0, N),          // topic_id
    f(Array(&Int32), 0, N), // partitions
];

const CONSUMER_GROUP_DESCRIBE: &[Field] = &[
    f(Array(&Str), 0, N), // group_ids
    f(Bool, 0, N),        // include_authorized_operations
];

/// A cursor over `body[..end]`; `end` is narrower than the body inside a tagged field's value.
/// Positions in errors are from the start of the body.
struct Walk<'a> {
    body: &'a [u8],
    pos: usize,
    end: usize,
    version: i16,
    flexible: bool,
}

impl Walk<'_> {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], GuardError> {
        if n > self.remaining() {
            return Err(GuardError::Truncated(self.pos));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.body[start..self.pos])
    }

    fn int<const W: usize>(&mut self) -> Result<[u8; W], GuardError> {
        let mut out = [0; W];
        out.copy_from_slice(self.take(W)?);
        Ok(out)
    }

    /// The same value kafka-protocol reads, but one that runs past 5 bytes is refused where
    /// kafka-protocol would silently stop after the fifth.
    fn varint(&mut self) -> Result<u32, GuardError> {
        let at = self.pos;
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.int::<1>()?;
            value |= u32::from(b & 0x7f) << (i * 7);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(GuardError::LongVarint(at))
    }

    /// A string's, bytes' or array's length; `None` for null. `width` is the size of the signed
    /// length in non-flexible versions.
    fn length(&mut self, width: usize, nullable: bool) -> Result<Option<usize>, GuardError> {
        let at = self.pos;
        let len = match (self.flexible, width) {
            (true, _) => i64::from(self.varint()?) - 1,
            (false, 2) => i64::from(i16::from_be_bytes(self.int()?)),
            (false, _) => i64::from(i32::from_be_bytes(self.int()?)),
        };
        match len {
            -1 if nullable => Ok(None),
            -1 => Err(GuardError::Null(at)),
            // At most u32::MAX - 1, so exact even where usize is 32 bits.
            len if len >= 0 => Ok(Some(len as usize)),
            len => Err(GuardError::Negative { at, len }),
        }
    }

    /// Refuses `count` elements of at least `min_size` bytes each unless they fit in what is left.
    /// This is the check kafka-protocol's `Vec::with_capacity(count)` lacks.
    fn check_count(&self, at: usize, count: u64, min_size: usize) -> Result<(), GuardError> {
        // A zero-sized element would let any count through, while kafka-protocol still allocates
        // count × size_of(element): count it as one byte.
        let min_size = min_size.max(1);
        let need = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(min_size));
        match need {
            Some(need) if need <= self.remaining() => Ok(()),
            _ => Err(GuardError::TooMany {
                at,
                count,
                min_size,
                remaining: self.remaining(),
            }),
        }
    }

    fn min_size(&self, ty: &Ty) -> usize {
        let length = |width| if self.flexible { 1 } else { width };
        match ty {
            Int8 | Bool => 1,
            Int16 => 2,
            Int32 => 4,
            Int64 => 8,
            Uuid => 16,
            Str | NullableStr => length(2),
            Bytes | NullableBytes | Array(_) | NullableArray(_) => length(4),
            Struct(fields) => {
                let inline: usize = self.inline(fields).map(|f| self.min_size(&f.ty)).sum();
                // The tagged-fields count.
                inline + usize::from(self.flexible)
            }
            NullableStruct(_) => 1,
        }
    }

    fn inline<'f>(&self, fields: &'f [Field]) -> impl Iterator<Item = &'f Field> + use<'f> {
        let version = self.version;
        fields
            .iter()
            .filter(move |f| f.tag.is_none() && f.in_version(version))
    }

    fn fields(&mut self, fields: &[Field]) -> Result<(), GuardError> {
        for field in self.inline(fields) {
            self.value(&field.ty)?;
        }
        if self.flexible {
            self.tagged_fields(fields)?;
        }
        Ok(())
    }

    fn value(&mut self, ty: &Ty) -> Result<(), GuardError> {
        let at = self.pos;
        match ty {
            // Fixed-size: the minimum is the size.
            Int8 | Int16 | Int32 | Int64 | Uuid | Bool => {
                self.take(self.min_size(ty))?;
            }
            Str | NullableStr => {
                if let Some(len) = self.length(2, matches!(ty, NullableStr))? {
                    self.take(len)?;
                }
            }
            Bytes | NullableBytes => {
                if let Some(len) = self.length(4, matches!(ty, NullableBytes))? {
                    self.take(len)?;
                }
            }
            Array(elem) | NullableArray(elem) => {
                if let Some(count) = self.length(4, matches!(ty, NullableArray(_)))? {
                    self.check_count(at, count as u64, self.min_size(elem))?;
                    for _ in 0..count {
                        self.value(elem)?;
                    }
                }
            }
            Struct(fields) => self.fields(fields)?,
            NullableStruct(fields) => {
                let [present] = self.int::<1>()?;
                if present == 1 {
                    self.fields(fields)?;
                }
            }
        }
        Ok(())
    }

    fn tagged_fields(&mut self, fields: &[Field]) -> Result<(), GuardError> {
        let at = self.pos;
        let count = self.varint()?;
        // A tag and a size, at least one byte each.
        self.check_count(at, u64::from(count), 2)?;
        for _ in 0..count {
            let at = self.pos;
            let tag = self.varint()?;
            let size = self.varint()? as usize;
            let start = self.pos;
            self.take(size)?;
            let Some(field) = fields.iter().find(|f| f.tag == Some(tag)) else {
                continue; // unknown: kafka-protocol keeps the `size` bytes as they are
            };
            if !field.in_version(self.version) {
                return Err(GuardError::TagNotInVersion { at, tag });
            }
            // kafka-protocol decodes a known tag's value from the stream and ignores `size`; hold
            // the value to exactly `size` bytes so that both read the same bytes afterwards.
            let mut inner = Walk {
                pos: start,
                end: self.pos,
                ..*self
            };
            inner.value(&field.ty)?;
            if inner.pos != self.pos {
                return Err(GuardError::TagSize {
                    at,
                    tag,
                    size,
                    used: inner.pos - start,
                });
            }
        }
        Ok(())
    }
}

#[path = "guard_admin.rs"]
mod admin;
#[path = "guard_security.rs"]
mod security;
#[path = "guard_txn.rs"]
mod txn;

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
