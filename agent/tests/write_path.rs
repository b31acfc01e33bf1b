//! The write path against a real single-node metastore and an in-memory object store: one PUT per
//! flush whatever the partition count, commits in window order, and nothing acknowledged when the
//! object store fails.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use skiff_agent::batcher::{AppendError, Batcher, Entry};
use skiff_agent::clock::SystemClock;
use skiff_agent::config::AgentConfig;
use skiff_agent::fetch::Reader;
use skiff_agent::metrics::Metrics;
use skiff_format::batch::batches;
use skiff_format::encode::BatchBuilder;
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::local::LocalMetastore;
use skiff_metastore::types::{CreateTopic, InitProducerId, TopicMeta, TopicPartition};

fn config(flush_ms: u64) -> AgentConfig {
    AgentConfig {
        flush_interval: Duration::from_millis(flush_ms),
        flush_bytes: 64 << 20,
        ..Default::default()
    }
}

async fn topic(meta: &LocalMetastore, name: &str, partitions: i32) -> TopicMeta {
    meta.create_topic(CreateTopic {
        name: name.into(),
        topic_id: uuid::Uuid::new_v4(),
        partitions,
        configs: BTreeMap::new(),
        now_ms: 0,
    })
    .await
    .expect("create topic")
}

fn entry(tp: TopicPartition, value: &[u8], producer: Option<(i64, i32)>) -> Entry {
    let mut b = BatchBuilder::new(1_000);
    if let Some((pid, seq)) = producer {
        b = b.producer(pid, 0, seq);
    }
    let bytes = b.record(1_000, Some(b"k"), Some(value)).build();
    let batch = batches(bytes, 1 << 20)
        .next()
        .expect("one batch")
        .expect("valid batch");
    let timestamps = batch
        .header
        .trusted_timestamps()
        .expect("consistent header");
    Entry::new(tp, batch, timestamps)
}

fn puts(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with("skiff_object_store_requests_total{op=\"put\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_thousand_partitions_in_one_window_make_one_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.expect("open"));
    let metrics = Metrics::new();
    let store = skiff_agent::storage::open(
        &skiff_agent::storage::StoreSettings::new("memory://"),
        metrics.clone(),
    )
    .await
    .expect("store");
    let (batcher, task) = Batcher::spawn(
        &config(500),
        store.clone(),
        meta.clone(),
        metrics.clone(),
        Arc::new(SystemClock),
    );
    let t = topic(&meta, "wide", 1000).await;

    // Ten "connections", a hundred partitions each, all inside one window.
    let mut waits = Vec::new();
    for c in 0..10 {
        let entries = (0..100)
            .map(|p| {
                let tp = TopicPartition {
                    topic_id: t.topic_id,
                    partition: c * 100 + p,
                };
                entry(tp, format!("v{}", c * 100 + p).as_bytes(), None)
            })
            .collect();
        waits.push(batcher.append(entries).await.expect("queued"));
    }
    for w in waits {
        for r in w.await.expect("answered").results {
            assert_eq!(r.expect("committed").base_offset, 0);
        }
    }
    assert_eq!(puts(&metrics), 1, "one PUT for the whole window");

    // Every partition reads back its own record at offset 0.
    let reader = Reader::new(store);
    for p in [0, 1, 499, 999] {
        let tp = TopicPartition {
            topic_id: t.topic_id,
            partition: p,
        };
        let slice = meta.read_index(tp, 0, 1 << 20).await.expect("index");
        assert_eq!(slice.offsets.high_watermark, 1);
        let bytes = reader.read(&slice.batches, 0, 1 << 20).await.expect("read");
        let batch = batches(bytes, 1 << 20)
            .next()
            .expect("batch")
            .expect("valid");
        let record = skiff_format::records::records(&batch)
            .expect("records")
            .next()
            .expect("one record")
            .expect("valid record");
        assert_eq!(record.value.as_deref(), Some(format!("v{p}").as_bytes()));
    }
    drop(batcher);
    task.await.expect("batcher stops");
    meta.shutdown().await;
}

#[tokio::test]
async fn pipelined_batches_commit_in_the_order_they_were_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.expect("open"));
    let metrics = Metrics::new();
    let store = skiff_agent::storage::open(
        &skiff_agent::storage::StoreSettings::new("memory://"),
        metrics.clone(),
    )
    .await
    .expect("store");
    // A tiny window, so consecutive appends land in different objects whose PUTs overlap.
    let (batcher, task) = Batcher::spawn(
        &config(1),
        store,
        meta.clone(),
        metrics.clone(),
        Arc::new(SystemClock),
    );
    let t = topic(&meta, "ordered", 1).await;
    let tp = TopicPartition {
        topic_id: t.topic_id,
        partition: 0,
    };
    let pid = meta
        .init_producer_id(InitProducerId {
            transactional_id: None,
            now_ms: 0,
        })
        .await
        .expect("producer id")
        .producer_id;

    let mut waits = Vec::new();
    for seq in 0..50 {
        waits.push(
            batcher
                .append(vec![entry(tp, b"x", Some((pid, seq)))])
                .await
                .expect("queued"),
        );
        if seq % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for (expected, w) in waits.into_iter().enumerate() {
        let answer = w.await.expect("answered").results;
        let r = answer.first().expect("one answer").clone();
        assert_eq!(r.expect("in order").base_offset, expected as i64);
    }
    assert!(puts(&metrics) > 1, "the appends spanned several windows");
    drop(batcher);
    task.await.expect("batcher stops");
    meta.shutdown().await;
}

