//! The flush window. Every produce request of every connection lands here; a window becomes ONE
//! object when it holds `flush_bytes` or `flush_interval` after its first batch. Objects are written
//! concurrently but committed strictly in window order, so a producer's pipelined batches reach the
//! metastore in the order it sent them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::{ObjectStore, PutPayload};
use skiff_format::batch::{Batch, Timestamps};
use skiff_format::object::ObjectBuilder;
use skiff_format::validate::log_append_time_header;
use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::limits::MAX_COMMIT_AGE_MS;
use skiff_metastore::types::{
    BatchAppend, CommitBatch, CommitObject, MetaError, ObjectId, TopicPartition,
};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::sleep_until;
use tracing::{debug, warn};

use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::fetch::BlockCache;
use crate::metrics::Metrics;
use crate::storage::object_path;

/// A window is flushed once it holds this many batches, whatever their bytes: its commit names
/// every batch (about 30 bytes each), and one commit must stay well within the metastore's
/// largest command (`skiff_metastore::limits::MAX_COMMAND_BYTES`, 4 MiB), however small the
/// batches and however large `flush_bytes`.
pub const MAX_BATCHES_PER_FLUSH: usize = 65_536;

/// The longest an agent tries to commit an object, from the start of its flush (when its id, a
/// ULID, took the time). The metastore refuses commits of objects older than
/// [`MAX_COMMIT_AGE_MS`] by its leader's clock, since the compactor may have deleted them as
/// orphans; stopping at half of that leaves room for the last attempt's own time (a remote call
/// gives up after 8 s) and for the leader's clock running ahead of this one. Queued flushes
/// behind a slow commit expire too, instead of each waiting out its own retries: their producers
/// get a retriable error at once and send again, into a new object.
pub const MAX_COMMIT_DEADLINE: Duration = Duration::from_secs(30);

const _: () = assert!(2 * MAX_COMMIT_DEADLINE.as_millis() <= MAX_COMMIT_AGE_MS as u128);

/// How much older than the bound the objects of `AgentConfig::test_stale_objects` are named.
const STALE_BY_MS: u64 = MAX_COMMIT_AGE_MS as u64 + 10_000;

/// One batch to append, already validated.
pub struct Entry {
    pub tp: TopicPartition,
    pub batch: Batch,
    /// What the index records for the batch, checked by the produce path (the header's only
    /// when it is consistent): retention and ListOffsets believe them.
    pub timestamps: Timestamps,
    /// The topic is `LogAppendTime`: the window stamps the batch when it takes it in.
    log_append_time: bool,
    /// The stamped header that replaces the batch's first 61 bytes in the object.
    stamped: Option<Bytes>,
}

impl Entry {
    pub fn new(tp: TopicPartition, batch: Batch, timestamps: Timestamps) -> Self {
        Entry {
            tp,
            batch,
            timestamps,
            log_append_time: false,
            stamped: None,
        }
    }

    /// For a `LogAppendTime` topic: when the flush window takes the batch in, its header is
    /// rewritten as Kafka's broker rewrites it on append (timestamp-type bit, `max_timestamp`
    /// = the agent's clock then, CRC), and the index gets that time as the batch's timestamps.
    pub fn log_append_time(mut self) -> Self {
        self.log_append_time = true;
        self
    }

    /// Stamps the batch with `now` if its topic is `LogAppendTime`. Only the header is new.
    fn stamp(&mut self, now: i64) {
        if !self.log_append_time {
            return;
        }
        if let Some((bytes, header)) = log_append_time_header(&self.batch, now) {
            self.batch.header = header;
            self.stamped = Some(bytes);
            self.timestamps = Timestamps {
                first: now,
                max: now,
            };
        }
    }
}

