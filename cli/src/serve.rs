//! One agent's life, whichever metastore it talks to: open the object store, serve Kafka and
//! `/metrics` until SIGTERM or SIGINT, then flush what is buffered and stop.

use std::sync::Arc;

use anyhow::Context;
use skiff_agent::batcher::Batcher;
use skiff_agent::clock::SystemClock;
use skiff_agent::context::Agent;
use skiff_agent::fetch::Reader;
use skiff_agent::membership::Membership;
use skiff_agent::metrics::{self, Metrics};
use skiff_metastore::client::MetastoreClient;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::settings::AgentSettings;

/// How stale the agent's list of topics may be; a topic it does not know refreshes it at once.
const TOPIC_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves until a signal. `ready` is printed once clients can connect.
/// With `compactor`, a compactor runs alongside (as in `skiff dev`), on the same store.
/// Raises the soft limit on open files to the hard one: each client connection is a socket, and
/// a soft limit of 1,024 (a common default) would refuse connections long before
/// `max.connections`.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
    }
}

/// Sets the SCRAM-SHA-256 and SCRAM-SHA-512 credentials of the `--scram-user`s.
async fn set_scram_users(
    metastore: &dyn MetastoreClient,
    users: &[(String, String)],
) -> anyhow::Result<()> {
    use skiff_metastore::security::{AlterScramCredentials, ScramMechanism, ScramUpsertion};
    if users.is_empty() {
        return Ok(());
    }
    let random = ring::rand::SystemRandom::new();
    let mut upsertions = Vec::new();
    for (user, password) in users {
        for mechanism in ScramMechanism::ALL {
            let mut salt = vec![0u8; 24];
            ring::rand::SecureRandom::fill(&random, &mut salt)
                .map_err(|_| anyhow::anyhow!("no system randomness for a salt"))?;
            let iterations = skiff_agent::sasl::scram::MIN_ITERATIONS;
            let salted = skiff_agent::sasl::scram::salted_password(
                mechanism,
                password.as_bytes(),
                &salt,
                iterations,
            );
            let credential =
                skiff_agent::sasl::scram::credential(mechanism, &salted, salt, iterations);
            upsertions.push(ScramUpsertion {
                user: user.clone(),
                mechanism,
                credential,
            });
        }
    }
    let answers = metastore
        .alter_scram_credentials(AlterScramCredentials {
            upsertions,
            deletions: Vec::new(),
        })
        .await
        .context("setting the --scram-user credentials")?;
    for (user, answer) in answers {
        answer.with_context(|| format!("setting the credentials of {user:?}"))?;
        info!(user, "SCRAM credentials set");
    }
    Ok(())
}