/// An object store whose PUTs all fail.
#[derive(Debug)]
struct BrokenStore;

impl std::fmt::Display for BrokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokenStore")
    }
}

fn broken<T>() -> object_store::Result<T> {
    Err(object_store::Error::Generic {
        store: "broken",
        source: "injected outage".into(),
    })
}

#[async_trait]
impl ObjectStore for BrokenStore {
    async fn put_opts(
        &self,
        _: &Path,
        _: PutPayload,
        _: PutOptions,
    ) -> object_store::Result<PutResult> {
        broken()
    }
    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        broken()
    }
    async fn get_opts(&self, _: &Path, _: GetOptions) -> object_store::Result<GetResult> {
        broken()
    }
    async fn delete(&self, _: &Path) -> object_store::Result<()> {
        broken()
    }
    fn list(&self, _: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        Box::pin(futures::stream::once(async { broken() }))
    }
    async fn list_with_delimiter(&self, _: Option<&Path>) -> object_store::Result<ListResult> {
        broken()
    }
    async fn copy(&self, _: &Path, _: &Path) -> object_store::Result<()> {
        broken()
    }
    async fn copy_if_not_exists(&self, _: &Path, _: &Path) -> object_store::Result<()> {
        broken()
    }
}

#[tokio::test]
async fn a_failed_put_acknowledges_nothing_and_commits_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.expect("open"));
    let metrics = Metrics::new();
    let (batcher, task) = Batcher::spawn(
        &config(5),
        Arc::new(BrokenStore),
        meta.clone(),
        metrics,
        Arc::new(SystemClock),
    );
    let t = topic(&meta, "outage", 2).await;
    let entries = (0..2)
        .map(|p| {
            let tp = TopicPartition {
                topic_id: t.topic_id,
                partition: p,
            };
            entry(tp, b"lost?", None)
        })
        .collect();
    let answer = batcher
        .append(entries)
        .await
        .expect("queued")
        .await
        .expect("answered")
        .results;
    assert_eq!(answer.len(), 2);
    for r in answer {
        assert!(matches!(r, Err(AppendError::Storage(_))), "got {r:?}");
    }
    for p in 0..2 {
        let tp = TopicPartition {
            topic_id: t.topic_id,
            partition: p,
        };
        assert_eq!(meta.offsets(tp).await.expect("offsets").high_watermark, 0);
    }
    drop(batcher);
    task.await.expect("batcher stops");
    meta.shutdown().await;
}

