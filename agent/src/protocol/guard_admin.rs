//! The guard's schemas of the admin and describe APIs, transcribed from kafka-protocol 0.18's
//! generated `decode` functions like those in the parent module.

use super::Ty::*;
use super::{f, Field, N};

pub(super) const DESCRIBE_CLUSTER: &[Field] = &[
    f(Bool, 0, N), // include_cluster_authorized_operations
    f(Int8, 1, N), // endpoint_type
    f(Bool, 2, N), // include_fenced_brokers
];

pub(super) const DESCRIBE_LOG_DIRS: &[Field] = &[
    f(NullableArray(&Struct(DESCRIBE_LOG_DIRS_TOPIC)), 0, N), // topics
];
const DESCRIBE_LOG_DIRS_TOPIC: &[Field] = &[
    f(Str, 0, N),           // topic
    f(Array(&Int32), 0, N), // partitions
];

pub(super) const OFFSET_FOR_LEADER_EPOCH: &[Field] = &[
    f(Int32, 3, N),                                         // replica_id
    f(Array(&Struct(OFFSET_FOR_LEADER_EPOCH_TOPIC)), 0, N), // topics
];
const OFFSET_FOR_LEADER_EPOCH_TOPIC: &[Field] = &[
    f(Str, 0, N),                                               // topic
    f(Array(&Struct(OFFSET_FOR_LEADER_EPOCH_PARTITION)), 0, N), // partitions
];
const OFFSET_FOR_LEADER_EPOCH_PARTITION: &[Field] = &[
    f(Int32, 0, N), // partition
    f(Int32, 2, N), // current_leader_epoch
    f(Int32, 0, N), // leader_epoch
];

pub(super) const DESCRIBE_TOPIC_PARTITIONS: &[Field] = &[
    f(Array(&Struct(DESCRIBE_TOPIC_PARTITIONS_TOPIC)), 0, N), // topics
    f(Int32, 0, N),                                           // response_partition_limit
    f(NullableStruct(DESCRIBE_TOPIC_PARTITIONS_CURSOR), 0, N), // cursor
];
const DESCRIBE_TOPIC_PARTITIONS_TOPIC: &[Field] = &[
    f(Str, 0, N), // name
];
const DESCRIBE_TOPIC_PARTITIONS_CURSOR: &[Field] = &[
    f(Str, 0, N),   // topic_name
    f(Int32, 0, N), // partition_index
];

pub(super) const ELECT_LEADERS: &[Field] = &[
    f(Int8, 1, N),                                        // election_type
    f(NullableArray(&Struct(ELECT_LEADERS_TOPIC)), 0, N), // topic_partitions
    f(Int32, 0, N),                                       // timeout_ms
];
const ELECT_LEADERS_TOPIC: &[Field] = &[
    f(Str, 0, N),           // topic
    f(Array(&Int32), 0, N), // partitions
];

pub(super) const ALTER_PARTITION_REASSIGNMENTS: &[Field] = &[
    f(Int32, 0, N),                                               // timeout_ms
    f(Bool, 1, N),                                                // allow_replication_factor_change
    f(Array(&Struct(ALTER_PARTITION_REASSIGNMENTS_TOPIC)), 0, N), // topics
];
const ALTER_PARTITION_REASSIGNMENTS_TOPIC: &[Field] = &[
    f(Str, 0, N), // name
    f(
        Array(&Struct(ALTER_PARTITION_REASSIGNMENTS_PARTITION)),
        0,
        N,
    ), // partitions
];
const ALTER_PARTITION_REASSIGNMENTS_PARTITION: &[Field] = &[
    f(Int32, 0, N),                 // partition_index
    f(NullableArray(&Int32), 0, N), // replicas
];

pub(super) const LIST_PARTITION_REASSIGNMENTS: &[Field] = &[
    f(Int32, 0, N), // timeout_ms
    f(
        NullableArray(&Struct(LIST_PARTITION_REASSIGNMENTS_TOPIC)),
        0,
        N,
    ), // topics
];
const LIST_PARTITION_REASSIGNMENTS_TOPIC: &[Field] = &[
    f(Str, 0, N),           // name
    f(Array(&Int32), 0, N), // partition_indexes
];

pub(super) const DESCRIBE_PRODUCERS: &[Field] = &[
    f(Array(&Struct(DESCRIBE_PRODUCERS_TOPIC)), 0, N), // topics
];
const DESCRIBE_PRODUCERS_TOPIC: &[Field] = &[
    f(Str, 0, N),           // name
    f(Array(&Int32), 0, N), // partition_indexes
];

pub(super) const DESCRIBE_TRANSACTIONS: &[Field] = &[
    f(Array(&Str), 0, N), // transactional_ids
];

pub(super) const LIST_TRANSACTIONS: &[Field] = &[
    f(Array(&Str), 0, N),   // state_filters
    f(Array(&Int64), 0, N), // producer_id_filters
    f(Int64, 1, N),         // duration_filter
    f(NullableStr, 2, N),   // transactional_id_pattern
];
