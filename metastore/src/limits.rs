//! The size bounds of what metastore processes send each other, in one place so that they can be
//! checked against each other; and the age bound of a commit ([`MAX_COMMIT_AGE_MS`]).
//!
//! Every HTTP route refuses a body over [`MAX_BODY_BYTES`]. Everything a node sends stays below
//! it by construction, whatever the size of the state:
//!
//! - a snapshot travels in chunks of [`SNAPSHOT_CHUNK_BYTES`] (openraft's
//!   `snapshot_max_chunk_size`), plus a small header (vote, snapshot metadata);
//! - an AppendEntries request carries entries up to [`APPEND_BUDGET_BYTES`] of encoding; a larger
//!   one is split by the network ([`crate::raft::network`]), which tells openraft how many
//!   entries fit;
//! - one command (one Raft entry) is at most [`MAX_COMMAND_BYTES`] encoded, refused before it is
//!   proposed otherwise, so a single entry always fits an append.
//!
//! Without these, a state past axum's 2 MB default body limit could never be sent to a new or
//! lagging node, and one large append stalled every follower.

/// The largest request body any metastore route accepts.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Bytes of snapshot per InstallSnapshot request.
pub const SNAPSHOT_CHUNK_BYTES: usize = 4 << 20;

/// Encoded entries per AppendEntries request, at most (a lone entry may reach
/// [`MAX_COMMAND_BYTES`] plus its log id).
pub const APPEND_BUDGET_BYTES: usize = 8 << 20;

/// The largest encoded [`crate::types::Command`] the metastore proposes. A commit of one object
/// with a batch in each of 10,000 partitions is about 0.7 MB.
pub const MAX_COMMAND_BYTES: usize = 4 << 20;

/// The most partitions one topic may have (CreateTopics and CreatePartitions). Every replica
/// allocates per-partition state on create, so an absurd count would exhaust memory on all of
/// them at once; Kafka clusters rarely go beyond a few thousand per topic.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// The most partitions over all topics. Each costs every replica its state (a few hundred bytes
/// empty, its index as it fills), so the bound keeps a quorum's memory to what was planned for,
/// whatever clients allowed to create topics do; KRaft clusters are run to about this size.
/// (Unit tests go past a smaller one: a million partitions would take them a while.)
#[cfg(not(test))]
pub const MAX_PARTITIONS: u64 = 1_000_000;
#[cfg(test)]
pub const MAX_PARTITIONS: u64 = 3 * MAX_PARTITIONS_PER_TOPIC as u64;

/// Refuses a command too large to replicate.
pub fn check_command(cmd: &crate::types::Command) -> Result<(), crate::types::MetaError> {
    match crate::codec::encoded_len(cmd) {
        Ok(len) if len <= MAX_COMMAND_BYTES => Ok(()),
        _ => Err(crate::types::MetaError::CommandTooLarge),
    }
}

/// Dynamic broker configs kept, over the cluster's defaults and every broker's overrides.
pub const MAX_BROKER_CONFIGS: usize = 1024;

/// The longest name or value of a dynamic broker config, in bytes.
pub const MAX_CONFIG_VALUE_BYTES: usize = 4096;

/// Room for what surrounds the payload of a request: vote, log ids, snapshot metadata with the
/// membership.
const ENVELOPE_BYTES: usize = 1 << 20;

const _: () = assert!(SNAPSHOT_CHUNK_BYTES + ENVELOPE_BYTES <= MAX_BODY_BYTES);
const _: () = assert!(APPEND_BUDGET_BYTES + ENVELOPE_BYTES <= MAX_BODY_BYTES);
const _: () = assert!(MAX_COMMAND_BYTES + ENVELOPE_BYTES <= APPEND_BUDGET_BYTES);

/// The oldest object a commit may bring, by the age of its id (a ULID carries the time it was
/// made) on the leader's clock. The compactor deletes objects the metastore does not know once
/// they are older than its orphan grace period, which may not be set below
/// `MAX_COMMIT_AGE_MS` plus a margin for clock skew (the compactor's `ORPHAN_GRACE_FLOOR`); so
/// any commit this bound lets through names an object the compactor has not deleted. Agents stop
/// retrying a commit well before it (their commit deadline, 30 s).
pub const MAX_COMMIT_AGE_MS: i64 = 60_000;

/// Whether a commit of `object`, stamped `now_ms` by the leader, comes too late: the object may
/// already have been collected as an orphan. An object dated in the future (an agent's clock
/// ahead of the leader's) is not too old: the compactor measures orphans from the same id and
/// keeps them at least as long.
pub fn commit_too_late(object: crate::types::ObjectId, now_ms: i64) -> bool {
    let made_ms = i64::try_from(object.0.timestamp_ms()).unwrap_or(i64::MAX);
    now_ms.saturating_sub(made_ms) > MAX_COMMIT_AGE_MS
}

/// The most partitions one admin read (partition sizes, producers) names; agents split longer
/// lists. Keeps an answer (about 16 bytes a partition for sizes) far below the RPC body limit.
pub const MAX_PARTITIONS_PER_READ: usize = 16_384;

/// The most partitions one transaction may write to. Ending a transaction touches each of them
/// in one apply, so this bounds that apply's work (and a transaction's state) whatever a client
/// sends; Kafka has no such limit, but no real transaction comes near it.
pub const MAX_PARTITIONS_PER_TXN: usize = 10_000;

/// The most consumer groups one transaction may commit offsets for (AddOffsetsToTxn).
pub const MAX_GROUPS_PER_TXN: usize = 64;

/// The longest `transactional.id`, in bytes: it is a key of the state, and Kafka has no bound
/// of its own but the request size.
pub const MAX_TRANSACTIONAL_ID_BYTES: usize = 1024;

/// The most users with SCRAM credentials the cluster keeps.
pub const MAX_SCRAM_USERS: usize = 100_000;

/// The longest user name, in bytes, of a SCRAM credential or an ACL's principal.
pub const MAX_USER_NAME_BYTES: usize = 1024;

/// The longest SCRAM salt kept, in bytes (clients send 16 to 64).
pub const MAX_SCRAM_SALT_BYTES: usize = 256;

/// The most ACL bindings the cluster keeps.
pub const MAX_ACLS: usize = 100_000;

/// The most client-quota entities the cluster keeps (users, client ids and pairs of them).
pub const MAX_QUOTA_ENTITIES: usize = 100_000;

/// The most quota keys one entity holds: Kafka has four (`producer_byte_rate`,
/// `consumer_byte_rate`, `request_percentage`, `controller_mutation_rate`), and room for a few
/// more.
pub const MAX_QUOTA_KEYS: usize = 8;

/// The longest quota key, in bytes. (A quota entity's names are bounded by
/// [`MAX_USER_NAME_BYTES`].)
pub const MAX_QUOTA_KEY_BYTES: usize = 64;

/// The most listeners one agent advertises (Kafka's `advertised.listeners` has a handful).
pub const MAX_AGENT_LISTENERS: usize = 16;

/// The longest listener name (`INTERNAL`, `SASL_SSL`), in bytes.
pub const MAX_LISTENER_NAME_BYTES: usize = 255;

/// The longest advertised host of a listener, in bytes: a DNS name is at most 253.
pub const MAX_LISTENER_HOST_BYTES: usize = 255;
