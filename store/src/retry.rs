//! Retries with backoff and jitter, a deadline on every attempt, and an honest answer about what a
//! failed request may have done.
//!
//! A request that got an error or no answer in time is tried again, up to `max_retries` times,
//! after a random pause of up to `base_backoff * 2^n` (capped at `max_backoff`): full jitter, so
//! agents that failed together do not retry together. Errors that another try cannot fix (not
//! found, precondition failed, permission denied, ...) are returned at once, unchanged.
//!
//! When the tries run out the caller gets an [`Exhausted`] error that says whether the request
//! *certainly failed* or whether its *outcome is unknown*: a PUT or DELETE that timed out, or
//! whose connection broke, may have been applied by the server anyway. Callers must treat
//! unknown as "maybe": the write path gives every object a unique name, never acknowledges a
//! produce whose object PUT did not succeed, and leaves a maybe-written object to orphan cleanup.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tracing::debug;

use crate::counting::{Op, StoreObserver};

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Tries after the first.
    pub max_retries: u32,
    /// How long one try may take before it is abandoned (and its outcome is unknown).
    pub attempt_timeout: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            attempt_timeout: Duration::from_secs(10),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause before try `n + 1` (n ≥ 1): uniform in [0, min(max, base · 2^(n-1))].
    fn backoff(&self, n: u32) -> Duration {
        let ms = u64::try_from(self.backoff_ceiling(n).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=ms))
    }

    /// The longest a call can take, all tries and pauses included.
    pub fn worst_case(&self) -> Duration {
        let tries = self.max_retries.saturating_add(1);
        let pauses: Duration = (1..tries).map(|n| self.backoff_ceiling(n)).sum();
        self.attempt_timeout.saturating_mul(tries) + pauses
    }

    /// The longest pause before try `n + 1`: base · 2^(n-1), capped.
    fn backoff_ceiling(&self, n: u32) -> Duration {
        self.base_backoff
            .saturating_mul(1u32 << n.saturating_sub(1).min(20))
            .min(self.max_backoff)
    }
}

/// What a request that kept failing may have done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed in the store (or the request changes nothing: a read).
    CertainlyFailed,
    /// A write whose answer was lost or late: it may have been applied.
    Unknown,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::CertainlyFailed => "certainly failed",
            Outcome::Unknown => "outcome unknown",
        })
    }
}

/// The error of a request whose tries ran out.
#[derive(Debug, thiserror::Error)]
#[error("{op} {location}: {outcome} after {attempts} tries; last: {last}")]
pub struct Exhausted {
    pub op: Op,
    pub location: String,
    pub attempts: u32,
    pub outcome: Outcome,
    pub last: String,
}

/// True when `e` is a write that may have been applied although it reported failure.
pub fn outcome_unknown(e: &object_store::Error) -> bool {
    match e {
        object_store::Error::Generic { source, .. } => source
            .downcast_ref::<Exhausted>()
            .is_some_and(|x| x.outcome == Outcome::Unknown),
        _ => false,
    }
}

/// Whether another try could succeed: server errors, broken connections and timeouts can; an
/// answer about the request itself (missing object, failed precondition, bad credentials) cannot.
fn retriable(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
    )
}

pub struct RetryingStore {
    inner: Arc<dyn ObjectStore>,
    policy: RetryPolicy,
    observer: Arc<dyn StoreObserver>,
}

impl RetryingStore {
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        policy: RetryPolicy,
        observer: Arc<dyn StoreObserver>,
    ) -> Self {
        Self {
            inner,
            policy,
            observer,
        }
    }

    async fn run<T, F, Fut>(
        &self,
        op: Op,
        location: &Path,
        mut attempt: F,
    ) -> object_store::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let mut tries = 0u32;
        loop {
            tries += 1;
            let last = match tokio::time::timeout(self.policy.attempt_timeout, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if !retriable(&e) => return Err(e),
                Ok(Err(e)) => e.to_string(),
                Err(_) => {
                    // The layers below never see the end of a try abandoned here, so it is
                    // counted as failed here: a store that answers nothing (a frozen server)
                    // must show as failures, not as silence.
                    self.observer.failed(op);
                    format!("no answer within {:?}", self.policy.attempt_timeout)
                }
            };
            if tries > self.policy.max_retries {
                // Every failed try of a write was ambiguous: a broken connection or a timeout
                // does not say whether the server applied it. Reads change nothing.
                let outcome = if op.mutates() {
                    Outcome::Unknown
                } else {
                    Outcome::CertainlyFailed
                };
                return Err(object_store::Error::Generic {
                    store: "retry",
                    source: Box::new(Exhausted {
                        op,
                        location: location.to_string(),
                        attempts: tries,
                        outcome,
                        last,
                    }),
                });
            }
            self.observer.retried(op);
            let pause = self.policy.backoff(tries);
            debug!(%op, %location, tries, error = %last, ?pause, "object-store request failed; retrying");
            tokio::time::sleep(pause).await;
        }
    }
}

impl fmt::Debug for RetryingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Retrying({})", self.inner)
    }
}

impl fmt::Display for RetryingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Retrying({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for RetryingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        // The payload is reference-counted chunks: a retry re-sends them without copying.
        self.run(Op::Put, location, || {
            self.inner.put_opts(location, payload.clone(), opts.clone())
        })
        .await
    }

    /// Creating the upload is retried; its parts are not (a part's number is fixed when it is
    /// handed out, so a part cannot be re-sent through this trait). Callers that upload in
    /// parts retry the whole upload.
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.run(Op::MultipartCreate, location, || {
            self.inner.put_multipart_opts(location, opts.clone())
        })
        .await
    }

    /// Retried until the answer's head arrives; the body streams without a deadline.
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.run(Op::Get, location, || {
            self.inner.get_opts(location, options.clone())
        })
        .await
    }

    /// Retried whole, body included: a fetch needs all the bytes or none.
    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        self.run(Op::RangedGet, location, || {
            self.inner.get_range(location, range.clone())
        })
        .await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.run(Op::RangedGet, location, || {
            self.inner.get_ranges(location, ranges)
        })
        .await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.run(Op::Head, location, || self.inner.head(location))
            .await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.run(Op::Delete, location, || self.inner.delete(location))
            .await
    }

    /// Not retried: a listing is a stream of pages, and its consumer restarts it if it fails.
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let location = prefix.cloned().unwrap_or_default();
        self.run(Op::List, &location, || {
            self.inner.list_with_delimiter(prefix)
        })
        .await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.run(Op::Copy, to, || self.inner.copy(from, to)).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.run(Op::Copy, to, || self.inner.copy_if_not_exists(from, to))
            .await
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
