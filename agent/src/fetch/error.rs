//! Why a partition's batches could not be read. Clone, because one failed GET fails every
//! partition that shared it.

use std::sync::Arc;

use skiff_format::batch::BatchError;
use skiff_format::run::IndexError;
use skiff_metastore::types::ObjectId;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadError {
    #[error("object store: {0}")]
    Store(Arc<object_store::Error>),
    #[error("object {object} returned {got} bytes for a {want}-byte range")]
    ShortRead {
        object: ObjectId,
        want: u64,
        got: usize,
    },
    #[error("bytes at {position} of object {object} are outside every span read")]
    NotRead { object: ObjectId, position: u64 },
    #[error("run at {position} of object {object}: {source}")]
    Batches {
        object: ObjectId,
        position: u64,
        source: BatchError,
    },
    /// The batches' offsets disagree with the run's index entry: returning them would hand a
    /// consumer records under offsets other records hold.
    #[error("run at {position} of object {object} (offsets {base}..={last}): {what}")]
    Offsets {
        object: ObjectId,
        position: u64,
        base: i64,
        last: i64,
        what: &'static str,
    },
    #[error("segment index of the run at {position} of object {object}: {source}")]
    Index {
        object: ObjectId,
        position: u64,
        source: IndexError,
    },
    #[error("segment index of the run at {position} of object {object}: {what}")]
    IndexBounds {
        object: ObjectId,
        position: u64,
        what: &'static str,
    },
}
