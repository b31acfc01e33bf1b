//! One client connection: a reading half that routes requests in order, and a writing half that
//! sends their answers in the same order while later requests are already being worked on.
//!
//! Kafka takes one connection's requests in the order they were sent: its socket server stops
//! reading a connection until the answer to its last request has been sent. Clients rely on it (a
//! later OffsetCommit supersedes an earlier one; a JoinGroup follows a LeaveGroup). Skiff keeps that
//! order for every request's effects, with two exceptions where waiting would only cost time:
//!
//! - A Produce takes effect in the batcher's queue, in request order, the moment it is routed; the
//!   queue keeps that order into the object and the commit. So a Produce waits only for earlier
//!   requests other than Produce, and a window of them can wait for the same flush.
//! - A Fetch changes nothing, so nothing after it waits for it, not even for as long as it
//!   long-polls. (Kafka would hold the later requests for up to the fetch's `max_wait_ms`.) It
//!   starts once everything before it has taken effect, so it sees its connection's earlier writes.
//!
//! Every other request waits for everything before it, Produce included (Kafka would have
//! answered those before reading it), and is finished before anything after it starts.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::AgentConfig;
use crate::context::Agent;
use crate::handlers::{self, Close};
use crate::protocol::frame::{self, FrameError};
use crate::session::Session;

/// Every request's bytes are held against this budget from the moment its size is read until its
/// answer is written, so many connections sending at once cannot grow memory without bound: past
/// the budget, sockets simply stop being read.
pub type RequestMemory = Arc<Semaphore>;

/// A request read off the socket, with what it holds until its answer is written.
struct Request {
    api_key: Option<i16>,
    body: Bytes,
    memory: OwnedSemaphorePermit,
    /// A place in the connection's window for requests other than Produce.
    slot: Option<OwnedSemaphorePermit>,
    /// A Fetch's turn: one per connection at a time, held until its answer is written, so that
    /// a fetch answer is built only once the client has taken the one before (Kafka mutes a
    /// connection while an answer is on its way for the same reason).
    fetch: Option<OwnedSemaphorePermit>,
}

/// A request being answered, queued for the writer.
struct InFlight {
    answer: JoinHandle<Result<Option<Bytes>, Close>>,
    memory: OwnedSemaphorePermit,
    slot: Option<OwnedSemaphorePermit>,
    fetch: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    /// Stops the request's task and waits until it has, so that its permits go back only once
    /// nothing is left running on them.
    async fn abort(self) {
        let InFlight {
            answer,
            memory,
            slot,
            fetch,
        } = self;
        answer.abort();
        let _ = answer.await;
        drop((memory, slot, fetch));
    }
}

/// What a connection's next request must wait for before it takes effect (the module doc).
#[derive(Default)]
struct Order {
    /// The last request that is neither a Produce nor a Fetch, until it has finished.
    previous: Option<oneshot::Receiver<()>>,
    /// The Produce requests routed since then, until each is answered.
    produces: Vec<oneshot::Receiver<()>>,
}

impl Order {
    /// Waits until a request of `api_key` may take effect.
    async fn wait(&mut self, api_key: Option<i16>) {
        if let Some(previous) = self.previous.take() {
            let _ = previous.await;
        }
        if api_key != Some(ApiKey::Produce as i16) {
            for produce in self.produces.drain(..) {
                let _ = produce.await;
            }
        }
    }

    /// Records the request just routed, so that later ones wait for it as they must. Returns
    /// what its task signals once it is done (dropped unsignalled, as when the task is aborted,
    /// counts as done too).
    fn routed(&mut self, api_key: Option<i16>) -> Option<oneshot::Sender<()>> {
        let (done, finished) = oneshot::channel();
        if api_key == Some(ApiKey::Produce as i16) {
            // Bounded by the writer's window: answered ones go as new ones come.
            self.produces
                .retain_mut(|p| matches!(p.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
            self.produces.push(finished);
        } else if api_key == Some(ApiKey::Fetch as i16) {
            return None;
        } else {
            self.previous = Some(finished);
        }
        Some(done)
    }
}

/// Counts what a connection has under way, so that its idle timer only runs while it has
/// nothing: a long-polling fetch is not idleness.
#[derive(Default)]
struct Activity {
    /// Requests routed and not yet answered on the socket.
    in_flight: AtomicUsize,
    /// When the last answer was written, in ms since `start`.
    last_answer_ms: AtomicU64,
    start: Option<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Some(Instant::now()),
            ..Default::default()
        }
    }

