//! Merging against a real (single-node) metastore and an in-memory store: flushes of two
//! partitions, each in many small objects, become one segment per partition with every batch at
//! its offsets, byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
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
    AcquireLeases, BatchLocation, CommitBatch, CommitObject, CreateTopic, ObjectId, ReplaceBatches,
    RunLayout, TopicId, TopicPartition,
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
    let (dir, meta, store) = empty_cluster().await;
    for n in 0..flushes {
        flush(&meta, &store, n, 1, 0).await;
    }
    (dir, meta, store)
}

async fn empty_cluster() -> (tempfile::TempDir, Arc<LocalMetastore>, Arc<InMemory>) {
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
    (dir, meta, store)
}

/// The start of the test's timestamps: an hour ago, well within retention.
fn t0() -> i64 {
    static T0: OnceLock<i64> = OnceLock::new();
    *T0.get_or_init(|| skiff_compactor::now_ms() - 3_600_000)
}

/// Flush number `flush`: one object with, per partition, `per_flush` batches of three records
/// back to back (one run; every header says base offset 0, as producers send them), each value
/// padded with `pad` bytes. Batch `n` of the flush has timestamp `t0 + 100 * flush + n`.
async fn flush(
    meta: &LocalMetastore,
    store: &InMemory,
    flush: usize,
    per_flush: usize,
    pad: usize,
) {
    flush_with(meta, store, flush, per_flush, pad, |_| {}).await;
}

