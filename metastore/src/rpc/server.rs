//! The HTTP face of one metastore node: Raft RPCs from its peers, writes and reads from agents,
//! and admin calls (initialise, add or remove a node, status).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    AddNodeRequest, ClusterAuth, ClusterSecret, CommitsQuery, InitRequest, NodeError, Read,
    ReadAnswer, RemoveNodeRequest, Status, ADD_NODE_PATH, COMMITS_PATH, INIT_PATH, READ_PATH,
    REMOVE_NODE_PATH, STATUS_PATH, WRITE_PATH,
};
use crate::client::MetastoreClient;
use crate::local::LocalMetastore;
use crate::raft::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use crate::state_machine::StateMachine;
use crate::types::Command;

/// Longest a commits long-poll may wait, whatever the caller asks.
const MAX_COMMITS_WAIT: Duration = Duration::from_secs(30);

type Node = Arc<LocalMetastore>;

/// The node's routes. With a secret or TLS, every route but `/metrics` refuses a caller that
/// has neither a certificate from the cluster CA nor the secret (401), before reading its body.
pub fn router(node: Node, auth: &ClusterAuth) -> Router {
    let routes = Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .route(WRITE_PATH, post(write))
        .route(READ_PATH, post(read))
        .route(COMMITS_PATH, post(commits))
        .route(INIT_PATH, post(init))
        .route(ADD_NODE_PATH, post(add_node))
        .route(REMOVE_NODE_PATH, post(remove_node))
        .route(STATUS_PATH, get(status));
    let routes = if auth.secret.is_some() || auth.tls.is_some() {
        routes.route_layer(axum::middleware::from_fn_with_state(
            Arc::new(auth.secret.clone()),
            authenticate,
        ))
    } else {
        routes
    };
    routes
        .route("/metrics", get(metrics))
        // Every request a node sends is bounded below this (see `crate::limits`); axum's own
        // default of 2 MB would refuse snapshot chunks and large appends.
        .layer(DefaultBodyLimit::max(crate::limits::MAX_BODY_BYTES))
        .with_state(node)
}

async fn authenticate(
    State(secret): State<Arc<Option<ClusterSecret>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let certified = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .is_some_and(|c| c.0.certified);
    let given = request.headers().get(axum::http::header::AUTHORIZATION);
    let knows_secret = match (given, secret.as_ref()) {
        (Some(h), Some(secret)) => secret.admits(h.as_bytes()),
        _ => false,
    };
    if certified || knows_secret {
        return next.run(request).await;
    }
    tracing::warn!(path = %request.uri().path(), "refused a metastore RPC without the cluster's credential");
    (
        StatusCode::UNAUTHORIZED,
        "the cluster's credential is missing or wrong",
    )
        .into_response()
}

/// Serves `node` on `listener` until `shutdown` fires: over TLS when `auth` has it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Node,
    auth: ClusterAuth,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(node, &auth).into_make_service_with_connect_info::<Peer>();
    let stop = shutdown.clone();
    match &auth.tls {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls.server_config(), shutdown.clone())?;
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }
    }
}

/// What a route knows of the connection its request came on.
#[derive(Clone, Debug)]
struct Peer {
    /// The caller presented a certificate that chains to the cluster CA (the handshake refuses
    /// one that does not).
    certified: bool,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self { certified: false }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Self {
            certified: stream.io().get_ref().1.peer_certificates().is_some(),
        }
    }
}

/// TLS handshakes at once, at most; more connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;
/// A handshake not done in this long is dropped, so a silent caller holds nothing.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener whose connections have finished their TLS handshake. Handshakes run in tasks of
/// their own, so that a slow or silent caller never holds up the next.
struct TlsListener {
    local: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
}

