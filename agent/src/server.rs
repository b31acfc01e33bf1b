//! The listener: one task per connection, caps on connections in total and per address, and a
//! shutdown that waits for every connection to finish.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

use crate::connection;
use crate::context::Agent;
use crate::tls::Tls;

/// Kafka's security protocols: what a listener does before it serves requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Plaintext,
            Self::Ssl,
            Self::SaslPlaintext,
            Self::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// One listener the agent serves (KIP-103): its name, protocol and socket, and for SSL and
/// SASL_SSL its TLS.
pub struct Listener {
    pub name: Arc<str>,
    pub protocol: SecurityProtocol,
    pub socket: TcpListener,
    pub tls: Option<Arc<Tls>>,
}

/// What every listener's accept loop shares: the caps on connections in total and per address,
/// the request memory, and the connections to wait for at shutdown.
struct Shared {
    connections: Arc<Semaphore>,
    per_ip: PerIp,
    memory: connection::RequestMemory,
    tracker: TaskTracker,
}

/// Accepts connections on every listener until `shutdown` fires, then waits for the open ones
/// to close. The caps on connections and request memory are the agent's, over all listeners.
pub async fn run(agent: Arc<Agent>, listeners: Vec<Listener>, shutdown: CancellationToken) {
    // In KiB: see `connection::RequestMemory`.
    let memory_kib = connection::memory_budget_kib(&agent.config) as usize;
    let shared = Arc::new(Shared {
        connections: Arc::new(Semaphore::new(agent.config.max_connections)),
        per_ip: PerIp::new(agent.config.max_connections_per_ip),
        memory: Arc::new(Semaphore::new(memory_kib)),
        tracker: TaskTracker::new(),
    });
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(accept(agent.clone(), l, shared.clone(), shutdown.clone())))
        .collect();
    for l in loops {
        let _ = l.await;
    }
    shared.tracker.close();
    if tokio::time::timeout(std::time::Duration::from_secs(30), shared.tracker.wait())
        .await
        .is_err()
    {
        warn!("connections still open 30 s after shutdown; leaving them");
    }
}

async fn accept(
    agent: Arc<Agent>,
    listener: Listener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let origin = connection::Origin {
        name: listener.name.clone(),
        sasl: if listener.protocol.sasl() {
            agent.config.sasl.clone()
        } else {
            None
        },
    };
    loop {
        // Kafka's `max.connections`: at the cap, stop accepting until a connection closes.
        let permit = tokio::select! {
            p = shared.connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.socket.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    error!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Some(address) = shared.per_ip.admit(addr.ip()) else {
            agent.metrics.connection_closed("per_ip_limit");
            warn!(peer = %addr, limit = agent.config.max_connections_per_ip, "closing connection: too many from its address (max.connections.per.ip)");
            drop(stream);
            continue;
        };
        let agent = agent.clone();
        let memory = shared.memory.clone();
        let shutdown = shutdown.clone();
        let tls = listener.tls.clone();
        let origin = origin.clone();
        shared.tracker.spawn(async move {
            agent.metrics.connections_open.inc();
            match tls {
                None => connection::serve(agent.clone(), stream, origin, memory, shutdown).await,
                Some(tls) => {
                    connection::serve_tls(agent.clone(), stream, &tls, origin, memory, shutdown)
                        .await
                }
            }
            agent.metrics.connections_open.dec();
            drop((permit, address));
        });
    }
}

/// Open connections per client address, for `max.connections.per.ip`. Holds an entry only per
/// address with a connection open, so it grows with connections, which are capped.
struct PerIp {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in its address's count, given back when dropped.
struct Admitted {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Arc::default(),
        }
    }

    fn admit(&self, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= self.limit {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(Admitted {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_limit_and_its_places_back() {
        let per_ip = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = per_ip.admit(a).expect("first");
        let _second = per_ip.admit(a).expect("second");
        assert!(per_ip.admit(a).is_none());
        assert!(
            per_ip.admit(b).is_some(),
            "another address is not held back"
        );
        drop(first);
        assert!(per_ip.admit(a).is_some());
        // Nothing is kept for an address with nothing open.
        let none = PerIp::new(0);
        assert!(none.admit(a).is_none());
        assert!(none.open.lock().expect("lock").is_empty());
    }
}
