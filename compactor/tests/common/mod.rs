//! What the compactor's integration tests share: writing batches as an agent would.
#![allow(clippy::unwrap_used, dead_code)]

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use skiff_format::run::{run_batches, RunOffsets, SegmentIndex};
use skiff_format::{Batch, ObjectBuilder};
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::types::{
    BatchLocation, CommitBatch, CommitObject, ObjectId, RunLayout, TopicPartition,
};
use skiff_metastore::LocalMetastore;

/// Where an object lives in the store (the agent's naming).
pub fn path(id: ObjectId) -> Path {
    Path::from(format!("objects/{id}.skiff"))
}

/// Writes each batch to partition `tp` as its own object and commits it, as an agent's flush of
/// one batch would.
pub async fn commit_each(
    meta: &LocalMetastore,
    store: &InMemory,
    tp: TopicPartition,
    batches: Vec<Bytes>,
) {
    for bytes in batches {
        let batch = Batch::parse(bytes, 1 << 20).unwrap();
        let id = ObjectId(ulid::Ulid::new());
        let mut builder = ObjectBuilder::new(id.0 .0);
        let position = builder.push(*tp.topic_id.as_bytes(), tp.partition, &batch);
        let size = builder.len();
        let (parts, _) = builder.finish();
        store
            .put(&path(id), PutPayload::from_iter(parts))
            .await
            .unwrap();
        meta.commit_object(CommitObject {
            object: id,
            size,
            batches: vec![commit_batch(tp, position, &batch)],
            now_ms: 0,
        })
        .await
        .unwrap();
    }
}

/// Every index entry of `tp`.
pub async fn runs(meta: &LocalMetastore, tp: TopicPartition) -> Vec<BatchLocation> {
    meta.read_index(tp, 0, u64::MAX).await.unwrap().batches
}

/// The batches of run `b` with their real base offsets, found as a fetch finds them: by
/// walking the run's headers as its layout says. A segment's headers must carry those offsets,
/// and its index must decode and point at batch boundaries.
pub async fn batches_of(store: &InMemory, b: &BatchLocation) -> Vec<(i64, Batch)> {
    let end = b.position + u64::from(b.len);
    let run = store
        .get_range(&path(b.object), b.position..end)
        .await
        .unwrap();
    let offsets = match b.layout {
        RunLayout::Flushed => RunOffsets::Consecutive(b.base_offset),
        RunLayout::Segment { .. } => RunOffsets::InHeaders,
        RunLayout::Marker { .. } => panic!("a marker has no bytes in an object"),
    };
    let mut out = Vec::new();
    let mut starts = Vec::new();
    for found in run_batches(&run, offsets) {
        let found = found.unwrap();
        let batch = Batch::parse_stored(run.slice(found.range.clone())).unwrap();
        starts.push((found.range.start as u32, found.base_offset));
        out.push((found.base_offset, batch));
    }
    let (last_base, last) = out.last().unwrap();
    assert_eq!(
        last_base + i64::from(last.header.last_offset_delta),
        b.last_offset
    );
    assert_eq!(out[0].0, b.base_offset);
    if let RunLayout::Segment { index_len } = b.layout {
        for (base, batch) in &out {
            assert_eq!(
                batch.header.base_offset, *base,
                "a segment's header offsets"
            );
        }
        let index = store
            .get_range(&path(b.object), end..end + u64::from(index_len))
            .await
            .unwrap();
        let index = SegmentIndex::decode(&index).unwrap();
        assert_eq!(index.points()[0].position, 0);
        for p in index.points() {
            assert!(
                starts.contains(&(p.position, p.base_offset)),
                "index point {p:?} is not a batch boundary"
            );
        }
    }
    out
}

/// (offset, key, value) of every record of `tp`, as a consumer reads them (batches whose records
/// do not decode left out).
pub async fn records(
    meta: &LocalMetastore,
    store: &InMemory,
    tp: TopicPartition,
) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
    let mut out = Vec::new();
    for run in runs(meta, tp).await {
        for (base, batch) in batches_of(store, &run).await {
            let Ok(records) = skiff_format::records(&batch) else {
                continue;
            };
            for r in records.flatten() {
                out.push((base + i64::from(r.offset_delta), r.key, r.value));
            }
        }
    }
    out
}

/// Writes `batches` to partition `tp` back to back in one object and commits them in one
/// commit, as one agent flush does: the metastore indexes them as one run.
pub async fn commit_run(
    meta: &LocalMetastore,
    store: &InMemory,
    tp: TopicPartition,
    batches: Vec<Bytes>,
) {
    let id = ObjectId(ulid::Ulid::new());
    let mut builder = ObjectBuilder::new(id.0 .0);
    let mut commit = Vec::new();
    for bytes in batches {
        let batch = Batch::parse(bytes, 1 << 20).unwrap();
        let position = builder.push(*tp.topic_id.as_bytes(), tp.partition, &batch);
        commit.push(commit_batch(tp, position, &batch));
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

pub fn commit_batch(tp: TopicPartition, position: u64, batch: &Batch) -> CommitBatch {
    let h = batch.header;
    CommitBatch {
        tp,
        position,
        len: batch.bytes.len() as u32,
        last_offset_delta: h.last_offset_delta,
        record_count: h.record_count,
        first_timestamp: h.base_timestamp,
        max_timestamp: h.max_timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    }
}

/// The index after segment `b`'s batches.
pub async fn segment_index(store: &InMemory, b: &BatchLocation) -> SegmentIndex {
    let RunLayout::Segment { index_len } = b.layout else {
        panic!("{b:?} is not a segment");
    };
    let end = b.position + u64::from(b.len);
    let bytes = store
        .get_range(&path(b.object), end..end + u64::from(index_len))
        .await
        .unwrap();
    SegmentIndex::decode(&bytes).unwrap()
}

/// How many objects the store holds.
pub async fn object_count(store: &InMemory) -> usize {
    use futures::TryStreamExt;
    let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
    listed.len()
}