    fn answered(&self) {
        let ms = self.start.map_or(0, |s| s.elapsed().as_millis() as u64);
        self.last_answer_ms.store(ms, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// How long the connection has had nothing under way, or `None` if it has something.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = self.start?.elapsed();
        let last = Duration::from_millis(self.last_answer_ms.load(Ordering::Relaxed));
        Some(since.saturating_sub(last))
    }
}

/// The client's address, once the socket is set to send at once (answers are whole frames).
fn peer_of(stream: &TcpStream) -> String {
    let _ = stream.set_nodelay(true);
    stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// Serves one plaintext TCP connection.
/// Who a connection is, as far as its transport says: its address, the principal a client
/// certificate named, and the listener it came in on.
pub struct Peer {
    pub addr: String,
    pub principal: Option<String>,
    pub origin: Origin,
}

/// The listener a connection came in on, as the connection needs it.
#[derive(Clone, Debug)]
pub struct Origin {
    /// Its name (KIP-103), which Metadata answers with the addresses of.
    pub name: Arc<str>,
    /// Its SASL, on SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<Arc<crate::sasl::SaslConfig>>,
}

impl Origin {
    /// A PLAINTEXT listener's, as tests use.
    pub fn plaintext() -> Self {
        Self {
            name: "PLAINTEXT".into(),
            sasl: None,
        }
    }
}

pub async fn serve(
    agent: Arc<Agent>,
    stream: TcpStream,
    origin: Origin,
    memory: RequestMemory,
    shutdown: CancellationToken,
) {
    let peer = peer_of(&stream);
    let (read_half, write_half) = stream.into_split();
    let who = Peer {
        addr: peer,
        principal: None,
        origin,
    };
    serve_halves(agent, read_half, write_half, who, memory, shutdown).await;
}

/// Serves one TLS connection: the handshake, within the request read timeout, then requests.
/// A client certificate (mTLS) names the connection's principal through the listener's
/// `ssl.principal.mapping.rules`, unless SASL authenticates it afterwards.
pub async fn serve_tls(
    agent: Arc<Agent>,
    stream: TcpStream,
    tls: &crate::tls::Tls,
    origin: Origin,
    memory: RequestMemory,
    shutdown: CancellationToken,
) {
    let peer = peer_of(&stream);
    let handshake = tls.acceptor().accept(stream);
    let stream = tokio::select! {
        done = tokio::time::timeout(agent.config.request_read_timeout, handshake) => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                agent.metrics.connection_closed("tls_handshake");
                warn!(peer = %peer, error = %e, "closing connection: TLS handshake failed");
                return;
            }
            Err(_) => {
                agent.metrics.connection_closed("tls_handshake");
                warn!(peer = %peer, "closing connection: TLS handshake not done in time");
                return;
            }
        },
        () = shutdown.cancelled() => return,
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first().cloned());
    let principal = match certificate {
        None => None,
        Some(cert) => {
            let user = crate::tls::subject_dn(&cert)
                .and_then(|dn| tls.principal_rules().apply(&dn).map(|u| (dn, u)));
            match user {
                Some((dn, user)) => {
                    info!(peer = %peer, subject = %dn, principal = %format!("User:{user}"), "authenticated by certificate");
                    Some(format!("User:{user}"))
                }
                None => {
                    agent.metrics.connection_closed("tls_handshake");
                    warn!(peer = %peer, "closing connection: no ssl.principal.mapping.rules rule matches the client certificate's subject");
                    return;
                }
            }
        }
    };
    let (read_half, write_half) = tokio::io::split(stream);
    let who = Peer {
        addr: peer,
        principal,
        origin,
    };
    serve_halves(agent, read_half, write_half, who, memory, shutdown).await;
}

