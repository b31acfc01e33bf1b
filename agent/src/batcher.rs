//! The flush window. Every produce request of every connection lands here; a window becomes ONE
//! object when it holds `flush_bytes` or `flush_interval` after its first batch. Objects are written
//! concurrently but committed strictly in window order, so a producer's pipelined batches reach the
//! metastore in the order it sent them.

use std::sync::Arc;
use std::time::Instant;

use object_store::{ObjectStore, PutPayload};
use skiff_format::batch::{Batch, Timestamps};
use skiff_format::object::ObjectBuilder;
use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::{
    BatchAppend, CommitBatch, CommitObject, MetaError, ObjectId, TopicPartition,
};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::sleep_until;
use tracing::{debug, warn};

use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::metrics::Metrics;
use crate::storage::object_path;

/// A window is flushed once it holds this many batches, whatever their bytes: its commit names
/// every batch (about 30 bytes each), and one commit must stay well within the metastore's
/// largest command (`skiff_metastore::limits::MAX_COMMAND_BYTES`, 4 MiB), however small the
/// batches and however large `flush_bytes`.
const MAX_BATCHES_PER_FLUSH: usize = 65_536;

/// One batch to append, already validated.
pub struct Entry {
    pub tp: TopicPartition,
    pub batch: Batch,
    /// What the index records for the batch, checked by the produce path (the header's only
    /// when it is consistent): retention and ListOffsets believe them.
    pub timestamps: Timestamps,
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
    #[error("agent is shutting down")]
    ShuttingDown,
}

pub type AppendResult = Result<BatchAppend, AppendError>;

struct Append {
    entries: Vec<Entry>,
    reply: oneshot::Sender<Vec<AppendResult>>,
    _permit: OwnedSemaphorePermit,
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
        };
        let committer = Committer {
            rx: commit_rx,
            metastore,
            metrics,
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
    ) -> Result<oneshot::Receiver<Vec<AppendResult>>, AppendError> {
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
}

impl WindowLoop {
    async fn run(mut self) {
        let mut window: Option<Window> = None;
        loop {
            let deadline = window.as_ref().map(|w| w.opened + self.flush_interval);
            tokio::select! {
                append = self.rx.recv() => {
                    let Some(append) = append else { break };
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

    /// Lays the window out as one object, starts its PUT and hands it to the committer.
    async fn flush(&mut self, window: Window) {
        let started = Instant::now();
        let id = ObjectId(ulid::Ulid::new());
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
            let position = builder.push(
                *entry.tp.topic_id.as_bytes(),
                entry.tp.partition,
                &entry.batch,
            );
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
            });
        }
        let size = builder.len();
        let (parts, _entries) = builder.finish();
        let store = self.store.clone();
        let path = object_path(id);
        let put = tokio::spawn(async move {
            store
                .put(&path, PutPayload::from_iter(parts))
                .await
                .map(|_| ())
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
        let outcome = self.commit_with_retry(commit).await;
        self.metrics
            .metastore_commit_latency
            .observe(commit_started.elapsed().as_secs_f64());
        let results = match outcome {
            Ok(results) => results,
            Err(e) => {
                warn!(object = %id, error = %e, "object commit failed; failing its producers");
                return answer_all(appends, AppendError::Metastore(e.to_string()));
            }
        };
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
            // The producer may have gone away; nothing to do then.
            let _ = append.reply.send(answer);
        }
    }

    /// A commit carries its object id, so retrying one whose outcome is unknown is safe: the
    /// metastore answers a repeated commit with its first answer.
    async fn commit_with_retry(
        &self,
        commit: CommitObject,
    ) -> Result<Vec<Result<BatchAppend, MetaError>>, MetastoreError> {
        let mut attempt = 0;
        loop {
            match self.metastore.commit_object(commit.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt < 3 && !matches!(e, MetastoreError::Rejected(_)) => {
                    attempt += 1;
                    warn!(object = %commit.object, attempt, error = %e, "commit failed, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn answer_all(appends: Vec<Append>, error: AppendError) {
    for append in appends {
        let n = append.entries.len();
        let _ = append.reply.send(vec![Err(error.clone()); n]);
    }
}
