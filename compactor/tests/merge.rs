//! Merging against a real (single-node) metastore and an in-memory store: flushes of two
//! partitions, each in many small objects, become one segment per partition with every batch at
//! its offsets, byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use skiff_compactor::lease::rewrite_key;
use skiff_compactor::merge::{MergeConfig, Merger};
use skiff_compactor::{Compactor, CompactorConfig, Shared};
use skiff_format::encode::BatchBuilder;
use skiff_format::{Batch, ObjectBuilder};
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::types::{
    AcquireLeases, BatchLocation, CommitBatch, CommitObject, CreateTopic, ObjectId, TopicId,
    TopicPartition,
};
use skiff_metastore::LocalMetastore;

fn path(id: ObjectId) -> Path {
    Path::from(format!("objects/{id}.skiff"))
}

fn tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic_id: TopicId::from_u128(9),
        partition,
    }
}

/// A metastore with topic "t" (2 partitions) and `flushes` objects, each holding one batch of
/// three records per partition, as an agent would write them.
async fn cluster(flushes: usize) -> (tempfile::TempDir, Arc<LocalMetastore>, Arc<InMemory>) {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.unwrap());
    let store = Arc::new(InMemory::new());
    meta.create_topic(CreateTopic {
        name: "t".into(),
        topic_id: tp(0).topic_id,
        partitions: 2,
        configs: BTreeMap::new(),
        now_ms: 0,
    })
    .await
    .unwrap();
    for flush in 0..flushes {
        let id = ObjectId(ulid::Ulid::new());
        let mut builder = ObjectBuilder::new(id.0 .0);
        let mut commit = Vec::new();
        for partition in 0..2 {
            let ts = skiff_compactor::now_ms() + flush as i64;
            let mut b = BatchBuilder::new(ts);
            for r in 0..3 {
                let value = format!("p{partition} flush {flush} record {r}");
                b = b.record(ts, Some(b"key"), Some(value.as_bytes()));
            }
            let batch = Batch::parse(b.build(), 1 << 20).unwrap();
            let position = builder.push(*tp(partition).topic_id.as_bytes(), partition, &batch);
            commit.push(CommitBatch {
                tp: tp(partition),
                position,
                len: batch.bytes.len() as u32,
                last_offset_delta: 2,
                record_count: 3,
                first_timestamp: ts,
                max_timestamp: ts,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
            });
        }
        let size = builder.len();
        let (parts, _) = builder.finish();
        store
            .put(&path(id), PutPayload::from_iter(parts))
            .await
            .unwrap();
        meta.commit_object(CommitObject {
            object: id,
            size,
            batches: commit,
            now_ms: 0,
        })
        .await
        .unwrap();
    }
    (dir, meta, store)
}

async fn index(meta: &LocalMetastore, partition: i32) -> Vec<BatchLocation> {
    meta.read_index(tp(partition), 0, u64::MAX)
        .await
        .unwrap()
        .batches
}

/// Each batch's bytes, read from wherever the index says it is.
async fn dump(meta: &LocalMetastore, store: &InMemory, partition: i32) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    for b in index(meta, partition).await {
        let range = b.position..b.position + u64::from(b.len);
        out.push((
            b.base_offset,
            store.get_range(&path(b.object), range).await.unwrap(),
        ));
    }
    out
}

fn shared(meta: &Arc<LocalMetastore>, store: &Arc<InMemory>) -> Shared {
    Shared::new(
        meta.clone(),
        store.clone(),
        "me".into(),
        Duration::from_secs(60),
    )
}

fn config(target_bytes: u64) -> CompactorConfig {
    CompactorConfig {
        grace: Duration::ZERO,
        merge: MergeConfig {
            target_bytes,
            job_bytes: target_bytes * 2,
            lease_ttl: Duration::from_secs(60),
        },
        ..CompactorConfig::default()
    }
}

fn objects(index: &[BatchLocation]) -> usize {
    let mut ids: Vec<_> = index.iter().map(|b| b.object).collect();
    ids.dedup();
    ids.len()
}

