//! Log compaction (`cleanup.policy=compact`): the latest record of each key stays, the records
//! it supersedes go, and tombstones (a key with a null value) go once `delete.retention.ms` has
//! passed since their timestamp. Offsets never move; a rewritten batch keeps its base and last
//! offset, so a partition has gaps where records went, as in Kafka.
//!
//! One partition at a time, over its *cleanable* range: from the log start up to the first run
//! (index entry) holding a batch younger than `min.compaction.lag.ms` or reaching the last
//! stable offset (Kafka's "first uncleanable offset": records of a transaction still open are
//! never compacted), and never the partition's last run, which plays the part of Kafka's active
//! segment. A partition is
//! compacted when the part of that range written since its last compaction (the *dirty* part)
//! is at least `min.cleanable.dirty.ratio` of it, when its oldest dirty batch is older than
//! `max.compaction.lag.ms`, or when a kept tombstone comes due.
//!
//! Two reads of the range: the first builds the map from each key to its latest offset in the
//! range, the second rewrites. A range that fits in one read budget is read once. Batches are
//! rewritten into per-partition segments ([`crate::segment`], one index entry each, with gaps
//! where batches went), each swapped in by one [`ReplaceBatches`] for the whole runs it
//! replaces, so that a crash leaves every run either as it was or compacted.
//!
//! Transactions, as Kafka's cleaner treats them: below the last stable offset every transaction
//! has ended; the batches of aborted ones (the partition's aborted index names them) go whole
//! and never enter the key map, so an aborted record cannot supersede a committed one. A commit
//! marker goes once no record of its transaction is left in the log and `delete.retention.ms`
//! has passed since the marker was written; abort markers stay (see [`crate::txns::Markers`]).
//! Control batches are never keyed data: their key is the control record's.
//!
//! What is kept as it is: batches in which no record goes (their bytes are copied), control
//! batches other than the markers that go, and records without a key (Kafka refuses them on
//! compacted topics; if one got in, it is not the compactor's to drop).

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use skiff_format::{Batch, Retained};
use skiff_metastore::client::MetastoreError;
use skiff_metastore::types::{
    AbortedTxn, BatchLocation, MetaError, ObjectId, ReplaceBatches, TopicMeta, TopicPartition,
};
use tracing::{info, warn};

use crate::lease::rewrite_key;
use crate::read::StoredBatch;
use crate::segment::SegmentWriter;
use crate::txns::{Aborted, Markers};
use crate::Shared;

/// Index entries read per metastore call.
const PAGE_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug)]
pub struct CompactionConfig {
    /// Bytes of batches held in memory at once; a larger range is read twice.
    pub read_bytes: u64,
    /// Rewritten segments are cut at this size.
    pub segment_bytes: u64,
    /// The most one batch may decompress to; a batch beyond it is kept as it is.
    pub max_decompressed: usize,
    /// Distinct keys one compaction maps at most (the map holds a copy of each); a longer range
    /// is compacted in rounds, the first as far as this many keys reach. Kafka bounds its cleaner
    /// the same way (`log.cleaner.dedupe.buffer.size`).
    pub max_keys: usize,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            read_bytes: 256 << 20,
            segment_bytes: 128 << 20,
            max_decompressed: skiff_format::records::MAX_DECOMPRESSED_RECORDS,
            max_keys: 4_000_000,
        }
    }
}

/// A compacted topic's settings, Kafka's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub delete_retention_ms: i64,
}