/// The answer to one [`Batcher::append`]: a result per entry, in order, and the time the
/// window took them in (the log append time of `LogAppendTime` topics).
#[derive(Debug)]
pub struct Appended {
    pub results: Vec<AppendResult>,
    pub log_append_time_ms: i64,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Rejected(#[from] MetaError),
    /// The object could not be written: nothing was committed.
    #[error("object store: {0}")]
    Storage(String),
    /// The commit failed or its outcome is unknown; a retry is safe.
    #[error("metastore: {0}")]
    Metastore(String),
    /// Not committed within the commit deadline, and certainly not committed: a retry lands in
    /// a new object.
    #[error("not committed within {0:?} of its flush")]
    Expired(Duration),
    #[error("agent is shutting down")]
    ShuttingDown,
}

pub type AppendResult = Result<BatchAppend, AppendError>;

struct Append {
    entries: Vec<Entry>,
    reply: oneshot::Sender<Appended>,
    /// When the window took it in.
    taken_at_ms: i64,
    _permit: OwnedSemaphorePermit,
}

impl Append {
    fn answer(self, results: Vec<AppendResult>) {
        // The producer may have gone away; nothing to do then.
        let _ = self.reply.send(Appended {
            results,
            log_append_time_ms: self.taken_at_ms,
        });
    }
}

/// The handle connections use. Cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Append>,
    memory: Arc<Semaphore>,
    max_pending: u32,
}

impl Batcher {
    pub fn spawn(
        config: &AgentConfig,
        store: Arc<dyn ObjectStore>,
        metastore: Arc<dyn MetastoreClient>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> (Self, JoinHandle<()>) {
        Self::spawn_with_cache(config, store, metastore, metrics, clock, None)
    }

    /// [`Batcher::spawn`], putting every object it writes into `blocks`, so consumers tailing
    /// what this agent wrote read it from memory.
    pub fn spawn_with_cache(
        config: &AgentConfig,
        store: Arc<dyn ObjectStore>,
        metastore: Arc<dyn MetastoreClient>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        blocks: Option<Arc<BlockCache>>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let (commit_tx, commit_rx) = mpsc::channel(64);
        let max_pending = u32::try_from(config.max_pending_bytes).unwrap_or(u32::MAX);
        let window = WindowLoop {
            rx,
            commit_tx,
            store,
            flush_bytes: config.flush_bytes,
            flush_interval: config.flush_interval,
            clock: clock.clone(),
            stale_left: config.test_stale_objects,
            blocks,
        };
        let committer = Committer {
            rx: commit_rx,
            metastore,
            metrics,
            deadline: config.commit_deadline.min(MAX_COMMIT_DEADLINE),
        };
        let task = tokio::spawn(async move {
            let committer = tokio::spawn(committer.run());
            window.run().await;
            if let Err(e) = committer.await {
                warn!(error = %e, "committer task failed");
            }
        });
        let batcher = Self {
            tx,
            memory: Arc::new(Semaphore::new(max_pending as usize)),
            max_pending,
        };
        (batcher, task)
    }

    /// Queues `entries` for the next flush. Waits (and so stops its connection reading) while the
    /// memory held by open windows and in-flight flushes is at its limit. Calls on one connection
    /// are queued in call order.
    pub async fn append(
        &self,
        entries: Vec<Entry>,
    ) -> Result<oneshot::Receiver<Appended>, AppendError> {
        let bytes: usize = entries.iter().map(|e| e.batch.bytes.len()).sum();
        let want = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .min(self.max_pending);
        let permit = self
            .memory
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Append {
                entries,
                reply,
                taken_at_ms: -1,
                _permit: permit,
            })
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        Ok(rx)
    }
}

/// Batches of one window, with where each one's answer goes.
struct Window {
    opened: tokio::time::Instant,
    bytes: usize,
    batches: usize,
    appends: Vec<Append>,
}

/// A written (or being written) object waiting for its turn to commit.
struct Flush {
    id: ObjectId,
    put: JoinHandle<object_store::Result<()>>,
    commit: CommitObject,
    /// For each commit batch, in commit order: (append index, entry index).
    slots: Vec<(usize, usize)>,
    appends: Vec<Append>,
    started: Instant,
    bytes: usize,
}

struct WindowLoop {
    rx: mpsc::Receiver<Append>,
    commit_tx: mpsc::Sender<Flush>,
    store: Arc<dyn ObjectStore>,
    flush_bytes: usize,
    flush_interval: std::time::Duration,
    clock: Arc<dyn Clock>,
    /// Objects still to be named as stale (`AgentConfig::test_stale_objects`).
    stale_left: u32,
    blocks: Option<Arc<BlockCache>>,
}