pub async fn run_agent(
    settings: &AgentSettings,
    metastore: Arc<dyn MetastoreClient>,
    compactor: Option<skiff_compactor::CompactorConfig>,
    role: &str,
) -> anyhow::Result<()> {
    raise_open_files_limit();
    let compactor_metrics = Arc::new(skiff_compactor::metrics::CompactorMetrics::default());
    let metrics = match &compactor {
        Some(_) => Metrics::with_others(settings.prices, |r| compactor_metrics.register(r)),
        None => Metrics::with_prices(settings.prices),
    };
    let store = skiff_agent::storage::open(&settings.object_store, metrics.clone())
        .await
        .context("opening the object store")?;
    let clock = Arc::new(SystemClock);
    let clock_for_heartbeats: Arc<dyn skiff_agent::clock::Clock> = clock.clone();
    let blocks = match settings.agent.read_cache.memory_bytes {
        0 => None,
        _ => Some(Arc::new(
            skiff_agent::fetch::BlockCache::open(
                &settings.agent.read_cache,
                metrics.read_cache.clone(),
            )
            .await
            .context("opening the read cache")?,
        )),
    };
    let (batcher, batcher_task) = Batcher::spawn_with_cache(
        &settings.agent,
        store.clone(),
        metastore.clone(),
        metrics.clone(),
        clock.clone(),
        blocks.clone(),
    );
    set_scram_users(metastore.as_ref(), &settings.scram_users).await?;
    let membership = Membership::new(
        settings.advertise.0.clone(),
        settings.advertise.1,
        settings.agent.session_timeout,
    );
    membership.set_own_listeners(&settings.agent.all_listeners());
    join(&membership, metastore.as_ref(), clock.as_ref()).await?;
    if let Err(e) = membership.refresh_listeners(metastore.as_ref()).await {
        warn!(error = %e, "reading the agents' listeners failed; trying again shortly");
    }
    let groups = skiff_agent::groups::Coordinator::new(
        settings.agent.group_limits(),
        settings.agent.consumer_group_limits(),
    );
    let broker_configs = skiff_agent::broker_config::DynamicConfigs::new();
    // A metastore older than its agents cannot answer: serve with none, and keep asking.
    if let Err(e) = broker_configs.refresh(metastore.as_ref()).await {
        warn!(error = %e, "reading the dynamic broker configs failed; serving without them for now");
    }
    let acls = skiff_agent::acl::Authorizer::new(settings.agent.authorizer.clone());
    if let Err(e) = acls.refresh(metastore.as_ref()).await {
        warn!(error = %e, "reading the ACLs failed; serving with none for now");
    }
    let quotas = Arc::new(skiff_agent::quotas::Quotas::new(
        settings.agent.quota_window,
    ));
    if let Err(e) = quotas.refresh(metastore.as_ref()).await {
        warn!(error = %e, "reading the client quotas failed; serving with none for now");
    }
    let agent = Arc::new(Agent {
        acls: acls.clone(),
        quotas: quotas.clone(),
        broker_configs: broker_configs.clone(),
        topics: skiff_agent::topics::TopicCache::new(TOPIC_CACHE_TTL),
        groups: groups.clone(),
        index_cache: skiff_agent::fetch::IndexCache::new(
            settings.agent.index_cache_batches,
            settings.agent.index_cache_ttl,
        ),
        membership: membership.clone(),
        config: settings.agent.clone(),
        metastore: metastore.clone(),
        batcher,
        reader: match &blocks {
            Some(blocks) => Reader::new(store.clone()).with_blocks(blocks.clone()),
            None => Reader::new(store.clone()),
        },
        metrics: metrics.clone(),
        clock,
    });

    let shutdown = CancellationToken::new();
    let compactor = match compactor {
        Some(config) => {
            let compactor =
                skiff_compactor::Compactor::new(metastore.clone(), store.clone(), config)?
                    .with_metrics(compactor_metrics);
            Some(tokio::spawn(compactor.run(shutdown.clone())))
        }
        None => None,
    };
    let config_reads = broker_configs.spawn(
        metastore.clone(),
        skiff_agent::broker_config::refresh_interval(&settings.agent),
        shutdown.clone(),
    );
    let acl_reads = acls.spawn(
        metastore.clone(),
        skiff_agent::broker_config::refresh_interval(&settings.agent),
        shutdown.clone(),
    );
    let quota_reads = quotas.spawn(
        metastore.clone(),
        skiff_agent::broker_config::refresh_interval(&settings.agent),
        shutdown.clone(),
    );
    let listener_reads = membership.clone().spawn_listeners(
        metastore.clone(),
        skiff_agent::broker_config::refresh_interval(&settings.agent),
        shutdown.clone(),
    );
    let heartbeats = membership.spawn(metastore, clock_for_heartbeats, shutdown.clone());
    let group_timers = groups.spawn(shutdown.clone());
    let lag = skiff_agent::groups::lag::spawn(agent.clone(), shutdown.clone());
    let txn_timeouts = skiff_agent::transactions::spawn(agent.clone(), shutdown.clone());
    let mut sockets = Vec::with_capacity(settings.listeners.len());
    for l in &settings.listeners {
        let socket = tokio::net::TcpListener::bind(l.bind)
            .await
            .with_context(|| format!("binding {} ({})", l.bind, l.name))?;
        sockets.push(socket);
    }
    let metrics_task = metrics_endpoint(settings.metrics, metrics, shutdown.clone()).await?;
    let names: Vec<String> = settings
        .listeners
        .iter()
        .map(|l| format!("{}://{}", l.name, l.bind))
        .collect();
    info!(
        listen = %settings.listen,
        listeners = %names.join(","),
        object_store = %settings.object_store.url,
        "skiff {role} started"
    );
    println!(
        "skiff ready: bootstrap={}:{}",
        settings.advertise.0, settings.advertise.1
    );

    let tls = match &settings.tls {
        Some(config) => {
            let tls = skiff_agent::tls::Tls::load(config.clone()).context("loading TLS")?;
            tokio::spawn(tls.clone().watch(shutdown.clone()));
            Some(tls)
        }
        None => None,
    };
    let listeners = settings
        .listeners
        .iter()
        .zip(sockets)
        .map(|(l, socket)| skiff_agent::server::Listener {
            name: l.name.as_str().into(),
            protocol: l.protocol,
            socket,
            tls: if l.protocol.tls() { tls.clone() } else { None },
        })
        .collect();
    let server = tokio::spawn(skiff_agent::server::run(
        agent.clone(),
        listeners,
        shutdown.clone(),
    ));
    wait_for_signal().await;
    info!("shutting down: closing connections, flushing what is buffered");
    shutdown.cancel();
    if let Err(e) = server.await {
        warn!(error = %e, "server task failed");
    }
    // They hold the agent too.
    let _ = lag.await;
    let _ = txn_timeouts.await;
    // The last handle on the batcher goes with the agent: its window flushes and commits.
    drop(agent);
    if let Err(e) = batcher_task.await {
        warn!(error = %e, "batcher task failed");
    }
    let _ = metrics_task.await;
    let _ = heartbeats.await;
    let _ = config_reads.await;
    let _ = acl_reads.await;
    let _ = quota_reads.await;
    let _ = listener_reads.await;
    let _ = group_timers.await;
    if let Some(c) = compactor {
        let _ = c.await;
    }
    // What the cache holds in memory goes to its disk, for the next start.
    if let Some(blocks) = blocks {
        blocks.close().await;
    }
    Ok(())
}

/// Binds the `/metrics` endpoint at once, before the caller's ready line (so that whoever waits
/// for that line finds the endpoint answering), and serves it until `shutdown`.
pub async fn metrics_endpoint(
    addr: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics endpoint {addr}"))?;
    Ok(tokio::spawn(async move {
        if let Err(e) = metrics::serve(listener, metrics, shutdown).await {
            warn!(%addr, error = %e, "metrics endpoint failed");
        }
    }))
}

/// The first heartbeat, before clients are let in, so Metadata lists this agent under the broker
/// id the metastore gave it. The metastore may still be electing a leader: keep trying a while.
async fn join(
    membership: &Membership,
    metastore: &dyn MetastoreClient,
    clock: &dyn skiff_agent::clock::Clock,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match membership.heartbeat(metastore, clock).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() < deadline => {
                warn!(error = %e, "cannot reach the metastore yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("registering with the metastore"),
        }
    }
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
