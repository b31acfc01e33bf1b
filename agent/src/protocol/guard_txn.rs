//! The guard's schemas of the transaction APIs (KIP-98, KIP-447, KIP-890), transcribed from
//! kafka-protocol 0.18's generated `decode` functions like those in the parent module.

use super::Ty::*;
use super::{f, Field, N};

pub(super) const ADD_PARTITIONS_TO_TXN: &[Field] = &[
    f(Array(&Struct(ADD_PARTITIONS_TO_TXN_TRANSACTION)), 4, N), // transactions
    f(Str, 0, 3),                                               // v3_and_below_transactional_id
    f(Int64, 0, 3),                                             // v3_and_below_producer_id
    f(Int16, 0, 3),                                             // v3_and_below_producer_epoch
    f(Array(&Struct(ADD_PARTITIONS_TO_TXN_TOPIC)), 0, 3),       // v3_and_below_topics
];
const ADD_PARTITIONS_TO_TXN_TRANSACTION: &[Field] = &[
    f(Str, 4, N),                                         // transactional_id
    f(Int64, 4, N),                                       // producer_id
    f(Int16, 4, N),                                       // producer_epoch
    f(Bool, 4, N),                                        // verify_only
    f(Array(&Struct(ADD_PARTITIONS_TO_TXN_TOPIC)), 4, N), // topics
];
const ADD_PARTITIONS_TO_TXN_TOPIC: &[Field] = &[
    f(Str, 0, N),           // name
    f(Array(&Int32), 0, N), // partitions
];

pub(super) const ADD_OFFSETS_TO_TXN: &[Field] = &[
    f(Str, 0, N),   // transactional_id
    f(Int64, 0, N), // producer_id
    f(Int16, 0, N), // producer_epoch
    f(Str, 0, N),   // group_id
];

pub(super) const TXN_OFFSET_COMMIT: &[Field] = &[
    f(Str, 0, N),                                     // transactional_id
    f(Str, 0, N),                                     // group_id
    f(Int64, 0, N),                                   // producer_id
    f(Int16, 0, N),                                   // producer_epoch
    f(Int32, 3, N),                                   // generation_id
    f(Str, 3, N),                                     // member_id
    f(NullableStr, 3, N),                             // group_instance_id
    f(Array(&Struct(TXN_OFFSET_COMMIT_TOPIC)), 0, N), // topics
];
const TXN_OFFSET_COMMIT_TOPIC: &[Field] = &[
    f(Str, 0, N),                                         // name
    f(Array(&Struct(TXN_OFFSET_COMMIT_PARTITION)), 0, N), // partitions
];
const TXN_OFFSET_COMMIT_PARTITION: &[Field] = &[
    f(Int32, 0, N),       // partition_index
    f(Int64, 0, N),       // committed_offset
    f(Int32, 2, N),       // committed_leader_epoch
    f(NullableStr, 0, N), // committed_metadata
];

pub(super) const END_TXN: &[Field] = &[
    f(Str, 0, N),   // transactional_id
    f(Int64, 0, N), // producer_id
    f(Int16, 0, N), // producer_epoch
    f(Bool, 0, N),  // committed
];
