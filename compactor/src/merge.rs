//! Merging: a partition's batches, spread over many small ingestion objects (each flush writes
//! one object for every partition it holds), are copied into per-partition segment objects, and
//! the metastore swaps the index entries over in one command. A fetch of a long range then reads
//! a few large objects instead of one object per flush.
//!
//! - **What merges.** A partition's index entries are runs of batches; consecutive entries in
//!   the same object make a *span* (a flush of over a run's cap for one partition, or a segment
//!   written before segments were one entry, indexed batch by batch). A span under half the
//!   target size is *small*. Consecutive small spans are packed, in offset order, into groups
//!   of at most the target size; each group of two spans or more becomes one segment, indexed
//!   by one entry ([`crate::segment`]). A segment that ends up small is merged again with what
//!   follows it, until it passes half the target, and then stays as it is.
//! - **Offsets never change.** Each batch is copied byte for byte, checksum verified, with its
//!   real base offset written in its header; only its object and position change. Consumers
//!   read exactly the records they read before.
//! - **One read per source object.** A job takes groups of many partitions that share ingestion
//!   objects, and reads each object's wanted ranges at once (coalesced into one GET where they
//!   are close), instead of once per partition.
//! - **Crash safety.** A segment is written before its swap is proposed; the swap applies only if
//!   the run is still exactly as read ([`ReplaceBatches`]). A compactor killed between the two
//!   leaves an object nobody committed: an orphan, deleted after the grace period. The replaced
//!   objects become unreferenced and are deleted after the grace period too, so a fetch that read
//!   the old entries still finds their bytes.
//! - **Several compactors.** A job leases its partitions in the metastore first; partitions
//!   leased by another compactor are left to it.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use skiff_metastore::client::MetastoreError;
use skiff_metastore::types::{BatchLocation, MetaError, ObjectId, ReplaceBatches, TopicPartition};
use tracing::{debug, info, warn};

use crate::lease::rewrite_key;
use crate::segment::SegmentWriter;
use crate::Shared;

/// The group still growing at the end of a partition is merged only once it joins this many
/// spans (or half the target): merging it with every new flush would rewrite the same small
/// segment pass after pass; waiting for a few spans divides that rewriting by as many, for at
/// most as many extra objects at the tail.
const MIN_TAIL_SPANS: usize = 4;

/// Index entries read per metastore call while planning.
const PAGE_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug)]
pub struct MergeConfig {
    /// The size segments grow to; a span of half of it is left alone. 0 turns merging off.
    pub target_bytes: u64,
    /// Bytes of batches one job holds in memory at once (at least one group's).
    pub job_bytes: u64,
    /// How long a compactor's leases last (on a partition it merges, compacts or exports, and
    /// on housekeeping); one that dies holding them delays that work by at most this.
    pub lease_ttl: Duration,
}

impl Default for MergeConfig {
    fn default() -> Self {
        Self {
            target_bytes: 128 << 20,
            job_bytes: 256 << 20,
            lease_ttl: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("metastore: {0}")]
    Metastore(#[from] MetastoreError),
}

/// What one merge pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub segments_written: usize,
    /// Record batches copied into segments (an index entry may hold many).
    pub batches_moved: usize,
    pub bytes_rewritten: u64,
    /// Source objects read (each with one or a few ranged GETs).
    pub objects_read: usize,
    /// Rewrites refused because the run changed meanwhile (retention, another compactor).
    pub conflicts: usize,
    /// Bytes planned for merging but not merged this pass: leased elsewhere, or failed.
    pub backlog_bytes: u64,
}

/// Runs of one partition to become one segment, in offset order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub tp: TopicPartition,
    pub runs: Vec<BatchLocation>,
    pub bytes: u64,
}

/// Consecutive runs of one partition in one object.
struct Span {
    runs: Vec<BatchLocation>,
    bytes: u64,
}

/// Plans one partition's merges from its index entries, fed in offset order.
pub struct Planner {
    tp: TopicPartition,
    target: u64,
    span: Option<Span>,
    /// The small spans packed so far into the group being built.
    open: Vec<Span>,
    open_bytes: u64,
    groups: Vec<Group>,
}