impl TlsListener {
    fn new(
        tcp: tokio::net::TcpListener,
        config: Arc<rustls::ServerConfig>,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(MAX_HANDSHAKES);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = tokio::select! {
                    () = shutdown.cancelled() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "metastore RPC: accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "metastore RPC: TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "metastore RPC: TLS handshake timed out");
                        }
                    }
                });
            }
        });
        Ok(Self { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task has stopped (shutdown): wait for axum's graceful shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// A postcard body (Raft and agent RPC), or 400 with the reason: bodies come from the network.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, (StatusCode, String)> {
    crate::codec::decode(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed body: {e}")))
}

fn binary<T: Serialize>(value: &T) -> Response {
    match crate::codec::encode(value) {
        Ok(bytes) => ([("content-type", crate::codec::CONTENT_TYPE)], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A JSON body (admin calls, made by people and scripts), or 400 with the reason.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed body: {e}")))
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => ([("content-type", "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn append(State(node): State<Node>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(rpc) => binary(&node.raft().append_entries(rpc).await),
        Err(r) => r.into_response(),
    }
}

async fn vote(State(node): State<Node>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(rpc) => binary(&node.raft().vote(rpc).await),
        Err(r) => r.into_response(),
    }
}

async fn snapshot(State(node): State<Node>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(rpc) => binary(&node.raft().install_snapshot(rpc).await),
        Err(r) => r.into_response(),
    }
}

async fn write(State(node): State<Node>, body: Bytes) -> Response {
    match parse::<Command>(&body) {
        Ok(cmd) => binary(&node.write_command(cmd).await),
        Err(r) => r.into_response(),
    }
}

async fn read(State(node): State<Node>, body: Bytes) -> Response {
    let read = match parse::<Read>(&body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let answer: Result<ReadAnswer, NodeError> = node
        .read_linearizable(move |s: &StateMachine| s.answer(read))
        .await;
    binary(&answer)
}

async fn commits(State(node): State<Node>, body: Bytes) -> Response {
    let q = match parse::<CommitsQuery>(&body) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    let mut rx = node.commits();
    let wait = Duration::from_millis(q.wait_ms).min(MAX_COMMITS_WAIT);
    let _ = tokio::time::timeout(wait, rx.wait_for(|c| *c != q.seen)).await;
    let now = *rx.borrow();
    binary(&now)
}

async fn init(State(node): State<Node>, body: Bytes) -> Response {
    match parse_json::<InitRequest>(&body) {
        Ok(req) => json(&node.initialize(req.members).await),
        Err(r) => r.into_response(),
    }
}

async fn add_node(State(node): State<Node>, body: Bytes) -> Response {
    match parse_json::<AddNodeRequest>(&body) {
        Ok(req) => {
            let timeout = Duration::from_secs(req.timeout_secs);
            json(&node.add_node(req.id, req.addr, timeout).await)
        }
        Err(r) => r.into_response(),
    }
}

async fn remove_node(State(node): State<Node>, body: Bytes) -> Response {
    match parse_json::<RemoveNodeRequest>(&body) {
        Ok(req) => json(&node.remove_node(req.id).await),
        Err(r) => r.into_response(),
    }
}

async fn status(State(node): State<Node>) -> Response {
    json(&node.status())
}

async fn metrics(State(node): State<Node>) -> Response {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let (agents, counts) = node
        .read_local(|s| (s.live_agents(), s.state_counts()))
        .unwrap_or_default();
    (
        [("content-type", "text/plain; version=0.0.4")],
        render_metrics(
            &node.status(),
            node.snapshot_bytes(),
            &agents,
            counts,
            now_ms,
        ),
    )
        .into_response()
}

/// Prometheus text for one node: what an operator watches to see that the quorum is healthy.
/// Agents' heartbeat ages come from this node's applied state, so a follower's lag shows as age.
fn render_metrics(
    status: &Status,
    snapshot_bytes: u64,
    agents: &crate::types::LiveAgents,
    counts: crate::types::StateCounts,
    now_ms: i64,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP skiff_metastore_{name} {help}");
        let _ = writeln!(out, "# TYPE skiff_metastore_{name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "skiff_metastore_{name}{labels} {value}");
        }
    };
    let states = ["Leader", "Follower", "Candidate", "Learner", "Shutdown"];
    let role: Vec<(String, f64)> = states
        .iter()
        .map(|s| {
            let on = if status.state == *s { 1.0 } else { 0.0 };
            (format!("{{role=\"{}\"}}", s.to_lowercase()), on)
        })
        .collect();
    gauge("raft_role", "1 for the role this node has now", &role);
    let one = |v: f64| vec![(String::new(), v)];
    let index = |i: Option<u64>| i.map_or(-1.0, |i| i as f64);
    gauge("raft_term", "current Raft term", &one(status.term as f64));
    gauge(
        "raft_last_log_index",
        "last log index appended to this node's journal",
        &one(index(status.last_log_index)),
    );
    gauge(
        "raft_last_applied_index",
        "last log index applied to the state machine",
        &one(index(status.last_applied)),
    );
    let lag = status
        .last_log_index
        .unwrap_or(0)
        .saturating_sub(status.last_applied.unwrap_or(0));
    gauge(
        "raft_apply_lag",
        "log entries appended but not yet applied",
        &one(lag as f64),
    );
    gauge(
        "raft_leader",
        "node id of the leader this node knows of, -1 for none",
        &one(status.leader.map_or(-1.0, |l| l as f64)),
    );
    gauge(
        "raft_voters",
        "voters in the membership",
        &one(status.voters.len() as f64),
    );
    gauge(
        "snapshot_index",
        "log index of the latest snapshot, -1 for none",
        &one(index(status.snapshot_index)),
    );
    gauge(
        "snapshot_bytes",
        "size of the latest snapshot file",
        &one(snapshot_bytes as f64),
    );
    let matched: Vec<(String, f64)> = status
        .replication
        .iter()
        .map(|(id, m)| (format!("{{node=\"{id}\"}}"), index(*m)))
        .collect();
    gauge(
        "raft_replication_matched_index",
        "on the leader: each follower's last log index known to be on its disk, -1 for none yet",
        &matched,
    );
    let behind: Vec<(String, f64)> = status
        .replication
        .iter()
        .map(|(id, m)| {
            let last = status.last_log_index.unwrap_or(0);
            let lag = m.map_or(last.saturating_add(1), |m| last.saturating_sub(m));
            (format!("{{node=\"{id}\"}}"), lag as f64)
        })
        .collect();
    gauge(
        "raft_replication_lag",
        "on the leader: log entries each follower has yet to store",
        &behind,
    );
    if let Some(ms) = status.millis_since_quorum_ack {
        gauge(
            "raft_millis_since_quorum_ack",
            "on the leader: time since a quorum last acknowledged it",
            &one(ms as f64),
        );
    }
    let ages: Vec<(String, f64)> = agents
        .agents
        .iter()
        .map(|a| {
            let age = now_ms.saturating_sub(a.last_heartbeat_ms).max(0) as f64 / 1000.0;
            (
                format!(
                    "{{broker_id=\"{}\",address=\"{}:{}\"}}",
                    a.broker_id, a.host, a.port
                ),
                age,
            )
        })
        .collect();
    gauge(
        "agent_heartbeat_age_seconds",
        "time since each live agent's last heartbeat",
        &ages,
    );
    gauge(
        "agents_live",
        "live agents",
        &one(agents.agents.len() as f64),
    );
    // What the state keeps of each kind the compactor's expiry pass bounds.
    gauge(
        "producers",
        "idempotent producer states, one per producer and partition written to",
        &one(counts.producers as f64),
    );
    gauge(
        "commit_answers",
        "committed objects still keeping the answer for a retried commit",
        &one(counts.commit_answers as f64),
    );
    gauge(
        "groups",
        "consumer groups with committed offsets",
        &one(counts.groups as f64),
    );
    gauge(
        "broker_ids",
        "agent addresses that keep a broker id",
        &one(counts.broker_ids as f64),
    );
    gauge(
        "index_entries",
        "index entries (runs of batches, segments) over all partitions",
        &one(counts.index_entries as f64),
    );
    out
}

impl LocalMetastore {
    pub fn status(&self) -> Status {
        let m = self.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let addr = |id: &u64| {
            membership
                .get_node(id)
                .map(|n| n.addr.clone())
                .unwrap_or_default()
        };
        Status {
            id: m.id,
            state: format!("{:?}", m.state),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters: membership.voter_ids().map(|id| (id, addr(&id))).collect(),
            learners: membership.learner_ids().map(|id| (id, addr(&id))).collect(),
            replication: m
                .replication
                .iter()
                .flatten()
                .filter(|(id, _)| **id != m.id)
                .map(|(id, matched)| (*id, matched.map(|l| l.index)))
                .collect(),
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            snapshot_sent: self.snapshot_progress(),
            snapshot_bytes: self.snapshot_bytes(),
        }
    }
}
