use bytes::Bytes;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use skiff_format::batch::Batch;
use skiff_format::records::{first_offset_at_or_after, max_timestamp};
use skiff_format::run::{run_batches, RunOffsets};
use skiff_metastore::types::{BatchLocation, RunLayout, TopicPartition};

use crate::context::Agent;
use crate::protocol::codes;
use crate::scan::scan;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub async fn handle(agent: &Agent, version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    // KIP-98: read_committed consumers see offsets up to the last stable offset only.
    let committed = version >= 2 && req.isolation_level == 1;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let last = t.partitions.iter().map(|p| p.partition_index).max();
        let meta = agent
            .topic_named_covering(&t.name, last.unwrap_or(0))
            .await
            .ok()
            .flatten();
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
            partitions.push(match lookup(agent, tp, p.timestamp, committed).await {
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

/// The (offset, timestamp) a ListOffsets partition asks for; with `committed` (read_committed),
/// as Kafka answers it: LATEST is the last stable offset, and a record found at or past it is
/// not answered.
async fn lookup(
    agent: &Agent,
    tp: TopicPartition,
    target: i64,
    committed: bool,
) -> Result<(i64, i64), i16> {
    let found = lookup_any(agent, tp, target, committed).await?;
    if !committed || target == LATEST || target == EARLIEST || found.0 < 0 {
        return Ok(found);
    }
    let offsets = agent
        .metastore
        .offsets(tp)
        .await
        .map_err(|e| codes::metastore_error(&e))?;
    Ok(if found.0 < offsets.last_stable_offset {
        found
    } else {
        (-1, -1)
    })
}

async fn lookup_any(
    agent: &Agent,
    tp: TopicPartition,
    target: i64,
    committed: bool,
) -> Result<(i64, i64), i16> {
    let meta_err = |e: skiff_metastore::client::MetastoreError| codes::metastore_error(&e);
    match target {
        LATEST => {
            let offsets = agent.metastore.offsets(tp).await.map_err(meta_err)?;
            let end = if committed {
                offsets.last_stable_offset
            } else {
                offsets.high_watermark
            };
            Ok((end, -1))
        }
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
        ts => {
            // DeleteRecords (or retention) can move the log start inside a run: the search
            // starts there, as Kafka's does, so no answer is an offset a fetch would refuse.
            let log_start = agent
                .metastore
                .offsets(tp)
                .await
                .map_err(meta_err)?
                .log_start_offset;
            match agent
                .metastore
                .batch_for_timestamp(tp, ts)
                .await
                .map_err(meta_err)?
            {
                Some(b) => Ok(record_at_or_after(agent, &b, ts, log_start)
                    .await
                    .unwrap_or((b.base_offset.max(log_start), b.first_timestamp.max(ts)))),
                None => Ok((-1, -1)),
            }
        }
    }
}

/// What ListOffsets looks for inside a run.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The first record with a timestamp at or above this.
    AtOrAfter(i64),
    /// The first record carrying the run's largest timestamp, this.
    Max(i64),
}

impl Target {
    fn timestamp(self) -> i64 {
        match self {
            Target::AtOrAfter(t) | Target::Max(t) => t,
        }
    }
}

/// The first record of run `b` whose timestamp is at least `ts`, compressed or not. `None` when
/// the run cannot be read or decoded (a failed read, corrupt batches or records, records over
/// `skiff_format::records::MAX_DECOMPRESSED_RECORDS` once decompressed); the caller falls back
/// to the run's own bounds.
async fn record_at_or_after(
    agent: &Agent,
    b: &BatchLocation,
    ts: i64,
    log_start: i64,
) -> Option<(i64, i64)> {
    if b.first_timestamp >= ts && b.base_offset >= log_start {
        return Some((b.base_offset, b.first_timestamp));
    }
    find(agent, b, Target::AtOrAfter(ts), log_start).await
}

/// The first record of run `b` carrying the largest timestamp of its records; `None` as for
/// [`record_at_or_after`].
async fn record_with_max_timestamp(agent: &Agent, b: &BatchLocation) -> Option<(i64, i64)> {
    if b.first_timestamp >= b.max_timestamp {
        // The first record already has the run's max timestamp: no need to read it.
        return Some((b.base_offset, b.max_timestamp));
    }
    find(agent, b, Target::Max(b.max_timestamp), i64::MIN).await
}

/// Looks for `target` in run `b`. A flushed run has no index and is read whole (it is at most
/// `MAX_RUN_BYTES`); a segment is read from the stretch its index names, onward until found.
/// For [`Target::Max`], if no record reaches the run's max timestamp (the index entry and the
/// records disagree), the largest found is the answer, as it was for a run of one batch.
async fn find(agent: &Agent, b: &BatchLocation, target: Target, from: i64) -> Option<(i64, i64)> {
    let mut best = None;
    match b.layout {
        // A marker is one control batch of one record at the entry's timestamp: Kafka's time
        // index counts it like any batch.
        RunLayout::Marker { .. } => {
            let hit = match target {
                Target::AtOrAfter(t) => b.max_timestamp >= t,
                Target::Max(m) => b.max_timestamp >= m,
            };
            return (hit && b.base_offset >= from).then_some((b.base_offset, b.max_timestamp));
        }
        RunLayout::Flushed => {
            let bytes = agent.reader.read_run(b, 0..u64::from(b.len)).await.ok()?;
            let offsets = RunOffsets::Consecutive(b.base_offset);
            if let Some(found) = search(b, &bytes, offsets, target, from, &mut best).await? {
                return Some(found);
            }
        }
        RunLayout::Segment { .. } => {
            let index = agent.reader.segment_index(b).await.ok()?;
            let start = match target {
                Target::AtOrAfter(t) => index.position_for_timestamp(t),
                Target::Max(_) => index.position_of_max_timestamp(),
            };
            let mut at = u64::from(start?);
            // One stretch first (the record is there if the index is right), then ever more.
            let mut step = 1u64;
            while at < u64::from(b.len) {
                let end = u64::from(index.end_at_or_after(at.saturating_add(step), b.len));
                let bytes = agent.reader.read_run(b, at..end).await.ok()?;
                let found =
                    search(b, &bytes, RunOffsets::InHeaders, target, from, &mut best).await?;
                if found.is_some() {
                    return found;
                }
                step = end.saturating_sub(at).saturating_mul(2);
                at = end;
            }
        }
    }
    best
}

/// Walks the batches of `bytes`, part of run `b`, for `target` at offset `from` or later:
/// `Some(Some(_))` found, `Some(None)` not in these bytes, `None` for bytes that do not decode
/// or offsets outside the run. Batches whose header shows them too old are not decoded.
async fn search(
    b: &BatchLocation,
    bytes: &Bytes,
    offsets: RunOffsets,
    target: Target,
    from: i64,
    best: &mut Option<(i64, i64)>,
) -> Option<Option<(i64, i64)>> {
    for batch in run_batches(bytes, offsets) {
        let batch = batch.ok()?;
        let (base, last) = (batch.base_offset, batch.last_offset());
        if base < b.base_offset || last > b.last_offset || batch.range.end > bytes.len() {
            return None;
        }
        if last < from
            || batch
                .header
                .trusted_timestamps()
                .is_some_and(|t| t.max < target.timestamp())
        {
            continue;
        }
        let one = Batch {
            header: batch.header,
            bytes: bytes.slice(batch.range.clone()),
        };
        match target {
            Target::AtOrAfter(ts) => {
                let min_delta = from.saturating_sub(base).max(0);
                let found = scan(one, move |batch| {
                    first_offset_at_or_after(batch, ts, min_delta)
                })
                .await?
                .ok()?;
                if let Some((delta, timestamp)) = found {
                    return Some(Some((offset_in(base, last, delta)?, timestamp)));
                }
            }
            Target::Max(max) => {
                if let Some((delta, timestamp)) = scan(one, max_timestamp).await?.ok()? {
                    let offset = offset_in(base, last, delta)?;
                    if timestamp >= max {
                        return Some(Some((offset, timestamp)));
                    }
                    if best.is_none_or(|(_, t)| timestamp > t) {
                        *best = Some((offset, timestamp));
                    }
                }
            }
        }
    }
    Some(None)
}

/// The offset of the record `delta` past the start of the batch holding offsets `base..=last`,
/// if it has one. A record's offset delta is the producer's bytes, which only the batch header
/// was checked against: a delta outside the batch would name an offset some other batch holds,
/// or none does.
fn offset_in(base: i64, last: i64, delta: i64) -> Option<i64> {
    let span = last.checked_sub(base)?;
    (0..=span)
        .contains(&delta)
        .then(|| base.checked_add(delta))
        .flatten()
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
                layout: RunLayout::Flushed,
            };
            let want = believed.then_some((10, 1_000));
            assert_eq!(
                record_at_or_after(&t.agent, &b, 500, 0).await,
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

    /// Every record as (offset, timestamp) of a run of batches with these timestamps, from
    /// offset `base` on, for the model below.
    fn records(base: i64, timestamps: &[Vec<i64>]) -> Vec<(i64, i64)> {
        let mut offset = base;
        let mut out = Vec::new();
        for batch in timestamps {
            for &ts in batch {
                out.push((offset, ts));
                offset += 1;
            }
        }
        out
    }

    /// What Kafka answers: the first record at or after `ts`, or the earliest record with the
    /// largest timestamp.
    fn model(records: &[(i64, i64)], target: i64) -> (i64, i64) {
        if target == MAX_TIMESTAMP {
            let max = records.iter().map(|r| r.1).max().unwrap_or(-1);
            return records
                .iter()
                .find(|r| r.1 == max)
                .copied()
                .unwrap_or((-1, -1));
        }
        records
            .iter()
            .find(|r| r.1 >= target)
            .copied()
            .unwrap_or((-1, -1))
    }

    fn batches(timestamps: &[Vec<i64>], base: impl Fn(usize) -> i64, value: usize) -> Vec<Bytes> {
        timestamps
            .iter()
            .enumerate()
            .map(|(i, ts)| test_support::batch(base(i), ts.len() as i32, value, |r| ts[r as usize]))
            .collect()
    }

    async fn topic(t: &test_support::TestAgent) -> TopicPartition {
        let meta = t
            .agent
            .create_topic("t", 1, Default::default())
            .await
            .expect("create topic");
        TopicPartition {
            topic_id: meta.topic_id,
            partition: 0,
        }
    }

    #[tokio::test]
    async fn by_timestamp_inside_a_flushed_run_answers_the_first_record_at_or_after() {
        let t = test_support::agent(AgentConfig::default()).await;
        let tp = topic(&t).await;
        // Out of order inside batches and across them; the largest, 700, twice.
        let timestamps = vec![
            vec![100, 300, 200],
            vec![250, 260],
            vec![500, 700, 600],
            vec![700],
        ];
        test_support::commit_run(&t, tp, &batches(&timestamps, |_| 0, 1)).await;
        let index = t
            .agent
            .metastore
            .read_index(tp, 0, u64::MAX)
            .await
            .expect("index");
        assert_eq!(index.batches.len(), 1, "one run");
        let all = records(0, &timestamps);
        for target in (0..=800)
            .step_by(10)
            .chain([199, 201, 699, 701, MAX_TIMESTAMP])
        {
            assert_eq!(
                lookup(&t.agent, tp, target, false).await,
                Ok(model(&all, target)),
                "timestamp {target}"
            );
        }
        assert_eq!(
            lookup(&t.agent, tp, MAX_TIMESTAMP, false).await,
            Ok((6, 700))
        );
        assert_eq!(lookup(&t.agent, tp, 210, false).await, Ok((1, 300)));
    }

    /// DeleteRecords inside a run: answers start at the log start, never below it.
    #[tokio::test]
    async fn by_timestamp_never_answers_below_the_log_start() {
        let t = test_support::agent(AgentConfig::default()).await;
        let tp = topic(&t).await;
        let timestamps = vec![
            vec![100, 300, 200],
            vec![250, 260],
            vec![500, 700, 600],
            vec![700],
        ];
        test_support::commit_run(&t, tp, &batches(&timestamps, |_| 0, 1)).await;
        // Offset 4 is the second record of the second batch: the log starts inside the run.
        t.agent
            .metastore
            .delete_records(tp, 4)
            .await
            .expect("delete records");
        let kept: Vec<(i64, i64)> = records(0, &timestamps)
            .into_iter()
            .filter(|r| r.0 >= 4)
            .collect();
        for target in (0..=800).step_by(10).chain([259, 261, 499, 501, 699, 701]) {
            assert_eq!(
                lookup(&t.agent, tp, target, false).await,
                Ok(model(&kept, target)),
                "timestamp {target}"
            );
        }
        assert_eq!(lookup(&t.agent, tp, 0, false).await, Ok((4, 260)));
    }

    #[tokio::test]
    async fn by_timestamp_inside_a_segment_answers_the_first_record_at_or_after() {
        let t = test_support::agent(AgentConfig::default()).await;
        let tp = topic(&t).await;
        // 24 batches of three 7 KiB records, a few per index point; a little out of order
        // inside each; the largest timestamp in batches 12 and 17.
        let timestamps: Vec<Vec<i64>> = (0..24)
            .map(|i| {
                let at = 10_000 + 100 * i;
                match i {
                    12 | 17 => vec![at, 99_999, at + 20],
                    _ => vec![at, at + 50, at + 20],
                }
            })
            .collect();
        let object = test_support::commit_run(&t, tp, &batches(&timestamps, |_| 0, 7_000)).await;
        // Compaction leaves out batches 5 and 6: an offset gap.
        let kept: Vec<usize> = (0..24).filter(|i| !(5..=6).contains(i)).collect();
        let kept_timestamps: Vec<Vec<i64>> = kept.iter().map(|&i| timestamps[i].clone()).collect();
        let segment = test_support::replace_with_segment(
            &t,
            tp,
            vec![(0, object)],
            &batches(&kept_timestamps, |k| 3 * kept[k] as i64, 7_000),
        )
        .await;
        let points = t.agent.reader.segment_index(&segment).await.expect("index");
        assert!(points.points().len() >= 4, "{:?}", points.points());
        let all: Vec<(i64, i64)> = records(0, &timestamps)
            .into_iter()
            .filter(|&(offset, _)| !(15..21).contains(&offset))
            .collect();
        let mut targets: Vec<i64> = all.iter().flat_map(|r| [r.1 - 1, r.1, r.1 + 1]).collect();
        targets.extend([0, 200_000, MAX_TIMESTAMP]);
        for target in targets {
            assert_eq!(
                lookup(&t.agent, tp, target, false).await,
                Ok(model(&all, target)),
                "timestamp {target}"
            );
        }
        assert_eq!(
            lookup(&t.agent, tp, MAX_TIMESTAMP, false).await,
            Ok((37, 99_999))
        );
        // Batches 5 and 6 are gone: their times answer batch 7's first record.
        assert_eq!(lookup(&t.agent, tp, 10_510, false).await, Ok((21, 10_700)));
    }
}