impl Planner {
    pub fn new(tp: TopicPartition, target_bytes: u64) -> Self {
        Self {
            tp,
            target: target_bytes.max(1),
            span: None,
            open: Vec::new(),
            open_bytes: 0,
            groups: Vec::new(),
        }
    }

    /// Adds the next index entry. A segment counts by its batches' bytes (`len`), as every run
    /// does: its index is not what a merge moves.
    pub fn push(&mut self, run: BatchLocation) {
        match &mut self.span {
            Some(span) if span.runs.last().is_some_and(|r| r.object == run.object) => {
                span.bytes += u64::from(run.len);
                span.runs.push(run);
            }
            _ => {
                if let Some(done) = self.span.take() {
                    self.end_span(done);
                }
                self.span = Some(Span {
                    bytes: u64::from(run.len),
                    runs: vec![run],
                });
            }
        }
    }

    fn end_span(&mut self, span: Span) {
        if span.bytes >= self.target / 2 {
            // Large enough to stay: whatever was packed before it cannot reach past it.
            self.close();
            return;
        }
        if self.open_bytes + span.bytes > self.target {
            self.close();
        }
        self.open_bytes += span.bytes;
        self.open.push(span);
    }

    /// Ends the group being built; it is worth a segment only if it joins `min_spans` spans or
    /// more.
    fn close(&mut self) {
        self.close_if(2);
    }

    fn close_if(&mut self, min_spans: usize) {
        let spans = std::mem::take(&mut self.open);
        let bytes = std::mem::replace(&mut self.open_bytes, 0);
        if spans.len() >= min_spans.max(2) || (spans.len() >= 2 && bytes >= self.target / 2) {
            self.groups.push(Group {
                tp: self.tp,
                runs: spans.into_iter().flat_map(|s| s.runs).collect(),
                bytes,
            });
        }
    }

    /// The groups to merge, and the offset the next pass should read this partition's index
    /// from: the start of the last group, which may still grow, or `None` when the index ends
    /// with a span large enough to stay.
    pub fn finish(mut self) -> (Vec<Group>, Option<i64>) {
        if let Some(done) = self.span.take() {
            self.end_span(done);
        }
        let resume = self
            .open
            .first()
            .and_then(|s| s.runs.first())
            .map(|r| r.base_offset);
        self.close_if(MIN_TAIL_SPANS);
        (self.groups, resume)
    }
}

pub struct Merger {
    shared: Shared,
    config: MergeConfig,
    /// Per partition, where planning starts next pass: everything before is in spans large
    /// enough to stay. In memory only; a restarted compactor reads each index once in full.
    resume: HashMap<TopicPartition, i64>,
}

impl Merger {
    pub fn new(shared: Shared, config: MergeConfig) -> Self {
        Self {
            shared,
            config,
            resume: HashMap::new(),
        }
    }

    pub async fn pass(&mut self) -> Result<MergeReport, MergeError> {
        let mut report = MergeReport::default();
        if self.config.target_bytes == 0 {
            return Ok(report);
        }
        let groups = self.plan().await?;
        for job in jobs(groups, self.config.job_bytes) {
            self.run_job(job, &mut report).await?;
        }
        if report.segments_written > 0 || report.conflicts > 0 {
            info!(?report, "merged small objects into segments");
        }
        Ok(report)
    }