/// A store for these tests, PUTs slowed by `put_latency_ms`.
async fn memory_store(metrics: &Arc<Metrics>, put_latency_ms: u64) -> Arc<dyn ObjectStore> {
    let mut settings = skiff_agent::storage::StoreSettings::new("memory://");
    if put_latency_ms > 0 {
        settings.faults = Some(
            format!("latency_ms={put_latency_ms},ops=put")
                .parse()
                .expect("fault spec"),
        );
    }
    skiff_agent::storage::open(&settings, metrics.clone())
        .await
        .expect("store")
}

fn too_late(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with("skiff_flushes_too_late_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// The metastore refuses a commit that comes past its age bound (here: an object named as if
/// made before it); the producer's resend lands in a new object and is acknowledged once.
#[tokio::test]
async fn a_commit_refused_as_too_old_is_resent_and_acknowledged_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.expect("open"));
    let metrics = Metrics::new();
    let store = memory_store(&metrics, 0).await;
    let config = AgentConfig {
        test_stale_objects: 1,
        ..config(5)
    };
    let (batcher, task) = Batcher::spawn(
        &config,
        store,
        meta.clone(),
        metrics.clone(),
        Arc::new(SystemClock),
    );
    let t = topic(&meta, "late", 1).await;
    let tp = TopicPartition {
        topic_id: t.topic_id,
        partition: 0,
    };
    let pid = meta
        .init_producer_id(InitProducerId {
            transactional_id: None,
            now_ms: 0,
        })
        .await
        .expect("producer id")
        .producer_id;
    let send = || async {
        batcher
            .append(vec![entry(tp, b"once", Some((pid, 0)))])
            .await
            .expect("queued")
            .await
            .expect("answered")
            .results
    };
    let first = send().await;
    assert!(
        matches!(
            first.as_slice(),
            [Err(AppendError::Rejected(
                skiff_metastore::types::MetaError::ObjectTooOld
            ))]
        ),
        "{first:?}"
    );
    assert_eq!(meta.offsets(tp).await.expect("offsets").high_watermark, 0);
    let again = send().await;
    let appended = again
        .first()
        .expect("one answer")
        .clone()
        .expect("committed");
    assert_eq!((appended.base_offset, appended.duplicate), (0, false));
    assert_eq!(meta.offsets(tp).await.expect("offsets").high_watermark, 1);
    assert_eq!(too_late(&metrics), 1);
    drop(batcher);
    task.await.expect("batcher stops");
    meta.shutdown().await;
}

/// An object whose commit cannot start before the commit deadline is given up (its producers
/// get a retriable error) rather than committed late; nothing of it is committed.
#[tokio::test]
async fn a_flush_past_the_commit_deadline_is_not_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.expect("open"));
    let metrics = Metrics::new();
    let store = memory_store(&metrics, 300).await;
    let config = AgentConfig {
        commit_deadline: Duration::from_millis(100),
        ..config(5)
    };
    let (batcher, task) = Batcher::spawn(
        &config,
        store,
        meta.clone(),
        metrics.clone(),
        Arc::new(SystemClock),
    );
    let t = topic(&meta, "slow", 1).await;
    let tp = TopicPartition {
        topic_id: t.topic_id,
        partition: 0,
    };
    let answer = batcher
        .append(vec![entry(tp, b"late", None)])
        .await
        .expect("queued")
        .await
        .expect("answered")
        .results;
    assert!(
        matches!(answer.as_slice(), [Err(AppendError::Expired(_))]),
        "{answer:?}"
    );
    assert_eq!(meta.offsets(tp).await.expect("offsets").high_watermark, 0);
    assert_eq!(too_late(&metrics), 1);
    drop(batcher);
    task.await.expect("batcher stops");
    meta.shutdown().await;
}

