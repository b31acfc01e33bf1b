use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader};
use skiff_format::batch::{batches, Batch, BatchError, Timestamps};
use skiff_format::records;
use skiff_metastore::types::TopicPartition;
use tracing::debug;

use super::{encode, str_bytes, Pending};
use crate::batcher::{AppendError, AppendResult, Entry};
use crate::context::Agent;
use crate::protocol::codes;

/// Where each partition of the request stands before the flush answers.
enum Slot {
    /// Refused before queueing: this error code, this message.
    Failed(i16, Option<String>),
    /// Queued: its batches are `entries[first..first + count]`.
    Queued { first: usize, count: usize },
}

/// Validates the request and queues its batches (in request order, on the connection's task);
/// the returned future waits for the flush that commits them.
pub async fn route(agent: Arc<Agent>, header: RequestHeader, req: ProduceRequest) -> Pending {
    let started = Instant::now();
    agent.metrics.produce_requests.inc();
    let mut entries: Vec<Entry> = Vec::new();
    let mut slots: Vec<Vec<(i32, Slot)>> = Vec::with_capacity(req.topic_data.len());
    let acks_valid = matches!(req.acks, -1..=1);

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
        for p in &topic.partition_data {
            let slot = match (&meta, acks_valid) {
                (_, false) => Slot::Failed(codes::INVALID_REQUIRED_ACKS, None),
                (None, _) => Slot::Failed(codes::UNKNOWN_TOPIC_OR_PARTITION, None),
                (Some(m), _) if !(0..m.partitions).contains(&p.index) => {
                    Slot::Failed(codes::UNKNOWN_TOPIC_OR_PARTITION, None)
                }
                (Some(m), _) => {
                    let tp = TopicPartition {
                        topic_id: m.topic_id,
                        partition: p.index,
                    };
                    let records = p.records.clone().unwrap_or_default();
                    let first = entries.len();
                    let mut failed = None;
                    let append_time = crate::topic_config::log_append_time(
                        agent.topic_config(m, "message.timestamp.type").as_deref(),
                    )
                    .then(|| agent.clock.now_ms());
                    for batch in batches(records, agent.max_message_bytes(m)) {
                        let entry = match batch {
                            Ok(batch) if batch.header.is_transactional() => Err(Slot::Failed(
                                codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                                Some("transactions are not supported yet".into()),
                            )),
                            Ok(batch) => {
                                index_timestamps(&batch, append_time)
                                    .await
                                    .map(|timestamps| Entry {
                                        tp,
                                        batch,
                                        timestamps,
                                    })
                            }
                            Err(e) => Err(refused(&e)),
                        };
                        match entry {
                            Ok(entry) => entries.push(entry),
                            Err(slot) => {
                                if let Slot::Failed(code, message) = &slot {
                                    debug!(topic = %topic.name.as_str(), partition = p.index, code, error = message.as_deref().unwrap_or(""), "rejected batch");
                                }
                                failed = Some(slot);
                                break;
                            }
                        }
                    }
                    match failed {
                        Some(slot) => {
                            // The partition's data is refused whole, as Kafka does.
                            entries.truncate(first);
                            slot
                        }
                        None if entries.len() == first => {
                            Slot::Failed(codes::INVALID_RECORD, Some("no record batch".into()))
                        }
                        None => Slot::Queued {
                            first,
                            count: entries.len() - first,
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
        let results: Result<Vec<AppendResult>, AppendError> = match queued {
            None => Ok(Vec::new()),
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
        let body = ProduceResponse::default().with_responses(responses);
        encode(ApiKey::Produce, version, correlation_id, &body).map(Some)
    })
}

/// The timestamps the index keeps for `batch`. For a `LogAppendTime` topic, `append_time` (the
/// agent's clock when the request arrived), as Kafka stamps such batches on append. Otherwise the
/// header's when they are consistent, so the usual batch costs no record decoding; when they are
/// not (Sarama writes `max_timestamp = -1` in every batch), the records are read for them, as
/// Kafka's LogValidator computes a batch's max timestamp: retention and ListOffsets believe the
/// index, and a max of -1 would expire the batch as soon as it is written.
async fn index_timestamps(batch: &Batch, append_time: Option<i64>) -> Result<Timestamps, Slot> {
    if let Some(now) = append_time {
        return Ok(Timestamps {
            first: now,
            max: now,
        });
    }
    if let Some(timestamps) = batch.header.trusted_timestamps() {
        return Ok(timestamps);
    }
    match crate::scan::scan(batch.clone(), records::timestamps).await {
        Some(Ok(timestamps)) => Ok(timestamps),
        Some(Err(e)) => Err(refused(&BatchError::Records(e))),
        None => Err(Slot::Failed(
            codes::UNKNOWN_SERVER_ERROR,
            Some("reading the batch's records failed".into()),
        )),
    }
}

fn refused(e: &BatchError) -> Slot {
    Slot::Failed(e.kafka_error_code(), Some(e.to_string()))
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
    results: &Result<Vec<AppendResult>, AppendError>,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1);
    let (first, count) = match slot {
        Slot::Failed(code, message) => {
            return response
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
        }
        Slot::Queued { first, count } => (first, count),
    };
    let answers = match results {
        Ok(all) => all.get(first..first + count),
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
            .with_log_start_offset(first.log_start_offset),
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