/// Serves a connection given as its two halves, whatever carries them (TCP, TLS).
pub async fn serve_halves<R, W>(
    agent: Arc<Agent>,
    read_half: R,
    write_half: W,
    who: Peer,
    memory: RequestMemory,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Peer {
        addr: peer,
        principal,
        origin,
    } = who;
    // Small: an idle connection should cost little (10,000 of them are a test), and a large
    // body is read past the buffer, straight into its own allocation.
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, read_half);
    let (tx, rx) = mpsc::channel::<InFlight>(agent.config.max_in_flight_per_connection);
    let non_produce = Arc::new(Semaphore::new(
        agent.config.max_in_flight_non_produce.max(1),
    ));
    let activity = Arc::new(Activity::new());
    // Cancelled by the writer when it gives up, so the reading stops with it.
    let stop = shutdown.child_token();
    let writer = tokio::spawn(write_answers(
        rx,
        write_half,
        Writes {
            memory: memory.clone(),
            budget_kib: memory_budget_kib(&agent.config),
            timeout: agent.config.request_read_timeout,
            metrics: agent.metrics.clone(),
        },
        stop.clone(),
        peer.clone(),
        activity.clone(),
    ));
    let fetch_turn = Arc::new(Semaphore::new(1));
    let mut order = Order::default();
    let mut session = Session::new(peer.clone(), origin.sasl, principal);
    session.listener = origin.name;
    let reads = Reads {
        config: &agent.config,
        metrics: &agent.metrics,
        memory: &memory,
        non_produce: &non_produce,
        fetch_turn: &fetch_turn,
        activity: &activity,
        peer: &peer,
    };

    loop {
        // A throttled answer mutes the connection (KIP-219): nothing more is read until then,
        // nor while its producer is over its quota (from any of its connections).
        if let Some(until) = session.mute.until() {
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => {}
                _ = stop.cancelled() => break,
            }
        }
        let wait = session.mute.producer_wait(&agent.quotas);
        if !wait.is_zero() {
            tokio::select! {
                // At least a little: the rate is re-read this often.
                () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
                _ = stop.cancelled() => break,
            }
            continue;
        }
        let next = reads.next(
            &mut reader,
            session.frame_limit(agent.config.max_request_bytes),
        );
        let request = tokio::select! {
            request = next => request,
            _ = stop.cancelled() => None,
        };
        let Some(Request {
            api_key,
            body,
            memory,
            slot,
            fetch,
        }) = request
        else {
            break;
        };
        tokio::select! {
            () = order.wait(api_key) => {}
            _ = stop.cancelled() => break,
        }
        match handlers::route(&agent, body, &mut session).await {
            Ok(pending) => {
                let done = order.routed(api_key);
                let answer = tokio::spawn(async move {
                    let answer = pending.await;
                    drop(done);
                    answer
                });
                let request = InFlight {
                    answer,
                    memory,
                    slot,
                    fetch,
                };
                activity.in_flight.fetch_add(1, Ordering::Relaxed);
                if let Err(mpsc::error::SendError(request)) = tx.send(request).await {
                    request.abort().await;
                    break;
                }
                if session.closing {
                    break;
                }
            }
            Err(close) => {
                agent.metrics.connection_closed("malformed");
                info!(peer = %peer, reason = %close, "closing connection");
                break;
            }
        }
    }
    // Let the answers already under way go out before the socket closes.
    drop(tx);
    let _ = writer.await;
}

/// Writes `bytes` and flushes, giving up when the client takes nothing for `timeout` (a slow
/// reader that keeps reading is not cut off; one that stops is).
async fn write_taken<W: AsyncWrite + Unpin>(
    out: &mut W,
    bytes: &[u8],
    timeout: Duration,
) -> Result<std::io::Result<()>, tokio::time::error::Elapsed> {
    for chunk in bytes.chunks(WRITE_CHUNK_BYTES) {
        if let Err(e) = tokio::time::timeout(timeout, out.write_all(chunk)).await? {
            return Ok(Err(e));
        }
    }
    tokio::time::timeout(timeout, out.flush()).await
}

/// A write's progress is checked this often (see [`write_taken`]).
const WRITE_CHUNK_BYTES: usize = 256 * 1024;

/// Answers this large count against the memory budget while they are written.
const COUNTED_ANSWER_BYTES: usize = 64 * 1024;

/// Bytes of a connection's read buffer.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// A request body is read, and its memory reserved, this much at a time: a client that announces
/// a large frame and sends little of it holds only what it sent.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why reading a frame stopped.
enum ReadFail {
    /// The peer went away or the socket broke: nothing to say.
    Gone(std::io::Error),
    /// The frame did not arrive within the request read timeout.
    TimedOut,
}

/// What every read of a connection needs.
struct Reads<'a> {
    config: &'a AgentConfig,
    metrics: &'a crate::metrics::Metrics,
    memory: &'a RequestMemory,
    non_produce: &'a Arc<Semaphore>,
    fetch_turn: &'a Arc<Semaphore>,
    activity: &'a Activity,
    peer: &'a str,
}