impl Policy {
    /// `None` unless the topic's `cleanup.policy` includes `compact`. A setting the topic does
    /// not have comes from the cluster's dynamic broker default (`log.cleanup.policy`,
    /// `log.cleaner.*`), else Kafka's default. Values that do not parse count as unset
    /// (agents check them; one bad old value must not stop the rest).
    pub fn of(meta: &TopicMeta, cluster: &BTreeMap<String, String>) -> Option<Self> {
        let get = |key: &str, broker_key: &str| {
            meta.configs
                .get(key)
                .or_else(|| cluster.get(broker_key))
                .map(|v| v.trim())
        };
        let compact = get("cleanup.policy", "log.cleanup.policy")
            .is_some_and(|p| p.split(',').any(|x| x.trim() == "compact"));
        if !compact {
            return None;
        }
        let int = |key: &str, broker_key: &str, default: i64| {
            get(key, broker_key)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(default)
        };
        Some(Self {
            min_cleanable_dirty_ratio: get(
                "min.cleanable.dirty.ratio",
                "log.cleaner.min.cleanable.ratio",
            )
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(0.5),
            min_compaction_lag_ms: int(
                "min.compaction.lag.ms",
                "log.cleaner.min.compaction.lag.ms",
                0,
            )
            .max(0),
            max_compaction_lag_ms: int(
                "max.compaction.lag.ms",
                "log.cleaner.max.compaction.lag.ms",
                i64::MAX,
            )
            .max(0),
            delete_retention_ms: int(
                "delete.retention.ms",
                "log.cleaner.delete.retention.ms",
                86_400_000,
            )
            .max(0),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error("metastore: {0}")]
    Metastore(#[from] MetastoreError),
}

/// What one compaction pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    pub partitions_compacted: usize,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    /// Records of aborted transactions removed (counted in `records_removed` too).
    pub aborted_records_removed: u64,
    /// Commit markers removed: their transactions had no record left.
    pub markers_removed: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub segments_written: usize,
    pub conflicts: usize,
    /// Dirty bytes of compacted partitions not compacted this pass (not due yet, leased elsewhere,
    /// or failed): the compaction backlog.
    pub dirty_bytes: u64,
}

/// What one compaction did, for the partition's progress.
struct Compacted {
    /// Offsets below this were in the compacted range (less than the cleanable range when the
    /// key budget cut it short).
    mapped_to: i64,
    /// The tombstones kept, with when each was first seen.
    tombstones_seen: HashMap<i64, i64>,
    /// When the earliest marker kept only for its `delete.retention.ms` comes due.
    markers_due_ms: Option<i64>,
}

/// Where compaction stands for one partition, in memory: a restarted compactor counts the whole
/// log as dirty once, and starts every tombstone's `delete.retention.ms` again.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Every offset below was in a compacted range.
    cleaned_to: i64,
    /// When a compaction first kept each tombstone (by offset), as Kafka's cleaner stamps a
    /// delete horizon on the batch the first time it cleans one (KIP-534): the tombstone goes
    /// `delete.retention.ms` after that, whatever its own timestamp says.
    tombstones_seen: HashMap<i64, i64>,
    /// When the earliest of those, or of the markers kept only for their delete retention,
    /// comes due.
    tombstone_due_ms: Option<i64>,
}

pub struct Compactor {
    shared: Shared,
    config: CompactionConfig,
    progress: HashMap<TopicPartition, Progress>,
}

impl Compactor {
    pub fn new(shared: Shared, config: CompactionConfig) -> Self {
        Self {
            shared,
            config,
            progress: HashMap::new(),
        }
    }

    pub async fn pass(&mut self, now_ms: i64) -> Result<CompactionReport, CompactionError> {
        let mut report = CompactionReport::default();
        let mut live = HashMap::new();
        let cluster = self.shared.metastore.broker_configs().await?.cluster;
        for topic in self.shared.metastore.topics().await? {
            let Some(policy) = Policy::of(&topic, &cluster) else {
                continue;
            };
            for partition in 0..topic.partitions {
                let tp = TopicPartition {
                    topic_id: topic.topic_id,
                    partition,
                };
                // A topic that also exports is compacted only as far as it is exported, so that
                // the export sees every record.
                let exported = if crate::export::topic_projection(&topic).is_some() {
                    let progress = self.shared.metastore.export_progress(vec![tp]).await?;
                    Some(progress.first().copied().flatten().unwrap_or(0))
                } else {
                    None
                };
                match self
                    .partition(tp, policy, exported, now_ms, &mut report)
                    .await
                {
                    Ok(()) => {}
                    Err(CompactionError::Metastore(MetastoreError::Rejected(
                        MetaError::UnknownTopicOrPartition | MetaError::OffsetOutOfRange,
                    ))) => {}
                    Err(e) => return Err(e),
                }
                if let Some(p) = self.progress.remove(&tp) {
                    live.insert(tp, p);
                }
            }
        }
        self.progress = live;
        if report.partitions_compacted > 0 || report.conflicts > 0 {
            info!(?report, "compacted");
        }
        Ok(report)
    }

