//! This agent's place among the agents: it heartbeats to the metastore, and keeps the set of live
//! agents each heartbeat answers with. Metadata lists that set as the brokers and spreads the
//! partitions' leadership over it, so clients spread their connections over the agents and move
//! off an agent that died (any agent still accepts any partition).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
pub use skiff_metastore::placement::{coordinator_of, leader_of};
use skiff_metastore::security::AdvertisedListener;
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
    /// The name of the listener agents are known by (their first).
    primary: RwLock<String>,
    /// This agent's listeners, its own first.
    own: RwLock<Vec<AdvertisedListener>>,
    /// Every agent's listeners by its address, as last read from the metastore.
    listeners: RwLock<Arc<BTreeMap<String, Vec<AdvertisedListener>>>>,
}

impl Membership {
    pub fn new(host: String, port: u16, session_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            host,
            port,
            session_timeout,
            view: RwLock::new(Arc::new(LiveAgents::default())),
            primary: RwLock::new("PLAINTEXT".to_owned()),
            own: RwLock::new(Vec::new()),
            listeners: RwLock::default(),
        })
    }

    /// This agent's listeners (KIP-103), its own first: the name the agents are known by, and
    /// what [`Membership::spawn_listeners`] registers.
    pub fn set_own_listeners(&self, listeners: &[crate::config::ListenerConfig]) {
        if let Some(first) = listeners.first() {
            *self.primary.write().unwrap_or_else(|e| e.into_inner()) = first.name.clone();
        }
        *self.own.write().unwrap_or_else(|e| e.into_inner()) = listeners
            .iter()
            .map(|l| AdvertisedListener {
                name: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
            })
            .collect();
    }

    /// The name of the listener the agents are known by.
    pub fn primary(&self) -> String {
        self.primary
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where clients of `listener` reach `agent`: its known address for the first listener,
    /// else the address it registered for that listener, if it did.
    pub fn address(&self, listener: &str, agent: &AgentInfo) -> Option<(String, u16)> {
        let primary = self.primary.read().unwrap_or_else(|e| e.into_inner());
        if listener == primary.as_str() {
            return Some((agent.host.clone(), agent.port));
        }
        if agent.host == self.host && agent.port == self.port {
            let own = self.own.read().unwrap_or_else(|e| e.into_inner());
            return own
                .iter()
                .find(|l| l.name == listener)
                .map(|l| (l.host.clone(), l.port));
        }
        let map = self.listeners.read().unwrap_or_else(|e| e.into_inner());
        map.get(&format!("{}:{}", agent.host, agent.port))?
            .iter()
            .find(|l| l.name == listener)
            .map(|l| (l.host.clone(), l.port))
    }

    /// The live agents as clients of `listener` reach them: each with that listener's address,
    /// and without those that have no such listener.
    pub fn agents_for(&self, listener: &str, agents: &[AgentInfo]) -> Vec<AgentInfo> {
        agents
            .iter()
            .filter_map(|a| {
                let (host, port) = self.address(listener, a)?;
                Some(AgentInfo {
                    host,
                    port,
                    ..a.clone()
                })
            })
            .collect()
    }

    /// Reads every agent's listeners, and registers this agent's when the metastore's copy
    /// differs. An agent with one listener registers none (the first is its address), and
    /// clears what it registered when it had more.
    pub async fn refresh_listeners(
        &self,
        metastore: &dyn MetastoreClient,
    ) -> Result<(), MetastoreError> {
        let map = metastore.agent_listeners().await?;
        let own = self.own.read().unwrap_or_else(|e| e.into_inner()).clone();
        let key = format!("{}:{}", self.host, self.port);
        let registered = map.get(&key).cloned().unwrap_or_default();
        *self.listeners.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        let wanted = if own.len() > 1 { own } else { Vec::new() };
        if registered != wanted && self.me().is_some() {
            metastore.set_agent_listeners(key, wanted).await?;
            info!("listeners registered");
        }
        Ok(())
    }

    /// [`Membership::refresh_listeners`] every `every` until `shutdown`.
    pub fn spawn_listeners(
        self: Arc<Self>,
        metastore: Arc<dyn MetastoreClient>,
        every: Duration,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        crate::refresh::every("agents' listeners", every, shutdown, move || {
            let this = self.clone();
            let metastore = metastore.clone();
            async move { this.refresh_listeners(metastore.as_ref()).await }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenerConfig;
    use crate::server::SecurityProtocol;

    fn agent(id: i32, host: &str, port: u16) -> AgentInfo {
        AgentInfo {
            broker_id: id,
            host: host.into(),
            port,
            last_heartbeat_ms: 0,
            session_timeout_ms: 10_000,
        }
    }

    fn listener(name: &str, host: &str, port: u16) -> AdvertisedListener {
        AdvertisedListener {
            name: name.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn each_listener_has_its_own_addresses() {
        let m = Membership::new("10.0.0.1".into(), 9092, Duration::from_secs(10));
        m.set_own_listeners(&[
            ListenerConfig {
                name: "INTERNAL".into(),
                protocol: SecurityProtocol::Plaintext,
                host: "10.0.0.1".into(),
                port: 9092,
            },
            ListenerConfig {
                name: "EXTERNAL".into(),
                protocol: SecurityProtocol::SaslSsl,
                host: "a.example.com".into(),
                port: 9093,
            },
        ]);
        *m.listeners.write().expect("lock") = Arc::new(BTreeMap::from([(
            "10.0.0.2:9092".to_owned(),
            vec![
                listener("INTERNAL", "10.0.0.2", 9092),
                listener("EXTERNAL", "b.example.com", 9093),
            ],
        )]));
        let live = vec![
            agent(0, "10.0.0.1", 9092),
            agent(1, "10.0.0.2", 9092),
            // Has not registered its listeners (yet): reachable on the first only.
            agent(2, "10.0.0.3", 9092),
        ];
        let internal: Vec<_> = m
            .agents_for("INTERNAL", &live)
            .into_iter()
            .map(|a| (a.broker_id, a.host, a.port))
            .collect();
        assert_eq!(
            internal,
            vec![
                (0, "10.0.0.1".into(), 9092),
                (1, "10.0.0.2".into(), 9092),
                (2, "10.0.0.3".into(), 9092)
            ]
        );
        let external: Vec<_> = m
            .agents_for("EXTERNAL", &live)
            .into_iter()
            .map(|a| (a.broker_id, a.host, a.port))
            .collect();
        assert_eq!(
            external,
            vec![
                (0, "a.example.com".into(), 9093),
                (1, "b.example.com".into(), 9093)
            ]
        );
        assert_eq!(m.address("NOPE", &live[1]), None);
    }
}
