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

pub(super) const DELETE_ACLS: &[Field] = &[
    f(Array(&Struct(ACL_FILTER)), 0, N), // filters
];
