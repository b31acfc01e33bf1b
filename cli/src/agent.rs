//! `skiff agent`: a stateless agent of a metastore quorum.

use std::sync::Arc;

use anyhow::Context;
use skiff_metastore::rpc::remote::{RemoteMetastore, RemoteOptions};
use tracing::info;

use crate::serve::run_agent;
use crate::settings::RemoteAgentSettings;

pub async fn run(settings: RemoteAgentSettings) -> anyhow::Result<()> {
    let options = RemoteOptions {
        auth: settings.cluster_auth.clone(),
        ..RemoteOptions::default()
    };
    let metastore = RemoteMetastore::new(settings.metastore.clone(), options)
        .map_err(anyhow::Error::msg)
        .context("metastore client")?;
    info!(metastore = ?settings.metastore, "agent uses this metastore");
    run_agent(&settings.agent, Arc::new(metastore), None, "agent").await?;
    info!("stopped");
    Ok(())
}
