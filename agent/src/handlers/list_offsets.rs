use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use skiff_format::batch::{Batch, BatchHeader};
use skiff_format::records::first_offset_at_or_after;
use skiff_metastore::types::{BatchLocation, TopicPartition};

use crate::context::Agent;
use crate::protocol::codes;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub async fn handle(agent: &Agent, _version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let meta = agent.metastore.topic_by_name(&t.name).await.ok().flatten();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let response = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            let Some(meta) = meta
                .as_ref()
                .filter(|m| (0..m.partitions).contains(&p.partition_index))
            else {
                partitions.push(response.with_error_code(codes::UNKNOWN_TOPIC_OR_PARTITION));
                continue;
            };
            let tp = TopicPartition {
                topic_id: meta.topic_id,
                partition: p.partition_index,
            };
            partitions.push(match lookup(agent, tp, p.timestamp).await {
                Ok((offset, timestamp)) => response.with_offset(offset).with_timestamp(timestamp),
                Err(code) => response.with_error_code(code),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// The (offset, timestamp) a ListOffsets partition asks for.
async fn lookup(agent: &Agent, tp: TopicPartition, target: i64) -> Result<(i64, i64), i16> {
    let meta_err = |e: skiff_metastore::client::MetastoreError| codes::metastore_error(&e);
    match target {
        LATEST => Ok((
            agent
                .metastore
                .offsets(tp)
                .await
                .map_err(meta_err)?
                .high_watermark,
            -1,
        )),
        EARLIEST => Ok((
            agent
                .metastore
                .offsets(tp)
                .await
                .map_err(meta_err)?
                .log_start_offset,
            -1,
        )),
        MAX_TIMESTAMP => match agent
            .metastore
            .batch_with_max_timestamp(tp)
            .await
            .map_err(meta_err)?
        {
            // Kafka answers with the offset of the record carrying the max timestamp; the batch
            // knows its max timestamp but not which record has it, so look inside.
            Some(b) => Ok(record_at_or_after(agent, &b, b.max_timestamp)
                .await
                .unwrap_or((b.last_offset, b.max_timestamp))),
            None => Ok((-1, -1)),
        },
        ts if ts < 0 => Err(codes::INVALID_REQUEST),
        ts => match agent
            .metastore
            .batch_for_timestamp(tp, ts)
            .await
            .map_err(meta_err)?
        {
            Some(b) => Ok(record_at_or_after(agent, &b, ts)
                .await
                .unwrap_or((b.base_offset, b.first_timestamp.max(ts)))),
            None => Ok((-1, -1)),
        },
    }
}

/// The first record of batch `b` whose timestamp is at least `ts`. `None` when the batch cannot
/// be looked into (compressed, unreadable); the caller falls back to the batch's own bounds.
async fn record_at_or_after(agent: &Agent, b: &BatchLocation, ts: i64) -> Option<(i64, i64)> {
    if b.first_timestamp >= ts {
        return Some((b.base_offset, b.first_timestamp));
    }
    let bytes = agent.reader.read(std::slice::from_ref(b)).await.ok()?;
    let header = BatchHeader::parse(&bytes).ok()?;
    let batch = Batch { header, bytes };
    let (delta, timestamp) = first_offset_at_or_after(&batch, ts).ok()??;
    Some((b.base_offset + delta, timestamp))
}
