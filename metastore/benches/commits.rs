//! Commits per second of a 3-node metastore on loopback, each commit carrying one batch for each
//! of 100 partitions, driven over HTTP by `RemoteMetastore` exactly as agents drive it; and the
//! latency one commit adds to a produce (a single committer, one commit at a time).
//!
//! ```sh
//! cargo bench -p skiff-metastore --bench commits                 # defaults
//! cargo bench -p skiff-metastore --bench commits -- 20 4000      # 20 committers, 4,000 commits
//! ```
//!
//! All three nodes run in this process on this machine, with their journals on the local disk
//! (fsync on every append), so the figure is a floor for a cluster on separate machines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_metastore::client::MetastoreClient;
use skiff_metastore::rpc::remote::{RemoteMetastore, RemoteOptions};
use skiff_metastore::rpc::server;
use skiff_metastore::types::{CommitBatch, CommitObject, CreateTopic, ObjectId, TopicPartition};
use skiff_metastore::{LocalMetastore, LocalMetastoreOptions};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PARTITIONS: i32 = 100;
const TOPIC: Uuid = Uuid::from_u128(0xbe);

fn object(n: u64) -> CommitObject {
    CommitObject {
        // Made now: a commit of an object older than MAX_COMMIT_AGE_MS is refused.
        object: ObjectId(ulid::Ulid::from_parts(
            ulid::Ulid::new().timestamp_ms(),
            u128::from(n) + 1,
        )),
        size: 8 << 20,
        batches: (0..PARTITIONS)
            .map(|p| CommitBatch {
                tp: TopicPartition {
                    topic_id: TOPIC,
                    partition: p,
                },
                position: 80_000 * p as u64,
                len: 80_000,
                last_offset_delta: 79,
                record_count: 80,
                first_timestamp: 1_700_000_000_000,
                max_timestamp: 1_700_000_000_250,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                transactional: false,
            })
            .collect(),
        now_ms: 1_700_000_000_300,
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let committers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(16);
    let total: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(committers, total));
}

async fn run(committers: usize, total: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut addrs = Vec::new();
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let l = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        addrs.push(l.local_addr().unwrap().to_string());
        listeners.push(l);
    }
    let stop = CancellationToken::new();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let options = LocalMetastoreOptions {
            node_id: id,
            clustered: true,
            snapshot_every: std::env::var("SNAPSHOT_EVERY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2000),
            ..Default::default()
        };
        let node = Arc::new(
            LocalMetastore::open_with(&dir.path().join(format!("node{id}")), options)
                .await
                .unwrap(),
        );
        tokio::spawn(server::serve(
            listener,
            node.clone(),
            Default::default(),
            stop.clone(),
        ));
        nodes.push(node);
    }
    let members: BTreeMap<u64, String> = (1..=3).zip(addrs.iter().cloned()).collect();
    for n in &nodes {
        n.initialize(members.clone()).await.unwrap();
    }
    let client = Arc::new(RemoteMetastore::new(addrs, RemoteOptions::default()).unwrap());
    client
        .create_topic(CreateTopic {
            name: "bench".into(),
            topic_id: TOPIC,
            partitions: PARTITIONS,
            configs: BTreeMap::new(),
            now_ms: 1,
        })
        .await
        .unwrap();

    // Latency of one commit at a time: what the metastore adds to every produce.
    let mut single = Vec::new();
    for n in 0..300 {
        let started = Instant::now();
        client.commit_object(object(n)).await.unwrap();
        single.push(started.elapsed());
    }
    single.sort();

    // Throughput: many committers at once, as many agents would be.
    let next = Arc::new(std::sync::atomic::AtomicU64::new(300));
    let started = Instant::now();
    let tasks: Vec<_> = (0..committers)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= 300 + total {
                        return latencies;
                    }
                    let t = Instant::now();
                    client.commit_object(object(n)).await.unwrap();
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut loaded = Vec::new();
    for t in tasks {
        loaded.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    loaded.sort();

    println!("3-node metastore on loopback, {PARTITIONS} partition entries per commit");
    println!(
        "  one committer:  {} commits, p50 {:.2} ms, p99 {:.2} ms (the latency a commit adds to a produce)",
        single.len(),
        percentile(&single, 0.5),
        percentile(&single, 0.99)
    );
    println!(
        "  {committers} committers: {total} commits in {elapsed:.2} s = {:.0} commits/s ({:.0} partition entries/s), p50 {:.2} ms, p99 {:.2} ms",
        total as f64 / elapsed,
        total as f64 * f64::from(PARTITIONS) / elapsed,
        percentile(&loaded, 0.5),
        percentile(&loaded, 0.99)
    );
    stop.cancel();
    drop(client);
    for n in nodes {
        n.shutdown().await;
    }
}
