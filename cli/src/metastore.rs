//! `skiff metastore`: one node of the metastore quorum, and the admin calls that manage it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use skiff_metastore::rpc::admin::Admin;
use skiff_metastore::rpc::server;
use skiff_metastore::{LocalMetastore, LocalMetastoreOptions};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::serve::wait_for_signal;
use crate::settings::{parse_members, MetastoreSettings};

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Initialise a new cluster (the same as starting its members with --initial-members)
    Init {
        /// Any member's RPC address
        #[arg(long)]
        at: String,
        /// Every initial member, id=host:port comma-separated
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
    },
    /// Add a node (already running, empty or not) as a voter; returns once it has caught up
    AddNode {
        /// Any member's RPC address; the call is forwarded to the leader
        #[arg(long)]
        at: String,
        #[arg(long)]
        id: u64,
        /// The new node's RPC address
        #[arg(long)]
        addr: String,
        /// Give up (and leave the membership as it was) if the node has not caught up by then
        #[arg(long, default_value_t = skiff_metastore::rpc::DEFAULT_CATCH_UP_SECS)]
        timeout_secs: u64,
    },
    /// Remove a node from the voters
    RemoveNode {
        #[arg(long)]
        at: String,
        #[arg(long)]
        id: u64,
    },
    /// Print a node's view: role, term, leader, log and applied indexes, membership (JSON)
    Status {
        #[arg(long)]
        at: String,
    },
}

pub async fn run_node(settings: MetastoreSettings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let listener = server::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let mut options = LocalMetastoreOptions {
        node_id: settings.node_id,
        clustered: true,
        cluster_auth: settings.cluster_auth.clone(),
        ..Default::default()
    };
    if let Some(every) = settings.snapshot_every {
        options.snapshot_every = every;
        // Keep a quarter of an interval behind the snapshot, so a briefly lagging follower
        // catches up from the log rather than a whole snapshot.
        options.logs_to_keep = (every / 4).max(1);
    }
    if let Some(ratio) = settings.snapshot_log_ratio {
        options.snapshot_log_ratio = ratio;
    }
    let node = Arc::new(
        LocalMetastore::open_with(&settings.data_dir, options)
            .await
            .context("opening the metastore node")?,
    );
    let shutdown = CancellationToken::new();
    let served = tokio::spawn(server::serve(
        listener,
        node.clone(),
        settings.cluster_auth.clone(),
        shutdown.clone(),
    ));
    if !settings.initial_members.is_empty() {
        node.initialize(settings.initial_members.clone())
            .await
            .context("initialising the cluster")?;
    }
    info!(
        node_id = settings.node_id,
        listen = %settings.listen,
        advertise = %settings.advertise,
        data_dir = %settings.data_dir.display(),
        "skiff metastore started"
    );
    println!(
        "skiff metastore ready: node={} rpc={}",
        settings.node_id, settings.advertise
    );
    wait_for_signal().await;
    info!("shutting down");
    shutdown.cancel();
    match served.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "rpc server failed"),
        Err(e) => warn!(error = %e, "rpc server task failed"),
    }
    node.shutdown().await;
    info!("stopped");
    Ok(())
}

/// One line on how far node `id` has caught up, as the leader sees it; `None` while that
/// cannot be told (no leader known, the leader unreachable).
async fn catch_up_line(admin: &Admin, at: &str, id: u64) -> Option<String> {
    let here = admin.status(at).await.ok()?;
    let leader = here.leader?;
    let status = if leader == here.id {
        here
    } else {
        let addr = here.voters.get(&leader)?;
        admin.status(addr).await.ok()?
    };
    let last = status.last_log_index.unwrap_or(0);
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    Some(
        match (status.snapshot_sent.get(&id), status.replication.get(&id)) {
            (Some(sent), _) => format!(
                "node {id}: receiving a snapshot, {:.1} of {:.1} MiB",
                mib(*sent),
                mib(status.snapshot_bytes)
            ),
            (None, Some(Some(matched))) => {
                format!("node {id}: holds the log to {matched} of {last}")
            }
            (None, Some(None)) => format!("node {id}: being reached"),
            (None, None) => format!("node {id}: joining"),
        },
    )
}

pub async fn admin(cmd: AdminCommand) -> anyhow::Result<()> {
    let admin = Admin::with_auth(crate::settings::cluster::ClusterAuthFlags::from_env()?)
        .map_err(anyhow::Error::msg)
        .context("the metastore RPC client")?;
    match cmd {
        AdminCommand::Init { at, members } => {
            admin.init(&at, parse_members(&members)?).await?;
            println!("initialised");
        }
        AdminCommand::AddNode {
            at,
            id,
            addr,
            timeout_secs,
        } => {
            let timeout = Duration::from_secs(timeout_secs);
            let adding = admin.add_node(&at, id, addr, timeout);
            tokio::pin!(adding);
            let mut shown = String::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    done = &mut adding => {
                        done?;
                        break;
                    }
                    _ = tick.tick() => {
                        if let Some(line) = catch_up_line(&admin, &at, id).await {
                            if line != shown {
                                println!("{line}");
                                shown = line;
                            }
                        }
                    }
                }
            }
            println!("node {id} added: caught up and promoted to voter");
        }
        AdminCommand::RemoveNode { at, id } => {
            admin.remove_node(&at, id).await?;
            println!("node {id} removed");
        }
        AdminCommand::Status { at } => {
            let status = admin.status(&at).await?;
            println!("{}", serde_json::to_string_pretty(&status)?);
        }
    }
    Ok(())
}
