//! A 3-node metastore over HTTP on loopback, driven through `RemoteMetastore` as an agent drives
//! it: commits survive the loss of the leader, a restarted node catches up, a node added empty
//! catches up from a snapshot, and without a quorum writes fail (retriably) instead of hanging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::raft::NodeId;
use skiff_metastore::rpc::remote::{RemoteMetastore, RemoteOptions};
use skiff_metastore::rpc::server;
use skiff_metastore::types::{
    CommitBatch, CommitObject, CommitOffsets, CommittedOffset, CreateTopic, GroupPartition,
    ObjectId, TopicPartition,
};
use skiff_metastore::{LocalMetastore, LocalMetastoreOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TOPIC: Uuid = Uuid::from_u128(0xc1);
const PARTITIONS: i32 = 4;

struct Node {
    id: NodeId,
    addr: SocketAddr,
    dir: PathBuf,
    running: Option<(Arc<LocalMetastore>, CancellationToken, JoinHandle<()>)>,
}

fn options(id: NodeId) -> LocalMetastoreOptions {
    LocalMetastoreOptions {
        node_id: id,
        clustered: true,
        write_timeout: Duration::from_secs(3),
        // Small, so the tests see snapshots and purged logs.
        snapshot_every: 50,
        logs_to_keep: 10,
        ..Default::default()
    }
}

impl Node {
    async fn start(id: NodeId, addr: SocketAddr, dir: &Path) -> Self {
        let mut node = Self {
            id,
            addr,
            dir: dir.to_owned(),
            running: None,
        };
        node.restart().await;
        node
    }

    async fn restart(&mut self) {
        assert!(self.running.is_none());
        let listener = server::bind(self.addr).await.expect("bind");
        let ms = Arc::new(
            LocalMetastore::open_with(&self.dir, options(self.id))
                .await
                .expect("open node"),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (ms, stop) = (ms.clone(), stop.clone());
            async move {
                server::serve(listener, ms, Default::default(), stop)
                    .await
                    .expect("serve");
            }
        });
        self.running = Some((ms, stop, task));
    }

    /// As close to SIGKILL as a test in one process gets: the RPC server stops at once and
    /// Raft stops without handing over leadership.
    async fn kill(&mut self) {
        let (ms, stop, task) = self.running.take().expect("running");
        stop.cancel();
        task.abort();
        let _ = task.await;
        ms.shutdown().await;
    }

    fn ms(&self) -> &LocalMetastore {
        &self.running.as_ref().expect("running").0
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn cluster(dir: &Path, n: u64) -> Vec<Node> {
    let addrs: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect();
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let id = i as u64 + 1;
        nodes.push(Node::start(id, *addr, &dir.join(format!("node{id}"))).await);
    }
    let members: BTreeMap<NodeId, String> =
        nodes.iter().map(|n| (n.id, n.addr.to_string())).collect();
    for node in &nodes {
        node.ms().initialize(members.clone()).await.expect("init");
    }
    nodes
}

fn client(nodes: &[Node]) -> RemoteMetastore {
    let addrs = nodes.iter().map(|n| n.addr.to_string()).collect();
    RemoteMetastore::new(addrs, RemoteOptions::default()).expect("client")
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic_id: TOPIC,
        partition: p,
    }
}

/// The id of object `n`, made when the test process started: a commit of an object older than
/// `MAX_COMMIT_AGE_MS` by the leader's clock is refused.
fn oid(n: u128) -> ObjectId {
    static MADE_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let made_ms = *MADE_MS.get_or_init(|| ulid::Ulid::new().timestamp_ms());
    ObjectId(ulid::Ulid::from_parts(made_ms, n))
}

/// One object with one 3-record batch per partition.
fn object(n: u128) -> CommitObject {
    CommitObject {
        object: oid(n),
        size: 1000,
        batches: (0..PARTITIONS)
            .map(|p| CommitBatch {
                tp: tp(p),
                position: 100 * p as u64,
                len: 100,
                last_offset_delta: 2,
                record_count: 3,
                first_timestamp: 1,
                max_timestamp: 2,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                transactional: false,
            })
            .collect(),
        now_ms: 5,
    }
}

async fn create_topic(c: &RemoteMetastore) {
    c.create_topic(CreateTopic {
        name: "t".into(),
        topic_id: TOPIC,
        partitions: PARTITIONS,
        configs: BTreeMap::new(),
        now_ms: 1,
    })
    .await
    .expect("create topic");
}

