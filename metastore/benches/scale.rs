//! The metastore at scale: a 3-node quorum on loopback loaded with many partitions and millions
//! of index entries, then measured for what a large state costs — commit throughput and latency
//! with 100 partitions per commit, memory, snapshot size and build time, commit latency while
//! snapshots are built, and the time an empty node takes to catch up.
//!
//! ```sh
//! cargo bench -p skiff-metastore --bench scale                       # defaults
//! cargo bench -p skiff-metastore --bench scale -- objects=40000      # a larger load
//! cargo bench -p skiff-metastore --bench scale -- partitions=10000 topics=10 objects=20000 \
//!     committers=16 commits100=3000 latency=1000 snapshot_every=2000 seed=1
//! ```
//!
//! As in `commits.rs`, the nodes are `LocalMetastore`s in this process, each serving its HTTP RPC
//! on loopback with its journal on the local disk (fsync on every append), driven by
//! `RemoteMetastore` as agents drive it. The load is deterministic for a seed: object `n` has a
//! batch in 100-1,000 partitions drawn from a PRNG seeded with (seed, n). Object ids are real
//! ULIDs of the current time and `now_ms` is the wall clock, as an agent sends them. It prints
//! figures and checks nothing about speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skiff_metastore::client::MetastoreClient;
use skiff_metastore::rpc::remote::{RemoteMetastore, RemoteOptions};
use skiff_metastore::rpc::server;
use skiff_metastore::types::{
    BatchLocation, CommitBatch, CommitObject, CreateTopic, ObjectId, ReplaceBatches, RunLayout,
    TopicPartition,
};
use skiff_metastore::{LocalMetastore, LocalMetastoreOptions};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const OBJECT_BYTES: u64 = 8 << 20;

/// [`Args::batches`], for [`object`].
static BATCHES_PER_RUN: AtomicU64 = AtomicU64::new(1);

#[derive(Clone, Debug)]
struct Args {
    partitions: usize,
    topics: usize,
    objects: u64,
    committers: usize,
    /// Commits of exactly 100 partitions in each throughput phase.
    commits100: u64,
    /// Commits in each single-committer latency phase.
    latency: u64,
    snapshot_every: u64,
    seed: u64,
    /// Batches each partition has in each object, back to back: one index run whatever it is.
    batches: u64,
}

impl Args {
    fn parse() -> Self {
        let mut a = Args {
            partitions: 10_000,
            topics: 10,
            objects: 20_000,
            committers: 16,
            commits100: 3000,
            latency: 1000,
            snapshot_every: 2000,
            seed: 1,
            batches: 4,
        };
        // `cargo bench` passes `--bench`; every other argument is `name=value`.
        for arg in std::env::args().skip(1).filter(|a| !a.starts_with('-')) {
            let (k, v) = arg.split_once('=').expect("arguments are name=value");
            let n: u64 = v.replace('_', "").parse().expect("a number");
            match k {
                "partitions" => a.partitions = n as usize,
                "topics" => a.topics = n as usize,
                "objects" => a.objects = n,
                "committers" => a.committers = n as usize,
                "commits100" => a.commits100 = n,
                "latency" => a.latency = n,
                "snapshot_every" => a.snapshot_every = n,
                "seed" => a.seed = n,
                "batches" => a.batches = n.max(1),
                other => panic!("unknown argument {other}"),
            }
        }
        a.topics = a.topics.clamp(1, a.partitions);
        BATCHES_PER_RUN.store(a.batches, Ordering::Relaxed);
        a
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every partition of every topic, in a fixed order, to draw from.
fn all_partitions(topics: &[(Uuid, i32)]) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|&(topic_id, n)| {
            (0..n).map(move |partition| TopicPartition {
                topic_id,
                partition,
            })
        })
        .collect()
}