    async fn partition(
        &mut self,
        tp: TopicPartition,
        policy: Policy,
        exported: Option<i64>,
        now_ms: i64,
        report: &mut CompactionReport,
    ) -> Result<(), CompactionError> {
        let (range, _) = self.cleanable(tp, policy, exported, now_ms).await?;
        let Some(range_end) = range.last().map(|b| b.last_offset + 1) else {
            return Ok(());
        };
        let progress = self.progress.get(&tp).cloned().unwrap_or_default();
        let total: u64 = range.iter().map(|b| u64::from(b.len)).sum();
        // A run the last round's key budget cut inside is dirty from the cut on: counted whole.
        let dirty_batches: Vec<&BatchLocation> = range
            .iter()
            .filter(|b| b.last_offset >= progress.cleaned_to)
            .collect();
        let dirty: u64 = dirty_batches.iter().map(|b| u64::from(b.len)).sum();
        let oldest_dirty = dirty_batches.iter().map(|b| b.max_timestamp).min();
        let ratio_due =
            total > 0 && dirty as f64 / total as f64 >= policy.min_cleanable_dirty_ratio;
        let lag_due =
            oldest_dirty.is_some_and(|t| now_ms.saturating_sub(t) >= policy.max_compaction_lag_ms);
        let tombstones_due = progress.tombstone_due_ms.is_some_and(|t| now_ms >= t);
        if !((dirty > 0 && (ratio_due || lag_due)) || tombstones_due) {
            report.dirty_bytes += dirty;
            return Ok(());
        }
        if !self.shared.leases.acquire_one(rewrite_key(&tp)).await? {
            report.dirty_bytes += dirty;
            return Ok(());
        }
        // Read again under the lease: another compactor may have rewritten the partition and
        // let go of it since, and a plan from before would only end in a refused swap.
        let (range, aborted) = self.cleanable(tp, policy, exported, now_ms).await?;
        let range_end = range.last().map_or(range_end, |b| b.last_offset + 1);
        let result = self
            .compact(
                tp,
                &range,
                &aborted,
                progress.cleaned_to,
                policy,
                &progress.tombstones_seen,
                now_ms,
                report,
            )
            .await;
        self.shared.leases.release(vec![rewrite_key(&tp)]).await;
        match result {
            Ok(done) => {
                report.partitions_compacted += 1;
                let tombstone_due_ms = done
                    .tombstones_seen
                    .values()
                    .map(|seen| seen.saturating_add(policy.delete_retention_ms))
                    .chain(done.markers_due_ms)
                    .min();
                self.progress.insert(
                    tp,
                    Progress {
                        // A round cut short by the key budget leaves the rest dirty.
                        cleaned_to: done.mapped_to.min(range_end),
                        tombstones_seen: done.tombstones_seen,
                        tombstone_due_ms,
                    },
                );
            }
            Err(e) => {
                warn!(topic_id = %tp.topic_id, partition = tp.partition, error = %e, "compaction failed; trying again next pass");
                report.dirty_bytes += dirty;
            }
        }
        Ok(())
    }

