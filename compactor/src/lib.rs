//! The compactor: what keeps a Skiff cluster's storage bounded and its reads cheap. Each pass
//!
//! 1. runs retention: one `EnforceRetention` command trims every partition past its
//!    `retention.ms` / `retention.bytes` (time travels in the command, so replicas agree);
//! 2. compacts the partitions of topics with `cleanup.policy=compact` ([`compaction`]);
//! 3. merges small ingestion objects into per-partition segments ([`merge`]);
//! 4. exports topics with `skiff.parquet.enable=true` to Parquet ([`export`]);
//! 5. collects garbage ([`gc`]): objects the index no longer points at, and objects uploaded but
//!    never committed, are deleted once a grace period has passed, so fetches in flight finish
//!    and commits in flight land first.
//!
//! Any number of compactors may run: each unit of work is leased in the metastore first
//! (retention and garbage collection as one unit, merging per partition), and every change is a
//! metastore command that applies only to the state it was planned from.

pub mod compaction;
pub mod export;
pub mod gc;
pub mod merge;
pub mod metrics;
mod read;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::path::Path;
use object_store::ObjectStore;
use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::{AcquireLeases, EnforceRetention, ObjectId};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use merge::{MergeConfig, MergeReport};

/// The lease on retention and garbage collection, which one compactor at a time runs.
const HOUSEKEEPING_LEASE: &str = "housekeeping";

#[derive(Clone, Debug)]
pub struct CompactorConfig {
    /// Time between passes; Kafka's `log.retention.check.interval.ms` default, 5 minutes.
    pub interval: Duration,
    /// How long an object nothing points at (or nothing committed) is kept before deletion.
    pub grace: Duration,
    /// Kafka's `log.retention.ms` default: 7 days. -1 keeps forever.
    pub default_retention_ms: i64,
    /// Kafka's `log.retention.bytes` default: -1, no limit.
    pub default_retention_bytes: i64,
    pub merge: MergeConfig,
    pub export: export::ExportConfig,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            grace: Duration::from_secs(300),
            default_retention_ms: 7 * 24 * 3600 * 1000,
            default_retention_bytes: -1,
            merge: MergeConfig::default(),
            export: export::ExportConfig::default(),
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where an object lives in the store: the agent's naming (`skiff_agent::storage::object_path`),
/// specified in docs/format.md.
pub(crate) fn object_path(id: ObjectId) -> Path {
    Path::from(format!("objects/{id}.skiff"))
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Whether this compactor held the housekeeping lease (retention and garbage collection).
    pub housekeeping: bool,
    pub gc: gc::PassReport,
    pub merge: MergeReport,
    pub compaction: compaction::CompactionReport,
    pub export: export::ExportReport,
}

pub struct Compactor {
    metastore: Arc<dyn MetastoreClient>,
    config: CompactorConfig,
    holder: String,
    gc: gc::Collector,
    merger: merge::Merger,
    compaction: compaction::Compactor,
    exporter: export::Exporter,
    metrics: Arc<metrics::CompactorMetrics>,
}

impl Compactor {
    pub fn new(
        metastore: Arc<dyn MetastoreClient>,
        store: Arc<dyn ObjectStore>,
        config: CompactorConfig,
    ) -> Self {
        // Unique per process: a restarted compactor does not inherit leases it cannot vouch for.
        let holder = format!("compactor-{}", ulid::Ulid::new());
        let gc = gc::Collector::new(metastore.clone(), store.clone(), config.grace);
        let merger = merge::Merger::new(
            metastore.clone(),
            store.clone(),
            config.merge.clone(),
            holder.clone(),
        );
        let defaults = compaction::CompactionConfig::default();
        let exporter = export::Exporter::new(
            metastore.clone(),
            store.clone(),
            export::ExportConfig {
                lease_ttl: config.merge.lease_ttl,
                ..config.export.clone()
            },
            holder.clone(),
        );
        let compaction = compaction::Compactor::new(
            metastore.clone(),
            store,
            compaction::CompactionConfig {
                read_bytes: config.merge.job_bytes.max(1),
                segment_bytes: match config.merge.target_bytes {
                    0 => defaults.segment_bytes,
                    n => n,
                },
                lease_ttl: config.merge.lease_ttl,
                ..defaults
            },
            holder.clone(),
        );
        Self {
            metastore,
            config,
            holder,
            gc,
            merger,
            compaction,
            exporter,
            metrics: Arc::default(),
        }
    }