/// An object with [`BATCHES_PER_RUN`] batches back to back in each of `count` distinct
/// partitions drawn by `rng`, as an agent lays a flush out: one index run per partition.
fn object(all: &[TopicPartition], rng: &mut fastrand::Rng, count: usize) -> CommitObject {
    let count = count.min(all.len());
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < count {
        chosen.insert(rng.usize(..all.len()));
    }
    let per_run = BATCHES_PER_RUN.load(Ordering::Relaxed).max(1);
    let len = (OBJECT_BYTES / (count as u64 * per_run)) as u32;
    let now = now_ms();
    let mut batches = Vec::with_capacity(count * per_run as usize);
    for (i, p) in chosen.into_iter().enumerate() {
        for j in 0..per_run {
            batches.push(CommitBatch {
                tp: all[p],
                position: (i as u64 * per_run + j) * u64::from(len),
                len,
                last_offset_delta: 9,
                record_count: 10,
                first_timestamp: now - 250,
                max_timestamp: now,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                transactional: false,
            });
        }
    }
    CommitObject {
        object: ObjectId(ulid::Ulid::new()),
        size: OBJECT_BYTES,
        batches,
        now_ms: now,
    }
}

/// Swaps all of `tp`'s runs for one segment entry; answers how many runs it replaced.
async fn merge_partition(client: &RemoteMetastore, tp: TopicPartition) -> u64 {
    let mut runs: Vec<BatchLocation> = Vec::new();
    let mut offset = 0;
    loop {
        let slice = client.read_index(tp, offset, u64::MAX).await.unwrap();
        let Some(last) = slice.batches.last() else {
            break;
        };
        offset = last.last_offset + 1;
        runs.extend(slice.batches.iter().copied());
        if offset >= slice.offsets.high_watermark {
            break;
        }
    }
    let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
        return 0;
    };
    let object = ObjectId(ulid::Ulid::new());
    let len: u64 = runs.iter().map(|r| u64::from(r.len)).sum();
    let segment = BatchLocation {
        base_offset: first.base_offset,
        last_offset: last.last_offset,
        object,
        position: 32,
        len: u32::try_from(len).unwrap_or(u32::MAX),
        first_timestamp: first.first_timestamp,
        max_timestamp: runs.iter().map(|r| r.max_timestamp).max().unwrap_or(0),
        // A point every 64 KiB of batches, 20 bytes each, as the compactor writes them.
        layout: RunLayout::Segment {
            index_len: u32::try_from(len / 65_536 * 20 + 28).unwrap_or(u32::MAX),
        },
    };
    client
        .replace_batches(ReplaceBatches {
            tp,
            object,
            size: len + 64,
            replaced: runs.iter().map(|r| (r.base_offset, r.object)).collect(),
            batches: vec![segment],
            now_ms: now_ms(),
        })
        .await
        .unwrap();
    runs.len() as u64
}

/// The PRNG of object `n`: the same draws for the same seed whichever committer sends it.
fn rng_for(seed: u64, phase: u64, n: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed ^ (phase << 56) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes of the files under `dir`, for the disk the journals and snapshots take.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args));
}