    /// The partition's cleanable range, in whole runs, and its aborted transactions: from the
    /// log start to before the first run younger than the minimum lag, reaching the last stable
    /// offset (a transaction still open there may yet abort), or not all exported (for a topic
    /// that exports), and never the last run: like Kafka's active segment, it stays whole, so
    /// that the log always ends with a record at the high watermark minus one and a consumer
    /// reading to the end reaches the high watermark.
    async fn cleanable(
        &self,
        tp: TopicPartition,
        policy: Policy,
        exported: Option<i64>,
        now_ms: i64,
    ) -> Result<(Vec<BatchLocation>, Aborted), MetastoreError> {
        let offsets = self.shared.metastore.offsets(tp).await?;
        let (mut index, aborted) = self
            .index(tp, offsets.log_start_offset, offsets.high_watermark)
            .await?;
        let young = now_ms.saturating_sub(policy.min_compaction_lag_ms);
        let end = index
            .iter()
            .position(|b| {
                b.max_timestamp > young
                    || b.last_offset >= offsets.last_stable_offset
                    || exported.is_some_and(|e| b.last_offset >= e)
            })
            .unwrap_or(index.len())
            .min(index.len().saturating_sub(1));
        index.truncate(end);
        Ok((index, Aborted::new(aborted)))
    }

    /// The index entries from `from` to `to`, and the aborted transactions overlapping them.
    async fn index(
        &self,
        tp: TopicPartition,
        from: i64,
        to: i64,
    ) -> Result<(Vec<BatchLocation>, Vec<AbortedTxn>), MetastoreError> {
        let mut out = Vec::new();
        let mut aborted = Vec::new();
        let mut offset = from;
        while offset < to {
            let slice = self
                .shared
                .metastore
                .read_index(tp, offset, PAGE_BYTES)
                .await?;
            let Some(last) = slice.batches.last().map(|b| b.last_offset) else {
                break;
            };
            out.extend(slice.batches);
            aborted.extend(slice.aborted);
            offset = last.saturating_add(1);
        }
        Ok((out, aborted))
    }

    /// Compacts `range`, whose batches from `dirty_from` on were written since its last
    /// compaction, as Kafka's cleaner does: the map of latest offsets is built over the dirty
    /// part only (the rest holds one record per key already), as far as the key budget reaches,
    /// and everything up to there is rewritten with it.
    ///
    /// The budget may run out inside a run (a segment holds many batches). A rewrite replaces
    /// whole runs, so that run is rewritten whole, but its batches past the cut are copied as
    /// they are: a record there may supersede one the map holds, and dropping either before
    /// the next round maps them both would keep the wrong one.
    #[allow(clippy::too_many_arguments)]
    async fn compact(
        &self,
        tp: TopicPartition,
        range: &[BatchLocation],
        aborted: &Aborted,
        dirty_from: i64,
        policy: Policy,
        seen_before: &HashMap<i64, i64>,
        now_ms: i64,
        report: &mut CompactionReport,
    ) -> Result<Compacted, RunError> {
        // The first run with a dirty batch: a round cut short may have left one half clean.
        let dirty_start = range
            .iter()
            .position(|r| r.last_offset >= dirty_from)
            .unwrap_or(range.len());
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        // Batches whose records do not decode (the produce path checks headers only): kept
        // whole, their keys unknown.
        let mut opaque: HashSet<i64> = HashSet::new();
        let mut mapped_runs = 0usize;
        // Where the key budget stopped the map, if it did: the base offset of a batch.
        let mut cut: Option<i64> = None;
        let dirty_chunks = chunks(&range[dirty_start..], self.config.read_bytes);
        // A dirty part that fits one read stays in memory for the rewrite: read once, not twice.
        let mut kept: HashMap<(ObjectId, u64), Bytes> = HashMap::new();
        let keep = dirty_chunks.len() == 1;
        'map: for chunk in dirty_chunks {
            let bytes = self.read(chunk, report).await?;
            if keep {
                kept.clone_from(&bytes);
            }
            for run in chunk.iter() {
                mapped_runs += 1;
                for b in crate::read::stored_run(&bytes, run)? {
                    if b.last_offset() < dirty_from {
                        continue;
                    }
                    if latest.len() >= self.config.max_keys {
                        cut = Some(b.base_offset);
                        break 'map;
                    }
                    if aborted.contains(&b.batch, b.base_offset) {
                        continue;
                    }
                    self.map(tp, &b, &mut latest, &mut opaque);
                }
            }
        }
        // Cut before its first batch, the last run reached is not part of this round at all.
        let last_reached = (dirty_start + mapped_runs).checked_sub(1);
        if let Some(cut) = cut {
            if last_reached
                .and_then(|i| range.get(i))
                .is_some_and(|r| r.base_offset >= cut)
            {
                mapped_runs -= 1;
            }
        }
        let range = &range[..dirty_start + mapped_runs];
        let mapped_to = cut
            .or(range.last().map(|r| r.last_offset + 1))
            .unwrap_or(dirty_from);