/// A window closes at `MAX_BATCHES_PER_FLUSH` batches whatever its bytes or age, so one commit
/// never names more batches than a metastore command can carry.
#[tokio::test]
async fn a_window_past_the_batch_cap_is_flushed_without_waiting_for_its_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.expect("open"));
    let metrics = Metrics::new();
    let store = memory_store(&metrics, 0).await;
    // An hour's window and 64 MiB: only the batch cap can close it.
    let (batcher, task) = Batcher::spawn(
        &config(3_600_000),
        store,
        meta.clone(),
        metrics.clone(),
        Arc::new(SystemClock),
    );
    let t = topic(&meta, "many", 1).await;
    let tp = TopicPartition {
        topic_id: t.topic_id,
        partition: 0,
    };
    let one = entry(tp, b"v", None);
    let half = skiff_agent::batcher::MAX_BATCHES_PER_FLUSH / 2 + 1;
    let mut waits = Vec::new();
    for _ in 0..2 {
        let entries = (0..half)
            .map(|_| Entry::new(tp, one.batch.clone(), one.timestamps))
            .collect();
        waits.push(batcher.append(entries).await.expect("queued"));
    }
    let answered = tokio::time::timeout(Duration::from_secs(120), async {
        let mut n = 0;
        for w in waits {
            for r in w.await.expect("answered").results {
                r.expect("committed");
                n += 1;
            }
        }
        n
    })
    .await
    .expect("the window was flushed by its batch count, not its hour");
    assert_eq!(answered, 2 * half);
    assert_eq!(puts(&metrics), 1);
    drop(batcher);
    task.await.expect("batcher stops");
    meta.shutdown().await;
}

/// A clock that moves on by one millisecond each time it is read.
struct Ticking(std::sync::atomic::AtomicI64);

impl skiff_agent::clock::Clock for Ticking {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn log_append_time_is_stamped_as_the_window_takes_appends_in_and_in_their_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.expect("open"));
    let metrics = Metrics::new();
    let store = skiff_agent::storage::open(
        &skiff_agent::storage::StoreSettings::new("memory://"),
        metrics.clone(),
    )
    .await
    .expect("store");
    let (batcher, task) = Batcher::spawn(
        &config(50),
        store.clone(),
        meta.clone(),
        metrics.clone(),
        Arc::new(Ticking(std::sync::atomic::AtomicI64::new(5_000))),
    );
    let t = topic(&meta, "appended", 1).await;
    let tp = TopicPartition {
        topic_id: t.topic_id,
        partition: 0,
    };
    // Three appends, the middle one not LogAppendTime, all in one window.
    let mut waits = Vec::new();
    for stamped in [true, false, true] {
        let e = entry(tp, b"v", None);
        let e = if stamped { e.log_append_time() } else { e };
        waits.push(batcher.append(vec![e]).await.expect("queued"));
    }
    let mut times = Vec::new();
    for w in waits {
        let answer = w.await.expect("answered");
        assert!(answer.results.iter().all(Result::is_ok), "{answer:?}");
        times.push(answer.log_append_time_ms);
    }
    assert!(
        times[0] >= 5_000 && times[0] < times[1] && times[1] < times[2],
        "{times:?}"
    );

    // One flush: one index entry for the partition's run, from the first batch's first timestamp
    // to the largest.
    let slice = meta.read_index(tp, 0, 1 << 20).await.expect("index");
    let indexed: Vec<(i64, i64)> = slice
        .batches
        .iter()
        .map(|b| (b.first_timestamp, b.max_timestamp))
        .collect();
    assert_eq!(indexed, [(times[0], times[2])]);
    let bytes = Reader::new(store)
        .read(&slice.batches, 0, 1 << 20)
        .await
        .expect("read");
    let stored: Vec<_> = batches(bytes, 1 << 20)
        .collect::<Result<_, _>>()
        .expect("valid batches, CRCs and all");
    let headers: Vec<(bool, i64)> = stored
        .iter()
        .map(|b| (b.header.is_log_append_time(), b.header.max_timestamp))
        .collect();
    assert_eq!(
        headers,
        [(true, times[0]), (false, 1_000), (true, times[2])]
    );
    drop(batcher);
    task.await.expect("batcher stops");
    meta.shutdown().await;
}
