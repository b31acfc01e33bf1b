//! This agent's place among the agents: it heartbeats to the metastore, and keeps the set of live
//! agents each heartbeat answers with. Metadata lists that set as the brokers and spreads the
//! partitions' leadership over it, so clients spread their connections over the agents and move
//! off an agent that died (any agent still accepts any partition).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
pub use skiff_metastore::placement::{coordinator_of, leader_of};
use skiff_metastore::types::{AgentHeartbeat, AgentInfo, LiveAgents};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::Clock;

pub struct Membership {
    host: String,
    port: u16,
    session_timeout: Duration,
    view: RwLock<Arc<LiveAgents>>,
}

impl Membership {
    pub fn new(host: String, port: u16, session_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            host,
            port,
            session_timeout,
            view: RwLock::new(Arc::new(LiveAgents::default())),
        })
    }

    /// One heartbeat; the live set it answers becomes this agent's view.
    pub async fn heartbeat(
        &self,
        metastore: &dyn MetastoreClient,
        clock: &dyn Clock,
    ) -> Result<(), MetastoreError> {
        let live = metastore
            .agent_heartbeat(AgentHeartbeat {
                host: self.host.clone(),
                port: self.port,
                session_timeout_ms: i64::try_from(self.session_timeout.as_millis())
                    .unwrap_or(i64::MAX),
                now_ms: clock.now_ms(),
            })
            .await?;
        let previous = self.view();
        if previous.epoch != live.epoch {
            let brokers: Vec<i32> = live.agents.iter().map(|a| a.broker_id).collect();
            info!(epoch = live.epoch, ?brokers, "live agents changed");
        }
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
        Ok(())
    }

    /// Heartbeats five times per session timeout until `shutdown`, so one lost heartbeat never
    /// costs the agent its place.
    pub fn spawn(
        self: Arc<Self>,
        metastore: Arc<dyn MetastoreClient>,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let every = (self.session_timeout / 5).max(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                if let Err(e) = self.heartbeat(metastore.as_ref(), clock.as_ref()).await {
                    warn!(error = %e, "heartbeat failed; keeping the last view of the agents");
                }
            }
        })
    }

    pub fn view(&self) -> Arc<LiveAgents> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// This agent as the metastore knows it, once a heartbeat has been answered.
    pub fn me(&self) -> Option<AgentInfo> {
        self.view()
            .agents
            .iter()
            .find(|a| a.host == self.host && a.port == self.port)
            .cloned()
    }
}
