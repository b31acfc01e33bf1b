//! The compactor: what keeps a Skiff cluster's storage bounded and its reads cheap. Each pass
//!
//! 1. runs retention: one `EnforceRetention` command trims every partition past its
//!    `retention.ms` / `retention.bytes` (time travels in the command, so replicas agree), and
//!    one `ExpireState` command bounds the metastore's own state ([`StateBounds`]);
//! 2. exports topics with `skiff.parquet.enable=true` to Parquet ([`export`]);
//! 3. compacts the partitions of topics with `cleanup.policy=compact` ([`compaction`]), those
//!    that export only as far as they are exported;
//! 4. merges small ingestion objects into per-partition segments ([`merge`]);
//! 5. collects garbage ([`gc`]): objects the index no longer points at, and objects uploaded but
//!    never committed, are deleted once a grace period has passed, so fetches in flight finish
//!    and commits in flight land (or are refused) first.
//!
//! Any number of compactors may run: each unit of work is leased in the metastore first
//! (retention and garbage collection as one unit, merging per partition), and every change is a
//! metastore command that applies only to the state it was planned from.

pub mod compaction;
pub mod export;
pub mod gc;
pub mod lease;
pub mod merge;
pub mod metrics;
mod read;
mod segment;
mod txns;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::path::Path;
use object_store::ObjectStore;
use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::limits::MAX_COMMIT_AGE_MS;
use skiff_metastore::types::{EnforceRetention, ExpireState, ObjectId, StateExpired};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use merge::{MergeConfig, MergeReport};

/// The shortest orphan grace period a compactor accepts: the metastore's commit age bound
/// ([`MAX_COMMIT_AGE_MS`], 60 s) and a minute more, for the compactor's clock running ahead of
/// the metastore leader's and for a commit proposed but not yet applied when the sweep asks. An
/// orphan is deleted only when older than its grace by its id's time (and its upload's), and a
/// commit of an object older than the bound is refused, so no commit can land on an object the
/// sweep deleted.
pub const ORPHAN_GRACE_FLOOR: Duration = Duration::from_secs(120);

const _: () = assert!(ORPHAN_GRACE_FLOOR.as_millis() >= MAX_COMMIT_AGE_MS as u128 + 60_000);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the orphan grace period ({given:?}) is below its floor ({ORPHAN_GRACE_FLOOR:?}): an agent may still be committing an object that young"
    )]
    OrphanGraceTooShort { given: Duration },
}

#[derive(Clone, Debug)]
pub struct CompactorConfig {
    /// Time between passes; Kafka's `log.retention.check.interval.ms` default, 5 minutes.
    pub interval: Duration,
    /// How long an object nothing points at any more is kept before deletion, counted from when
    /// this compactor first saw it so: protects fetches that read the index before the change.
    pub grace: Duration,
    /// How long an object the metastore does not know is kept, counted from its creation:
    /// protects commits in flight. At least [`ORPHAN_GRACE_FLOOR`].
    pub orphan_grace: Duration,
    /// Kafka's `log.retention.ms` default: 7 days. -1 keeps forever.
    pub default_retention_ms: i64,
    /// Kafka's `log.retention.bytes` default: -1, no limit.
    pub default_retention_bytes: i64,
    pub merge: MergeConfig,
    pub export: export::ExportConfig,
    pub bounds: StateBounds,
}

/// How long the metastore keeps what only grows otherwise, sent with every housekeeping pass
/// in an `ExpireState` command (as the retention defaults are). -1 keeps forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateBounds {
    /// Kafka's `producer.id.expiration.ms` (KIP-854): 1 day.
    pub producer_id_expiration_ms: i64,
    /// How long a committed object keeps the answer for a retried commit: 10 minutes, far past
    /// any retry (agents retry for under a second; commits of old objects are refused).
    pub commit_answer_retention_ms: i64,
    /// Kafka's `offsets.retention.minutes` (7 days), in ms.
    pub offsets_retention_ms: i64,
    /// An agent address silent this long loses its broker id: 1 day.
    pub broker_id_retention_ms: i64,
}

impl Default for StateBounds {
    fn default() -> Self {
        Self {
            producer_id_expiration_ms: 24 * 3600 * 1000,
            commit_answer_retention_ms: 10 * 60 * 1000,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            broker_id_retention_ms: 24 * 3600 * 1000,
        }
    }
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            grace: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(300),
            default_retention_ms: 7 * 24 * 3600 * 1000,
            default_retention_bytes: -1,
            merge: MergeConfig::default(),
            export: export::ExportConfig::default(),
            bounds: StateBounds::default(),
        }
    }
}

impl CompactorConfig {
    /// Refuses settings under which collecting garbage could lose data.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.orphan_grace < ORPHAN_GRACE_FLOOR {
            return Err(ConfigError::OrphanGraceTooShort {
                given: self.orphan_grace,
            });
        }
        Ok(())
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

