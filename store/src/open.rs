//! Opening a store from its URL, with the layers every role wants.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use crate::counting::{CountingStore, StoreObserver};
use crate::durable_fs::DurableFs;
use crate::faults::{FaultSpec, FaultyStore};
use crate::retry::{RetryPolicy, RetryingStore};

/// How to reach S3 or an S3-compatible server. Credentials are not settings: they come from
/// where every AWS tool finds them (see [`crate::aws`]).
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    /// `http(s)://host:port` of an S3-compatible server (MinIO); unset for AWS. Plain http is
    /// allowed when the endpoint says so.
    pub endpoint: Option<String>,
    /// The bucket's region; `AWS_REGION` (or `us-east-1`) when unset.
    pub region: Option<String>,
    /// `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`: what MinIO and most
    /// S3-compatible servers want.
    pub path_style: bool,
}

/// Everything that decides what [`open`] builds.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// `file:///abs/path`, `memory://` (tests; nothing survives a restart) or `s3://bucket/prefix`.
    pub url: String,
    pub s3: S3Settings,
    pub retry: RetryPolicy,
    /// Faults to inject (tests only).
    pub faults: Option<FaultSpec>,
}

impl StoreSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            s3: S3Settings::default(),
            retry: RetryPolicy::default(),
            faults: None,
        }
    }
}

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

/// Opens the store `settings.url` names, wrapped as the crate docs describe.
pub async fn open(
    settings: &StoreSettings,
    observer: Arc<dyn StoreObserver>,
) -> Result<Arc<dyn ObjectStore>, OpenStoreError> {
    let url = settings.url.as_str();
    let invalid = |reason: &str| OpenStoreError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let mut store: Arc<dyn ObjectStore> = if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(invalid("file:// needs an absolute path"));
        }
        let root = PathBuf::from(path);
        Arc::new(
            DurableFs::new(root.clone())
                .map_err(|source| OpenStoreError::CreateDir { path: root, source })?,
        )
    } else if url == "memory://" || url == "memory:///" {
        Arc::new(InMemory::new())
    } else if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("s3:// needs a bucket: s3://bucket/prefix"));
        }
        let s3 = s3(bucket, &settings.s3, &settings.retry).await?;
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            s3
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        }
    } else {
        return Err(invalid(
            "expected file:///path, memory:// or s3://bucket/prefix",
        ));
    };
    if let Some(spec) = &settings.faults {
        store = Arc::new(FaultyStore::new(store, spec.clone()));
    }
    let counted: Arc<dyn ObjectStore> = Arc::new(CountingStore::new(store, observer.clone()));
    Ok(Arc::new(RetryingStore::new(
        counted,
        settings.retry.clone(),
        observer,
    )))
}

async fn s3(
    bucket: &str,
    settings: &S3Settings,
    retry: &RetryPolicy,
) -> Result<Arc<dyn ObjectStore>, OpenStoreError> {
    let sdk = crate::aws::sdk_config(settings).await;
    let Some(chain) = sdk.credentials_provider() else {
        return Err(OpenStoreError::InvalidUrl {
            url: format!("s3://{bucket}"),
            reason: "no AWS credentials provider could be set up".into(),
        });
    };
    let region = sdk
        .region()
        .map_or_else(|| "us-east-1".to_string(), |r| r.to_string());
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_credentials(Arc::new(crate::aws::SdkCredentials::new(chain)))
        // A directory bucket (S3 Express One Zone) is named `base--azid--x-s3`; it needs
        // session credentials and its zonal endpoint, which object_store handles once told.
        .with_s3_express(bucket.ends_with("--x-s3"))
        // Retries are ours (RetryingStore): one policy, one count, and a deadline per try.
        // object_store's own would retry for up to three minutes underneath it.
        .with_retry(RetryConfig {
            max_retries: 0,
            retry_timeout: retry.attempt_timeout,
            ..Default::default()
        })
        .with_client_options(
            ClientOptions::new()
                .with_timeout(retry.attempt_timeout)
                .with_connect_timeout(Duration::from_secs(5).min(retry.attempt_timeout)),
        );
    if let Some(endpoint) = &settings.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if settings.path_style {
        builder = builder.with_virtual_hosted_style_request(false);
    }
    Ok(Arc::new(builder.build()?))
}
