use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader};
use skiff_format::batch::{batches, Batch, BatchError, Timestamps};
use skiff_format::records::MAX_DECOMPRESSED_RECORDS;
use skiff_format::validate::{self, Checked, Checks, TimestampBounds, Violation};
use skiff_metastore::types::{TopicMeta, TopicPartition};
use tracing::debug;

use super::{encode, str_bytes, Pending};
use crate::acl::{resource, Caller, Operation};
use crate::batcher::{AppendError, Appended, Entry};
use crate::context::Agent;
use crate::metrics::RefusalLabels;
use crate::protocol::codes;
use crate::topic_config;

/// The most refused records one partition's answer lists (KIP-467's `record_errors`); a batch
/// of a million keyless records would otherwise make an answer of a hundred megabytes. The
/// message still counts them all.
pub const MAX_RECORD_ERRORS: usize = 1024;

/// Where each partition of the request stands before the flush answers.
enum Slot {
    /// Refused before queueing: this error code, this message, these records (KIP-467).
    Failed(i16, Option<String>, Vec<BatchIndexAndErrorMessage>),
    /// Queued: its batches are `entries[first..first + count]`; `log_append_time` if its topic
    /// is `LogAppendTime`.
    Queued {
        first: usize,
        count: usize,
        log_append_time: bool,
    },
}

fn failed(code: i16, message: Option<String>) -> Slot {
    Slot::Failed(code, message, Vec::new())
}