/// What every part of a compactor works with: the metastore, the store and its leases.
#[derive(Clone)]
pub struct Shared {
    pub metastore: Arc<dyn MetastoreClient>,
    pub store: Arc<dyn ObjectStore>,
    pub leases: lease::Leases,
}

impl Shared {
    /// A context whose leases are taken as `holder`, for `lease_ttl`.
    pub fn new(
        metastore: Arc<dyn MetastoreClient>,
        store: Arc<dyn ObjectStore>,
        holder: String,
        lease_ttl: Duration,
    ) -> Self {
        Self {
            leases: lease::Leases::new(metastore.clone(), holder, lease_ttl),
            metastore,
            store,
        }
    }
}

/// Writes a segment the compactor built: one PUT of its parts. Answers its size.
pub(crate) async fn put_segment(
    store: &Arc<dyn ObjectStore>,
    id: ObjectId,
    builder: skiff_format::ObjectBuilder,
) -> object_store::Result<u64> {
    let size = builder.len();
    let (parts, _) = builder.finish();
    store
        .put(&object_path(id), object_store::PutPayload::from_iter(parts))
        .await?;
    Ok(size)
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
    /// What the metastore's expiry forgot and kept (housekeeping passes only).
    pub expired: StateExpired,
}

pub struct Compactor {
    shared: Shared,
    config: CompactorConfig,
    gc: gc::Collector,
    merger: merge::Merger,
    compaction: compaction::Compactor,
    exporter: export::Exporter,
    metrics: Arc<metrics::CompactorMetrics>,
}

impl Compactor {
    /// Refuses a `config` that [`CompactorConfig::validate`] refuses.
    pub fn new(
        metastore: Arc<dyn MetastoreClient>,
        store: Arc<dyn ObjectStore>,
        config: CompactorConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        // Unique per process: a restarted compactor does not inherit leases it cannot vouch for.
        let holder = format!("compactor-{}", ulid::Ulid::new());
        let shared = Shared::new(metastore, store, holder, config.merge.lease_ttl);
        let gc = gc::Collector::new(
            shared.metastore.clone(),
            shared.store.clone(),
            config.grace,
            config.orphan_grace,
        );
        let merger = merge::Merger::new(shared.clone(), config.merge.clone());
        let exporter = export::Exporter::new(shared.clone(), config.export.clone());
        let defaults = compaction::CompactionConfig::default();
        let compaction = compaction::Compactor::new(
            shared.clone(),
            compaction::CompactionConfig {
                read_bytes: config.merge.job_bytes.max(1),
                segment_bytes: match config.merge.target_bytes {
                    0 => defaults.segment_bytes,
                    n => n,
                },
                ..defaults
            },
        );
        Ok(Self {
            shared,
            config,
            gc,
            merger,
            compaction,
            exporter,
            metrics: Arc::default(),
        })
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
        info!(holder = %self.shared.leases.holder(), interval = ?self.config.interval, grace = ?self.config.grace, orphan_grace = ?self.config.orphan_grace, target_bytes = self.config.merge.target_bytes, "compactor started");
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

    /// One pass: retention, export, compaction, merging, then garbage collection.
    pub async fn pass(&mut self) -> Result<PassReport, PassError> {
        let started = std::time::Instant::now();
        // Held for one pass at most, and given back after: a compactor that dies holding it
        // blocks housekeeping for one lease period.
        let housekeeping = self
            .shared
            .leases
            .acquire_one(lease::HOUSEKEEPING.to_owned())
            .await?;
        let result = self.pass_with(housekeeping).await;
        if let Ok(report) = &result {
            self.metrics.record(report, started.elapsed().as_secs_f64());
        }
        if housekeeping {
            self.shared
                .leases
                .release(vec![lease::HOUSEKEEPING.to_owned()])
                .await;
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
                .shared
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
            let bounds = self.config.bounds;
            report.expired = self
                .shared
                .metastore
                .expire_state(ExpireState {
                    now_ms: now_ms(),
                    producer_id_expiration_ms: bounds.producer_id_expiration_ms,
                    commit_answer_retention_ms: bounds.commit_answer_retention_ms,
                    offsets_retention_ms: bounds.offsets_retention_ms,
                    broker_id_retention_ms: bounds.broker_id_retention_ms,
                })
                .await?;
            let e = &report.expired;
            if e.producers_expired + e.groups_expired + e.broker_ids_forgotten > 0 {
                info!(
                    producers = e.producers_expired,
                    groups = e.groups_expired,
                    broker_ids = e.broker_ids_forgotten,
                    commit_answers = e.commit_answers_dropped,
                    "expired metastore state"
                );
            }
        }
        // Export before compaction: compaction of an exported topic stops where its export
        // stands, so whatever this pass exports is compactable in the same pass.
        report.export = self.exporter.pass().await?;
        report.compaction = self.compaction.pass(now_ms()).await?;
        report.merge = self.merger.pass().await?;
        if housekeeping {
            let trimmed = report.gc.partitions_trimmed;
            report.gc = self.gc.pass().await?;
            report.gc.partitions_trimmed = trimmed;
        }
        Ok(report)
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
