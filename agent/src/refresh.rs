//! Reading something from the metastore again and again: the dynamic broker configs and the
//! ACLs, which every agent keeps a copy of.

use std::future::Future;
use std::time::Duration;

use skiff_metastore::client::MetastoreError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Runs `read` every `every` until `shutdown`; a failed read is logged and the copy kept.
pub fn every<F, Fut>(
    what: &'static str,
    every: Duration,
    shutdown: CancellationToken,
    mut read: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), MetastoreError>> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = read().await {
                warn!(error = %e, "reading the {what} failed; keeping the last");
            }
        }
    })
}
