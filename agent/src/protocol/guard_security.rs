//! The guard's schemas of the authentication and user APIs, transcribed from kafka-protocol
//! 0.18's generated `decode` functions like those in the parent module.

use super::Ty::*;
use super::{f, Field, N};

pub(super) const SASL_HANDSHAKE: &[Field] = &[
    f(Str, 0, N), // mechanism
];

pub(super) const SASL_AUTHENTICATE: &[Field] = &[
    f(Bytes, 0, N), // auth_bytes
];

pub(super) const ALTER_USER_SCRAM_CREDENTIALS: &[Field] = &[
    f(Array(&Struct(SCRAM_DELETION)), 0, N),  // deletions
    f(Array(&Struct(SCRAM_UPSERTION)), 0, N), // upsertions
];
const SCRAM_DELETION: &[Field] = &[
    f(Str, 0, N),  // name
    f(Int8, 0, N), // mechanism
];
const SCRAM_UPSERTION: &[Field] = &[
    f(Str, 0, N),   // name
    f(Int8, 0, N),  // mechanism
    f(Int32, 0, N), // iterations
    f(Bytes, 0, N), // salt
    f(Bytes, 0, N), // salted_password
];

pub(super) const DESCRIBE_USER_SCRAM_CREDENTIALS: &[Field] = &[
    f(NullableArray(&Struct(USER_NAME)), 0, N), // users
];
const USER_NAME: &[Field] = &[
    f(Str, 0, N), // name
];

pub(super) const CREATE_ACLS: &[Field] = &[
    f(Array(&Struct(ACL_CREATION)), 0, N), // creations
];
const ACL_CREATION: &[Field] = &[
    f(Int8, 0, N), // resource_type
    f(Str, 0, N),  // resource_name
    f(Int8, 1, N), // resource_pattern_type
    f(Str, 0, N),  // principal
    f(Str, 0, N),  // host
    f(Int8, 0, N), // operation
    f(Int8, 0, N), // permission_type
];

pub(super) const DESCRIBE_ACLS: &[Field] = ACL_FILTER;

const ACL_FILTER: &[Field] = &[
    f(Int8, 0, N),        // resource_type_filter
    f(NullableStr, 0, N), // resource_name_filter
    f(Int8, 1, N),        // pattern_type_filter
    f(NullableStr, 0, N), // principal_filter
    f(NullableStr, 0, N), // host_filter
    f(Int8, 0, N),        // operation
    f(Int8, 0, N),        // permission_type
];

pub(super) const DESCRIBE_CLIENT_QUOTAS: &[Field] = &[
    f(Array(&Struct(QUOTA_COMPONENT)), 0, N), // components
    f(Bool, 0, N),                            // strict
];
const QUOTA_COMPONENT: &[Field] = &[
    f(Str, 0, N),         // entity_type
    f(Int8, 0, N),        // match_type
    f(NullableStr, 0, N), // match
];

pub(super) const ALTER_CLIENT_QUOTAS: &[Field] = &[
    f(Array(&Struct(QUOTA_ENTRY)), 0, N), // entries
    f(Bool, 0, N),                        // validate_only
];
const QUOTA_ENTRY: &[Field] = &[
    f(Array(&Struct(QUOTA_ENTITY)), 0, N), // entity
    f(Array(&Struct(QUOTA_OP)), 0, N),     // ops
];
const QUOTA_ENTITY: &[Field] = &[
    f(Str, 0, N),         // entity_type
    f(NullableStr, 0, N), // entity_name
];
const QUOTA_OP: &[Field] = &[
    f(Str, 0, N),   // key
    f(Int64, 0, N), // value: a float64, eight bytes like an Int64
    f(Bool, 0, N),  // remove
];

pub(super) const DELETE_ACLS: &[Field] = &[
    f(Array(&Struct(ACL_FILTER)), 0, N), // filters
];
