//! `skiff compactor`: retention, merging and garbage collection for a cluster, as its own
//! process. Any number may run against one metastore: they share the work through leases.

use std::sync::Arc;

use anyhow::Context;
use skiff_agent::metrics::Metrics;
use skiff_metastore::rpc::remote::{RemoteMetastore, RemoteOptions};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::serve::{metrics_endpoint, wait_for_signal};
use crate::settings::CompactorSettings;

pub async fn run(settings: CompactorSettings) -> anyhow::Result<()> {
    let options = RemoteOptions {
        auth: settings.cluster_auth.clone(),
        ..RemoteOptions::default()
    };
    let metastore = RemoteMetastore::new(settings.metastore.clone(), options)
        .map_err(anyhow::Error::msg)
        .context("metastore client")?;
    // The agent's metrics count the compactor's object-store requests and their cost alike.
    let compactor_metrics = Arc::new(skiff_compactor::metrics::CompactorMetrics::default());
    let metrics = Metrics::with_others(skiff_store::RequestPrices::default(), |r| {
        compactor_metrics.register(r)
    });
    let store = skiff_agent::storage::open(&settings.object_store, metrics.clone())
        .await
        .context("opening the object store")?;
    let shutdown = CancellationToken::new();
    let metrics_task = metrics_endpoint(settings.metrics, metrics, shutdown.clone()).await?;
    let compactor =
        skiff_compactor::Compactor::new(Arc::new(metastore), store, settings.compactor.clone())?
            .with_metrics(compactor_metrics);
    let task = tokio::spawn(compactor.run(shutdown.clone()));
    info!(metastore = ?settings.metastore, object_store = %settings.object_store.url, "skiff compactor started");
    println!("skiff compactor ready: metrics={}", settings.metrics);
    wait_for_signal().await;
    info!("shutting down");
    shutdown.cancel();
    let _ = task.await;
    let _ = metrics_task.await;
    Ok(())
}