    /// Reports to `metrics` (registered by the caller in the registry it serves).
    pub fn with_metrics(mut self, metrics: Arc<metrics::CompactorMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Passes every `interval` until `shutdown`, the first one `interval` after the start (as
    /// Kafka's log cleaner waits before its first run, so that a restarting cluster settles
    /// first). A failed pass is logged and the next one tries again: everything a pass does is
    /// safe to repeat.
    pub async fn run(mut self, shutdown: CancellationToken) {
        info!(holder = %self.holder, interval = ?self.config.interval, grace = ?self.config.grace, target_bytes = self.config.merge.target_bytes, "compactor started");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                result = self.pass() => if let Err(e) = result {
                    self.metrics.pass_failures.inc();
                    warn!(error = %e, "compactor pass failed; trying again next pass");
                },
            }
        }
    }

    /// One pass: retention, compaction, merging, export, then garbage collection.
    pub async fn pass(&mut self) -> Result<PassReport, PassError> {
        let started = std::time::Instant::now();
        let housekeeping = self.lease(HOUSEKEEPING_LEASE).await?;
        let result = self.pass_with(housekeeping).await;
        if let Ok(report) = &result {
            self.metrics.record(report, started.elapsed().as_secs_f64());
        }
        if housekeeping {
            if let Err(e) = self
                .metastore
                .release_leases(&self.holder, vec![HOUSEKEEPING_LEASE.to_owned()])
                .await
            {
                debug!(error = %e, "releasing the housekeeping lease failed; it expires");
            }
        }
        result
    }

    async fn pass_with(&mut self, housekeeping: bool) -> Result<PassReport, PassError> {
        let mut report = PassReport {
            housekeeping,
            ..PassReport::default()
        };
        if housekeeping {
            let trimmed = self
                .metastore
                .enforce_retention(EnforceRetention {
                    now_ms: now_ms(),
                    default_retention_ms: self.config.default_retention_ms,
                    default_retention_bytes: self.config.default_retention_bytes,
                })
                .await?;
            for t in &trimmed {
                info!(topic_id = %t.tp.topic_id, partition = t.tp.partition, log_start_offset = t.log_start_offset, "retention moved the log start");
            }
            report.gc.partitions_trimmed = trimmed.len();
        }
        report.compaction = self.compaction.pass(now_ms()).await?;
        report.merge = self.merger.pass().await?;
        report.export = self.exporter.pass().await?;
        if housekeeping {
            let trimmed = report.gc.partitions_trimmed;
            report.gc = self.gc.pass().await?;
            report.gc.partitions_trimmed = trimmed;
        }
        Ok(report)
    }

    /// Takes a lease for the length of one pass at most: held only while the work is under
    /// way, and released after, so a compactor that dies blocks the work for one lease period.
    async fn lease(&self, key: &str) -> Result<bool, MetastoreError> {
        let granted = self
            .metastore
            .acquire_leases(AcquireLeases {
                holder: self.holder.clone(),
                keys: vec![key.to_owned()],
                ttl_ms: i64::try_from(self.config.merge.lease_ttl.as_millis()).unwrap_or(i64::MAX),
                now_ms: now_ms(),
            })
            .await?;
        let held = granted.first().copied().unwrap_or(false);
        if !held {
            debug!(key, "another compactor holds the lease");
        }
        Ok(held)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("metastore: {0}")]
    Metastore(#[from] MetastoreError),
    #[error("merging: {0}")]
    Merge(#[from] merge::MergeError),
    #[error("compacting: {0}")]
    Compaction(#[from] compaction::CompactionError),
    #[error("exporting: {0}")]
    Export(#[from] export::ExportError),
}