#[tokio::test]
async fn merging_keeps_every_batch_at_its_offsets_and_frees_the_small_objects() {
    let (_dir, meta, store) = cluster(40).await;
    let before = [dump(&meta, &store, 0).await, dump(&meta, &store, 1).await];
    assert_eq!(objects(&index(&meta, 0).await), 40);

    let mut compactor = Compactor::new(meta.clone(), store.clone(), config(1 << 20)).unwrap();
    let report = compactor.pass().await.unwrap();
    assert_eq!(report.merge.segments_written, 2, "{report:?}");
    assert_eq!(report.merge.batches_moved, 80);
    // Each small object was read once for both partitions.
    assert_eq!(report.merge.objects_read, 40);
    for p in 0..2 {
        assert_eq!(objects(&index(&meta, p).await), 1, "partition {p}");
        assert_eq!(dump(&meta, &store, p).await, before[p as usize]);
    }
    // Grace zero: the same pass deleted the 40 small objects; the segments stay.
    assert_eq!(report.gc.unreferenced_deleted, 40, "{report:?}");
    let report = compactor.pass().await.unwrap();
    assert_eq!(report.merge.segments_written, 0, "{report:?}");
    assert_eq!(report.gc.unreferenced_deleted, 0);
    let listed = store
        .list_with_delimiter(Some(&Path::from("objects")))
        .await
        .unwrap();
    assert_eq!(listed.objects.len(), 2);
    for p in 0..2 {
        assert_eq!(dump(&meta, &store, p).await, before[p as usize]);
    }
    meta.shutdown().await;
}

#[tokio::test]
async fn segments_stop_at_the_target_size() {
    let (_dir, meta, store) = cluster(40).await;
    let batch_len = index(&meta, 0)
        .await
        .iter()
        .map(|b| u64::from(b.len))
        .max()
        .unwrap();
    let before = dump(&meta, &store, 0).await;
    // Room for ten batches a segment: 40 objects become 4 segments per partition.
    let mut compactor =
        Compactor::new(meta.clone(), store.clone(), config(10 * batch_len)).unwrap();
    compactor.pass().await.unwrap();
    assert_eq!(objects(&index(&meta, 0).await), 4);
    assert_eq!(dump(&meta, &store, 0).await, before);
    // Full segments stay as they are.
    let report = compactor.pass().await.unwrap();
    assert_eq!(report.merge.segments_written, 0, "{report:?}");
    meta.shutdown().await;
}

#[tokio::test]
async fn a_partition_leased_by_another_compactor_is_left_to_it() {
    let (_dir, meta, store) = cluster(10).await;
    let granted = meta
        .acquire_leases(AcquireLeases {
            holder: "someone else".into(),
            keys: vec![rewrite_key(&tp(1))],
            ttl_ms: 60_000,
            now_ms: skiff_compactor::now_ms(),
        })
        .await
        .unwrap();
    assert_eq!(granted, [true]);
    let mut merger = Merger::new(shared(&meta, &store), config(1 << 20).merge);
    let report = merger.pass().await.unwrap();
    assert_eq!(report.segments_written, 1, "{report:?}");
    assert!(report.backlog_bytes > 0);
    assert_eq!(objects(&index(&meta, 0).await), 1);
    assert_eq!(objects(&index(&meta, 1).await), 10);
    // Released: the next pass merges it.
    meta.release_leases("someone else", vec![rewrite_key(&tp(1))])
        .await
        .unwrap();
    let report = merger.pass().await.unwrap();
    assert_eq!(report.segments_written, 1, "{report:?}");
    assert_eq!(objects(&index(&meta, 1).await), 1);
    meta.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_source_batch_is_never_copied() {
    let (_dir, meta, store) = cluster(4).await;
    // Flip a byte inside partition 0's batch of the second object.
    let victim = index(&meta, 0).await[1];
    let mut bytes = store
        .get(&path(victim.object))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let i = (victim.position + u64::from(victim.len) - 1) as usize;
    bytes[i] ^= 0xff;
    store
        .put(&path(victim.object), PutPayload::from(bytes))
        .await
        .unwrap();
    let mut merger = Merger::new(shared(&meta, &store), config(1 << 20).merge);
    let report = merger.pass().await.unwrap();
    // Partition 1 merged; partition 0 left as it was.
    assert_eq!(report.segments_written, 1, "{report:?}");
    assert_eq!(objects(&index(&meta, 0).await), 4);
    assert_eq!(objects(&index(&meta, 1).await), 1);
    meta.shutdown().await;
}
