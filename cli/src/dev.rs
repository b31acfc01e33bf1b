//! `skiff dev`: metastore, agent and object store in one process.

use std::sync::Arc;

use anyhow::Context;
use skiff_agent::batcher::Batcher;
use skiff_agent::clock::SystemClock;
use skiff_agent::context::Agent;
use skiff_agent::fetch::Reader;
use skiff_agent::metrics::{self, Metrics};
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::local::LocalMetastore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::settings::DevSettings;

pub async fn run(settings: DevSettings) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let store = skiff_agent::storage::open(&settings.object_store, metrics.clone())
        .context("opening the object store")?;
    let metastore = Arc::new(
        LocalMetastore::open(&settings.data_dir.join("metastore"))
            .await
            .context("opening the metastore")?,
    );
    let clock = Arc::new(SystemClock);
    let (batcher, batcher_task) = Batcher::spawn(
        &settings.agent,
        store.clone(),
        metastore.clone() as Arc<dyn MetastoreClient>,
        metrics.clone(),
        clock.clone(),
    );
    let agent = Arc::new(Agent {
        config: settings.agent.clone(),
        metastore: metastore.clone(),
        batcher,
        reader: Reader::new(store),
        metrics: metrics.clone(),
        clock,
    });

    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let metrics_task = {
        let shutdown = shutdown.clone();
        let addr = settings.metrics;
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(addr, metrics, shutdown).await {
                warn!(%addr, error = %e, "metrics endpoint failed");
            }
        })
    };
    info!(
        listen = %settings.listen,
        object_store = %settings.object_store,
        data_dir = %settings.data_dir.display(),
        "skiff dev started"
    );
    println!(
        "skiff ready: bootstrap={}:{}",
        settings.advertise.0, settings.advertise.1
    );

    let server = tokio::spawn(skiff_agent::server::run(
        agent.clone(),
        listener,
        shutdown.clone(),
    ));
    wait_for_signal().await;
    info!("shutting down: closing connections, flushing what is buffered");
    shutdown.cancel();
    if let Err(e) = server.await {
        warn!(error = %e, "server task failed");
    }
    // The last handle on the batcher goes with the agent: its window flushes and commits.
    drop(agent);
    if let Err(e) = batcher_task.await {
        warn!(error = %e, "batcher task failed");
    }
    metastore.shutdown().await;
    let _ = metrics_task.await;
    info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops skiff");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
