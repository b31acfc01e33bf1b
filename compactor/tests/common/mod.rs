//! What the compactor's integration tests share: writing batches as an agent would.
#![allow(clippy::unwrap_used, dead_code)]

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use skiff_format::{Batch, ObjectBuilder};
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::types::{CommitBatch, CommitObject, ObjectId, TopicPartition};
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
        let h = batch.header;
        let size = builder.len();
        let (parts, _) = builder.finish();
        store
            .put(&path(id), PutPayload::from_iter(parts))
            .await
            .unwrap();
        meta.commit_object(CommitObject {
            object: id,
            size,
            batches: vec![CommitBatch {
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
            }],
            now_ms: 0,
        })
        .await
        .unwrap();
    }
}