/// Validates the request and queues its batches (in request order, on the connection's task);
/// the returned future waits for the flush that commits them.
pub async fn route(
    agent: Arc<Agent>,
    caller: &Caller,
    header: RequestHeader,
    req: ProduceRequest,
    throttle: std::time::Duration,
) -> Pending {
    let started = Instant::now();
    agent.metrics.produce_requests.inc();
    let mut entries: Vec<Entry> = Vec::new();
    let mut slots: Vec<Vec<(i32, Slot)>> = Vec::with_capacity(req.topic_data.len());
    let acks_valid = matches!(req.acks, -1..=1);
    // The clock CreateTime timestamps are checked against (KIP-937), once per request.
    let now = agent.clock.now_ms();

    for topic in &req.topic_data {
        let meta = if acks_valid {
            let last = topic.partition_data.iter().map(|p| p.index).max();
            agent
                .topic_named_covering(&topic.name, last.unwrap_or(0))
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let mut topic_slots = Vec::with_capacity(topic.partition_data.len());
        let may_write = agent.allowed(caller, Operation::Write, resource::TOPIC, &topic.name);
        for p in &topic.partition_data {
            let slot = match (&meta, acks_valid) {
                (_, false) => failed(codes::INVALID_REQUIRED_ACKS, None),
                _ if !may_write => failed(codes::TOPIC_AUTHORIZATION_FAILED, None),
                (None, _) => failed(codes::UNKNOWN_TOPIC_OR_PARTITION, None),
                (Some(m), _) if !(0..m.partitions).contains(&p.index) => {
                    failed(codes::UNKNOWN_TOPIC_OR_PARTITION, None)
                }
                (Some(m), _) => {
                    let tp = TopicPartition {
                        topic_id: m.topic_id,
                        partition: p.index,
                    };
                    let records = p.records.clone().unwrap_or_default();
                    let first = entries.len();
                    let name = topic.name.as_str();
                    match admit_partition(&agent, m, tp, records, name, now, &mut entries).await {
                        Err(slot) => {
                            if let Slot::Failed(code, message, _) = &slot {
                                debug!(topic = %name, partition = p.index, code, error = message.as_deref().unwrap_or(""), "rejected batch");
                            }
                            // The partition's data is refused whole, as Kafka does.
                            entries.truncate(first);
                            slot
                        }
                        Ok(_) if entries.len() == first => {
                            failed(codes::INVALID_RECORD, Some("no record batch".into()))
                        }
                        Ok(log_append_time) => Slot::Queued {
                            first,
                            count: entries.len() - first,
                            log_append_time,
                        },
                    }
                }
            };
            topic_slots.push((p.index, slot));
        }
        slots.push(topic_slots);
    }

    let queued = if entries.is_empty() {
        None
    } else {
        Some(agent.batcher.append(entries).await)
    };
    let version = header.request_api_version;
    let correlation_id = header.correlation_id;
    let acks = req.acks;
    let wait = answer_within(req.timeout_ms);
    let names: Vec<_> = req.topic_data.into_iter().map(|t| t.name).collect();

    Box::pin(async move {
        let results: Result<Appended, AppendError> = match queued {
            None => Ok(Appended {
                results: Vec::new(),
                log_append_time_ms: -1,
            }),
            Some(Err(e)) => Err(e),
            Some(Ok(rx)) => match tokio::time::timeout(wait, rx).await {
                Ok(answer) => answer.map_err(|_| AppendError::ShuttingDown),
                // The commit may still land: a retry of an idempotent producer is deduplicated.
                Err(_) => Err(AppendError::Metastore(format!(
                    "not committed within the request's {} ms",
                    wait.as_millis()
                ))),
            },
        };
        agent
            .metrics
            .produce_latency
            .observe(started.elapsed().as_secs_f64());
        if acks == 0 {
            return Ok(None);
        }
        let responses = names
            .into_iter()
            .zip(slots)
            .map(|(name, topic_slots)| {
                let partitions = topic_slots
                    .into_iter()
                    .map(|(index, slot)| partition_response(index, slot, &results))
                    .collect();
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(partitions)
            })
            .collect();
        let body = ProduceResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(crate::quotas::millis(throttle));
        encode(ApiKey::Produce, version, correlation_id, &body).map(Some)
    })
}

/// Splits one partition's `records` into batches, checks each and pushes them to `entries`;
/// answers whether the topic is `LogAppendTime`, or the first refusal (the caller drops what was
/// pushed).
async fn admit_partition(
    agent: &Agent,
    topic: &TopicMeta,
    tp: TopicPartition,
    records: Bytes,
    name: &str,
    now: i64,
    entries: &mut Vec<Entry>,
) -> Result<bool, Slot> {
    let fallback = |name: &str| agent.broker_default(name);
    let configs = topic_config::InForce {
        own: &topic.configs,
        fallback: &fallback,
    };
    let log_append_time = topic_config::log_append_time(&configs);
    let checks = Checks {
        require_key: topic_config::compacted(&configs),
        timestamps: (!log_append_time).then(|| {
            let (before, after) = topic_config::timestamp_bounds(&configs);
            TimestampBounds {
                now,
                before_max_ms: before,
                after_max_ms: after,
            }
        }),
    };
    for batch in batches(records, agent.max_message_bytes(topic)) {
        let batch = batch.map_err(|e| refused(&e))?;
        // Markers are the coordinator's (EndTxn): a client's control batch would commit or
        // abort a transaction under its own name. Kafka's LogValidator refuses them too.
        if batch.header.is_control() {
            return Err(failed(
                codes::INVALID_RECORD,
                Some("clients are not allowed to write control records".into()),
            ));
        }
        // A transactional batch is checked by the metastore when it commits: only into the
        // producer's ongoing transaction, at its epoch, for a partition it added.
        let timestamps = admit(agent, &batch, checks, (name, tp.partition)).await?;
        let entry = Entry::new(tp, batch, timestamps);
        entries.push(if log_append_time {
            entry.log_append_time()
        } else {
            entry
        });
    }
    Ok(log_append_time)
}

/// Checks `batch`'s records as Kafka's LogValidator does, for the topics and batches that need
/// it ([`Checks::needed`]), and answers the timestamps the index keeps for it. When the records
/// are not read, those are the header's, which is consistent then (and a `LogAppendTime` topic's
/// are replaced by the append time). When they are read (always for compacted topics and
/// `CreateTime` topics with a timestamp bound, and for a header that cannot be believed: Sarama
/// writes `max_timestamp = -1` in every batch), they are computed from the records, as Kafka
/// computes a batch's max timestamp: retention and ListOffsets believe the index.
async fn admit(
    agent: &Agent,
    batch: &Batch,
    checks: Checks,
    partition: (&str, i32),
) -> Result<Timestamps, Slot> {
    let header = &batch.header;
    if !checks.needed(header) {
        return Ok(header.trusted_timestamps().unwrap_or(Timestamps {
            first: header.base_timestamp,
            max: header.max_timestamp,
        }));
    }
    let checked = crate::scan::scan(batch.clone(), move |b| {
        validate::check(b, &checks, MAX_DECOMPRESSED_RECORDS, MAX_RECORD_ERRORS)
    })
    .await;
    match checked {
        Some(Ok(c)) if c.refused == 0 => Ok(c.timestamps),
        Some(Ok(c)) => {
            let count = |reason, n: usize| {
                if n > 0 {
                    agent
                        .metrics
                        .produce_refused_records
                        .get_or_create(&RefusalLabels { reason })
                        .inc_by(n as u64);
                }
            };
            count("no_key", c.missing_keys);
            count("timestamp", c.refused - c.missing_keys);
            Err(refused_records(&c, checks, partition))
        }
        Some(Err(e)) => Err(refused(&BatchError::Records(e))),
        None => Err(failed(
            codes::UNKNOWN_SERVER_ERROR,
            Some("reading the batch's records failed".into()),
        )),
    }
}

/// The answer for a batch with refused records, in Kafka's words: INVALID_TIMESTAMP when a
/// timestamp is among the reasons, INVALID_RECORD otherwise, and each refused record's batch
/// index with its own message (KIP-467).
fn refused_records(c: &Checked, checks: Checks, (topic, index): (&str, i32)) -> Slot {
    let partition = format!("{topic}-{index}");
    let record_errors: Vec<BatchIndexAndErrorMessage> = c
        .violations
        .iter()
        .map(|v| {
            let message = match v.violation {
                Violation::MissingKey => format!(
                    "Compacted topic cannot accept message without key in topic partition {partition}"
                ),
                Violation::Timestamp { timestamp, offset } => {
                    let (from, to) = checks.timestamps.map_or((0, 0), |t| t.window());
                    format!(
                        "Timestamp {timestamp} of message with offset {offset} is out of range. The timestamp should be within [{from}, {to}]"
                    )
                }
                Violation::LogAppendTimeSet => "Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime.".to_owned(),
            };
            BatchIndexAndErrorMessage::default()
                .with_batch_index(i32::try_from(v.index).unwrap_or(i32::MAX))
                .with_batch_index_error_message(Some(str_bytes(message)))
        })
        .collect();
    if c.invalid_timestamp() {
        return Slot::Failed(
            codes::INVALID_TIMESTAMP,
            Some("One or more records have been rejected due to invalid timestamp".into()),
            record_errors,
        );
    }
    let shown: Vec<String> = record_errors
        .iter()
        .take(3)
        .map(|e| {
            format!(
                "RecordError(batchIndex={}, message='{}')",
                e.batch_index,
                e.batch_index_error_message
                    .as_ref()
                    .map_or("", |m| m.as_str())
            )
        })
        .collect();
    let message = format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        c.refused,
        shown.join(", ")
    );
    Slot::Failed(codes::INVALID_RECORD, Some(message), record_errors)
}