    /// Every partition's groups, oldest source objects first.
    async fn plan(&mut self) -> Result<Vec<Group>, MergeError> {
        let mut groups = Vec::new();
        let mut seen = HashMap::new();
        for topic in self.shared.metastore.topics().await? {
            for partition in 0..topic.partitions {
                let tp = TopicPartition {
                    topic_id: topic.topic_id,
                    partition,
                };
                let from = self.resume.get(&tp).copied().unwrap_or(0);
                match self.plan_partition(tp, from).await {
                    Ok((mut g, resume)) => {
                        groups.append(&mut g);
                        seen.insert(tp, resume);
                    }
                    // Deleted meanwhile.
                    Err(MetastoreError::Rejected(MetaError::UnknownTopicOrPartition)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // Partitions of deleted topics are forgotten.
        self.resume = seen;
        groups.sort_by_key(|g| g.runs.first().map(|r| r.object));
        Ok(groups)
    }

    async fn plan_partition(
        &self,
        tp: TopicPartition,
        from: i64,
    ) -> Result<(Vec<Group>, i64), MetastoreError> {
        let offsets = self.shared.metastore.offsets(tp).await?;
        let mut offset = from.max(offsets.log_start_offset);
        let mut planner = Planner::new(tp, self.config.target_bytes);
        while offset < offsets.high_watermark {
            let slice = match self
                .shared
                .metastore
                .read_index(tp, offset, PAGE_BYTES)
                .await
            {
                Ok(s) => s,
                // Trimmed meanwhile: the next pass starts from the new log start.
                Err(MetastoreError::Rejected(MetaError::OffsetOutOfRange)) => break,
                Err(e) => return Err(e),
            };
            let Some(last) = slice.batches.last().map(|b| b.last_offset) else {
                break;
            };
            for b in slice.batches {
                planner.push(b);
            }
            offset = last.saturating_add(1);
        }
        let (groups, resume) = planner.finish();
        Ok((groups, resume.unwrap_or(offset)))
    }

    async fn run_job(
        &mut self,
        job: Vec<Group>,
        report: &mut MergeReport,
    ) -> Result<(), MergeError> {
        let keys: Vec<String> = {
            let mut tps: Vec<TopicPartition> = job.iter().map(|g| g.tp).collect();
            tps.sort();
            tps.dedup();
            tps.iter().map(rewrite_key).collect()
        };
        let held = self.shared.leases.acquire(keys).await?;
        let (mine, theirs): (Vec<Group>, Vec<Group>) = job
            .into_iter()
            .partition(|g| held.contains(&rewrite_key(&g.tp)));
        for g in &theirs {
            // Another compactor has it; plan it again next pass in case it gave up.
            self.rewind(g);
            report.backlog_bytes += g.bytes;
        }
        // The plan was made before the leases: another compactor may have rewritten a group and
        // let go of it since. Checked now, such a run costs a read, not a segment for nothing.
        let mut current = Vec::with_capacity(mine.len());
        for g in mine {
            if self.still_current(&g).await? {
                current.push(g);
            } else {
                self.rewind(&g);
            }
        }
        let mine = current;
        if !mine.is_empty() {
            let result = self.merge_groups(mine, report).await;
            self.shared.leases.release(held).await;
            result?;
        }
        Ok(())
    }

    /// Reads the runs of `groups` (each source object once), writes one segment per group and
    /// swaps each in.
    async fn merge_groups(
        &mut self,
        groups: Vec<Group>,
        report: &mut MergeReport,
    ) -> Result<(), MergeError> {
        let (chunks, unreadable) = crate::read::batches(
            &self.shared.store,
            groups.iter().flat_map(|g| &g.runs),
            &mut report.objects_read,
        )
        .await;
        for group in groups {
            if group.runs.iter().any(|r| unreadable.contains(&r.object)) {
                self.rewind(&group);
                report.backlog_bytes += group.bytes;
                continue;
            }
            match self.write_segment(&group, &chunks).await {
                Ok(Some(batches)) => {
                    report.segments_written += 1;
                    report.batches_moved += batches;
                    report.bytes_rewritten += group.bytes;
                }
                Ok(None) => {
                    report.conflicts += 1;
                    self.rewind(&group);
                }
                Err(e) => {
                    warn!(topic_id = %group.tp.topic_id, partition = group.tp.partition, error = %e, "merging failed; trying again next pass");
                    self.rewind(&group);
                    report.backlog_bytes += group.bytes;
                }
            }
        }
        Ok(())
    }

    /// Writes one group's segment and swaps it in, answering the batches it moved: `Ok(None)`
    /// if the group's runs changed meanwhile. Every run is walked and verified before anything
    /// is written, so a corrupt one costs no object.
    async fn write_segment(
        &self,
        group: &Group,
        chunks: &HashMap<(ObjectId, u64), Bytes>,
    ) -> Result<Option<usize>, GroupError> {
        let mut segment = SegmentWriter::new(group.tp);
        let id = segment.id();
        let mut batches = 0;
        for run in &group.runs {
            for b in crate::read::stored_run(chunks, run)? {
                segment.push(&b)?;
                batches += 1;
            }
        }
        let written = segment
            .write(&self.shared.store)
            .await
            .map_err(GroupError::Put)?
            .ok_or(GroupError::Empty)?;
        let swap = ReplaceBatches {
            tp: group.tp,
            object: id,
            size: written.size,
            replaced: group
                .runs
                .iter()
                .map(|r| (r.base_offset, r.object))
                .collect(),
            batches: vec![written.location],
            now_ms: crate::now_ms(),
        };
        match self.shared.metastore.replace_batches(swap).await {
            Ok(()) => {
                debug!(segment = %id, topic_id = %group.tp.topic_id, partition = group.tp.partition, runs = group.runs.len(), batches, bytes = group.bytes, "segment swapped in");
                Ok(Some(batches))
            }
            Err(MetastoreError::Rejected(MetaError::RewriteConflict)) => {
                info!(segment = %id, topic_id = %group.tp.topic_id, partition = group.tp.partition, "the runs changed before their merge landed; the segment is left as garbage");
                Ok(None)
            }
            Err(e) => Err(GroupError::Metastore(e)),
        }
    }

    /// Whether the index still holds `group`'s runs as the plan found them. Read in pages: a
    /// slice holds at most [`skiff_metastore::state_machine::MAX_SLICE_BATCHES`] entries, and a
    /// group of old per-batch entries can have more.
    async fn still_current(&self, group: &Group) -> Result<bool, MetastoreError> {
        let Some(first) = group.runs.first() else {
            return Ok(false);
        };
        let mut planned = group.runs.iter().peekable();
        let mut offset = first.base_offset;
        while planned.peek().is_some() {
            let slice = match self
                .shared
                .metastore
                .read_index(group.tp, offset, group.bytes)
                .await
            {
                Ok(slice) => slice,
                Err(MetastoreError::Rejected(
                    MetaError::OffsetOutOfRange | MetaError::UnknownTopicOrPartition,
                )) => return Ok(false),
                Err(e) => return Err(e),
            };
            if slice.batches.is_empty() {
                return Ok(false);
            }
            for now in &slice.batches {
                let Some(planned) = planned.next() else {
                    return Ok(true);
                };
                // The whole run, not only where it starts: a segment is written from the bytes
                // the plan's entries describe.
                if (
                    now.base_offset,
                    now.last_offset,
                    now.object,
                    now.position,
                    now.len,
                ) != (
                    planned.base_offset,
                    planned.last_offset,
                    planned.object,
                    planned.position,
                    planned.len,
                ) {
                    return Ok(false);
                }
                offset = now.last_offset.saturating_add(1);
            }
        }
        Ok(true)
    }

    /// Makes the next pass plan `group`'s partition from the group's start again.
    fn rewind(&mut self, group: &Group) {
        if let Some(first) = group.runs.first() {
            let r = self.resume.entry(group.tp).or_insert(first.base_offset);
            *r = (*r).min(first.base_offset);
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum GroupError {
    #[error("{0}")]
    Batch(#[from] crate::read::StoredBatchError),
    #[error("{0}")]
    Segment(#[from] crate::segment::SegmentError),
    #[error("the group holds no batch")]
    Empty,
    #[error("writing the segment: {0}")]
    Put(object_store::Error),
    #[error("swapping the segment in: {0}")]
    Metastore(MetastoreError),
}

/// Packs groups, in order, into jobs of at most `job_bytes` (a larger group is a job alone).
fn jobs(groups: Vec<Group>, job_bytes: u64) -> Vec<Vec<Group>> {
    let mut jobs: Vec<Vec<Group>> = Vec::new();
    let mut bytes = 0u64;
    for g in groups {
        match jobs.last_mut() {
            Some(job) if bytes + g.bytes <= job_bytes => {
                bytes += g.bytes;
                job.push(g);
            }
            _ => {
                bytes = g.bytes;
                jobs.push(vec![g]);
            }
        }
    }
    jobs
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
