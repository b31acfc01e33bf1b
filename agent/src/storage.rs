//! The object store behind the agent: opened from a URL, wrapped so every request is counted and,
//! on the local filesystem, so a PUT is on disk before it returns.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    local::LocalFileSystem, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use skiff_metastore::types::ObjectId;

use crate::metrics::{Metrics, StoreOp};

#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    #[error("invalid object store url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot create object store directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// Where a flushed object lives in the store.
pub fn object_path(id: ObjectId) -> Path {
    Path::from(format!("objects/{id}.skiff"))
}

/// Opens `file:///abs/path`, `memory://` (tests; nothing survives a restart) or, in a later release,
/// `s3://bucket/prefix`.
pub fn open(url: &str, metrics: Arc<Metrics>) -> Result<Arc<dyn ObjectStore>, OpenStoreError> {
    let invalid = |reason: &str| OpenStoreError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (inner, fsync_root): (Arc<dyn ObjectStore>, Option<PathBuf>) =
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(invalid("file:// needs an absolute path"));
            }
            let root = PathBuf::from(path);
            std::fs::create_dir_all(&root).map_err(|source| OpenStoreError::CreateDir {
                path: root.clone(),
                source,
            })?;
            (
                Arc::new(LocalFileSystem::new_with_prefix(&root)?),
                Some(root),
            )
        } else if url == "memory://" || url == "memory:///" {
            (Arc::new(InMemory::new()), None)
        } else if url.starts_with("s3://") {
            return Err(invalid("S3 support is not built yet"));
        } else {
            return Err(invalid(
                "expected file:///path, memory:// or s3://bucket/prefix",
            ));
        };
    Ok(Arc::new(InstrumentedStore {
        inner,
        metrics,
        fsync_root,
    }))
}

/// Counts requests and bytes by kind, and makes local PUTs durable: `LocalFileSystem` renames a
/// temporary file into place but never fsyncs, and an acknowledged produce must survive a power cut.
pub struct InstrumentedStore {
    inner: Arc<dyn ObjectStore>,
    metrics: Arc<Metrics>,
    fsync_root: Option<PathBuf>,
}

impl fmt::Debug for InstrumentedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstrumentedStore({})", self.inner)
    }
}

impl fmt::Display for InstrumentedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstrumentedStore({})", self.inner)
    }
}

impl InstrumentedStore {
    async fn fsync(&self, location: &Path) -> object_store::Result<()> {
        let Some(root) = &self.fsync_root else {
            return Ok(());
        };
        let file = root.join(location.as_ref());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::File::open(&file)?.sync_all()?;
            if let Some(dir) = file.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        })?
        .map_err(|e| object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        })
    }
}

#[async_trait]
impl ObjectStore for InstrumentedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let len = payload.content_length() as u64;
        self.metrics.record_store(StoreOp::Put, len);
        let result = self.inner.put_opts(location, payload, opts).await?;
        self.fsync(location).await?;
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.metrics.record_store(StoreOp::Put, 0);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let result = self.inner.get_opts(location, options).await?;
        let len = result.range.end.saturating_sub(result.range.start);
        self.metrics.record_store(StoreOp::Get, len);
        Ok(result)
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        let bytes = self.inner.get_range(location, range).await?;
        self.metrics.record_store(StoreOp::Get, bytes.len() as u64);
        Ok(bytes)
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.metrics.record_store(StoreOp::Get, 0);
        self.inner.head(location).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.metrics.record_store(StoreOp::Delete, 0);
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.metrics.record_store(StoreOp::List, 0);
        self.inner.list(prefix).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.metrics.record_store(StoreOp::List, 0);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.metrics.record_store(StoreOp::Put, 0);
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.metrics.record_store(StoreOp::Put, 0);
        self.inner.copy_if_not_exists(from, to).await
    }
}
