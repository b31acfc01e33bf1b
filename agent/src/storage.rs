//! Where the agent keeps its objects. Opening a store and its layers (retry, accounting, faults)
//! is `skiff_store`'s; what is the agent's is the naming of objects.

use std::sync::Arc;

use object_store::path::Path;
use object_store::ObjectStore;
use skiff_metastore::types::ObjectId;

use crate::metrics::Metrics;

/// Where a flushed object lives in the store. The ULID makes every name unique, so a PUT retried
/// after an unknown outcome writes the same bytes to the same place, and never over another's.
pub fn object_path(id: ObjectId) -> Path {
    Path::from(format!("objects/{id}.skiff"))
}

pub use skiff_store::{OpenStoreError, StoreSettings};

/// Opens the store with the agent's metrics counting its requests.
pub async fn open(
    settings: &StoreSettings,
    metrics: Arc<Metrics>,
) -> Result<Arc<dyn ObjectStore>, OpenStoreError> {
    skiff_store::open(settings, metrics).await
}
