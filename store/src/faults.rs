//! A fault injector for tests: added latency, errors, and responses lost after the write
//! happened — what a flaky network in front of S3 does. It is off unless a spec is given
//! (`--store-faults` on the agent), and documented as a test tool.
//!
//! Spec: comma-separated `key=value`:
//! - `error_rate=0.05`: that share of requests fails without reaching the store;
//! - `lost_response_rate=0.05`: that share reaches the store, takes effect, then reports an error;
//! - `latency_ms=50`: added before every request;
//! - `ops=put+get`: which requests are touched (`put`, `get` (GETs and HEADs), `list`, `delete`;
//!   default all);
//! - `seed=7`: a fixed seed for the random draws (default: random).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    pub error_rate: f64,
    pub lost_response_rate: f64,
    pub latency: Duration,
    pub puts: bool,
    pub gets: bool,
    pub lists: bool,
    pub deletes: bool,
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid fault spec {spec:?}: {reason}")]
pub struct FaultSpecError {
    spec: String,
    reason: String,
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| FaultSpecError {
            spec: spec.to_string(),
            reason,
        };
        let rate = |key: &str, v: &str| -> Result<f64, FaultSpecError> {
            match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(bad(format!("{key} must be a number from 0 to 1"))),
            }
        };
        let mut s = FaultSpec {
            puts: true,
            gets: true,
            lists: true,
            deletes: true,
            ..Default::default()
        };
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("{item:?} is not key=value")))?;
            match key.trim() {
                "error_rate" => s.error_rate = rate(key, value)?,
                "lost_response_rate" => s.lost_response_rate = rate(key, value)?,
                "latency_ms" => {
                    let ms = value
                        .parse()
                        .map_err(|_| bad("latency_ms must be a whole number".into()))?;
                    s.latency = Duration::from_millis(ms);
                }
                "seed" => {
                    s.seed = Some(
                        value
                            .parse()
                            .map_err(|_| bad("seed must be a whole number".into()))?,
                    )
                }
                "ops" => {
                    (s.puts, s.gets, s.lists, s.deletes) = (false, false, false, false);
                    for op in value.split('+') {
                        match op.trim() {
                            "put" => s.puts = true,
                            "get" => s.gets = true,
                            "list" => s.lists = true,
                            "delete" => s.deletes = true,
                            other => return Err(bad(format!("unknown op {other:?}"))),
                        }
                    }
                }
                other => return Err(bad(format!("unknown key {other:?}"))),
            }
        }
        Ok(s)
    }
}

/// The kinds of request the spec can select.
#[derive(Clone, Copy)]
enum Kind {
    Put,
    Get,
    List,
    Delete,
}

/// What to do to one request.
enum Fault {
    None,
    /// Fail before the request reaches the store.
    Error,
    /// Let the request take effect, then report a failure.
    LoseResponse,
}

#[derive(Debug, thiserror::Error)]
#[error("injected fault: {0}")]
pub struct Injected(&'static str);

pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    spec: FaultSpec,
    rng: Mutex<fastrand::Rng>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, spec: FaultSpec) -> Self {
        let rng = spec
            .seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Self {
            inner,
            spec,
            rng: Mutex::new(rng),
        }
    }

    /// Sleeps the added latency, then draws this request's fate.
    async fn draw(&self, kind: Kind) -> Fault {
        let selected = match kind {
            Kind::Put => self.spec.puts,
            Kind::Get => self.spec.gets,
            Kind::List => self.spec.lists,
            Kind::Delete => self.spec.deletes,
        };
        if !selected {
            return Fault::None;
        }
        if !self.spec.latency.is_zero() {
            tokio::time::sleep(self.spec.latency).await;
        }
        // A poisoned lock only means another request panicked mid-draw; the generator is fine.
        let x = self.rng.lock().unwrap_or_else(|p| p.into_inner()).f64();
        if x < self.spec.error_rate {
            Fault::Error
        } else if x < self.spec.error_rate + self.spec.lost_response_rate {
            Fault::LoseResponse
        } else {
            Fault::None
        }
    }

    async fn with_faults<T>(
        &self,
        kind: Kind,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        match self.draw(kind).await {
            Fault::None => request.await,
            Fault::Error => Err(injected("request failed (503 Slow Down)")),
            Fault::LoseResponse => {
                request.await?;
                Err(injected("connection reset after the request was applied"))
            }
        }
    }
}

fn injected(what: &'static str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faults",
        source: Box::new(Injected(what)),
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({}, {:?})", self.inner, self.spec)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.with_faults(Kind::Put, self.inner.put_opts(location, payload, opts))
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.with_faults(Kind::Put, self.inner.put_multipart_opts(location, opts))
            .await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.with_faults(Kind::Get, self.inner.get_opts(location, options))
            .await
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        self.with_faults(Kind::Get, self.inner.get_range(location, range))
            .await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.with_faults(Kind::Get, self.inner.head(location)).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.with_faults(Kind::Delete, self.inner.delete(location))
            .await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // Listings fail whole or not at all: the fault is drawn once, as the stream starts.
        let error = self.spec.lists && {
            let x = self.rng.lock().unwrap_or_else(|p| p.into_inner()).f64();
            x < self.spec.error_rate
        };
        if error {
            futures::stream::once(async { Err(injected("list failed")) }).boxed()
        } else {
            self.inner.list(prefix)
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.with_faults(Kind::List, self.inner.list_with_delimiter(prefix))
            .await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.with_faults(Kind::Put, self.inner.copy(from, to)).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.with_faults(Kind::Put, self.inner.copy_if_not_exists(from, to))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_spec() {
        let s: FaultSpec =
            "error_rate=0.05, latency_ms=50,lost_response_rate=0.1,ops=put+get,seed=3"
                .parse()
                .unwrap();
        assert_eq!(s.error_rate, 0.05);
        assert_eq!(s.lost_response_rate, 0.1);
        assert_eq!(s.latency, Duration::from_millis(50));
        assert!(s.puts && s.gets && !s.lists && !s.deletes);
        assert_eq!(s.seed, Some(3));
    }

    #[test]
    fn refuses_bad_specs() {
        for bad in [
            "error_rate=2",
            "latency_ms=-1",
            "nonsense",
            "ops=put+teleport",
            "x=1",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad} was accepted");
        }
    }
}