impl WindowLoop {
    async fn run(mut self) {
        let mut window: Option<Window> = None;
        loop {
            let deadline = window.as_ref().map(|w| w.opened + self.flush_interval);
            tokio::select! {
                append = self.rx.recv() => {
                    let Some(mut append) = append else { break };
                    // The log append time: one clock reading per append, in the order appends
                    // reach the window, which is the order their offsets are given.
                    append.taken_at_ms = self.clock.now_ms();
                    for entry in &mut append.entries {
                        entry.stamp(append.taken_at_ms);
                    }
                    let w = window.get_or_insert_with(|| Window {
                        opened: tokio::time::Instant::now(),
                        bytes: 0,
                        batches: 0,
                        appends: Vec::new(),
                    });
                    w.bytes += append.entries.iter().map(|e| e.batch.bytes.len()).sum::<usize>();
                    w.batches += append.entries.len();
                    w.appends.push(append);
                    if w.bytes >= self.flush_bytes || w.batches >= MAX_BATCHES_PER_FLUSH {
                        if let Some(w) = window.take() {
                            self.flush(w).await;
                        }
                    }
                }
                _ = async { sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                    if let Some(w) = window.take() {
                        self.flush(w).await;
                    }
                }
            }
        }
        // The channel is closed: every sender is gone. What is buffered still gets written.
        if let Some(w) = window.take() {
            self.flush(w).await;
        }
    }

    /// A new object's id: a ULID, whose time the metastore checks at commit.
    fn object_id(&mut self) -> ObjectId {
        let id = ulid::Ulid::new();
        if self.stale_left == 0 {
            return ObjectId(id);
        }
        self.stale_left -= 1;
        let made_ms = id.timestamp_ms().saturating_sub(STALE_BY_MS);
        warn!("testing: naming an object as if made {STALE_BY_MS} ms ago");
        ObjectId(ulid::Ulid::from_parts(made_ms, id.random()))
    }

    /// Lays the window out as one object, starts its PUT and hands it to the committer.
    async fn flush(&mut self, window: Window) {
        let started = Instant::now();
        let id = self.object_id();
        // Batches of one partition sit next to each other, so a fetch reads a partition's span of
        // the object with one ranged GET; the sort is stable, so their order is kept.
        let mut order: Vec<(usize, usize)> = window
            .appends
            .iter()
            .enumerate()
            .flat_map(|(a, append)| (0..append.entries.len()).map(move |e| (a, e)))
            .collect();
        order.sort_by_key(|&(a, e)| window.appends[a].entries[e].tp);

        let mut builder = ObjectBuilder::new(id.0 .0);
        let mut batches = Vec::with_capacity(order.len());
        for &(a, e) in &order {
            let entry = &window.appends[a].entries[e];
            let topic = *entry.tp.topic_id.as_bytes();
            let position = match &entry.stamped {
                Some(header) => builder.push_with_header(
                    topic,
                    entry.tp.partition,
                    &entry.batch,
                    header.clone(),
                ),
                None => builder.push(topic, entry.tp.partition, &entry.batch),
            };
            let h = &entry.batch.header;
            batches.push(CommitBatch {
                tp: entry.tp,
                position,
                len: entry.batch.bytes.len() as u32,
                last_offset_delta: h.last_offset_delta,
                record_count: h.record_count,
                first_timestamp: entry.timestamps.first,
                max_timestamp: entry.timestamps.max,
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
                transactional: h.is_transactional(),
            });
        }
        let size = builder.len();
        let (parts, _entries) = builder.finish();
        let store = self.store.clone();
        let path = object_path(id);
        let blocks = self.blocks.clone();
        let put = tokio::spawn(async move {
            // The parts are shared, not copied, until the cache lays them out in blocks.
            let cached = blocks.as_ref().map(|_| parts.clone());
            store.put(&path, PutPayload::from_iter(parts)).await?;
            // In the cache before the commit makes the object readable.
            if let (Some(blocks), Some(parts)) = (blocks, cached) {
                blocks.insert_object(id, &parts);
            }
            Ok::<(), object_store::Error>(())
        });
        let flush = Flush {
            id,
            put,
            commit: CommitObject {
                object: id,
                size,
                batches,
                now_ms: self.clock.now_ms(),
            },
            slots: order,
            appends: window.appends,
            started,
            bytes: window.bytes,
        };
        if let Err(mpsc::error::SendError(flush)) = self.commit_tx.send(flush).await {
            answer_all(flush.appends, AppendError::ShuttingDown);
        }
    }
}

