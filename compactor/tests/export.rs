//! The continuous Parquet export against a real (single-node) metastore and an in-memory store:
//! an export interrupted after writing its files but before recording its progress writes the
//! same files again, so nothing is duplicated; progress then moves on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use skiff_compactor::export::{write_files, ExportConfig, ExportRecord, Exporter, Projection};
use skiff_compactor::merge::{MergeConfig, Merger};
use skiff_compactor::Shared;
use skiff_format::encode::BatchBuilder;
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::types::{CreateTopic, RunLayout, TopicId, TopicPartition};
use skiff_metastore::LocalMetastore;

fn tp() -> TopicPartition {
    TopicPartition {
        topic_id: TopicId::from_u128(3),
        partition: 0,
    }
}

async fn commit(meta: &LocalMetastore, store: &InMemory, first: usize, count: usize, ts: i64) {
    let mut b = BatchBuilder::new(ts);
    for i in first..first + count {
        b = b.record(
            ts,
            Some(format!("k{i}").as_bytes()),
            Some(format!("v{i}").as_bytes()),
        );
    }
    common::commit_each(meta, store, tp(), vec![b.build()]).await;
}

/// Every exported row's offset, from every file under `parquet/`.
async fn exported(store: &InMemory) -> (Vec<i64>, usize) {
    let files: Vec<_> = store
        .list(Some(&Path::from("parquet")))
        .try_collect()
        .await
        .unwrap();
    let mut offsets = Vec::new();
    for f in &files {
        let bytes = store.get(&f.location).await.unwrap().bytes().await.unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch
                .column_by_name("offset")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap()
                .clone();
            offsets.extend(col.values().iter().copied());
        }
    }
    offsets.sort_unstable();
    (offsets, files.len())
}

#[tokio::test]
async fn an_interrupted_export_is_redone_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.unwrap());
    let store = Arc::new(InMemory::new());
    let configs: BTreeMap<String, String> =
        [("skiff.parquet.enable".to_string(), "true".to_string())].into();
    meta.create_topic(CreateTopic {
        name: "events".into(),
        topic_id: tp().topic_id,
        partitions: 1,
        configs,
        now_ms: 0,
    })
    .await
    .unwrap();
    // 2026-12-01 noon UTC.
    let ts = 1_796_126_400_000;
    commit(&meta, &store, 0, 10, ts).await;
    commit(&meta, &store, 10, 10, ts).await;

    // An exporter died after writing offsets 0..10 of its chunk, before recording progress.
    let sink: Arc<dyn ObjectStore> = store.clone();
    let partial: Vec<ExportRecord> = (0..10)
        .map(|i| ExportRecord {
            partition: 0,
            offset: i,
            timestamp: ts,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Vec::new(),
        })
        .collect();
    write_files(
        &sink,
        "parquet",
        "events",
        0,
        0,
        partial,
        &Projection::default(),
    )
    .await
    .unwrap();

    let shared = Shared::new(
        meta.clone(),
        store.clone(),
        "me".into(),
        Duration::from_secs(60),
    );
    let mut exporter = Exporter::new(shared, ExportConfig::default());
    let report = exporter.pass().await.unwrap();
    assert_eq!(
        (report.records_exported, report.lag_records),
        (20, 0),
        "{report:?}"
    );
    let (offsets, files) = exported(&store).await;
    assert_eq!(offsets, (0..20).collect::<Vec<_>>(), "every offset once");
    assert_eq!(
        files, 1,
        "the chunk's file was written again under the same name"
    );
    assert_eq!(
        meta.export_progress(vec![tp()]).await.unwrap(),
        vec![Some(20)]
    );

    // New records go to a new file; the old ones are not exported again.
    commit(&meta, &store, 20, 5, ts).await;
    let report = exporter.pass().await.unwrap();
    assert_eq!(report.records_exported, 5, "{report:?}");
    let (offsets, files) = exported(&store).await;
    assert_eq!(offsets, (0..25).collect::<Vec<_>>());
    assert_eq!(files, 2);
    meta.shutdown().await;
}

/// Every exported row's (offset, value).
async fn exported_values(store: &InMemory) -> Vec<(i64, String)> {
    let files: Vec<_> = store
        .list(Some(&Path::from("parquet")))
        .try_collect()
        .await
        .unwrap();
    let mut rows = Vec::new();
    for f in &files {
        let bytes = store.get(&f.location).await.unwrap().bytes().await.unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let offsets = batch
                .column_by_name("offset")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap()
                .clone();
            let values = batch.column_by_name("value").unwrap();
            let values = values
                .as_any()
                .downcast_ref::<arrow_array::LargeBinaryArray>()
                .unwrap();
            for (o, v) in offsets.values().iter().zip(values.iter()) {
                rows.push((*o, String::from_utf8(v.unwrap().to_vec()).unwrap()));
            }
        }
    }
    rows.sort();
    rows
}

#[tokio::test]
async fn runs_and_segments_export_every_record_at_its_exact_offset() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.unwrap());
    let store = Arc::new(InMemory::new());
    let configs: BTreeMap<String, String> =
        [("skiff.parquet.enable".to_string(), "true".to_string())].into();
    meta.create_topic(CreateTopic {
        name: "events".into(),
        topic_id: tp().topic_id,
        partitions: 1,
        configs,
        now_ms: 0,
    })
    .await
    .unwrap();
    let ts = skiff_compactor::now_ms();
    // Runs of batches of different sizes, each value naming its offset. Every header says base
    // offset 0, as producers send them: only the run tells where a batch's offsets are.
    let mut next = 0;
    let mut run_of = |sizes: &[usize]| -> Vec<Bytes> {
        sizes
            .iter()
            .map(|&n| {
                let mut b = BatchBuilder::new(ts);
                for _ in 0..n {
                    b = b.record(ts, None, Some(format!("v{next}").as_bytes()));
                    next += 1;
                }
                b.build()
            })
            .collect()
    };
    let runs: Vec<Vec<Bytes>> = [&[4, 2, 5][..], &[3], &[1, 1, 6], &[2, 2]]
        .iter()
        .map(|s| run_of(s))
        .collect();
    for run in runs {
        common::commit_run(&meta, &store, tp(), run).await;
    }
    // Merged into one segment (offsets in the headers), then one more flushed run after it.
    let shared = Shared::new(
        meta.clone(),
        store.clone(),
        "me".into(),
        Duration::from_secs(60),
    );
    let report = Merger::new(
        shared.clone(),
        MergeConfig {
            target_bytes: 1 << 20,
            job_bytes: 2 << 20,
            lease_ttl: Duration::from_secs(60),
        },
    )
    .pass()
    .await
    .unwrap();
    assert_eq!(report.segments_written, 1, "{report:?}");
    let tail = run_of(&[3, 4]);
    common::commit_run(&meta, &store, tp(), tail).await;
    let total = next;
    let runs = common::runs(&meta, tp()).await;
    assert_eq!(runs.len(), 2);
    assert!(matches!(runs[0].layout, RunLayout::Segment { .. }));
    assert_eq!(runs[1].layout, RunLayout::Flushed);

    // The export starts inside the segment's first batch.
    meta.advance_export(tp(), None, 2).await.unwrap();
    let report = Exporter::new(shared, ExportConfig::default())
        .pass()
        .await
        .unwrap();
    assert_eq!(report.records_exported, total as u64 - 2, "{report:?}");
    let want: Vec<(i64, String)> = (2..total as i64).map(|o| (o, format!("v{o}"))).collect();
    assert_eq!(exported_values(&store).await, want);
    meta.shutdown().await;
}
