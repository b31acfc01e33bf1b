//! Kafka error codes (the protocol guide's table), and how our own errors map onto them.

use skiff_metastore::types::MetaError;

pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const RECORD_LIST_TOO_LARGE: i16 = 18;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const INVALID_TIMESTAMP: i16 = 32;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_REQUEST: i16 = 42;
pub const POLICY_VIOLATION: i16 = 44;
pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const INVALID_CONFIG: i16 = 40;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const UNKNOWN_PRODUCER_ID: i16 = 59;
pub const INVALID_RECORD: i16 = 87;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const UNKNOWN_TOPIC_ID: i16 = 100;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

// Admin and describe APIs.
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
pub const ELECTION_NOT_NEEDED: i16 = 84;
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
pub const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

// Consumer groups.
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const NOT_COORDINATOR: i16 = 16;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_GROUP_ID: i16 = 24;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub const FENCED_INSTANCE_ID: i16 = 82;
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
pub const FENCED_MEMBER_EPOCH: i16 = 110;
pub const UNRELEASED_INSTANCE_ID: i16 = 111;
pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
pub const STALE_MEMBER_EPOCH: i16 = 113;
pub const INVALID_REGULAR_EXPRESSION: i16 = 130;

/// The code a client sees for a metastore rejection.
pub fn meta_error(e: &MetaError) -> i16 {
    match e {
        MetaError::TopicAlreadyExists => TOPIC_ALREADY_EXISTS,
        MetaError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        MetaError::InvalidPartitions => INVALID_PARTITIONS,
        MetaError::InvalidTopic => INVALID_TOPIC_EXCEPTION,
        MetaError::OffsetOutOfRange => OFFSET_OUT_OF_RANGE,
        MetaError::OutOfOrderSequence => OUT_OF_ORDER_SEQUENCE_NUMBER,
        MetaError::InvalidProducerEpoch => INVALID_PRODUCER_EPOCH,
        MetaError::UnknownProducerId => UNKNOWN_PRODUCER_ID,
        MetaError::GroupIdNotFound => GROUP_ID_NOT_FOUND,
        // Only the compactor sends rewrites; no client request can meet this.
        MetaError::RewriteConflict => UNKNOWN_SERVER_ERROR,
        // Never retriable: the same request is as large the next time.
        MetaError::CommandTooLarge => RECORD_LIST_TOO_LARGE,
        // Retriable: nothing was committed, and the producer's resend lands in a new object.
        MetaError::ObjectTooOld => KAFKA_STORAGE_ERROR,
        // Retriable: the client looks the coordinator up again and commits there.
        MetaError::NotCoordinator => NOT_COORDINATOR,
        MetaError::ConfigsOverLimit => INVALID_REQUEST,
        MetaError::ProducerFenced => PRODUCER_FENCED,
        MetaError::InvalidTxnState => INVALID_TXN_STATE,
        MetaError::InvalidProducerIdMapping => INVALID_PRODUCER_ID_MAPPING,
        MetaError::InvalidTransactionTimeout => INVALID_TRANSACTION_TIMEOUT,
        // What Kafka's group coordinator answers a TxnOffsetCommit whose transaction has not
        // added the group: the producer must call AddOffsetsToTxn first.
        MetaError::GroupNotInTransaction => INVALID_TXN_STATE,
        MetaError::TooManyTxnPartitions => INVALID_REQUEST,
        MetaError::CredentialNotFound => RESOURCE_NOT_FOUND,
        MetaError::SecurityOverLimit => UNACCEPTABLE_CREDENTIAL,
        MetaError::InvalidRequest => INVALID_REQUEST,
        // Only an agent's own listener registration can meet this; no client request does.
        MetaError::UnknownAgent => UNKNOWN_SERVER_ERROR,
        MetaError::PartitionLimit => POLICY_VIOLATION,
    }
}

// Security.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const ILLEGAL_SASL_STATE: i16 = 34;
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const DUPLICATE_RESOURCE: i16 = 92;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;

pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;

// Transactions (KIP-98, KIP-360, KIP-447, KIP-588, KIP-890).
pub const INVALID_TXN_STATE: i16 = 48;
pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
pub const CONCURRENT_TRANSACTIONS: i16 = 51;
pub const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
pub const PRODUCER_FENCED: i16 = 90;
pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
pub const TRANSACTION_ABORTABLE: i16 = 120;

/// The code for a metastore failure met by the group coordinator: Kafka's coordinator answers
/// COORDINATOR_NOT_AVAILABLE when it cannot reach its log, which clients retry after looking
/// the coordinator up again.
pub fn coordinator_error(e: &skiff_metastore::client::MetastoreError) -> i16 {
    use skiff_metastore::client::MetastoreError;
    match e {
        MetastoreError::Rejected(m) => meta_error(m),
        MetastoreError::Unavailable(_) => COORDINATOR_NOT_AVAILABLE,
        MetastoreError::OutcomeUnknown(_) => REQUEST_TIMED_OUT,
    }
}

/// The code for a metastore failure at the client boundary. Everything but a rejection is
/// retriable: the request did not happen, or happened and is idempotent.
pub fn metastore_error(e: &skiff_metastore::client::MetastoreError) -> i16 {
    use skiff_metastore::client::MetastoreError;
    match e {
        MetastoreError::Rejected(m) => meta_error(m),
        MetastoreError::Unavailable(_) => KAFKA_STORAGE_ERROR,
        MetastoreError::OutcomeUnknown(_) => REQUEST_TIMED_OUT,
    }
}