/// [`flush`], with each commit entry passed through `tweak` before it is sent.
async fn flush_with(
    meta: &LocalMetastore,
    store: &InMemory,
    flush: usize,
    per_flush: usize,
    pad: usize,
    tweak: impl Fn(&mut CommitBatch),
) {
    let id = ObjectId(ulid::Ulid::new());
    let mut builder = ObjectBuilder::new(id.0 .0);
    let mut commit = Vec::new();
    for partition in 0..2 {
        for n in 0..per_flush {
            let ts = t0() + 100 * flush as i64 + n as i64;
            let mut b = BatchBuilder::new(ts);
            for r in 0..3 {
                let value = format!(
                    "p{partition} flush {flush} batch {n} record {r}{}",
                    "x".repeat(pad)
                );
                b = b.record(ts, Some(b"key"), Some(value.as_bytes()));
            }
            let batch = Batch::parse(b.build(), 1 << 20).unwrap();
            let position = builder.push(*tp(partition).topic_id.as_bytes(), partition, &batch);
            let mut entry = common::commit_batch(tp(partition), position, &batch);
            tweak(&mut entry);
            commit.push(entry);
        }
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

async fn index(meta: &LocalMetastore, partition: i32) -> Vec<BatchLocation> {
    meta.read_index(tp(partition), 0, u64::MAX)
        .await
        .unwrap()
        .batches
}

/// Each batch's real base offset and its bytes past the header's base offset field (which a
/// segment sets to the real one), found wherever the index says it is.
async fn dump(meta: &LocalMetastore, store: &InMemory, partition: i32) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    for run in index(meta, partition).await {
        for (base, batch) in common::batches_of(store, &run).await {
            out.push((base, batch.bytes.slice(8..)));
        }
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

#[tokio::test]
async fn flushed_runs_of_several_batches_become_one_segment_entry_with_an_index() {
    let (_dir, meta, store) = empty_cluster().await;
    // Batches of about 6 KiB, five a run: 240 KiB a partition, several index points.
    for n in 0..8 {
        flush(&meta, &store, n, 5, 2_000).await;
    }
    let runs = index(&meta, 0).await;
    assert_eq!(runs.len(), 8, "one run per flush and partition");
    assert!(runs
        .iter()
        .all(|r| r.layout == RunLayout::Flushed && r.last_offset - r.base_offset == 14));
    let before = [dump(&meta, &store, 0).await, dump(&meta, &store, 1).await];
    assert_eq!(before[0].len(), 40);

    let mut merger = Merger::new(shared(&meta, &store), config(1 << 20).merge);
    let report = merger.pass().await.unwrap();
    assert_eq!(report.segments_written, 2, "{report:?}");
    assert_eq!(report.batches_moved, 80);
    for p in 0..2 {
        let after = index(&meta, p).await;
        assert_eq!(
            after.len(),
            1,
            "partition {p}: one entry for the whole segment"
        );
        let seg = after[0];
        assert!(matches!(seg.layout, RunLayout::Segment { .. }), "{seg:?}");
        assert_eq!((seg.base_offset, seg.last_offset), (0, 119));
        assert_eq!((seg.first_timestamp, seg.max_timestamp), (t0(), t0() + 704));
        // Walked with the offsets in the headers, every batch is where it was, byte for byte
        // but for its header's base offset (and `batches_of` checks the index's points).
        assert_eq!(dump(&meta, &store, p).await, before[p as usize]);
        let batches = common::batches_of(&store, &seg).await;
        let total: usize = batches.iter().map(|(_, b)| b.bytes.len()).sum();
        assert_eq!(total, seg.len as usize);
        let index = common::segment_index(&store, &seg).await;
        let points = index.points();
        assert!(points.len() >= 3, "{points:?}");
        // Each point bounds the timestamps of the batches up to the next one.
        let mut at = 0u32;
        for (_, b) in &batches {
            let stretch = points.iter().rev().find(|p| p.position <= at).unwrap();
            assert!(b.header.max_timestamp <= stretch.max_timestamp);
            assert!(stretch.max_timestamp <= seg.max_timestamp);
            at += b.bytes.len() as u32;
        }
        // A lookup lands on the batch holding the offset.
        let pos = index.position_for_offset(100);
        let start = batches
            .iter()
            .scan(0u32, |at, (base, b)| {
                let here = (*at, *base);
                *at += b.bytes.len() as u32;
                Some(here)
            })
            .find(|&(at, _)| at == pos)
            .unwrap();
        assert!(start.1 <= 100);
    }
    // Nothing left to merge.
    let report = merger.pass().await.unwrap();
    assert_eq!(report.segments_written, 0, "{report:?}");
    meta.shutdown().await;
}

#[tokio::test]
async fn a_small_segment_merges_again_into_a_segment_of_segments() {
    let (_dir, meta, store) = empty_cluster().await;
    for n in 0..4 {
        flush(&meta, &store, n, 2, 0).await;
    }
    let mut merger = Merger::new(shared(&meta, &store), config(1 << 20).merge);
    assert_eq!(merger.pass().await.unwrap().segments_written, 2);
    let first = index(&meta, 0).await;
    assert_eq!(first.len(), 1);
    assert!(matches!(first[0].layout, RunLayout::Segment { .. }));
    for n in 4..8 {
        flush(&meta, &store, n, 2, 0).await;
    }
    let before = dump(&meta, &store, 0).await;
    assert_eq!(before.len(), 16);
    assert_eq!(
        index(&meta, 0).await.len(),
        5,
        "the small segment and four runs"
    );
    let report = merger.pass().await.unwrap();
    assert_eq!(report.segments_written, 2, "{report:?}");
    assert_eq!(report.batches_moved, 32);
    let after = index(&meta, 0).await;
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].object, first[0].object);
    assert_eq!((after[0].base_offset, after[0].last_offset), (0, 47));
    assert_eq!(after[0].first_timestamp, t0());
    assert_eq!(dump(&meta, &store, 0).await, before);
    meta.shutdown().await;
}

#[tokio::test]
async fn an_old_segment_indexed_batch_by_batch_is_reindexed_as_one_entry() {
    let (_dir, meta, store) = cluster(6).await;
    // What the compactor wrote before segments were one entry: partition 0's first three
    // batches copied as they were (producer offsets in the headers) into one object, swapped in
    // as one entry per batch.
    let old = index(&meta, 0).await;
    let id = ObjectId(ulid::Ulid::new());
    let mut builder = ObjectBuilder::new(id.0 .0);
    let mut moved = Vec::new();
    for b in &old[..3] {
        let bytes = store
            .get_range(&path(b.object), b.position..b.position + u64::from(b.len))
            .await
            .unwrap();
        let batch = Batch::parse_stored(bytes).unwrap();
        assert_eq!(batch.header.base_offset, 0);
        let position = builder.push(*tp(0).topic_id.as_bytes(), 0, &batch);
        moved.push(BatchLocation {
            object: id,
            position,
            ..*b
        });
    }
    let size = builder.len();
    let (parts, _) = builder.finish();
    store
        .put(&path(id), PutPayload::from_iter(parts))
        .await
        .unwrap();
    meta.replace_batches(ReplaceBatches {
        tp: tp(0),
        object: id,
        size,
        replaced: old[..3].iter().map(|b| (b.base_offset, b.object)).collect(),
        batches: moved,
        now_ms: 0,
    })
    .await
    .unwrap();
    let entries = index(&meta, 0).await;
    assert_eq!(entries.len(), 6);
    assert!(entries[..3].iter().all(|e| e.object == id));
    let before = dump(&meta, &store, 0).await;

    let mut merger = Merger::new(shared(&meta, &store), config(1 << 20).merge);
    let report = merger.pass().await.unwrap();
    assert_eq!(report.segments_written, 2, "{report:?}");
    let after = index(&meta, 0).await;
    assert_eq!(after.len(), 1);
    assert!(matches!(after[0].layout, RunLayout::Segment { .. }));
    assert_eq!(dump(&meta, &store, 0).await, before);
    meta.shutdown().await;
}

/// The byte range of batch `n` of run `b`, in its object.
async fn batch_range(store: &InMemory, b: &BatchLocation, n: usize) -> std::ops::Range<usize> {
    let batches = common::batches_of(store, b).await;
    let start: usize = batches[..n].iter().map(|(_, b)| b.bytes.len()).sum();
    let start = b.position as usize + start;
    start..start + batches[n].1.bytes.len()
}

async fn flip_byte(store: &InMemory, object: ObjectId, at: usize) {
    let mut bytes = store
        .get(&path(object))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    bytes[at] ^= 0xff;
    store
        .put(&path(object), PutPayload::from(bytes))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bad_checksum_inside_a_run_fails_that_merge_only() {
    let (_dir, meta, store) = empty_cluster().await;
    for n in 0..4 {
        flush(&meta, &store, n, 3, 0).await;
    }
    // The middle batch of partition 0's run in the second object.
    let victim = index(&meta, 0).await[1];
    let range = batch_range(&store, &victim, 1).await;
    flip_byte(&store, victim.object, range.end - 1).await;
    let before = index(&meta, 0).await;

    let mut merger = Merger::new(shared(&meta, &store), config(1 << 20).merge);
    let report = merger.pass().await.unwrap();
    assert_eq!(report.segments_written, 1, "partition 1 only: {report:?}");
    assert!(report.backlog_bytes > 0);
    assert_eq!(index(&meta, 0).await, before, "no swap for partition 0");
    assert_eq!(index(&meta, 1).await.len(), 1);
    // Four flushes and partition 1's segment: nothing was written for partition 0.
    assert_eq!(common::object_count(&store).await, 5);
    meta.shutdown().await;
}

#[tokio::test]
async fn a_run_whose_batches_do_not_match_its_entry_is_not_merged() {
    let (_dir, meta, store) = empty_cluster().await;
    for n in 0..4 {
        // The second flush's commit claims more offsets for partition 0 than its batch holds:
        // every checksum is right, but the walk ends before the entry does.
        flush_with(&meta, &store, n, 1, 0, |c| {
            if n == 1 && c.tp == tp(0) {
                c.last_offset_delta += 3;
            }
        })
        .await;
    }
    let before = index(&meta, 0).await;
    assert_eq!(before[1].last_offset - before[1].base_offset, 5);

    let mut merger = Merger::new(shared(&meta, &store), config(1 << 20).merge);
    let report = merger.pass().await.unwrap();
    assert_eq!(report.segments_written, 1, "partition 1 only: {report:?}");
    assert_eq!(index(&meta, 0).await, before, "no swap for partition 0");
    assert_eq!(index(&meta, 1).await.len(), 1);
    assert_eq!(common::object_count(&store).await, 5);
    meta.shutdown().await;
}