        let mut out = Output::new(tp, self.config.segment_bytes);
        let mut removed = 0u64;
        let mut tombstones_removed = 0u64;
        let mut tombstones_seen = HashMap::new();
        let (mut aborted_removed, mut markers_removed) = (0u64, 0u64);
        let mut markers = Markers::new(now_ms, policy.delete_retention_ms);
        for chunk in chunks(range, self.config.read_bytes) {
            let missing: Vec<BatchLocation> = chunk
                .iter()
                .filter(|r| !kept.contains_key(&(r.object, r.position)))
                .copied()
                .collect();
            let mut bytes = if missing.is_empty() {
                HashMap::new()
            } else {
                self.read(&missing, report).await?
            };
            for r in chunk.iter() {
                let key = (r.object, r.position);
                if let (false, Some(c)) = (bytes.contains_key(&key), kept.get(&key)) {
                    bytes.insert(key, c.clone());
                }
            }
            for run in chunk.iter() {
                out.replace(run);
                for b in crate::read::stored_run(&bytes, run)? {
                    // Counted per batch, kept only if the batch is rewritten.
                    let (mut gone, mut tombstones_gone) = (0u64, 0u64);
                    let mut seen = Vec::new();
                    let header = b.batch.header;
                    let whole = header.is_control()
                        || opaque.contains(&b.base_offset)
                        || cut.is_some_and(|c| b.base_offset >= c);
                    let retained = if header.is_control() {
                        let kind = crate::txns::control(&b.batch);
                        if markers.keep(kind, header.max_timestamp) {
                            Retained::All
                        } else {
                            markers_removed += 1;
                            if let crate::txns::Control::Marker { commit: false, .. } = kind {
                                out.drop_abort(b.base_offset);
                            }
                            Retained::Nothing
                        }
                    } else if aborted.contains(&b.batch, b.base_offset) {
                        // Every record of an aborted transaction goes, whatever its key.
                        let records = u64::try_from(header.record_count).unwrap_or(0);
                        gone += records;
                        aborted_removed += records;
                        Retained::Nothing
                    } else if whole {
                        Retained::All
                    } else {
                        let kept =
                            skiff_format::retain(&b.batch, self.config.max_decompressed, |r| {
                                let Some(key) = &r.key else { return true };
                                let offset = b.base_offset + i64::from(r.offset_delta);
                                // A key the dirty part does not hold again is the latest where
                                // it is.
                                if latest.get(key.as_ref()).is_some_and(|&l| l != offset) {
                                    gone += 1;
                                    return false;
                                }
                                if r.value.is_none() {
                                    let first_seen =
                                        seen_before.get(&offset).copied().unwrap_or(now_ms);
                                    if now_ms.saturating_sub(first_seen)
                                        >= policy.delete_retention_ms
                                    {
                                        gone += 1;
                                        tombstones_gone += 1;
                                        return false;
                                    }
                                    seen.push((offset, first_seen));
                                }
                                true
                            });
                        match kept {
                            Ok(kept) => kept,
                            Err(e) => {
                                warn!(topic_id = %tp.topic_id, partition = tp.partition, base_offset = b.base_offset, error = %e, "records that do not decode: the batch is kept whole");
                                (gone, tombstones_gone) = (0, 0);
                                seen.clear();
                                Retained::All
                            }
                        }
                    };
                    removed += gone;
                    tombstones_removed += tombstones_gone;
                    tombstones_seen.extend(seen);
                    if header.is_transactional() && !header.is_control() {
                        markers.data(header.producer_id, retained != Retained::Nothing);
                    }
                    out.push(b, retained)?;
                }
                // Only between runs: a swap replaces whole index entries.
                if out.full() {
                    self.swap(out.take(), report).await?;
                }
            }
        }
        self.swap(out.take(), report).await?;
        report.records_removed += removed;
        report.tombstones_removed += tombstones_removed;
        report.aborted_records_removed += aborted_removed;
        report.markers_removed += markers_removed;
        if removed > 0 || markers_removed > 0 {
            info!(topic_id = %tp.topic_id, partition = tp.partition, removed, tombstones_removed, aborted_removed, markers_removed, dirty_keys = latest.len(), "partition compacted");
        }
        Ok(Compacted {
            mapped_to,
            tombstones_seen,
            markers_due_ms: markers.due_ms,
        })
    }