fn options(id: u64, args: &Args) -> LocalMetastoreOptions {
    LocalMetastoreOptions {
        node_id: id,
        clustered: true,
        snapshot_every: args.snapshot_every,
        // A large state takes a while to stream and install; the default (120 s) is per chunk
        // and for the final install, which is plenty, but the bench should measure, not fail.
        snapshot_install_timeout: Duration::from_secs(600),
        write_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

async fn start_node(
    dir: &Path,
    id: u64,
    args: &Args,
    stop: &CancellationToken,
) -> (Arc<LocalMetastore>, String) {
    let listener = server::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let node = Arc::new(
        LocalMetastore::open_with(&dir.join(format!("node{id}")), options(id, args))
            .await
            .unwrap(),
    );
    tokio::spawn(server::serve(
        listener,
        node.clone(),
        Default::default(),
        stop.clone(),
    ));
    (node, addr)
}

/// What one phase of commits did.
struct Phase {
    elapsed: Duration,
    /// From the first try of each commit to its success, sorted.
    latencies: Vec<Duration>,
    batches: u64,
    /// Calls that failed (outcome unknown) and were retried with the same object, as an agent
    /// retries: a commit names its object, so a retry of one that applied changes nothing.
    retries: u64,
}

/// `n` commits from `committers` tasks at once; object `i` has `size(rng)` partitions. With
/// `watch` (the nodes and their data dir), prints progress every 10 s.
async fn drive(
    (client, all): (&Arc<RemoteMetastore>, &Arc<Vec<TopicPartition>>),
    committers: usize,
    n: u64,
    seed: u64,
    phase: u64,
    size: fn(&mut fastrand::Rng) -> usize,
    watch: Option<(&[Arc<LocalMetastore>], &Path)>,
) -> Phase {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..committers)
        .map(|_| {
            let (client, next, all, done) =
                (client.clone(), next.clone(), all.clone(), done.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut batches, mut retries) = (0u64, 0u64);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return (latencies, batches, retries);
                    }
                    let mut rng = rng_for(seed, phase, i);
                    let count = size(&mut rng);
                    let commit = object(&all, &mut rng, count);
                    batches += commit.batches.len() as u64;
                    let t = Instant::now();
                    let mut tries = 0;
                    let answers = loop {
                        match client.commit_object(commit.clone()).await {
                            Ok(a) => break a,
                            Err(e) => {
                                tries += 1;
                                retries += 1;
                                eprintln!(
                                    "commit {i}: try {tries} failed after {:.2} s: {e}",
                                    t.elapsed().as_secs_f64()
                                );
                                assert!(tries < 20, "a commit failed 20 times");
                            }
                        }
                    };
                    latencies.push(t.elapsed());
                    done.fetch_add(1, Ordering::Relaxed);
                    assert!(answers.iter().all(Result::is_ok), "a batch was refused");
                }
            })
        })
        .collect();
    let progress = watch.map(|(nodes, dir)| {
        let (nodes, dir, done) = (nodes.to_vec(), dir.to_owned(), done.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                // During an election there is no leader to ask; say so.
                let Some(leader) = nodes.iter().find(|n| n.status().state == "Leader") else {
                    eprintln!("  ... {:.0} s: no leader", started.elapsed().as_secs_f64());
                    continue;
                };
                let leader = leader.status();
                eprintln!(
                    "  ... {:.0} s: {} of {n} commits, RSS {:.0} MiB, leader applied {:?}, \
                     snapshot at {:?}, {:.1} MiB; data dirs {:.0} MiB",
                    started.elapsed().as_secs_f64(),
                    done.load(Ordering::Relaxed),
                    rss_mib().0,
                    leader.last_applied,
                    leader.snapshot_index,
                    mib(leader.snapshot_bytes),
                    mib(dir_bytes(&dir)),
                );
            }
        })
    });
    let mut out = Phase {
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        batches: 0,
        retries: 0,
    };
    for t in tasks {
        let (l, b, r) = t.await.unwrap();
        out.latencies.extend(l);
        out.batches += b;
        out.retries += r;
    }
    out.elapsed = started.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    out.latencies.sort();
    out
}

fn hundred(_: &mut fastrand::Rng) -> usize {
    100
}

fn hundred_to_thousand(rng: &mut fastrand::Rng) -> usize {
    rng.usize(100..=1000)
}

