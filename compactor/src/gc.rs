//! Garbage collection of objects. Two kinds of garbage:
//!
//! - **unreferenced**: committed objects the index no longer points at (trimmed by retention or
//!   DeleteRecords, of a deleted topic, or holding only duplicates). The metastore lists them;
//!   each is deleted `grace` after this compactor first saw it unreferenced, so a fetch that read
//!   the index just before the trim still finds its bytes. Then the metastore forgets it.
//! - **orphans**: objects in the store the metastore does not know: uploaded by an agent that
//!   died (or failed) before its commit, or whose commit was refused. Deleted once
//!   `orphan_grace` has passed since they were made, by their id's time (a ULID) and by their
//!   upload's, whichever is later. The metastore refuses a commit of an object older than
//!   `MAX_COMMIT_AGE_MS` by that same id, and the orphan grace is longer (at least
//!   `ORPHAN_GRACE_FLOOR`): by then any commit of theirs has landed or never will. Measuring
//!   from the id cancels the agent's clock out of that comparison; only the compactor's and the
//!   metastore leader's clocks are compared, within the floor's margin.
//!
//! Deleting first and forgetting after makes every step safe to repeat: a compactor that dies in
//! between finds the object unreferenced again, deletes nothing (already gone) and forgets it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::ObjectId;
use tracing::{info, warn};

use crate::object_path;

/// Objects asked about per metastore read during the orphan sweep.
const KNOWN_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("listing objects: {0}")]
    List(#[from] object_store::Error),
    #[error("asking the metastore: {0}")]
    Metastore(#[from] MetastoreError),
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub partitions_trimmed: usize,
    pub unreferenced_deleted: usize,
    pub orphans_deleted: usize,
    pub bytes_deleted: u64,
    /// Garbage seen but still inside its grace period.
    pub waiting: usize,
}

pub struct Collector {
    metastore: Arc<dyn MetastoreClient>,
    store: Arc<dyn ObjectStore>,
    grace: Duration,
    orphan_grace: Duration,
    /// When each unreferenced object was first seen so. In memory only: a restarted compactor
    /// waits a full grace period again, which errs on the safe side.
    first_seen: HashMap<ObjectId, Instant>,
}

fn object_id(path: &Path) -> Option<ObjectId> {
    let name = path.filename()?.strip_suffix(".skiff")?;
    ulid::Ulid::from_string(name).ok().map(ObjectId)
}

impl Collector {
    pub fn new(
        metastore: Arc<dyn MetastoreClient>,
        store: Arc<dyn ObjectStore>,
        grace: Duration,
        orphan_grace: Duration,
    ) -> Self {
        Self {
            metastore,
            store,
            grace,
            orphan_grace,
            first_seen: HashMap::new(),
        }
    }

    pub async fn pass(&mut self) -> Result<PassReport, MetastoreError> {
        let mut report = PassReport::default();
        self.unreferenced(&mut report).await?;
        if let Err(e) = self.orphans(&mut report).await {
            warn!(error = %e, "orphan sweep failed; trying again next pass");
        }
        if report.unreferenced_deleted + report.orphans_deleted > 0 {
            info!(?report, "garbage collected");
        }
        Ok(report)
    }

    async fn unreferenced(&mut self, report: &mut PassReport) -> Result<(), MetastoreError> {
        let now = Instant::now();
        let garbage = self.metastore.unreferenced_objects().await?;
        // Forget first sightings of objects that are gone (forgotten by another compactor).
        let current: std::collections::HashSet<ObjectId> =
            garbage.iter().map(|g| g.object).collect();
        self.first_seen.retain(|id, _| current.contains(id));
        let mut deleted = Vec::new();
        for g in garbage {
            let seen = *self.first_seen.entry(g.object).or_insert(now);
            if now.duration_since(seen) < self.grace {
                report.waiting += 1;
                continue;
            }
            match self.store.delete(&object_path(g.object)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    deleted.push(g.object);
                    report.bytes_deleted += g.size;
                }
                Err(e) => {
                    warn!(object = %g.object, error = %e, "deleting an unreferenced object failed")
                }
            }
        }
        if !deleted.is_empty() {
            let forgotten = self.metastore.forget_objects(deleted).await?;
            report.unreferenced_deleted += forgotten.len();
            for id in forgotten {
                self.first_seen.remove(&id);
            }
        }
        Ok(())
    }

    async fn orphans(&mut self, report: &mut PassReport) -> Result<(), SweepError> {
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&Path::from("objects")))
            .try_collect()
            .await?;
        let grace_ms = i64::try_from(self.orphan_grace.as_millis()).unwrap_or(i64::MAX);
        let cutoff = crate::now_ms().saturating_sub(grace_ms);
        for chunk in listed.chunks(KNOWN_BATCH) {
            let candidates: Vec<(ObjectId, &object_store::ObjectMeta)> = chunk
                .iter()
                .filter_map(|m| object_id(&m.location).map(|id| (id, m)))
                .collect();
            let known = self
                .metastore
                .objects_known(candidates.iter().map(|(id, _)| *id).collect())
                .await?;
            for ((id, meta), known) in candidates.into_iter().zip(known) {
                if known {
                    continue;
                }
                let made_ms = i64::try_from(id.0.timestamp_ms()).unwrap_or(i64::MAX);
                if meta.last_modified.timestamp_millis().max(made_ms) > cutoff {
                    report.waiting += 1;
                    continue;
                }
                match self.store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        info!(object = %id, size = meta.size, "deleted an orphan (uploaded, never committed)");
                        report.orphans_deleted += 1;
                        report.bytes_deleted += meta.size;
                    }
                    Err(e) => warn!(object = %id, error = %e, "deleting an orphan failed"),
                }
            }
        }
        Ok(())
    }
}