fn refused(e: &BatchError) -> Slot {
    failed(e.kafka_error_code(), Some(e.to_string()))
}

/// How long a produce waits for its commit before answering REQUEST_TIMED_OUT: the request's
/// `timeout_ms`, as Kafka does, so a metastore that lost its quorum gets a retriable error instead
/// of a hang; but never less than a few flush windows, which a client cannot know about.
fn answer_within(timeout_ms: i32) -> std::time::Duration {
    const FLOOR_MS: u64 = 5_000;
    const NONE_GIVEN_MS: u64 = 30_000;
    let ms = u64::try_from(timeout_ms).unwrap_or(0);
    std::time::Duration::from_millis(if ms == 0 {
        NONE_GIVEN_MS
    } else {
        ms.max(FLOOR_MS)
    })
}

fn partition_response(
    index: i32,
    slot: Slot,
    results: &Result<Appended, AppendError>,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1);
    let (first, count, log_append_time) = match slot {
        Slot::Failed(code, message, record_errors) => {
            return response
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
                .with_record_errors(record_errors)
        }
        Slot::Queued {
            first,
            count,
            log_append_time,
        } => (first, count, log_append_time),
    };
    let (answers, append_time) = match results {
        Ok(all) => (
            all.results.get(first..first + count),
            all.log_append_time_ms,
        ),
        Err(e) => return response.with_error_code(append_error_code(e)),
    };
    let Some(answers) = answers else {
        return response.with_error_code(codes::UNKNOWN_SERVER_ERROR);
    };
    // The partition succeeds when all its batches do; its base offset is the first batch's.
    if let Some(Err(e)) = answers.iter().find(|a| a.is_err()) {
        return response
            .with_error_code(append_error_code(e))
            .with_error_message(Some(str_bytes(e.to_string())));
    }
    match answers.first() {
        Some(Ok(first)) => response
            .with_base_offset(first.base_offset)
            .with_log_start_offset(first.log_start_offset)
            // Kafka answers the append time for a LogAppendTime topic, -1 otherwise.
            .with_log_append_time_ms(if log_append_time { append_time } else { -1 }),
        _ => response.with_error_code(codes::UNKNOWN_SERVER_ERROR),
    }
}

fn append_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::Rejected(m) => codes::meta_error(m),
        // Retriable: the client sends the batch again (idempotent producers get it deduplicated).
        AppendError::Storage(_) | AppendError::Expired(_) | AppendError::ShuttingDown => {
            codes::KAFKA_STORAGE_ERROR
        }
        AppendError::Metastore(_) => codes::REQUEST_TIMED_OUT,
    }
}

#[cfg(test)]
#[path = "produce_tests.rs"]
mod tests;
