//! The agents' client of a metastore quorum: [`MetastoreClient`] over HTTP.
//!
//! It keeps the leader it last heard of and sends everything there; a follower answers with the
//! leader it knows, a node that is down is skipped, and an election in progress is waited out with
//! backoff, all within one deadline per call. Outcomes are classified as the agent needs them: a
//! call that never reached a node, or was refused before proposal, certainly did not apply
//! (`Unavailable`); one whose answer was lost may have (`OutcomeUnknown`). Every command is
//! idempotent (a commit carries its object id), so retrying after an unknown outcome is safe.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::NodeError;
use super::{CommitsQuery, Read, ReadAnswer, COMMITS_PATH, READ_PATH, WRITE_PATH};
use crate::client::{MetastoreError, Result, Transport};
use crate::types::{Command, CommandResponse};

#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// One HTTP request to one node.
    pub request_timeout: Duration,
    /// A whole call, across leader changes and retries. Kept well under Kafka's default request
    /// timeout (30 s), so a produce fails with a retriable error instead of timing out.
    pub call_timeout: Duration,
    /// How long a commits long-poll waits on the node before asking again.
    pub commits_wait: Duration,
    /// The cluster's RPC credentials, if it has them.
    pub auth: super::ClusterAuth,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(8),
            commits_wait: Duration::from_secs(10),
            auth: super::ClusterAuth::default(),
        }
    }
}

pub struct RemoteMetastore {
    http: reqwest::Client,
    /// RPC addresses (`host:port`) of the metastore nodes.
    nodes: Vec<String>,
    /// Index into `nodes` of the node believed to lead.
    leader: Arc<AtomicUsize>,
    options: RemoteOptions,
    commits: watch::Receiver<u64>,
    stop: CancellationToken,
}

/// How one attempt at one node went.
enum Attempt<T> {
    Done(T),
    /// Try `Some(addr)` next, or wait for an election.
    NotLeader(Option<String>),
    /// Certainly not applied; another node or a later try may do better.
    Refused(String),
    /// May have applied.
    Unknown(String),
}

impl RemoteMetastore {
    pub fn new(nodes: Vec<String>, options: RemoteOptions) -> std::result::Result<Self, String> {
        if nodes.is_empty() {
            return Err("no metastore nodes given".into());
        }
        let http = options.auth.client(Duration::from_secs(1))?;
        let (tx, commits) = watch::channel(0);
        let stop = CancellationToken::new();
        let leader = Arc::new(AtomicUsize::new(0));
        tokio::spawn(watch_commits(
            http.clone(),
            nodes.clone(),
            leader.clone(),
            options.clone(),
            tx,
            stop.clone(),
        ));
        Ok(Self {
            http,
            nodes,
            leader,
            options,
            commits,
            stop,
        })
    }

    fn leader_index(&self) -> usize {
        self.leader.load(Ordering::Relaxed)
    }

    fn set_leader(&self, i: usize) {
        self.leader.store(i, Ordering::Relaxed);
    }

