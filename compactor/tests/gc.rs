//! The collector against a real (single-node) metastore and an in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use skiff_compactor::gc::Collector;
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::types::{CommitBatch, CommitObject, CreateTopic, ObjectId, TopicPartition};
use skiff_metastore::LocalMetastore;

fn path(id: ObjectId) -> Path {
    Path::from(format!("objects/{id}.skiff"))
}

#[tokio::test]
async fn deletes_what_nothing_points_at_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.unwrap());
    let store = Arc::new(InMemory::new());
    let topic = meta
        .create_topic(CreateTopic {
            name: "t".into(),
            topic_id: uuid_like(),
            partitions: 1,
            configs: BTreeMap::new(),
            now_ms: 0,
        })
        .await
        .unwrap();
    let tp = TopicPartition {
        topic_id: topic.topic_id,
        partition: 0,
    };
    let ids: Vec<ObjectId> = (0..3).map(|_| ObjectId(ulid::Ulid::new())).collect();
    for id in &ids {
        store
            .put(&path(*id), PutPayload::from_static(b"batch"))
            .await
            .unwrap();
        let batch = CommitBatch {
            tp,
            position: 0,
            len: 5,
            last_offset_delta: 0,
            record_count: 1,
            first_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        };
        meta.commit_object(CommitObject {
            object: *id,
            size: 5,
            batches: vec![batch],
            now_ms: 0,
        })
        .await
        .unwrap();
    }
    let orphan = ObjectId(ulid::Ulid::new());
    store
        .put(&path(orphan), PutPayload::from_static(b"never committed"))
        .await
        .unwrap();

    // Offsets 0 and 1 go: the first two objects are garbage.
    meta.delete_records(tp, 2).await.unwrap();

    // Inside the grace period nothing is deleted.
    let mut patient = Collector::new(meta.clone(), store.clone(), Duration::from_secs(3600));
    let r = patient.pass().await.unwrap();
    assert_eq!((r.unreferenced_deleted, r.orphans_deleted), (0, 0));
    assert_eq!(r.waiting, 3);

    let mut gc = Collector::new(meta.clone(), store.clone(), Duration::ZERO);
    let r = gc.pass().await.unwrap();
    assert_eq!((r.unreferenced_deleted, r.orphans_deleted), (2, 1), "{r:?}");
    for id in [ids[0], ids[1], orphan] {
        assert!(store.head(&path(id)).await.is_err(), "{id} still there");
    }
    assert!(store.head(&path(ids[2])).await.is_ok());
    assert_eq!(
        meta.objects_known(ids.clone()).await.unwrap(),
        vec![false, false, true]
    );
    // A second pass finds nothing to do.
    let r = gc.pass().await.unwrap();
    assert_eq!((r.unreferenced_deleted, r.orphans_deleted), (0, 0));
    meta.shutdown().await;
}

fn uuid_like() -> skiff_metastore::types::TopicId {
    skiff_metastore::types::TopicId::from_u128(42)
}
