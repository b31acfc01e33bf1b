use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use skiff_metastore::types::{
    AbortedTxn, BatchLocation, IndexAnswer, IndexRead, PartitionOffsets, TopicMeta, TopicPartition,
};
use tracing::{info, warn};

use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::fetch::PartitionRead;
use crate::protocol::codes;

/// One requested partition, resolved.
#[derive(Clone)]
struct Want {
    topic: usize,
    partition: i32,
    /// `Err(code)` when the partition cannot be served at all.
    tp: Result<TopicPartition, i16>,
    fetch_offset: i64,
    max_bytes: u64,
}

/// One distinct read's outcome: the partition's offsets, its batches and whether they came from
/// the index cache; or the error code to answer, with the offsets when the partition exists.
type Slice = Result<
    (PartitionOffsets, Vec<BatchLocation>, Vec<AbortedTxn>, bool),
    (i16, Option<PartitionOffsets>),
>;

/// What the index says for one partition on this pass.
struct Plan {
    error: i16,
    offsets: Option<PartitionOffsets>,
    /// The runs to read, from the one holding the fetch offset.
    batches: Vec<BatchLocation>,
    /// What reading them costs ([`BatchLocation::read_cost`]), as charged to the response.
    cost: u64,
    /// Bytes of batches the partition may answer.
    limit: u64,
    /// Nothing comes before this partition's batches in the response, so its first comes whole.
    whole_first: bool,
    /// The batches came from the index cache, under this key.
    cached: Option<(TopicPartition, i64)>,
    /// read_committed: no batch from this offset on (the last stable offset); else `i64::MAX`.
    end_offset: i64,
    /// read_committed: the aborted transactions overlapping the batches.
    aborted: Vec<AbortedTxn>,
}

pub async fn handle(
    agent: &Agent,
    caller: &Caller,
    version: i16,
    req: FetchRequest,
) -> FetchResponse {
    let started = Instant::now();
    agent.metrics.fetch_requests.inc();
    let by_id = version >= 13;
    // KIP-98: isolation level 1 reads only up to the last stable offset, with the aborted
    // transactions of what it reads.
    let committed = version >= 4 && req.isolation_level == 1;

    // Resolve names (or ids, from v13) once; the response echoes what the request used.
    let mut topics: Vec<(TopicName, uuid::Uuid)> = Vec::with_capacity(req.topics.len());
    let mut wants = Vec::new();
    for (i, t) in req.topics.iter().enumerate() {
        let last = t.partitions.iter().map(|p| p.partition).max().unwrap_or(0);
        let meta: Option<TopicMeta> = if by_id {
            agent.topic_with_id_covering(t.topic_id, last).await
        } else {
            agent.topic_named_covering(t.topic.as_str(), last).await
        }
        .ok()
        .flatten();
        topics.push((t.topic.clone(), t.topic_id));
        let may_read = meta
            .as_ref()
            .is_none_or(|m| agent.allowed(caller, Operation::Read, resource::TOPIC, &m.name));
        for p in &t.partitions {
            let tp = match &meta {
                _ if !may_read => Err(codes::TOPIC_AUTHORIZATION_FAILED),
                None if by_id => Err(codes::UNKNOWN_TOPIC_ID),
                None => Err(codes::UNKNOWN_TOPIC_OR_PARTITION),
                Some(m) if !(0..m.partitions).contains(&p.partition) => {
                    Err(codes::UNKNOWN_TOPIC_OR_PARTITION)
                }
                Some(m) => Ok(TopicPartition {
                    topic_id: m.topic_id,
                    partition: p.partition,
                }),
            };
            wants.push(Want {
                topic: i,
                partition: p.partition,
                tp,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as u64,
            });
        }
    }

    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    let min_bytes = req.min_bytes.max(0) as u64;
    // Kafka's broker-side fetch.max.bytes bounds what one response may hold, whatever the client
    // asks for; the first batch is still returned whole (KIP-74).
    let response_max = u64::try_from(req.max_bytes)
        .ok()
        .filter(|&b| b > 0)
        .unwrap_or(u64::MAX)
        .min(agent.config.fetch_max_bytes as u64);
    let mut commits = agent.metastore.commits();

    // Plan from the index; wait for commits until enough bytes are there or time is up; only then
    // read the objects.
    let mut plans = loop {
        commits.borrow_and_update();
        let plans = plan(agent, &wants, response_max, committed).await;
        let bytes: u64 = plans.iter().map(|p| p.cost).sum();
        let failed = plans.iter().any(|p| p.error != codes::NONE);
        if bytes >= min_bytes.max(1) || failed || tokio::time::Instant::now() >= deadline {
            break plans;
        }
        match tokio::time::timeout_at(deadline, commits.changed()).await {
            // A commit landed, or the deadline passed: plan again (and answer, past the deadline).
            Ok(Ok(())) | Err(_) => continue,
            // The metastore is gone: answer with what there is.
            Ok(Err(_)) => break plans,
        }
    };

    let mut responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, id)| {
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(id)
        })
        .collect();
    // One read for every partition, so partitions that sit side by side in an object share a GET.
    let mut reads: Vec<_> = agent
        .reader
        .read_many(&partition_reads(&wants, &plans))
        .await;
    // A cached slice may name objects the compactor has merged away and deleted since: forget
    // those slices and plan their partitions again from the index, once.
    let stale: Vec<usize> = (0..plans.len())
        .filter(|&i| plans[i].cached.is_some() && matches!(reads.get(i), Some(Err(_))))
        .collect();
    if !stale.is_empty() {
        info!(
            partitions = stale.len(),
            "cached index entries named objects no longer readable (merged away?); reading the index again"
        );
        for &i in &stale {
            if let Some((tp, offset)) = plans[i].cached {
                agent.index_cache.invalidate(tp, offset);
            }
        }
        let again: Vec<Want> = stale.iter().map(|&i| wants[i].clone()).collect();
        // What the other partitions took stays taken: the response keeps to fetch.max.bytes.
        let taken: u64 = (0..plans.len())
            .filter(|i| !stale.contains(i))
            .map(|i| plans[i].cost)
            .sum();
        let replanned = plan(
            agent,
            &again,
            response_max.saturating_sub(taken).max(1),
            committed,
        )
        .await;
        let reread = agent
            .reader
            .read_many(&partition_reads(&again, &replanned))
            .await;
        for ((i, p), r) in stale.into_iter().zip(replanned).zip(reread) {
            plans[i] = p;
            if let Some(slot) = reads.get_mut(i) {
                *slot = r;
            }
        }
    }
    let mut read = reads.into_iter();
    for (want, plan) in wants.iter().zip(&plans) {
        let records = read.next();
        let mut data = PartitionData::default()
            .with_partition_index(want.partition)
            .with_error_code(plan.error)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1));
        if let Some(o) = plan.offsets {
            data = data
                .with_high_watermark(o.high_watermark)
                .with_last_stable_offset(o.last_stable_offset)
                .with_log_start_offset(o.log_start_offset);
        }
        if committed && plan.error == codes::NONE {
            data = data.with_aborted_transactions(Some(
                plan.aborted
                    .iter()
                    .map(|a| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(a.producer_id))
                            .with_first_offset(a.first_offset)
                    })
                    .collect(),
            ));
        }
        if plan.error == codes::NONE {
            match records {
                Some(Ok(bytes)) => {
                    agent.metrics.fetched_bytes.inc_by(bytes.len() as u64);
                    data = data.with_records(Some(bytes))
                }
                Some(Err(e)) => {
                    warn!(partition = want.partition, error = %e, "fetch read failed");
                    if let Some((tp, offset)) = plan.cached {
                        agent.index_cache.invalidate(tp, offset);
                    }
                    data = data.with_error_code(codes::KAFKA_STORAGE_ERROR);
                }
                None => data = data.with_records(Some(Bytes::new())),
            }
        }
        if let Some(t) = responses.get_mut(want.topic) {
            t.partitions.push(data);
        }
    }
    agent
        .metrics
        .fetch_latency
        .observe(started.elapsed().as_secs_f64());
    FetchResponse::default().with_responses(responses)
}

