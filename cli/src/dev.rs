//! `skiff dev`: metastore, agent and object store in one process.

use std::sync::Arc;

use anyhow::Context;
use skiff_metastore::local::LocalMetastore;
use tracing::info;

use crate::serve::run_agent;
use crate::settings::DevSettings;

pub async fn run(settings: DevSettings) -> anyhow::Result<()> {
    let metastore = Arc::new(
        LocalMetastore::open(&settings.data_dir.join("metastore"))
            .await
            .context("opening the metastore")?,
    );
    info!(data_dir = %settings.data_dir.display(), "metastore open");
    let served = run_agent(
        &settings.agent,
        metastore.clone(),
        Some(settings.compactor.clone()),
        "dev",
    )
    .await;
    metastore.shutdown().await;
    info!("stopped");
    served
}