    /// Adds the keys of `b`'s records to `latest`, or `b` to `opaque` if they do not decode.
    fn map(
        &self,
        tp: TopicPartition,
        b: &StoredBatch,
        latest: &mut HashMap<Bytes, i64>,
        opaque: &mut HashSet<i64>,
    ) {
        if b.batch.header.is_control() {
            return;
        }
        let decoded = skiff_format::records_with_limit(&b.batch, self.config.max_decompressed)
            .map_err(|e| e.to_string())
            .and_then(|records| {
                records
                    .map(|r| r.map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()
            });
        let records = match decoded {
            Ok(records) => records,
            Err(e) => {
                warn!(topic_id = %tp.topic_id, partition = tp.partition, base_offset = b.base_offset, error = %e, "records that do not decode: the batch is kept whole");
                opaque.insert(b.base_offset);
                return;
            }
        };
        for record in records {
            let Some(key) = record.key else { continue };
            let offset = b.base_offset + i64::from(record.offset_delta);
            match latest.get_mut(key.as_ref()) {
                Some(l) => *l = offset,
                // A copy: a slice would keep the whole decompressed buffer alive.
                None => {
                    latest.insert(Bytes::copy_from_slice(&key), offset);
                }
            }
        }
    }

    async fn read(
        &self,
        chunk: &[BatchLocation],
        report: &mut CompactionReport,
    ) -> Result<HashMap<(ObjectId, u64), Bytes>, RunError> {
        let mut objects = 0;
        let (bytes, unreadable) =
            crate::read::batches(&self.shared.store, chunk, &mut objects).await;
        if let Some(object) = unreadable.first() {
            return Err(RunError::Unreadable(*object));
        }
        report.bytes_read += chunk.iter().map(|b| u64::from(b.len)).sum::<u64>();
        Ok(bytes)
    }

    /// Writes one pending segment (unless nothing of its runs is left) and swaps it in.
    async fn swap(
        &self,
        pending: Option<Pending>,
        report: &mut CompactionReport,
    ) -> Result<(), RunError> {
        let Some(pending) = pending.filter(|p| p.changed) else {
            return Ok(());
        };
        let id = pending.segment.id();
        let (size, batches) = match pending
            .segment
            .write(&self.shared.store)
            .await
            .map_err(RunError::Put)?
        {
            Some(written) => {
                report.segments_written += 1;
                report.bytes_written += written.size;
                (written.size, vec![written.location])
            }
            // Every batch of the runs went: an object that is never written, so that the swap
            // is still named (and a retry of it recognised).
            None => (0, Vec::new()),
        };
        let swap = ReplaceBatches {
            tp: pending.tp,
            object: id,
            size,
            replaced: pending.replaced,
            batches,
            now_ms: crate::now_ms(),
        };
        let swapped = if pending.aborts.is_empty() {
            self.shared.metastore.replace_batches(swap).await
        } else {
            self.shared
                .metastore
                .replace_batches_dropping_aborts(swap, pending.aborts)
                .await
        };
        match swapped {
            Ok(()) => Ok(()),
            Err(MetastoreError::Rejected(MetaError::RewriteConflict)) => {
                report.conflicts += 1;
                Err(RunError::Conflict)
            }
            Err(e) => Err(RunError::Metastore(e)),
        }
    }
}

/// The segment being written, and the index entries (whole runs) it replaces.
struct Pending {
    tp: TopicPartition,
    segment: SegmentWriter,
    /// Whether any batch lost records: runs without change are not rewritten.
    changed: bool,
    replaced: Vec<(i64, ObjectId)>,
    /// The abort markers dropped: they leave the aborted index with the swap.
    aborts: Vec<i64>,
}

struct Output {
    tp: TopicPartition,
    segment_bytes: u64,
    pending: Option<Pending>,
}

impl Output {
    fn new(tp: TopicPartition, segment_bytes: u64) -> Self {
        Self {
            tp,
            segment_bytes,
            pending: None,
        }
    }

