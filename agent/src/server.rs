//! The listener: one task per connection, a cap on connections, and a shutdown that waits for
//! every connection to finish.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

use crate::connection;
use crate::context::Agent;

/// Accepts connections until `shutdown` fires, then waits for the open ones to close.
pub async fn run(agent: Arc<Agent>, listener: TcpListener, shutdown: CancellationToken) {
    let connections = Arc::new(Semaphore::new(agent.config.max_connections));
    // In KiB: see `connection::RequestMemory`.
    let memory_kib =
        (agent.config.max_pending_bytes / 1024).max(agent.config.max_request_bytes / 1024 + 1);
    let memory = Arc::new(Semaphore::new(memory_kib));
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    error!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let agent = agent.clone();
        let memory = memory.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            connection::serve(agent, stream, memory, shutdown).await;
            drop(permit);
        });
    }
    tracker.close();
    if tokio::time::timeout(std::time::Duration::from_secs(30), tracker.wait())
        .await
        .is_err()
    {
        warn!("connections still open 30 s after shutdown; leaving them");
    }
}