/// Commits objects `from..to`, retrying each until it is acknowledged, as the agent's committer
/// does; each must land at the next offsets exactly once.
async fn commit_range(c: &RemoteMetastore, from: u128, to: u128) {
    for n in from..to {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let answers = loop {
            match c.commit_object(object(n)).await {
                Ok(a) => break a,
                Err(e) => {
                    assert!(tokio::time::Instant::now() < deadline, "object {n}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        for a in answers {
            assert_eq!(
                a.expect("batch accepted").base_offset,
                3 * n as i64,
                "object {n}"
            );
        }
    }
}

async fn assert_history(c: &RemoteMetastore, objects: u128) {
    for p in 0..PARTITIONS {
        let slice = c.read_index(tp(p), 0, u64::MAX).await.expect("read");
        assert_eq!(slice.offsets.high_watermark, 3 * objects as i64);
        let bases: Vec<i64> = slice.batches.iter().map(|b| b.base_offset).collect();
        let want: Vec<i64> = (0..objects as i64).map(|i| 3 * i).collect();
        assert_eq!(
            bases, want,
            "partition {p}: every commit exactly once, in order"
        );
    }
}

fn leader(nodes: &[Node]) -> Option<usize> {
    nodes
        .iter()
        .position(|n| n.running.is_some() && n.ms().leader().map(|l| l.0) == Some(n.id))
}

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_survive_leader_loss_and_a_restarted_node_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3).await;
    let c = client(&nodes);
    create_topic(&c).await;
    commit_range(&c, 0, 30).await;

    wait_for("a leader", || leader(&nodes).is_some()).await;
    let old = leader(&nodes).unwrap();
    nodes[old].kill().await;
    commit_range(&c, 30, 120).await;
    assert_history(&c, 120).await;

    // The killed node comes back on its data dir and catches up (by then the others have taken
    // snapshots and purged the log it missed).
    nodes[old].restart().await;
    let target = nodes[leader(&nodes).unwrap()].ms().status().last_applied;
    wait_for("the restarted node to catch up", || {
        nodes[old].ms().status().last_applied >= target
    })
    .await;
    // It holds the same history: read its own state directly.
    let state = nodes[old]
        .ms()
        .read_linearizable(|s| s.read_index(tp(0), 0, u64::MAX))
        .await;
    match state {
        Ok(slice) => assert_eq!(slice.unwrap().offsets.high_watermark, 360),
        // A follower does not serve reads; its applied index above is the check.
        Err(e) => assert!(e.to_string().contains("not the leader"), "{e}"),
    }
    for n in &mut nodes {
        if n.running.is_some() {
            n.kill().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_added_empty_catches_up_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3).await;
    let c = client(&nodes);
    create_topic(&c).await;
    commit_range(&c, 0, 200).await;
    wait_for("a leader", || leader(&nodes).is_some()).await;
    let l = leader(&nodes).unwrap();
    let purged = nodes[l].ms().status().purged_index;
    assert!(
        purged.is_some(),
        "the leader has purged its log behind a snapshot"
    );

    let addr = free_addr();
    let mut new = Node::start(4, addr, &dir.path().join("node4")).await;
    let before = nodes[l].ms().status().last_log_index;
    nodes[l]
        .ms()
        .add_node(4, addr.to_string(), Duration::from_secs(60))
        .await
        .expect("add node");
    // add_node returns only once the node holds the log from before its addition.
    let matched = nodes[l]
        .ms()
        .status()
        .replication
        .get(&4)
        .copied()
        .flatten();
    assert!(matched >= before, "{matched:?} < {before:?}");
    let target = nodes[l].ms().status().last_applied;
    wait_for("the new node to apply what it holds", || {
        new.ms().status().last_applied >= target
    })
    .await;
    // The log it needed was purged: only a snapshot can have brought it here.
    let status = new.ms().status();
    assert!(
        status.snapshot_index >= purged,
        "caught up by a snapshot: {status:?}"
    );
    assert!(nodes[l].ms().status().voters.contains_key(&4));

    // Remove it again: the cluster keeps serving with three voters.
    nodes[l].ms().remove_node(4).await.expect("remove node");
    assert!(!nodes[l].ms().status().voters.contains_key(&4));
    commit_range(&c, 200, 210).await;
    assert_history(&c, 210).await;
    new.kill().await;
    for n in &mut nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_cannot_catch_up_is_not_made_a_voter() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3).await;
    let c = client(&nodes);
    create_topic(&c).await;
    wait_for("a leader", || leader(&nodes).is_some()).await;
    let l = leader(&nodes).unwrap();
    // Nobody listens at this address.
    let addr = free_addr();
    let err = nodes[l]
        .ms()
        .add_node(4, addr.to_string(), Duration::from_secs(2))
        .await
        .expect_err("a node nobody runs cannot catch up");
    assert!(err.to_string().contains("did not catch up"), "{err}");
    let status = nodes[l].ms().status();
    assert_eq!(status.voters.len(), 3, "{status:?}");
    assert!(status.learners.is_empty(), "{status:?}");
    // The quorum is as it was: it still takes writes.
    commit_range(&c, 0, 10).await;
    assert_history(&c, 10).await;
    for n in &mut nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_quorum_writes_fail_retriably_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3).await;
    let c = client(&nodes);
    create_topic(&c).await;
    commit_range(&c, 0, 5).await;

    wait_for("a leader", || leader(&nodes).is_some()).await;
    let l = leader(&nodes).unwrap();
    let others: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    for &i in &others {
        nodes[i].kill().await;
    }
    let started = tokio::time::Instant::now();
    let err = c
        .commit_object(object(5))
        .await
        .expect_err("no quorum, no ack");
    assert!(
        matches!(
            err,
            MetastoreError::Unavailable(_) | MetastoreError::OutcomeUnknown(_)
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the call must give up within its deadline, not hang"
    );

    // One node back: a quorum again; the retried commit lands once.
    nodes[others[0]].restart().await;
    commit_range(&c, 5, 10).await;
    assert_history(&c, 10).await;
    for n in &mut nodes {
        if n.running.is_some() {
            n.kill().await;
        }
    }
}

/// One object with `batches` one-record batches on partition 0: a command of about 30 bytes a
/// batch.
fn wide_object(n: u128, base: usize, batches: usize) -> CommitObject {
    CommitObject {
        object: oid(n),
        size: 100 * batches as u64,
        batches: (0..batches)
            .map(|i| CommitBatch {
                tp: tp(0),
                position: 100 * (base + i) as u64,
                len: 100,
                last_offset_delta: 0,
                record_count: 1,
                first_timestamp: 1,
                max_timestamp: 2,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                transactional: false,
            })
            .collect(),
        now_ms: 5,
    }
}

/// openraft bounds appends by entry count only: a follower that missed a run of large commands
/// used to be sent them all in one request over the body limit, refused, again and again.
/// (Offset commits with a large metadata string make large commands that are cheap to apply.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_behind_by_more_than_one_request_of_entries_catches_up() {
    const COMMANDS: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3).await;
    let c = client(&nodes);
    create_topic(&c).await;
    wait_for("a leader", || leader(&nodes).is_some()).await;
    let l = leader(&nodes).unwrap();
    let down = (l + 1) % nodes.len();
    nodes[down].kill().await;
    let commit = |i: usize| CommitOffsets {
        group: format!("g{i}"),
        offsets: vec![(
            GroupPartition {
                topic: "t".into(),
                partition: 0,
            },
            CommittedOffset {
                offset: i as i64,
                leader_epoch: -1,
                metadata: "m".repeat(1 << 20),
                commit_timestamp_ms: 5,
            },
        )],
    };
    // The missed entries together exceed one request.
    const _: () = assert!(COMMANDS << 20 > skiff_metastore::limits::MAX_BODY_BYTES);
    for i in 0..COMMANDS {
        let answers = c.commit_offsets(commit(i)).await.expect("commit");
        assert!(answers.iter().all(|a| a.is_ok()));
    }
    nodes[down].restart().await;
    let target = nodes[l].ms().status().last_log_index;
    wait_for("the follower to catch up", || {
        nodes[down].ms().status().last_applied >= target
    })
    .await;
    let groups = nodes[down]
        .ms()
        .read_local(|s| s.groups())
        .expect("running");
    assert_eq!(groups.len(), COMMANDS);
    for n in &mut nodes {
        if n.running.is_some() {
            n.kill().await;
        }
    }
}

