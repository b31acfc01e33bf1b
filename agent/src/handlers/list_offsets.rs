use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use skiff_format::batch::{Batch, BatchHeader};
use skiff_format::records::{first_offset_at_or_after, max_timestamp};
use skiff_metastore::types::{BatchLocation, TopicPartition};

use crate::context::Agent;
use crate::protocol::codes;
use crate::scan::scan;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub async fn handle(agent: &Agent, _version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let meta = agent.topic_named(&t.name).await.ok().flatten();
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
            Some(b) => Ok(record_with_max_timestamp(agent, &b)
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

/// The first record of batch `b` whose timestamp is at least `ts`, compressed or not. `None` when
/// the batch cannot be read or decoded (a failed read, corrupt records, records over
/// `skiff_format::records::MAX_DECOMPRESSED_RECORDS` once decompressed); the caller falls back
/// to the batch's own bounds.
async fn record_at_or_after(agent: &Agent, b: &BatchLocation, ts: i64) -> Option<(i64, i64)> {
    if b.first_timestamp >= ts {
        return Some((b.base_offset, b.first_timestamp));
    }
    let batch = read_batch(agent, b).await?;
    let (delta, timestamp) = scan(batch, move |batch| first_offset_at_or_after(batch, ts))
        .await?
        .ok()??;
    Some((offset_in(b, delta)?, timestamp))
}

/// The first record of batch `b` carrying the largest timestamp of its records; `None` as for
/// [`record_at_or_after`].
async fn record_with_max_timestamp(agent: &Agent, b: &BatchLocation) -> Option<(i64, i64)> {
    if b.first_timestamp >= b.max_timestamp {
        // The first record already has the batch's max timestamp: no need to read it.
        return Some((b.base_offset, b.max_timestamp));
    }
    let batch = read_batch(agent, b).await?;
    let (delta, timestamp) = scan(batch, max_timestamp).await?.ok()??;
    Some((offset_in(b, delta)?, timestamp))
}

/// The offset of the record `delta` past the start of batch `b`, if the batch has one. A record's
/// offset delta is the producer's bytes, which only the batch header was checked against: a delta
/// outside the batch would name an offset some other batch holds, or none does.
fn offset_in(b: &BatchLocation, delta: i64) -> Option<i64> {
    let last = b.last_offset.checked_sub(b.base_offset)?;
    (0..=last)
        .contains(&delta)
        .then(|| b.base_offset.checked_add(delta))
        .flatten()
}

async fn read_batch(agent: &Agent, b: &BatchLocation) -> Option<Batch> {
    let bytes = agent.reader.read(std::slice::from_ref(b)).await.ok()?;
    let header = BatchHeader::parse(&bytes).ok()?;
    Some(Batch { header, bytes })
}

#[cfg(test)]
mod tests {
    use skiff_format::encode::{update_crc, BatchBuilder};
    use skiff_metastore::types::ObjectId;

    use super::*;
    use crate::config::AgentConfig;
    use crate::storage::object_path;
    use crate::test_support;

    /// Offset delta of the first record, in a one-record batch with a 1-byte key-less record.
    const FIRST_DELTA_AT: usize = skiff_format::batch::BATCH_HEADER_LEN + 3;

    #[tokio::test]
    async fn a_record_offset_delta_outside_its_batch_is_not_believed() {
        let t = test_support::agent(AgentConfig::default()).await;
        let base = BatchBuilder::new(1_000)
            .record(1_000, None, Some(b"v"))
            .build();
        assert_eq!(base[FIRST_DELTA_AT], 0, "layout");
        // Zigzag varints: 0, then 1 (past the batch's only record) and -1 (before it).
        for (i, (zigzag, believed)) in [(0u8, true), (2, false), (1, false)]
            .into_iter()
            .enumerate()
        {
            let mut bytes = base.to_vec();
            bytes[FIRST_DELTA_AT] = zigzag;
            update_crc(&mut bytes);
            let object = ObjectId(ulid::Ulid::from_parts(1, i as u128));
            let len = u32::try_from(bytes.len()).expect("len");
            t.store
                .put(&object_path(object), bytes.into())
                .await
                .expect("put");
            let b = BatchLocation {
                base_offset: 10,
                last_offset: 10,
                object,
                position: 0,
                len,
                // Below the record's, so both lookups read the batch.
                first_timestamp: 0,
                max_timestamp: 1_000,
            };
            let want = believed.then_some((10, 1_000));
            assert_eq!(
                record_at_or_after(&t.agent, &b, 500).await,
                want,
                "{zigzag}"
            );
            assert_eq!(
                record_with_max_timestamp(&t.agent, &b).await,
                want,
                "{zigzag}"
            );
        }
    }
}
