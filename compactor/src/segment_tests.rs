#![allow(clippy::unwrap_used)]

use object_store::memory::InMemory;
use skiff_format::encode::BatchBuilder;
use skiff_format::run::INDEX_INTERVAL_BYTES;
use skiff_format::Batch;
use skiff_metastore::types::TopicId;

use super::*;
use crate::read::{batches, stored_run};

fn tp() -> TopicPartition {
    TopicPartition {
        topic_id: TopicId::from_u128(4),
        partition: 2,
    }
}

/// A batch as a producer sends it (header base offset 0) of `records` records of `value_len`
/// bytes at `ts`, to be stored at offset `base_offset`.
fn stored(base_offset: i64, records: usize, value_len: usize, ts: i64) -> StoredBatch {
    let value = vec![b'x'; value_len];
    let mut b = BatchBuilder::new(ts);
    for _ in 0..records {
        b = b.record(ts, Some(b"k"), Some(&value));
    }
    StoredBatch {
        base_offset,
        batch: Batch::parse(b.build(), usize::MAX).unwrap(),
        first_timestamp: None,
        max_timestamp: ts,
    }
}

#[tokio::test]
async fn a_segment_is_one_entry_its_batches_with_real_offsets_then_its_index() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut writer = SegmentWriter::new(tp());
    // 30 KiB batches with a gap after the second: a point every third batch.
    let mut pushed = Vec::new();
    for (n, base) in [0i64, 3, 10, 13, 16, 19, 22].into_iter().enumerate() {
        let mut b = stored(base, 3, 10 * 1024, 5_000 + n as i64);
        if n == 0 {
            b.first_timestamp = Some(4_999);
        }
        writer.push(&b).unwrap();
        pushed.push(b);
    }
    let id = writer.id();
    let expected_len = writer.object_len();
    let written = writer.write(&store).await.unwrap().unwrap();
    let loc = written.location;
    assert_eq!(written.size, expected_len);
    let head = store.head(&crate::object_path(id)).await.unwrap();
    assert_eq!(head.size, written.size);
    let batch_bytes: usize = pushed.iter().map(|b| b.batch.bytes.len()).sum();
    assert_eq!(
        (
            loc.object,
            loc.base_offset,
            loc.last_offset,
            loc.len as usize
        ),
        (id, 0, 24, batch_bytes)
    );
    assert_eq!(loc.position, skiff_format::object::HEADER_LEN as u64);
    assert_eq!((loc.first_timestamp, loc.max_timestamp), (4_999, 5_006));
    let RunLayout::Segment { index_len } = loc.layout else {
        panic!("{loc:?}");
    };

    // Read back as a rewrite reads it: the same batches at the same offsets.
    let mut objects = 0;
    let (read, unreadable) = batches(&store, [&loc], &mut objects).await;
    assert!(unreadable.is_empty());
    let back = stored_run(&read, &loc).unwrap();
    assert_eq!(back.len(), pushed.len());
    for (got, want) in back.iter().zip(&pushed) {
        assert_eq!(got.base_offset, want.base_offset);
        assert_eq!(got.batch.header.base_offset, want.base_offset);
        assert_eq!(got.batch.bytes[8..], want.batch.bytes[8..]);
        assert!(got.max_timestamp >= want.max_timestamp);
    }
    // The index, right after the batches: positions from the first batch, on boundaries.
    let raw = read.get(&(loc.object, loc.position)).unwrap();
    assert_eq!(raw.len(), loc.len as usize + index_len as usize);
    let index = SegmentIndex::decode(&raw[loc.len as usize..]).unwrap();
    let bases: Vec<(i64, u32)> = index
        .points()
        .iter()
        .map(|p| (p.base_offset, p.position))
        .collect();
    let batch_len = pushed[0].batch.bytes.len() as u32;
    assert!(u64::from(3 * batch_len) >= INDEX_INTERVAL_BYTES);
    assert!(u64::from(2 * batch_len) < INDEX_INTERVAL_BYTES);
    assert_eq!(bases, [(0, 0), (13, 3 * batch_len), (22, 6 * batch_len)]);
    assert_eq!(index.points()[0].max_timestamp, 5_002);
}

#[tokio::test]
async fn batches_must_come_in_offset_order() {
    let mut writer = SegmentWriter::new(tp());
    writer.push(&stored(10, 3, 1, 0)).unwrap();
    let len = writer.object_len();
    for base in [5, 12] {
        assert!(matches!(
            writer.push(&stored(base, 1, 1, 0)),
            Err(SegmentError::OutOfOrder { after: 12, .. })
        ));
    }
    assert_eq!(writer.object_len(), len, "a refused batch is not added");
    writer.push(&stored(13, 1, 1, 0)).unwrap();
}

#[tokio::test]
async fn an_empty_segment_is_not_written() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let writer = SegmentWriter::new(tp());
    let id = writer.id();
    assert!(writer.write(&store).await.unwrap().is_none());
    assert!(store.head(&crate::object_path(id)).await.is_err());
}

#[tokio::test]
async fn an_unknown_first_timestamp_is_the_lowest() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut writer = SegmentWriter::new(tp());
    writer.push(&stored(0, 1, 1, 7)).unwrap();
    let mut second = stored(1, 1, 1, 9);
    second.first_timestamp = Some(9);
    writer.push(&second).unwrap();
    let loc = writer.write(&store).await.unwrap().unwrap().location;
    // Only a segment's first batch gives its first timestamp.
    assert_eq!((loc.first_timestamp, loc.max_timestamp), (i64::MIN, 9));
}