    async fn attempt<Req: Serialize, T: DeserializeOwned>(
        &self,
        node: &str,
        path: &str,
        req: &Req,
    ) -> Attempt<T> {
        let body = match crate::codec::encode(req) {
            Ok(b) => b,
            Err(e) => return Attempt::Refused(format!("cannot encode request: {e}")),
        };
        let sent = self
            .http
            .post(format!("{}{path}", self.options.auth.base_url(node)))
            .header(reqwest::header::CONTENT_TYPE, crate::codec::CONTENT_TYPE)
            .timeout(self.options.request_timeout)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Attempt::Refused(format!("{node}: {e}")),
            Err(e) => return Attempt::Unknown(format!("{node}: {e}")),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Unknown(format!("{node}: {e}")),
        };
        if !status.is_success() {
            // The node refused the request before acting on it (a malformed body).
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            return Attempt::Refused(format!("{node} answered {status}: {text}"));
        }
        match crate::codec::decode::<std::result::Result<T, NodeError>>(&bytes) {
            Ok(Ok(v)) => Attempt::Done(v),
            Ok(Err(NodeError::NotLeader { leader })) => {
                Attempt::NotLeader(leader.map(|(_, addr)| addr))
            }
            Ok(Err(NodeError::Unavailable(m))) => Attempt::Refused(format!("{node}: {m}")),
            Ok(Err(NodeError::OutcomeUnknown(m))) => Attempt::Unknown(format!("{node}: {m}")),
            Ok(Err(e @ (NodeError::TooLarge | NodeError::Membership(_)))) => {
                Attempt::Refused(format!("{node}: {e}"))
            }
            Err(e) => Attempt::Unknown(format!("{node}: undecodable answer: {e}")),
        }
    }

    /// Sends `req` to the leader, following redirects and skipping dead nodes until the call's
    /// deadline.
    async fn call<Req: Serialize, T: DeserializeOwned>(&self, path: &str, req: &Req) -> Result<T> {
        let n = self.nodes.len();
        let deadline = Instant::now() + self.options.call_timeout;
        let mut i = self.leader_index();
        let mut ambiguous: Option<String> = None;
        let mut last;
        let mut backoff = Duration::from_millis(25);
        let (mut tried, mut redirects) = (0usize, 0usize);
        // A leader this client was not given (a node added since it started): tried once, when
        // a member names it, without joining the list.
        let mut detour: Option<String> = None;
        loop {
            let at = i % n;
            let target = detour.take();
            let node: &str = target.as_deref().unwrap_or(&self.nodes[at]);
            match self.attempt::<Req, T>(node, path, req).await {
                Attempt::Done(v) => {
                    if target.is_none() {
                        self.set_leader(at);
                    }
                    return Ok(v);
                }
                Attempt::NotLeader(Some(addr)) => {
                    match self.nodes.iter().position(|x| *x == addr) {
                        Some(j) if j != at && redirects < n => {
                            redirects += 1;
                            i = j;
                            continue;
                        }
                        None if target.is_none() && redirects < n => {
                            redirects += 1;
                            detour = Some(addr);
                            continue;
                        }
                        _ => {}
                    }
                    // Redirects going round: ask the others.
                    last = format!("{node} is not the leader; {addr} is");
                    i = at + 1;
                }
                Attempt::NotLeader(None) => {
                    last = format!("{node}: no leader (election in progress)");
                    i = at + 1;
                }
                Attempt::Refused(m) => {
                    last = m;
                    i = at + 1;
                }
                Attempt::Unknown(m) => {
                    last = m.clone();
                    ambiguous = Some(m);
                    i = at + 1;
                }
            }
            tried += 1;
            if tried % n == 0 {
                // A whole round without an answer: an election, or nodes down. Back off.
                if Instant::now() + backoff >= deadline {
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                redirects = 0;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        debug!(path, last = %last, "metastore call gave up");
        Err(match ambiguous {
            Some(m) => MetastoreError::OutcomeUnknown(format!("{m} (last: {last})")),
            None => MetastoreError::Unavailable(last),
        })
    }
}

impl Drop for RemoteMetastore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Follows the commit counter of the node believed to lead with long polls, and moves the local
/// counter on every change, so long-polling fetches wake when any agent commits.
async fn watch_commits(
    http: reqwest::Client,
    nodes: Vec<String>,
    leader: Arc<AtomicUsize>,
    options: RemoteOptions,
    tx: watch::Sender<u64>,
    stop: CancellationToken,
) {
    let mut seen = 0u64;
    let mut offset = 0usize;
    loop {
        let i = leader.load(Ordering::Relaxed) + offset;
        let node = &nodes[i % nodes.len()];
        let query = CommitsQuery {
            seen,
            wait_ms: options.commits_wait.as_millis() as u64,
        };
        let request = http
            .post(format!("{}{COMMITS_PATH}", options.auth.base_url(node)))
            .header(reqwest::header::CONTENT_TYPE, crate::codec::CONTENT_TYPE)
            .body(crate::codec::encode(&query).unwrap_or_default())
            .timeout(options.commits_wait + options.request_timeout)
            .send();
        let answer = tokio::select! {
            _ = stop.cancelled() => return,
            r = request => r,
        };
        let counter = match answer {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => crate::codec::decode::<u64>(&b).ok(),
                Err(_) => None,
            },
            _ => None,
        };
        match counter {
            Some(c) => {
                offset = 0;
                if c != seen {
                    seen = c;
                    tx.send_modify(|n| *n += 1);
                }
            }
            None => {
                // That node is gone: try the next, and wake waiting fetches in case commits
                // happened while we could not tell.
                offset += 1;
                tx.send_modify(|n| *n += 1);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    }
}

#[async_trait]
impl Transport for RemoteMetastore {
    async fn write(&self, cmd: Command) -> Result<CommandResponse> {
        crate::limits::check_command(&cmd)?;
        self.call(WRITE_PATH, &cmd).await
    }

    async fn read(&self, read: Read) -> Result<ReadAnswer> {
        // A read changes nothing: a lost answer is no ambiguity, just a failure.
        self.call(READ_PATH, &read).await.map_err(|e| match e {
            MetastoreError::OutcomeUnknown(m) => MetastoreError::Unavailable(m),
            other => other,
        })
    }

    fn commit_counter(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }
}