impl Reads<'_> {
    /// Reads the next request and takes what it needs to be answered: its bytes from the memory
    /// budget, and for anything but Produce a place in the connection's small window. `None` when
    /// the connection is done: closed, broken, idle too long, too slow to send a frame it
    /// started, or sent a frame it is not allowed.
    async fn next<R: AsyncRead + Unpin>(&self, reader: &mut R, max: usize) -> Option<Request> {
        let peer = self.peer;
        let mut size = [0u8; 4];
        if !self.await_first_byte(reader, &mut size[0]).await {
            return None;
        }
        // From here the frame must arrive within the read timeout. Only time spent waiting on
        // the socket counts: waiting for memory is the agent's doing, not the client's.
        let mut deadline = ReadDeadline::new(self.config.request_read_timeout);
        if let Err(e) = deadline.read_exact(reader, &mut size[1..]).await {
            return self.failed(e);
        }
        let size = match frame::check_size(i32::from_be_bytes(size), max) {
            Ok(size) => size,
            Err(e) => {
                self.metrics.connection_closed("too_large");
                warn!(peer = %peer, error = %e, "closing connection");
                return None;
            }
        };
        // The api key leads the body: read it first, so that a request too large for its api is
        // refused before its bytes are.
        let mut key = [0u8; 2];
        let head = size.min(2);
        if let Err(e) = deadline.read_exact(reader, &mut key[..head]).await {
            return self.failed(e);
        }
        let api_key = (size >= 2).then(|| i16::from_be_bytes(key));
        let produce = api_key == Some(ApiKey::Produce as i16);
        if !produce && size > self.config.max_non_produce_request_bytes {
            let e = FrameError::TooLarge {
                size: size as i64,
                max: self.config.max_non_produce_request_bytes,
            };
            self.metrics.connection_closed("too_large");
            warn!(peer = %peer, ?api_key, error = %e, "closing connection: only Produce may be this large");
            return None;
        }
        // Taken before the shared memory budget, so a connection waiting on its own answers does
        // not hold back everyone else's requests meanwhile.
        let slot = if produce {
            None
        } else {
            Some(self.non_produce.clone().acquire_owned().await.ok()?)
        };
        let fetch = if api_key == Some(ApiKey::Fetch as i16) {
            Some(self.fetch_turn.clone().acquire_owned().await.ok()?)
        } else {
            None
        };
        let mut memory = self.memory.clone().acquire_owned().await.ok()?;
        let mut held = 1024;
        let mut body = BytesMut::new();
        body.extend_from_slice(&key[..head]);
        while body.len() < size {
            let chunk = READ_CHUNK_BYTES.min(size - body.len());
            let want = body.len() + chunk;
            if want > held {
                let kib = u32::try_from((want - held).div_ceil(1024)).unwrap_or(u32::MAX);
                memory.merge(self.memory.clone().acquire_many_owned(kib).await.ok()?);
                held += kib as usize * 1024;
            }
            body.reserve(chunk);
            if let Err(e) = deadline.fill(reader, &mut body, want).await {
                return self.failed(e);
            }
        }
        Some(Request {
            api_key,
            body: body.freeze(),
            memory,
            slot,
            fetch,
        })
    }

    /// Waits for the first byte of the next frame, for as long as the connection may stay idle
    /// (Kafka's `connections.max.idle.ms`; a connection with a request under way is not idle).
    async fn await_first_byte<R: AsyncRead + Unpin>(&self, reader: &mut R, byte: &mut u8) -> bool {
        let idle = self.config.connections_max_idle;
        let mut wait = idle;
        loop {
            match tokio::time::timeout(wait, reader.read(std::slice::from_mut(byte))).await {
                Ok(Ok(0)) => return false,
                Ok(Ok(_)) => return true,
                Ok(Err(e)) => {
                    debug!(peer = %self.peer, error = %e, "read failed");
                    return false;
                }
                Err(_) => match self.activity.idle_for() {
                    Some(quiet) if quiet >= idle => {
                        self.metrics.connection_closed("idle");
                        info!(peer = %self.peer, idle_ms = idle.as_millis() as u64, "closing idle connection");
                        return false;
                    }
                    Some(quiet) => wait = idle - quiet,
                    None => wait = idle,
                },
            }
        }
    }

    fn failed(&self, e: ReadFail) -> Option<Request> {
        match e {
            ReadFail::Gone(e) => debug!(peer = %self.peer, error = %e, "read failed"),
            ReadFail::TimedOut => {
                self.metrics.connection_closed("read_timeout");
                warn!(
                    peer = %self.peer,
                    timeout_ms = self.config.request_read_timeout.as_millis() as u64,
                    "closing connection: a request did not arrive in time"
                );
            }
        }
        None
    }
}

