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
            transactional: false,
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
    let mut patient = Collector::new(
        meta.clone(),
        store.clone(),
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    );
    let r = patient.pass().await.unwrap();
    assert_eq!((r.unreferenced_deleted, r.orphans_deleted), (0, 0));
    assert_eq!(r.waiting, 3);

    let mut gc = Collector::new(meta.clone(), store.clone(), Duration::ZERO, Duration::ZERO);
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

/// An orphan is as young as the later of its id's time and its upload: an object named in the
/// future (its agent's clock ahead) or uploaded late is kept, since a commit of it could still be
/// accepted.
#[tokio::test]
async fn an_orphan_is_kept_while_its_id_or_its_upload_is_young() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.unwrap());
    let store = Arc::new(InMemory::new());
    let now = ulid::Ulid::new().timestamp_ms();
    let hour = 3_600_000;
    let ahead = ObjectId(ulid::Ulid::from_parts(now + hour, 1));
    let named_long_ago = ObjectId(ulid::Ulid::from_parts(now - 2 * hour, 2));
    for id in [ahead, named_long_ago] {
        store
            .put(&path(id), PutPayload::from_static(b"never committed"))
            .await
            .unwrap();
    }
    let grace = Duration::from_millis(hour);
    let mut gc = Collector::new(meta.clone(), store.clone(), grace, grace);
    let r = gc.pass().await.unwrap();
    assert_eq!((r.orphans_deleted, r.waiting), (0, 2), "{r:?}");
    // With no grace left, the id in the future still protects its object.
    let mut gc = Collector::new(meta.clone(), store.clone(), Duration::ZERO, Duration::ZERO);
    let r = gc.pass().await.unwrap();
    assert_eq!((r.orphans_deleted, r.waiting), (1, 1), "{r:?}");
    assert!(store.head(&path(ahead)).await.is_ok());
    assert!(store.head(&path(named_long_ago)).await.is_err());
    meta.shutdown().await;
}

#[test]
fn an_orphan_grace_below_the_floor_is_refused() {
    use skiff_compactor::{CompactorConfig, ORPHAN_GRACE_FLOOR};
    let short = CompactorConfig {
        orphan_grace: ORPHAN_GRACE_FLOOR - Duration::from_millis(1),
        ..CompactorConfig::default()
    };
    let e = short.validate().unwrap_err().to_string();
    assert!(e.contains("below its floor"), "{e}");
    let at_floor = CompactorConfig {
        orphan_grace: ORPHAN_GRACE_FLOOR,
        ..CompactorConfig::default()
    };
    assert!(at_floor.validate().is_ok());
    assert!(CompactorConfig::default().validate().is_ok());
}