struct Committer {
    rx: mpsc::Receiver<Flush>,
    metastore: Arc<dyn MetastoreClient>,
    metrics: Arc<Metrics>,
    /// From the start of a flush; see [`MAX_COMMIT_DEADLINE`].
    deadline: Duration,
}

impl Committer {
    async fn run(mut self) {
        while let Some(flush) = self.rx.recv().await {
            self.commit(flush).await;
        }
    }

    async fn commit(&self, flush: Flush) {
        let Flush {
            id,
            put,
            commit,
            slots,
            appends,
            started,
            bytes,
        } = flush;
        match put.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(object = %id, error = %e, "object PUT failed; failing its producers");
                return answer_all(appends, AppendError::Storage(e.to_string()));
            }
            Err(e) => {
                warn!(object = %id, error = %e, "object PUT task failed");
                return answer_all(appends, AppendError::Storage(e.to_string()));
            }
        }
        let commit_started = Instant::now();
        let outcome = self
            .commit_with_retry(commit, started + self.deadline)
            .await;
        self.metrics
            .metastore_commit_latency
            .observe(commit_started.elapsed().as_secs_f64());
        let results = match outcome {
            Ok(results) => results,
            Err(e) => {
                if matches!(e, AppendError::Expired(_)) {
                    self.metrics.flushes_too_late.inc();
                }
                warn!(object = %id, error = %e, "object commit failed; failing its producers");
                return answer_all(appends, e);
            }
        };
        if results
            .iter()
            .any(|r| matches!(r, Err(MetaError::ObjectTooOld)))
        {
            // Refused whole: nothing of it was committed, and the compactor collects it.
            self.metrics.flushes_too_late.inc();
            warn!(object = %id, elapsed = ?started.elapsed(), "the metastore refused the object as too old to commit; failing its producers");
            return answer_all(appends, AppendError::Rejected(MetaError::ObjectTooOld));
        }
        self.metrics.flushes.inc();
        self.metrics.produced_bytes.inc_by(bytes as u64);
        self.metrics.flush_bytes.observe(bytes as f64);
        self.metrics
            .flush_duration
            .observe(started.elapsed().as_secs_f64());
        debug!(object = %id, batches = results.len(), bytes, "object committed");

        let mut answers: Vec<Vec<Option<AppendResult>>> = appends
            .iter()
            .map(|a| vec![None; a.entries.len()])
            .collect();
        for ((a, e), result) in slots.into_iter().zip(results) {
            if let Some(slot) = answers.get_mut(a).and_then(|v| v.get_mut(e)) {
                *slot = Some(result.map_err(AppendError::Rejected));
            }
        }
        for (append, answer) in appends.into_iter().zip(answers) {
            let answer = answer
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        Err(AppendError::Metastore(
                            "commit answered too few batches".into(),
                        ))
                    })
                })
                .collect();
            append.answer(answer);
        }
    }

    /// A commit carries its object id, so retrying one whose outcome is unknown is safe: the
    /// metastore answers a repeated commit with its first answer. No attempt starts, or goes on,
    /// past `deadline`.
    async fn commit_with_retry(
        &self,
        commit: CommitObject,
        deadline: Instant,
    ) -> Result<Vec<Result<BatchAppend, MetaError>>, AppendError> {
        // The last failure of an attempt that may have applied, if any.
        let mut unknown: Option<String> = None;
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(match unknown {
                    Some(e) => AppendError::Metastore(e),
                    None => AppendError::Expired(self.deadline),
                });
            }
            let e = match tokio::time::timeout(left, self.metastore.commit_object(commit.clone()))
                .await
            {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) => e,
                // Abandoned in flight: it may still land, and a producer's resend is deduplicated.
                Err(_) => {
                    return Err(AppendError::Metastore(format!(
                        "commit not answered within {:?} of its flush",
                        self.deadline
                    )))
                }
            };
            if attempt >= 3 || matches!(e, MetastoreError::Rejected(_)) {
                return Err(AppendError::Metastore(e.to_string()));
            }
            if !e.is_certainly_not_applied() {
                unknown = Some(e.to_string());
            }
            attempt += 1;
            warn!(object = %commit.object, attempt, error = %e, "commit failed, retrying");
            let backoff = Duration::from_millis(50 << attempt);
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
        }
    }
}

fn answer_all(appends: Vec<Append>, error: AppendError) {
    for append in appends {
        let n = append.entries.len();
        append.answer(vec![Err(error.clone()); n]);
    }
}
