//! One agent's life, whichever metastore it talks to: open the object store, serve Kafka and
//! `/metrics` until SIGTERM or SIGINT, then flush what is buffered and stop.

use std::sync::Arc;

use anyhow::Context;
use skiff_agent::batcher::Batcher;
use skiff_agent::clock::SystemClock;
use skiff_agent::context::Agent;
use skiff_agent::fetch::Reader;
use skiff_agent::metrics::{self, Metrics};
use skiff_metastore::client::MetastoreClient;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::settings::AgentSettings;

/// Serves until a signal. `ready` is printed once clients can connect.
pub async fn run_agent(
    settings: &AgentSettings,
    metastore: Arc<dyn MetastoreClient>,
    role: &str,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let store = skiff_agent::storage::open(&settings.object_store, metrics.clone())
        .context("opening the object store")?;
    let clock = Arc::new(SystemClock);
    let (batcher, batcher_task) = Batcher::spawn(
        &settings.agent,
        store.clone(),
        metastore.clone(),
        metrics.clone(),
        clock.clone(),
    );
    let agent = Arc::new(Agent {
        config: settings.agent.clone(),
        metastore,
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
        "skiff {role} started"
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
    let _ = metrics_task.await;
    Ok(())
}

pub async fn wait_for_signal() {
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
