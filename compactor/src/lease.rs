//! A compactor's claims on units of work, held in the metastore ([`AcquireLeases`]): one holder
//! per key until a deadline, so that compactors running side by side skip what another is
//! doing. Safety never rests on them (every rewrite is a conditional swap); they save work.

use std::sync::Arc;
use std::time::Duration;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::{AcquireLeases, TopicPartition};
use tracing::debug;

/// The lease one compactor holds on a partition while it rewrites it (merge or compaction).
pub fn rewrite_key(tp: &TopicPartition) -> String {
    format!("rewrite/{}/{}", tp.topic_id, tp.partition)
}

/// The lease on a partition's Parquet export.
pub fn export_key(tp: &TopicPartition) -> String {
    format!("export/{}/{}", tp.topic_id, tp.partition)
}

/// The lease on retention and garbage collection, which one compactor at a time runs.
pub const HOUSEKEEPING: &str = "housekeeping";

#[derive(Clone)]
pub struct Leases {
    metastore: Arc<dyn MetastoreClient>,
    holder: String,
    ttl: Duration,
}

impl Leases {
    pub fn new(metastore: Arc<dyn MetastoreClient>, holder: String, ttl: Duration) -> Self {
        Self {
            metastore,
            holder,
            ttl,
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes (or renews) `keys` for the lease period; answers those now held.
    pub async fn acquire(&self, keys: Vec<String>) -> Result<Vec<String>, MetastoreError> {
        let granted = self
            .metastore
            .acquire_leases(AcquireLeases {
                holder: self.holder.clone(),
                keys: keys.clone(),
                ttl_ms: i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX),
                now_ms: crate::now_ms(),
            })
            .await?;
        Ok(keys
            .into_iter()
            .zip(granted)
            .filter_map(|(k, held)| held.then_some(k))
            .collect())
    }

    /// Whether `key` is now held.
    pub async fn acquire_one(&self, key: String) -> Result<bool, MetastoreError> {
        Ok(!self.acquire(vec![key]).await?.is_empty())
    }

    /// Gives `keys` back; a failure only means they expire instead.
    pub async fn release(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        if let Err(e) = self.metastore.release_leases(&self.holder, keys).await {
            debug!(error = %e, "releasing leases failed; they expire");
        }
    }
}
