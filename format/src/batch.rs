//! Kafka v2 record-batch headers.
