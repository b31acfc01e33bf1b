//! One client connection: a reading half that routes requests in order, and a writing half that
//! sends their answers in the same order while later requests are already being worked on.

use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::context::Agent;
use crate::handlers::{self, Close};
use crate::protocol::frame::{self, FrameError};

/// Every request's bytes are held against this budget from the moment its size is read until its
/// answer is written, so many connections sending at once cannot grow memory without bound: past
/// the budget, sockets simply stop being read.
pub type RequestMemory = Arc<Semaphore>;

pub async fn serve(
    agent: Arc<Agent>,
    stream: TcpStream,
    memory: RequestMemory,
    shutdown: CancellationToken,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let (tx, mut rx) = mpsc::channel::<(
        JoinHandle<Result<Option<bytes::Bytes>, Close>>,
        OwnedSemaphorePermit,
    )>(agent.config.max_in_flight_per_connection);

    let writer_peer = peer.clone();
    let writer = tokio::spawn(async move {
        while let Some((answer, _permit)) = rx.recv().await {
            match answer.await {
                Ok(Ok(Some(bytes))) => {
                    if let Err(e) = write_half.write_all(&bytes).await {
                        debug!(peer = %writer_peer, error = %e, "write failed");
                        return;
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(close)) => {
                    warn!(peer = %writer_peer, reason = %close, "closing connection");
                    return;
                }
                Err(e) => {
                    warn!(peer = %writer_peer, error = %e, "request task failed; closing connection");
                    return;
                }
            }
        }
        let _ = write_half.shutdown().await;
    });

    let max = agent.config.max_request_bytes;
    loop {
        let size = tokio::select! {
            size = frame::read_size(&mut reader, max) => size,
            _ = shutdown.cancelled() => break,
        };
        let size = match size {
            Ok(Some(size)) => size,
            Ok(None) => break,
            Err(FrameError::Io(e)) => {
                debug!(peer = %peer, error = %e, "read failed");
                break;
            }
            Err(e) => {
                warn!(peer = %peer, error = %e, "closing connection");
                break;
            }
        };
        let permits = u32::try_from(size.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        let Ok(permit) = memory.clone().acquire_many_owned(permits).await else {
            break;
        };
        let body = match frame::read_body(&mut reader, size).await {
            Ok(body) => body,
            Err(e) => {
                debug!(peer = %peer, error = %e, "read failed");
                break;
            }
        };
        match handlers::route(&agent, body).await {
            Ok(pending) => {
                if tx.send((tokio::spawn(pending), permit)).await.is_err() {
                    break;
                }
            }
            Err(close) => {
                info!(peer = %peer, reason = %close, "closing connection");
                break;
            }
        }
    }
    // Let the answers already under way go out before the socket closes.
    drop(tx);
    let _ = writer.await;
}