    fn pending(&mut self) -> &mut Pending {
        let tp = self.tp;
        self.pending.get_or_insert_with(|| Pending {
            tp,
            segment: SegmentWriter::new(tp),
            changed: false,
            replaced: Vec::new(),
            aborts: Vec::new(),
        })
    }

    /// The abort marker at `offset` goes with the pending segment.
    fn drop_abort(&mut self, offset: i64) {
        self.pending().aborts.push(offset);
    }

    /// Starts on run `old`: what is pushed next replaces it.
    fn replace(&mut self, old: &BatchLocation) {
        self.pending().replaced.push((old.base_offset, old.object));
    }

    /// Adds what was kept of `old` (`retained` of its batch) to the segment.
    fn push(&mut self, old: StoredBatch, retained: Retained) -> Result<(), RunError> {
        let pending = self.pending();
        let kept = match retained {
            Retained::All => old,
            Retained::Nothing => {
                pending.changed = true;
                return Ok(());
            }
            Retained::Some(bytes) => {
                pending.changed = true;
                let batch = Batch::parse_stored(bytes)
                    .map_err(|e| RunError::Corrupt(old.base_offset, e.to_string()))?;
                StoredBatch {
                    batch,
                    // The record at the base offset may have gone: "unknown", so that
                    // ListOffsets reads the records instead of answering the base offset.
                    first_timestamp: None,
                    // Still a bound on what is left. The rewritten header's max is the kept
                    // records' own, which is not the index's for a `LogAppendTime` topic, and
                    // a max below the index's would let retention expire records early.
                    ..old
                }
            }
        };
        pending.segment.push(&kept)?;
        Ok(())
    }

    fn full(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.segment.object_len() >= self.segment_bytes)
    }

    fn take(&mut self) -> Option<Pending> {
        self.pending.take()
    }
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("object {0} could not be read")]
    Unreadable(ObjectId),
    #[error("the batch rewritten at offset {0} does not parse: {1}")]
    Corrupt(i64, String),
    #[error("{0}")]
    Batch(#[from] crate::read::StoredBatchError),
    #[error("{0}")]
    Segment(#[from] crate::segment::SegmentError),
    #[error("writing a segment: {0}")]
    Put(object_store::Error),
    #[error("the partition changed during compaction; next pass")]
    Conflict,
    #[error("swapping a segment in: {0}")]
    Metastore(MetastoreError),
}

/// `range` cut into consecutive pieces of at most `budget` bytes (a larger run alone).
fn chunks(range: &[BatchLocation], budget: u64) -> Vec<&[BatchLocation]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, b) in range.iter().enumerate() {
        let len = u64::from(b.len);
        if i > start && bytes + len > budget {
            out.push(&range[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < range.len() {
        out.push(&range[start..]);
    }
    out
}

#[cfg(test)]
#[path = "compaction_tests.rs"]
mod tests;