/// Looks every wanted partition up in the index, within the response's byte budget. The first
/// batch of the response is always included, however large (KIP-74), so a consumer never stalls
/// behind a batch bigger than its limits. One metastore read for all partitions: in a quorum each
/// read is a round trip to the leader and a read-index check, so per-partition reads would cost a
/// fetch of 100 partitions 100 of them. The metastore spends the same budget across the
/// partitions, so what it collects under its lock is bounded by the response, not by the sum of
/// the partitions' limits; and a partition named more than once at one offset is read once, each
/// occurrence taking what the budget still allows of the same slice.
async fn plan(agent: &Agent, wants: &[Want], response_max: u64, committed: bool) -> Vec<Plan> {
    // One read per distinct (partition, offset), asking for the most any occurrence asks.
    let mut read_of: HashMap<(TopicPartition, i64), usize> = HashMap::new();
    let mut reads: Vec<IndexRead> = Vec::new();
    let mut which: Vec<Option<usize>> = Vec::with_capacity(wants.len());
    for w in wants {
        let Ok(tp) = w.tp else {
            which.push(None);
            continue;
        };
        let max_bytes = w.max_bytes.min(response_max).max(1);
        let i = *read_of.entry((tp, w.fetch_offset)).or_insert_with(|| {
            reads.push(IndexRead {
                tp,
                offset: w.fetch_offset,
                max_bytes,
                offsets_only: false,
                aborted_upto: -1,
            });
            reads.len() - 1
        });
        if let Some(r) = reads.get_mut(i) {
            r.max_bytes = r.max_bytes.max(max_bytes);
        }
        which.push(Some(i));
    }
    // Batches already cached need only the partition's offsets from the metastore.
    let mut cached: Vec<Option<Vec<BatchLocation>>> = Vec::with_capacity(reads.len());
    for r in &mut reads {
        let hit = agent.index_cache.get(r.tp, r.offset, r.max_bytes);
        if hit.is_some() {
            agent.metrics.index_cache_hits.inc();
        } else {
            agent.metrics.index_cache_misses.inc();
        }
        r.offsets_only = hit.is_some();
        // A read_committed fetch needs the aborted transactions of the cached batches too: the
        // offsets-only read answers those overlapping them.
        if committed {
            if let Some(last) = hit.as_ref().and_then(|b| b.last()) {
                r.aborted_upto = last.last_offset;
            }
        }
        cached.push(hit);
    }
    let keys: Vec<(TopicPartition, i64, u64)> = reads
        .iter()
        .map(|r| (r.tp, r.offset, r.max_bytes))
        .collect();
    let answers = match agent
        .metastore
        .read_indexes_within(reads, response_max)
        .await
    {
        Ok(answers) => Ok(answers),
        Err(e) => Err(codes::metastore_error(&e)),
    };
    // Each distinct read's outcome: its offsets and batches, or the error code to answer.
    let mut slices: Vec<Slice> = Vec::with_capacity(cached.len());
    let mut answers = answers.map(Vec::into_iter);
    for (i, hit) in cached.into_iter().enumerate() {
        let answer = match &mut answers {
            Ok(iter) => iter.next(),
            Err(code) => {
                slices.push(Err((*code, None)));
                continue;
            }
        };
        let Some(IndexAnswer { slice, offsets }) = answer else {
            slices.push(Err((codes::UNKNOWN_SERVER_ERROR, None)));
            continue;
        };
        match slice {
            Err(e) => slices.push(Err((codes::meta_error(&e), offsets))),
            Ok(slice) => {
                let from_cache = hit.is_some();
                let batches = match hit {
                    Some(batches) => batches,
                    None => {
                        if let Some(&(tp, offset, limit)) = keys.get(i) {
                            agent.index_cache.insert(tp, offset, limit, &slice.batches);
                        }
                        slice.batches
                    }
                };
                slices.push(Ok((slice.offsets, batches, slice.aborted, from_cache)));
            }
        }
    }
    let mut budget = response_max;
    let mut any = false;
    let mut plans = Vec::with_capacity(wants.len());
    for (w, i) in wants.iter().zip(which) {
        let failed = |error, offsets| Plan {
            error,
            offsets,
            batches: Vec::new(),
            cost: 0,
            limit: 0,
            whole_first: false,
            cached: None,
            end_offset: i64::MAX,
            aborted: Vec::new(),
        };
        let slice = match w.tp {
            Err(code) => Err((code, None)),
            Ok(_) => match i.and_then(|i| slices.get(i)) {
                Some(s) => s.clone(),
                None => Err((codes::UNKNOWN_SERVER_ERROR, None)),
            },
        };
        let (offsets, batches, aborted, from_cache) = match slice {
            Ok(s) => s,
            Err((code, offsets)) => {
                plans.push(failed(code, offsets));
                continue;
            }
        };
        let limit = w.max_bytes.min(budget);
        let whole_first = !any;
        let end_offset = if committed {
            offsets.last_stable_offset
        } else {
            i64::MAX
        };
        let mut taken = Vec::new();
        let mut used = 0u64;
        for b in batches
            .into_iter()
            .take_while(|b| b.base_offset < end_offset)
        {
            let cost = b.read_cost(limit.saturating_sub(used));
            // A partition's first run may cost more than the partition's own limit and still
            // answer: a flushed run is read whole, and its batches from the fetch offset on may
            // fit. Skipping it would starve every partition but the first of a consumer with a
            // small `max.partition.fetch.bytes`. When what binds is the response's budget, the
            // response is nearly full: skip it, as reading up to a run for nothing costs more.
            // What is read is charged either way, so the reads stay within the budget plus one
            // run.
            let own_limit_binds = limit > 0 && limit == w.max_bytes;
            let first_may_answer = taken.is_empty() && (whole_first || own_limit_binds);
            if used.saturating_add(cost) > limit && !first_may_answer {
                break;
            }
            used = used.saturating_add(cost);
            taken.push(b);
            any = true;
        }
        budget = budget.saturating_sub(used);
        let aborted = match taken.last() {
            Some(last) if committed => {
                let to = last.last_offset.min(end_offset.saturating_sub(1));
                aborted
                    .into_iter()
                    .filter(|a| a.first_offset <= to)
                    .collect()
            }
            _ => Vec::new(),
        };
        plans.push(Plan {
            error: codes::NONE,
            offsets: Some(offsets),
            batches: taken,
            cost: used,
            limit,
            whole_first,
            cached: match w.tp {
                Ok(tp) if from_cache => Some((tp, w.fetch_offset)),
                _ => None,
            },
            end_offset,
            aborted,
        });
    }
    plans
}

/// What the reader reads for each partition, as planned.
fn partition_reads<'a>(wants: &[Want], plans: &'a [Plan]) -> Vec<PartitionRead<'a>> {
    wants
        .iter()
        .zip(plans)
        .map(|(w, p)| PartitionRead {
            runs: &p.batches,
            offset: w.fetch_offset,
            max_bytes: p.limit,
            whole_first: p.whole_first,
            end_offset: p.end_offset,
        })
        .collect()
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
