//! AWS configuration the way every AWS tool reads it: credentials from the environment, the
//! shared profile files (`AWS_PROFILE`, `~/.aws/credentials`, `credential_process`), web identity,
//! the ECS task role or the EC2 instance role, in that order; the region likewise. object_store's
//! S3 client reads only some of these, so Skiff gives it the SDK's chain instead.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use object_store::aws::AwsCredential;
use object_store::CredentialProvider;
use tokio::sync::Mutex;

use crate::open::S3Settings;

/// The SDK's configuration, with `settings` (region, endpoint) taking precedence over what the
/// environment and profile say.
pub async fn sdk_config(settings: &S3Settings) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Renew credentials this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The SDK's credentials chain as object_store's credential provider, with a cache: the chain
/// itself does not cache, and the instance-metadata service must not be asked per request.
#[derive(Debug)]
pub struct SdkCredentials {
    chain: SharedCredentialsProvider,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    pub fn new(chain: SharedCredentialsProvider) -> Self {
        Self {
            chain,
            cached: Mutex::new(None),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no AWS credentials: {0}")]
struct NoCredentials(String);

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        // One refresh at a time: the lock is held across it, so concurrent requests wait for
        // the same answer instead of each asking the chain.
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|at| {
                at.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > REFRESH_MARGIN)
            });
            if fresh {
                return Ok(credential.clone());
            }
        }
        let c = self
            .chain
            .provide_credentials()
            .await
            // Generic, so the retry layer tries again: the metadata service can be briefly away.
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(NoCredentials(e.to_string())),
            })?;
        let credential = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), c.expiry()));
        Ok(credential)
    }
}
