//! Request accounting: every request that reaches the backend, by kind, with the bytes it moved.
//! The counts are what an S3 bill counts, so the cost report and `/metrics` are built on them.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// A kind of object-store request, as S3 bills and as `/metrics` labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Put,
    /// A GET of a whole object.
    Get,
    /// A GET with a byte range: how fetches read.
    RangedGet,
    Head,
    List,
    Delete,
    Copy,
    MultipartCreate,
    MultipartPart,
    MultipartComplete,
    MultipartAbort,
}

/// How S3 prices a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceClass {
    /// PUT, COPY, POST, LIST: the dear tier ($0.005 per 1,000 in us-east-1).
    Write,
    /// GET, HEAD and the rest: the cheap tier ($0.0004 per 1,000).
    Read,
    /// DELETE and aborting an upload cost nothing.
    Free,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Put,
        Op::Get,
        Op::RangedGet,
        Op::Head,
        Op::List,
        Op::Delete,
        Op::Copy,
        Op::MultipartCreate,
        Op::MultipartPart,
        Op::MultipartComplete,
        Op::MultipartAbort,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::RangedGet => "ranged_get",
            Op::Head => "head",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Copy => "copy",
            Op::MultipartCreate => "multipart_create",
            Op::MultipartPart => "multipart_part",
            Op::MultipartComplete => "multipart_complete",
            Op::MultipartAbort => "multipart_abort",
        }
    }

    pub fn price_class(self) -> PriceClass {
        match self {
            Op::Put
            | Op::List
            | Op::Copy
            | Op::MultipartCreate
            | Op::MultipartPart
            | Op::MultipartComplete => PriceClass::Write,
            Op::Get | Op::RangedGet | Op::Head => PriceClass::Read,
            Op::Delete | Op::MultipartAbort => PriceClass::Free,
        }
    }

    /// Whether a request of this kind changes the store, so that one whose answer was lost may
    /// have happened.
    pub fn mutates(self) -> bool {
        !matches!(self, Op::Get | Op::RangedGet | Op::Head | Op::List)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Told about every request; the agent and the compactor turn this into their metrics.
pub trait StoreObserver: Send + Sync + 'static {
    /// One request sent to the backend, with the payload bytes it carried or asked for.
    fn request(&self, op: Op, bytes: u64);
    /// One request that failed (it was counted by `request` too).
    fn failed(&self, _op: Op) {}
    /// A request the retry layer is about to send again.
    fn retried(&self, _op: Op) {}
}

/// An observer that ignores everything: for tests and tools that do not report.
pub struct NoObserver;

impl StoreObserver for NoObserver {
    fn request(&self, _op: Op, _bytes: u64) {}
}

/// Counts each request that passes through it, and each failure.
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    observer: Arc<dyn StoreObserver>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>, observer: Arc<dyn StoreObserver>) -> Self {
        Self { inner, observer }
    }

    fn observe<T>(&self, op: Op, result: object_store::Result<T>) -> object_store::Result<T> {
        if result.is_err() {
            self.observer.failed(op);
        }
        result
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.observer
            .request(Op::Put, payload.content_length() as u64);
        let r = self.inner.put_opts(location, payload, opts).await;
        self.observe(Op::Put, r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.observer.request(Op::MultipartCreate, 0);
        let r = self.inner.put_multipart_opts(location, opts).await;
        let upload = self.observe(Op::MultipartCreate, r)?;
        Ok(Box::new(CountingUpload {
            inner: upload,
            observer: self.observer.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head {
            Op::Head
        } else if options.range.is_some() {
            Op::RangedGet
        } else {
            Op::Get
        };
        let r = self.inner.get_opts(location, options).await;
        // Bytes are known once the answer names its range; a failed GET moved none.
        let bytes = r.as_ref().map_or(0, |g| {
            if op == Op::Head {
                0
            } else {
                g.range.end.saturating_sub(g.range.start)
            }
        });
        self.observer.request(op, bytes);
        self.observe(op, r)
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        let r = self.inner.get_range(location, range).await;
        self.observer
            .request(Op::RangedGet, r.as_ref().map_or(0, |b| b.len() as u64));
        self.observe(Op::RangedGet, r)
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.observer.request(Op::Head, 0);
        let r = self.inner.head(location).await;
        self.observe(Op::Head, r)
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.observer.request(Op::Delete, 0);
        let r = self.inner.delete(location).await;
        self.observe(Op::Delete, r)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // A listing is one request per page of 1,000 keys; counting pages would need the
        // backend's paging, so this counts listings (a lower bound for large prefixes).
        self.observer.request(Op::List, 0);
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.observer.request(Op::List, 0);
        let r = self.inner.list_with_delimiter(prefix).await;
        self.observe(Op::List, r)
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.observer.request(Op::Copy, 0);
        let r = self.inner.copy(from, to).await;
        self.observe(Op::Copy, r)
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.observer.request(Op::Copy, 0);
        let r = self.inner.copy_if_not_exists(from, to).await;
        self.observe(Op::Copy, r)
    }
}

/// Counts the parts of a multipart upload and its completion.
#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
    observer: Arc<dyn StoreObserver>,
}

impl fmt::Debug for dyn StoreObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreObserver")
    }
}

#[async_trait]
impl MultipartUpload for CountingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.observer
            .request(Op::MultipartPart, data.content_length() as u64);
        let observer = self.observer.clone();
        let part = self.inner.put_part(data);
        Box::pin(async move {
            let r = part.await;
            if r.is_err() {
                observer.failed(Op::MultipartPart);
            }
            r
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.observer.request(Op::MultipartComplete, 0);
        let r = self.inner.complete().await;
        if r.is_err() {
            self.observer.failed(Op::MultipartComplete);
        }
        r
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.observer.request(Op::MultipartAbort, 0);
        self.inner.abort().await
    }
}
