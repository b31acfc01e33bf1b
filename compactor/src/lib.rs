//! The compactor: what keeps a Skiff cluster's storage bounded. Each pass
//!
//! 1. runs retention: one `EnforceRetention` command trims every partition past its
//!    `retention.ms` / `retention.bytes` (time travels in the command, so replicas agree);
//! 2. collects garbage ([`gc`]): objects the index no longer points at, and objects uploaded but
//!    never committed, are deleted once a grace period has passed, so fetches in flight finish
//!    and commits in flight land first.
//!
//! Merging small objects, key compaction and Parquet export are still to come (issue 6).

pub mod gc;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::ObjectStore;
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::types::EnforceRetention;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            grace: Duration::from_secs(300),
            default_retention_ms: 7 * 24 * 3600 * 1000,
            default_retention_bytes: -1,
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub struct Compactor {
    metastore: Arc<dyn MetastoreClient>,
    config: CompactorConfig,
    gc: gc::Collector,
}

impl Compactor {
    pub fn new(
        metastore: Arc<dyn MetastoreClient>,
        store: Arc<dyn ObjectStore>,
        config: CompactorConfig,
    ) -> Self {
        let gc = gc::Collector::new(metastore.clone(), store, config.grace);
        Self {
            metastore,
            config,
            gc,
        }
    }

    /// Passes every `interval` until `shutdown`; a failed pass is logged and the next one tries
    /// again (everything a pass does is safe to repeat).
    pub async fn run(mut self, shutdown: CancellationToken) {
        info!(interval = ?self.config.interval, grace = ?self.config.grace, "compactor started");
        loop {
            if let Err(e) = self.pass().await {
                warn!(error = %e, "compactor pass failed; trying again next pass");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }

    /// One pass: retention, then garbage collection.
    pub async fn pass(
        &mut self,
    ) -> Result<gc::PassReport, skiff_metastore::client::MetastoreError> {
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
        let mut report = self.gc.pass().await?;
        report.partitions_trimmed = trimmed.len();
        Ok(report)
    }
}
