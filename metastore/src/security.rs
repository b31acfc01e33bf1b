//! What the metastore keeps for authentication, authorization and quotas, as agents send and
//! read it: SCRAM credentials (KIP-554), ACL bindings (KIP-140), client quotas (KIP-546) and each
//! agent's listeners. Plain data; the state that holds them is the state machine's `users`
//! module.

use serde::{Deserialize, Serialize};

/// The SCRAM mechanisms, with Kafka's codes (`ScramMechanism` in AlterUserScramCredentials).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [Self; 2] = [Self::Sha256, Self::Sha512];

    pub fn kafka_code(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    pub fn from_kafka_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A user's SCRAM credential for one mechanism, as RFC 5802 has the server keep it: the
/// password itself is never stored, nor can it be derived from this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// AlterUserScramCredentials, checked by the agent (mechanisms, iterations, duplicates).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterScramCredentials {
    pub upsertions: Vec<ScramUpsertion>,
    pub deletions: Vec<ScramDeletion>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramUpsertion {
    pub user: String,
    pub mechanism: ScramMechanism,
    pub credential: ScramCredential,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramDeletion {
    pub user: String,
    pub mechanism: ScramMechanism,
}

/// A user with SCRAM credentials, as DescribeUserScramCredentials shows it: the mechanisms and
/// their iterations, nothing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramUser {
    pub user: String,
    pub mechanisms: Vec<(ScramMechanism, u32)>,
}

/// One ACL, with Kafka's codes for its enumerations (`ResourceType`, `PatternType`,
/// `AclOperation`, `AclPermissionType`), so that what clients send is kept as they sent it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    /// `User:alice`, `User:*`.
    pub principal: String,
    /// An address, or `*`.
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}

/// A listener of an agent as clients reach it (KIP-103): its name and advertised address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AdvertisedListener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Kafka's codes for the enumerations of an ACL.
pub mod codes {
    pub const ANY: i8 = 1;
    // ResourceType
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    // PatternType
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
    // AclOperation
    pub const ALL: i8 = 2;
    // AclPermissionType
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// DescribeAcls' and DeleteAcls' filter (Kafka's `AclBindingFilter`): `ANY` and `None` match
/// everything; pattern `MATCH` matches the bindings that would apply to the named resource
/// (literal ones of that name or `*`, prefixed ones it starts with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission_type: i8,
}

impl AclFilter {
    pub fn matches(&self, b: &AclBinding) -> bool {
        use codes::*;
        let any_or = |want: i8, got: i8| want == ANY || want == got;
        let name_ok = match self.pattern_type {
            MATCH => match &self.resource_name {
                None => true,
                Some(name) => match b.pattern_type {
                    LITERAL => b.resource_name == *name || b.resource_name == "*",
                    PREFIXED => name.starts_with(&b.resource_name),
                    _ => false,
                },
            },
            ANY => self
                .resource_name
                .as_ref()
                .is_none_or(|n| *n == b.resource_name),
            p => {
                p == b.pattern_type
                    && self
                        .resource_name
                        .as_ref()
                        .is_none_or(|n| *n == b.resource_name)
            }
        };
        any_or(self.resource_type, b.resource_type)
            && name_ok
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && any_or(self.operation, b.operation)
            && any_or(self.permission_type, b.permission_type)
    }
}

/// Every ACL binding and a number that moves forward with each change, so that an agent's
/// copy knows whether a read is newer than what it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acls {
    pub version: u64,
    pub bindings: Vec<AclBinding>,
}

/// One part of a client-quota entity: Kafka's `<default>` or a name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaName {
    Default,
    Named(String),
}

/// A client-quota entity: a user, a client id, or both (`None`: that type is not part of it).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<QuotaName>,
    pub client_id: Option<QuotaName>,
}

/// A quota's value, an f64 kept by its bits so that commands stay `Eq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaValue(u64);

impl QuotaValue {
    pub fn new(v: f64) -> Self {
        Self(v.to_bits())
    }

    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// AlterClientQuotas' change to one entity: keys set to values, keys removed. The agent checks
/// the keys and values (Kafka's names, positive rates); apply enforces only the bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaAlteration {
    pub entity: QuotaEntity,
    pub set: Vec<(String, QuotaValue)>,
    pub remove: Vec<String>,
}

/// Every entity's quotas, and a number that moves forward with each change, so that an agent's
/// copy knows whether a read is newer than what it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientQuotas {
    pub version: u64,
    pub entries: Vec<(QuotaEntity, Vec<(String, QuotaValue)>)>,
}