/// A command too large for one Raft entry is refused for good, before it is proposed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_over_the_limit_is_refused_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3).await;
    let c = client(&nodes);
    create_topic(&c).await;
    let huge = wide_object(1, 0, 150_000);
    assert!(
        skiff_metastore::codec::encoded_len(&huge).unwrap()
            > skiff_metastore::limits::MAX_COMMAND_BYTES
    );
    let err = c.commit_object(huge).await.expect_err("too large");
    assert!(
        matches!(
            err,
            MetastoreError::Rejected(skiff_metastore::types::MetaError::CommandTooLarge)
        ),
        "{err}"
    );
    // Nothing was applied; the next commit lands at offset 0.
    let answers = c.commit_object(object(2)).await.expect("commit");
    assert_eq!(answers[0].as_ref().expect("ok").base_offset, 0);
    for n in &mut nodes {
        n.kill().await;
    }
}

/// An agent started with only some of the nodes (the others were added later) still reaches
/// the leader: a member names it, and the client goes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_knows_only_a_follower_reaches_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3).await;
    let c = client(&nodes);
    create_topic(&c).await;
    wait_for("a leader", || leader(&nodes).is_some()).await;
    let l = leader(&nodes).unwrap();
    let follower = nodes[(l + 1) % nodes.len()].addr.to_string();
    let only = RemoteMetastore::new(vec![follower], RemoteOptions::default()).expect("client");
    let answers = only.commit_object(object(0)).await.expect("commit");
    assert_eq!(answers[0].as_ref().expect("ok").base_offset, 0);
    let slice = only.read_index(tp(0), 0, u64::MAX).await.expect("read");
    assert_eq!(slice.offsets.high_watermark, 3);
    for n in &mut nodes {
        n.kill().await;
    }
}