/// The time a frame has left to arrive, spent only while reading the socket.
struct ReadDeadline {
    left: Duration,
}

impl ReadDeadline {
    fn new(left: Duration) -> Self {
        Self { left }
    }

    async fn timed<T>(
        &mut self,
        read: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> Result<T, ReadFail> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.left, read).await;
        self.left = self.left.saturating_sub(started.elapsed());
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(ReadFail::Gone(e)),
            Err(_) => Err(ReadFail::TimedOut),
        }
    }

    async fn read_exact<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        buf: &mut [u8],
    ) -> Result<(), ReadFail> {
        self.timed(reader.read_exact(buf)).await.map(drop)
    }

    /// Reads into `body` until it holds `len` bytes.
    async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        body: &mut BytesMut,
        len: usize,
    ) -> Result<(), ReadFail> {
        while body.len() < len {
            let limit = (len - body.len()) as u64;
            let read = self
                .timed(async { (&mut *reader).take(limit).read_buf(body).await })
                .await?;
            if read == 0 {
                return Err(ReadFail::Gone(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(())
    }
}

/// Writes the answers in request order. When it has to stop early (a failed write, an answer
/// that closes the connection) it cancels `stop` and aborts every request still queued: they
/// would otherwise run on, detached, after their permits went back (a long-poll fetch for as
/// long as its client asked).
/// What the writer needs besides the answers: the memory budget answers count against, and how
/// long a client may take to read one.
struct Writes {
    memory: RequestMemory,
    budget_kib: u32,
    timeout: Duration,
    metrics: Arc<crate::metrics::Metrics>,
}

/// The request memory budget, in KiB (see [`RequestMemory`]).
pub fn memory_budget_kib(config: &AgentConfig) -> u32 {
    let kib = (config.max_pending_bytes / 1024).max(config.max_request_bytes / 1024 + 1);
    u32::try_from(kib).unwrap_or(u32::MAX)
}

async fn write_answers<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<InFlight>,
    mut out: W,
    writes: Writes,
    stop: CancellationToken,
    peer: String,
    activity: Arc<Activity>,
) {
    while let Some(InFlight {
        answer,
        memory,
        slot,
        fetch,
    }) = rx.recv().await
    {
        let answered = answer.await;
        // The request's bytes are done with: its answer takes their place in the budget.
        drop(memory);
        let written = match answered {
            // Flushed at once: a TLS stream holds what it is given until then.
            Ok(Ok(Some(bytes))) => {
                // A large answer (a fetch's can be tens of MiB) counts against the memory
                // budget until the client has taken it, and the client has the read timeout to
                // take it: one that stops reading is closed, and what it held goes back. Small
                // answers (a produce's) are not counted, so that answering never waits on the
                // budget that requests waiting for their answers hold.
                // Taken only if free: waiting here, behind readers that wait for the writers'
                // connections to move, could stop the agent; an answer already built counts
                // when it can.
                let held = if bytes.len() >= COUNTED_ANSWER_BYTES {
                    let kib = u32::try_from(bytes.len().div_ceil(1024))
                        .unwrap_or(u32::MAX)
                        .min(writes.budget_kib / 2);
                    writes.memory.clone().try_acquire_many_owned(kib).ok()
                } else {
                    None
                };
                let sent = write_taken(&mut out, &bytes, writes.timeout).await;
                drop(held);
                match sent {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        debug!(peer = %peer, error = %e, "write failed");
                        false
                    }
                    Err(_) => {
                        writes.metrics.connection_closed("write_timeout");
                        warn!(peer = %peer, bytes = bytes.len(), "closing connection: the client did not take an answer within the request timeout");
                        false
                    }
                }
            }
            Ok(Ok(None)) => true,
            Ok(Err(close)) => {
                warn!(peer = %peer, reason = %close, "closing connection");
                false
            }
            Err(e) => {
                warn!(peer = %peer, error = %e, "request task failed; closing connection");
                false
            }
        };
        drop((slot, fetch));
        activity.answered();
        if !written {
            stop.cancel();
            rx.close();
            while let Some(queued) = rx.recv().await {
                queued.abort().await;
            }
            return;
        }
    }
    let _ = out.shutdown().await;
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
