//! What the metastore keeps for authentication and authorization, as agents send and read it:
//! SCRAM credentials (KIP-554), ACL bindings (KIP-140) and each agent's listeners. Plain data;
//! the state that holds them is the state machine's `users` module.

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