/// Triggers snapshots on `node` until one covers everything it had applied when called; returns
/// how long that took. A trigger is ignored while a snapshot is being built, hence the loop.
async fn snapshot_covering(node: &LocalMetastore) -> Duration {
    let target = node.status().last_applied.unwrap_or(0);
    let started = Instant::now();
    loop {
        if node.status().snapshot_index.unwrap_or(0) >= target {
            return started.elapsed();
        }
        node.raft().trigger().snapshot().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn leader_of(nodes: &[Arc<LocalMetastore>]) -> Arc<LocalMetastore> {
    nodes
        .iter()
        .find(|n| n.status().state == "Leader")
        .cloned()
        .expect("a leader")
}

fn print_phase(name: &str, p: &Phase) {
    let s = p.elapsed.as_secs_f64();
    let l = &p.latencies;
    println!(
        "  {name}: {} commits, {} batches in {s:.2} s = {:.0} commits/s, {:.0} batches/s; \
         latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} retried calls",
        l.len(),
        p.batches,
        l.len() as f64 / s,
        p.batches as f64 / s,
        percentile(l, 0.5),
        percentile(l, 0.99),
        l.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        p.retries,
    );
}

async fn run(args: Args) {
    println!("metastore at scale: {args:?}");
    let (rss0, _) = rss_mib();
    // Journals and snapshots on the local disk (the system's temp dir unless BENCH_DIR says).
    let dir = match std::env::var("BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d),
        Err(_) => tempfile::tempdir(),
    }
    .unwrap();
    let stop = CancellationToken::new();

    // 1. Setup.
    let started = Instant::now();
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for id in 1..=3 {
        let (node, addr) = start_node(dir.path(), id, &args, &stop).await;
        nodes.push(node);
        addrs.push(addr);
    }
    let members: BTreeMap<u64, String> = (1..=3).zip(addrs.iter().cloned()).collect();
    for n in &nodes {
        n.initialize(members.clone()).await.unwrap();
    }
    let client = Arc::new(RemoteMetastore::new(addrs, RemoteOptions::default()).unwrap());
    let per_topic = (args.partitions / args.topics) as i32;
    let mut topics = Vec::new();
    for t in 0..args.topics {
        let topic_id = Uuid::from_u128(0x5ca1_e000_0000 + t as u128);
        client
            .create_topic(CreateTopic {
                name: format!("scale-{t}"),
                topic_id,
                partitions: per_topic,
                configs: BTreeMap::new(),
                now_ms: now_ms(),
            })
            .await
            .unwrap();
        topics.push((topic_id, per_topic));
    }
    let all = Arc::new(all_partitions(&topics));
    println!(
        "setup: 3 nodes, {} topics x {per_topic} = {} partitions in {:.2} s; journals in {}",
        args.topics,
        all.len(),
        started.elapsed().as_secs_f64(),
        dir.path().display()
    );
    let (rss_setup, _) = rss_mib();

    // 2a. 100 partitions per commit on a small index.
    println!(
        "commits of exactly 100 partitions, {} committers:",
        args.committers
    );
    let p = drive(
        (&client, &all),
        args.committers,
        args.commits100,
        args.seed,
        1,
        hundred,
        None,
    )
    .await;
    print_phase("before the load", &p);
    let mut total_batches = p.batches;

    // 2b. The load: 100-1,000 partitions per object.
    let p = drive(
        (&client, &all),
        args.committers,
        args.objects,
        args.seed,
        2,
        hundred_to_thousand,
        Some((&nodes, dir.path())),
    )
    .await;
    println!(
        "load: 100-1,000 random partitions per object, {} committers:",
        args.committers
    );
    print_phase("load", &p);
    total_batches += p.batches;

    // 2c. 100 partitions per commit on the loaded index.
    let p = drive(
        (&client, &all),
        args.committers,
        args.commits100,
        args.seed,
        3,
        hundred,
        None,
    )
    .await;
    println!(
        "commits of exactly 100 partitions, {} committers:",
        args.committers
    );
    print_phase("after the load", &p);
    total_batches += p.batches;
    let total_runs = total_batches / args.batches;
    println!(
        "batches committed in all: {total_batches}, in {total_runs} index entries ({} per run)",
        args.batches
    );

    // 3. Memory and snapshots. First let every node finish what it is building and cover its
    // whole log, so that the timed snapshot below is the only one under way.
    for n in &nodes {
        snapshot_covering(n).await;
    }
    let (rss_load, hwm) = rss_mib();
    println!(
        "memory (all three nodes and the load in one process): RSS {rss0:.0} MiB at start, \
         {rss_setup:.0} MiB after setup, {rss_load:.0} MiB after the load (peak {hwm:.0} MiB); \
         {:.0} bytes of RSS per index entry for three replicas",
        (rss_load - rss_setup) * f64::from(1 << 20) / total_runs as f64
    );
    println!("snapshot build (one commit, then a trigger, until the snapshot covers it):");
    for n in &nodes {
        let mut rng = rng_for(args.seed, 4, n.node_id());
        client
            .commit_object(object(&all, &mut rng, 100))
            .await
            .unwrap();
        // The follower may not have applied it yet; wait until it has, so the snapshot is new.
        let target = leader_of(&nodes).status().last_applied.unwrap_or(0);
        while n.status().last_applied.unwrap_or(0) < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let took = snapshot_covering(n).await;
        let bytes = n.snapshot_bytes();
        println!(
            "  node {} ({}): {:.2} s, {bytes} bytes ({:.1} MiB) = {:.1} bytes per index entry",
            n.node_id(),
            n.status().state,
            took.as_secs_f64(),
            mib(bytes),
            bytes as f64 / total_runs as f64
        );
    }

    // 4. Commit latency, one committer, without and with snapshots being built.
    for n in &nodes {
        snapshot_covering(n).await;
    }
    let snapshots_before: Vec<_> = nodes.iter().map(|n| n.status().snapshot_index).collect();
    let quiet = drive(
        (&client, &all),
        1,
        args.latency,
        args.seed,
        5,
        hundred,
        None,
    )
    .await;
    let snapshots_during_quiet = nodes
        .iter()
        .zip(&snapshots_before)
        .filter(|(n, s)| n.status().snapshot_index != **s)
        .count();
    println!("one committer, 100 partitions per commit:");
    print_phase("no snapshot", &quiet);
    println!("    (nodes whose snapshot changed during it: {snapshots_during_quiet})");

    let busy = Arc::new(AtomicBool::new(true));
    let builder = {
        let (nodes, busy) = (nodes.clone(), busy.clone());
        tokio::spawn(async move {
            let mut built = 0u64;
            let mut building = Duration::ZERO;
            while busy.load(Ordering::Relaxed) {
                for n in &nodes {
                    building += snapshot_covering(n).await;
                    built += 1;
                }
            }
            (built, building)
        })
    };
    let loaded = drive(
        (&client, &all),
        1,
        args.latency,
        args.seed,
        6,
        hundred,
        None,
    )
    .await;
    busy.store(false, Ordering::Relaxed);
    let (built, building) = builder.await.unwrap();
    print_phase("snapshots built throughout", &loaded);
    println!(
        "    ({built} snapshots built one after another on the three nodes, {:.2} s each on average)",
        building.as_secs_f64() / built.max(1) as f64
    );
    println!(
        "    p99 with snapshots / p99 without: {:.2}",
        percentile(&loaded.latencies, 0.99) / percentile(&quiet.latencies, 0.99)
    );

    // 5. An empty fourth node catches up.
    let (fourth, addr4) = start_node(dir.path(), 4, &args, &stop).await;
    let leader = leader_of(&nodes);
    let leader_bytes = leader.snapshot_bytes();
    let started = Instant::now();
    leader
        .add_node(4, addr4, Duration::from_secs(600))
        .await
        .unwrap();
    let took = started.elapsed();
    let (applied, leader_applied) = (
        fourth.status().last_applied.unwrap_or(0),
        leader.status().last_applied.unwrap_or(0),
    );
    while fourth.status().last_applied.unwrap_or(0) < leader_applied {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "empty 4th node: add_node returned after {:.2} s (the node had applied {applied} of the \
         leader's {leader_applied} entries; all of them {:.2} s after the start); it received a \
         snapshot of {} bytes ({:.1} MiB; the leader's was {:.1} MiB)",
        took.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        fourth.snapshot_bytes(),
        mib(fourth.snapshot_bytes()),
        mib(leader_bytes),
    );
    let (rss_end, hwm) = rss_mib();
    println!("memory with four nodes: RSS {rss_end:.0} MiB (peak {hwm:.0} MiB)");

    // 6. Merging: every partition's runs swapped for one segment entry, as the compactor swaps
    // them (the metastore sees only the swap, so no object is read or written here).
    let started = Instant::now();
    let replaced = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..args.committers)
        .map(|c| {
            let (client, all, replaced) = (client.clone(), all.clone(), replaced.clone());
            let committers = args.committers;
            tokio::spawn(async move {
                for tp in all.iter().skip(c).step_by(committers) {
                    let n = merge_partition(&client, *tp).await;
                    replaced.fetch_add(n, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    // Four nodes now, and leadership may have moved (to the fourth, too) under the merge.
    let all_nodes: Vec<Arc<LocalMetastore>> =
        nodes.iter().cloned().chain([fourth.clone()]).collect();
    let leader = loop {
        match all_nodes.iter().find(|n| n.status().state == "Leader") {
            Some(l) => break l.clone(),
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let target = leader.status().last_applied.unwrap_or(0);
    for n in &all_nodes {
        while n.status().last_applied.unwrap_or(0) < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let took_snapshot = snapshot_covering(&leader).await;
    println!(
        "merged: {} runs of {} partitions swapped for one segment entry each in {:.2} s; the \
         leader's snapshot after it: {} bytes ({:.1} MiB, built in {:.2} s), most of it the \
         objects' entries and their commit answers (which the compactor's expiry drops)",
        replaced.load(Ordering::Relaxed),
        all.len(),
        took.as_secs_f64(),
        leader.snapshot_bytes(),
        mib(leader.snapshot_bytes()),
        took_snapshot.as_secs_f64(),
    );

    stop.cancel();
    drop(client);
    fourth.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}
