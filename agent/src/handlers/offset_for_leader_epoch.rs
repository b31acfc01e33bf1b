//! OffsetForLeaderEpoch (KIP-320): where a leader epoch ends, so a consumer can tell whether the
//! log was truncated under its position after a leader change.
//!
//! Every partition's leader epoch is the live agents' epoch, as Metadata hands it out. A leader
//! change in Skiff never truncates anything: all agents append to the one log the metastore
//! orders. So each epoch up to the current one is answered as Kafka answers the current one,
//! with the high watermark: a consumer's position is never past it, and its truncation check
//! passes, which is the truth. (Skiff keeps no epoch history per partition: answering an older
//! epoch as unknown, Kafka's -1/-1, would make librdkafka reset its position to
//! `auto.offset.reset` after every membership change, since librdkafka producers stamp their
//! batches with epoch 0 and fetched batches keep the producer's stamp.)

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use skiff_metastore::types::TopicPartition;

use crate::brokers::Brokers;
use crate::context::Agent;
use crate::protocol::codes;

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
const UNDEFINED_EPOCH: i32 = -1;
const UNDEFINED_OFFSET: i64 = -1;

pub async fn handle(
    agent: &Agent,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let current = Brokers::known(agent, false).epoch;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let meta = agent.topic_named(&t.topic).await;
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let answer = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(UNDEFINED_EPOCH)
                .with_end_offset(UNDEFINED_OFFSET);
            let tp = match &meta {
                Ok(Some(m))
                    if !crate::topics::is_internal_topic(&m.name)
                        && (0..m.partitions).contains(&p.partition) =>
                {
                    TopicPartition {
                        topic_id: m.topic_id,
                        partition: p.partition,
                    }
                }
                Ok(_) => {
                    partitions.push(answer.with_error_code(codes::UNKNOWN_TOPIC_OR_PARTITION));
                    continue;
                }
                Err(e) => {
                    partitions.push(answer.with_error_code(codes::metastore_error(e)));
                    continue;
                }
            };
            let code = check_current_epoch(p.current_leader_epoch, current);
            if code != codes::NONE {
                partitions.push(answer.with_error_code(code));
                continue;
            }
            if !(0..=current).contains(&p.leader_epoch) {
                // Undefined, or newer than any epoch there has been: Kafka's -1/-1.
                partitions.push(answer);
                continue;
            }
            partitions.push(match agent.metastore.offsets(tp).await {
                Ok(offsets) => answer
                    .with_leader_epoch(p.leader_epoch)
                    .with_end_offset(offsets.high_watermark),
                Err(e) => answer.with_error_code(codes::metastore_error(&e)),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// Kafka's check of the epoch the client believes current: -1 skips it; one newer than ours is
/// an epoch this agent has not heard of yet (the client refreshes metadata and retries), an
/// older one means the client's metadata is stale.
pub(crate) fn check_current_epoch(client: i32, current: i32) -> i16 {
    match client {
        -1 => codes::NONE,
        c if c > current => codes::UNKNOWN_LEADER_EPOCH,
        c if c < current => codes::FENCED_LEADER_EPOCH,
        _ => codes::NONE,
    }
}
