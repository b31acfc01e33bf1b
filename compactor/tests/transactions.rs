//! The compactor on partitions with transactions, built through the metastore's transaction
//! commands as an agent would (InitProducerId with a transactional id, AddPartitionsToTxn,
//! transactional batches, EndTxn): merging keeps every record and marker at its offset, key
//! compaction drops aborted records and, after `delete.retention.ms`, commit markers whose
//! transaction has no record left, and the Parquet export holds exactly the committed records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use skiff_compactor::compaction::{CompactionConfig, Compactor};
use skiff_compactor::export::{ExportConfig, Exporter};
use skiff_compactor::merge::{MergeConfig, Merger};
use skiff_compactor::Shared;
use skiff_format::control::marker_kind;
use skiff_format::encode::BatchBuilder;
use skiff_format::{Batch, ObjectBuilder};
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::types::{
    AbortedTxn, AddPartitionsToTxn, CommitObject, CreateTopic, EndTxn, InitTransactionalProducer,
    ObjectId, RunLayout, TopicId, TopicPartition, TxnProducer,
};
use skiff_metastore::LocalMetastore;

fn tp() -> TopicPartition {
    TopicPartition {
        topic_id: TopicId::from_u128(13),
        partition: 0,
    }
}

async fn setup(
    configs: &[(&str, &str)],
) -> (tempfile::TempDir, Arc<LocalMetastore>, Arc<InMemory>) {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.unwrap());
    let store = Arc::new(InMemory::new());
    meta.create_topic(CreateTopic {
        name: "txns".into(),
        topic_id: tp().topic_id,
        partitions: 1,
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        now_ms: 0,
    })
    .await
    .unwrap();
    (dir, meta, store)
}

fn shared(meta: &Arc<LocalMetastore>, store: &Arc<InMemory>) -> Shared {
    Shared::new(
        meta.clone(),
        store.clone(),
        "me".into(),
        Duration::from_secs(60),
    )
}

/// A transactional producer, and the next sequence number it sends on the partition.
struct Producer {
    id: TxnProducer,
    sequence: i32,
}

async fn producer(meta: &LocalMetastore, transactional_id: &str) -> Producer {
    let p = meta
        .init_transactional_producer(InitTransactionalProducer {
            transactional_id: transactional_id.into(),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            now_ms: 0,
        })
        .await
        .unwrap();
    Producer {
        id: TxnProducer {
            transactional_id: transactional_id.into(),
            producer_id: p.producer_id,
            producer_epoch: p.producer_epoch,
        },
        sequence: 0,
    }
}

/// Writes one batch of `records` (key, value) to the partition, in its own object, as an
/// agent's flush: transactional in `p`'s transaction (added to it first), or plain.
async fn write(
    meta: &LocalMetastore,
    store: &InMemory,
    p: Option<&mut Producer>,
    records: &[(&str, &str)],
) {
    let now = skiff_compactor::now_ms();
    let mut b = BatchBuilder::new(now);
    if let Some(p) = &p {
        b = b
            .attributes(0x10)
            .producer(p.id.producer_id, p.id.producer_epoch, p.sequence);
    }
    for (k, v) in records {
        b = b.record(now, Some(k.as_bytes()), Some(v.as_bytes()));
    }
    let batch = Batch::parse(b.build(), 1 << 20).unwrap();
    let id = ObjectId(ulid::Ulid::new());
    let mut builder = ObjectBuilder::new(id.0 .0);
    let position = builder.push(*tp().topic_id.as_bytes(), tp().partition, &batch);
    let size = builder.len();
    let (parts, _) = builder.finish();
    store
        .put(&common::path(id), PutPayload::from_iter(parts))
        .await
        .unwrap();
    let mut commit = common::commit_batch(tp(), position, &batch);
    if let Some(p) = p {
        let added = meta
            .add_partitions_to_txn(AddPartitionsToTxn {
                producer: p.id.clone(),
                partitions: vec![tp()],
                now_ms: 0,
            })
            .await
            .unwrap();
        assert_eq!(added, vec![Ok(())]);
        commit.producer_id = p.id.producer_id;
        commit.producer_epoch = p.id.producer_epoch;
        commit.base_sequence = p.sequence;
        commit.transactional = true;
        p.sequence += records.len() as i32;
    }
    let answer = meta
        .commit_object(CommitObject {
            object: id,
            size,
            batches: vec![commit],
            now_ms: 0,
        })
        .await
        .unwrap();
    assert!(answer[0].is_ok(), "{answer:?}");
}

async fn end(meta: &LocalMetastore, p: &Producer, commit: bool) {
    meta.end_txn(EndTxn {
        producer: p.id.clone(),
        commit,
        bump_epoch: false,
        now_ms: 0,
    })
    .await
    .unwrap();
}

/// One thing in the log, as a read_uncommitted consumer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Record {
        offset: i64,
        key: String,
        value: String,
        /// The producer id of a transactional batch.
        txn: Option<i64>,
    },
    Marker {
        offset: i64,
        producer_id: i64,
        commit: bool,
    },
}

impl Entry {
    fn offset(&self) -> i64 {
        match self {
            Entry::Record { offset, .. } | Entry::Marker { offset, .. } => *offset,
        }
    }
}

/// Every record and marker of the partition, in offset order: marker entries as the index
/// holds them, and control batches inside segments as their bytes say.
async fn log(meta: &LocalMetastore, store: &InMemory) -> Vec<Entry> {
    let mut out = Vec::new();
    for run in common::runs(meta, tp()).await {
        if let RunLayout::Marker {
            producer_id,
            commit,
            ..
        } = run.layout
        {
            out.push(Entry::Marker {
                offset: run.base_offset,
                producer_id,
                commit,
            });
            continue;
        }
        for (base, batch) in common::batches_of(store, &run).await {
            let h = batch.header;
            for r in skiff_format::records(&batch).unwrap() {
                let r = r.unwrap();
                let offset = base + i64::from(r.offset_delta);
                if h.is_control() {
                    assert!(h.is_transactional(), "a marker batch is transactional");
                    out.push(Entry::Marker {
                        offset,
                        producer_id: h.producer_id,
                        commit: marker_kind(r.key.as_deref().unwrap()).unwrap(),
                    });
                } else {
                    out.push(Entry::Record {
                        offset,
                        key: String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                        value: String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                        txn: h.is_transactional().then_some(h.producer_id),
                    });
                }
            }
        }
    }
    out
}

fn values(log: &[Entry]) -> Vec<&str> {
    log.iter()
        .filter_map(|e| match e {
            Entry::Record { value, .. } => Some(value.as_str()),
            Entry::Marker { .. } => None,
        })
        .collect()
}

fn markers(log: &[Entry]) -> Vec<(i64, bool)> {
    log.iter()
        .filter_map(|e| match e {
            Entry::Marker {
                producer_id,
                commit,
                ..
            } => Some((*producer_id, *commit)),
            Entry::Record { .. } => None,
        })
        .collect()
}

async fn aborted(meta: &LocalMetastore) -> Vec<AbortedTxn> {
    meta.read_index(tp(), 0, u64::MAX).await.unwrap().aborted
}

/// A history with everything: plain batches, a committed transaction, an aborted one, and a
/// transaction still open followed by a plain batch. Answers the producers (committed,
/// aborted, open).
async fn history(meta: &LocalMetastore, store: &InMemory) -> (Producer, Producer, Producer) {
    let mut a = producer(meta, "a").await;
    let mut b = producer(meta, "b").await;
    let mut c = producer(meta, "c").await;
    write(meta, store, None, &[("k1", "p1")]).await;
    write(meta, store, Some(&mut a), &[("k1", "a1"), ("k2", "a2")]).await;
    write(meta, store, Some(&mut b), &[("k1", "b1"), ("k3", "b3")]).await;
    write(meta, store, Some(&mut a), &[("k4", "a4")]).await;
    end(meta, &a, true).await;
    write(meta, store, None, &[("k2", "p2")]).await;
    end(meta, &b, false).await;
    write(meta, store, Some(&mut c), &[("k1", "c1")]).await;
    write(meta, store, None, &[("k5", "p5")]).await;
    (a, b, c)
}

#[tokio::test]
async fn merging_keeps_every_record_and_marker_at_its_offset() {
    let (_dir, meta, store) = setup(&[]).await;
    let (a, b, c) = history(&meta, &store).await;
    // Markers from both outcomes, then more so that the tail is long enough to merge.
    for i in 0..4 {
        write(&meta, &store, None, &[("k", &format!("tail{i}"))]).await;
    }
    let before = log(&meta, &store).await;
    let offsets_before = meta.offsets(tp()).await.unwrap();
    let aborted_before = aborted(&meta).await;
    assert_eq!(
        markers(&before),
        [(a.id.producer_id, true), (b.id.producer_id, false)]
    );
    assert_eq!(aborted_before.len(), 1);
    assert!(offsets_before.last_stable_offset < offsets_before.high_watermark);
    let runs_before = common::runs(&meta, tp()).await;
    assert_eq!(runs_before.iter().filter(|r| r.is_marker()).count(), 2);

    let mut merger = Merger::new(
        shared(&meta, &store),
        MergeConfig {
            target_bytes: 1 << 20,
            job_bytes: 2 << 20,
            lease_ttl: Duration::from_secs(60),
        },
    );
    let report = merger.pass().await.unwrap();
    assert!(report.segments_written >= 1, "{report:?}");
    assert_eq!(report.conflicts, 0, "{report:?}");
    let runs = common::runs(&meta, tp()).await;
    assert!(
        runs.iter().all(|r| !r.is_marker()),
        "both markers are in segments now: {runs:?}"
    );
    assert!(runs.len() < runs_before.len());
    // The same records, markers, offsets and transactional flags, read from the segments;
    // the open transaction's batch (past the LSO) merged as well, bytes as they were.
    assert_eq!(log(&meta, &store).await, before);
    assert_eq!(meta.offsets(tp()).await.unwrap(), offsets_before);
    assert_eq!(aborted(&meta).await, aborted_before);
    // The partition's size counts each marker as its 78-byte control batch, before and after.
    let size: u64 = runs.iter().map(|r| u64::from(r.len)).sum();
    let size_before: u64 = runs_before.iter().map(|r| u64::from(r.len)).sum();
    assert_eq!(size, size_before);
    assert_eq!(meta.partition_sizes(vec![tp()]).await.unwrap()[0], Ok(size));
    // The open transaction still ends, after the merge, with its marker at the end.
    end(&meta, &c, true).await;
    let after = log(&meta, &store).await;
    assert_eq!(
        after.last(),
        Some(&Entry::Marker {
            offset: offsets_before.high_watermark,
            producer_id: c.id.producer_id,
            commit: true
        })
    );
    meta.shutdown().await;
}

#[tokio::test]
async fn compaction_drops_aborted_records_and_then_commit_markers_with_no_record_left() {
    let (_dir, meta, store) = setup(&[
        ("cleanup.policy", "compact"),
        ("delete.retention.ms", "60000"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ])
    .await;
    let (a, _b, c) = history(&meta, &store).await;
    // A transaction whose only record a later committed one supersedes: once compacted, its
    // marker has no record left.
    let mut d = producer(&meta, "d").await;
    let mut e = producer(&meta, "e").await;
    write(&meta, &store, Some(&mut d), &[("k6", "d6")]).await;
    end(&meta, &d, true).await;
    write(&meta, &store, Some(&mut e), &[("k6", "e6")]).await;
    end(&meta, &e, true).await;
    write(&meta, &store, None, &[("k7", "last")]).await;
    let before = log(&meta, &store).await;
    let offsets = meta.offsets(tp()).await.unwrap();
    let lso = offsets.last_stable_offset;
    let open_at = before
        .iter()
        .find(|x| matches!(x, Entry::Record { value, .. } if value == "c1"))
        .unwrap()
        .offset();
    assert_eq!(lso, open_at, "c's open transaction holds the LSO");

    let now = skiff_compactor::now_ms();
    let mut compactor = Compactor::new(shared(&meta, &store), CompactionConfig::default());
    let report = compactor.pass(now).await.unwrap();
    assert_eq!(report.partitions_compacted, 1, "{report:?}");
    let first = log(&meta, &store).await;
    // Below the LSO: p1 superseded by a1 (b1 was aborted: it supersedes nothing), a2 by p2;
    // b's records gone. At and past the LSO nothing was touched: c1 (open) and p5 stay, and
    // so do d6 and e6 (d6 is past the LSO although d committed).
    assert_eq!(
        values(&first),
        ["a1", "a4", "p2", "c1", "p5", "d6", "e6", "last"]
    );
    assert_eq!(report.aborted_records_removed, 2, "{report:?}");
    assert_eq!(report.records_removed, 4, "{report:?}");
    // Every marker stays: a's transaction has records, b's is an abort marker.
    assert_eq!(markers(&first), markers(&before));
    assert_eq!(report.markers_removed, 0);
    // Nothing moved: every entry left is the one that was at its offset.
    for x in &first {
        assert!(before.contains(x), "{x:?} was not in the log before");
    }
    assert_eq!(meta.offsets(tp()).await.unwrap(), offsets);

    // c commits: everything but the last run is cleanable now. c1 supersedes a1, e6 d6.
    end(&meta, &c, true).await;
    write(&meta, &store, None, &[("k8", "after")]).await;
    let report = compactor.pass(now).await.unwrap();
    assert_eq!(report.partitions_compacted, 1, "{report:?}");
    let second = log(&meta, &store).await;
    assert_eq!(
        values(&second),
        ["a4", "p2", "c1", "p5", "e6", "last", "after"]
    );
    // d's marker has no record left, but delete.retention.ms has not passed since it was
    // written: it stays, as every other.
    assert_eq!(report.markers_removed, 0, "{report:?}");
    assert_eq!(markers(&second).len(), 5);

    // A day later: d's commit marker goes, and b's abort marker (its records went in the first
    // pass) with its entry in the aborted index, in the same swap. a's stays (a4 is left), c's
    // and e's stay (their records are left).
    assert_eq!(aborted(&meta).await.len(), 1);
    let later = now + 86_400_000;
    let report = compactor.pass(later).await.unwrap();
    assert_eq!(report.markers_removed, 2, "{report:?}");
    let third = log(&meta, &store).await;
    assert_eq!(values(&third), values(&second));
    assert_eq!(
        markers(&third),
        [
            (a.id.producer_id, true),
            (e.id.producer_id, true),
            (c.id.producer_id, true),
        ]
    );
    assert!(!third.iter().any(
        |x| matches!(x, Entry::Marker { producer_id, .. } if *producer_id == d.id.producer_id)
    ));
    for x in &third {
        assert!(before.contains(x) || second.contains(x), "{x:?}");
    }
    assert!(
        aborted(&meta).await.is_empty(),
        "b left the aborted index with its marker"
    );
    meta.shutdown().await;
}

/// Every exported row's (offset, value), from every file under `parquet/`.
async fn exported(store: &InMemory) -> Vec<(i64, String)> {
    let files: Vec<_> = store
        .list(Some(&Path::from("parquet")))
        .try_collect()
        .await
        .unwrap();
    let mut out = Vec::new();
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
            let values = batch
                .column_by_name("value")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::LargeBinaryArray>()
                .unwrap()
                .clone();
            for i in 0..batch.num_rows() {
                out.push((
                    offsets.value(i),
                    String::from_utf8(values.value(i).to_vec()).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_export_holds_exactly_the_committed_records_and_waits_at_the_lso() {
    let (_dir, meta, store) = setup(&[("skiff.parquet.enable", "true")]).await;
    let (_a, _b, c) = history(&meta, &store).await;
    let log_before = log(&meta, &store).await;
    let offset_of = |v: &str| {
        log_before
            .iter()
            .find(|x| matches!(x, Entry::Record { value, .. } if value == v))
            .unwrap()
            .offset()
    };
    let lso = meta.offsets(tp()).await.unwrap().last_stable_offset;
    assert_eq!(lso, offset_of("c1"));

    let mut exporter = Exporter::new(shared(&meta, &store), ExportConfig::default());
    let report = exporter.pass().await.unwrap();
    let want: Vec<(i64, String)> = ["p1", "a1", "a2", "a4", "p2"]
        .iter()
        .map(|v| (offset_of(v), (*v).to_owned()))
        .collect();
    assert_eq!(exported(&store).await, want);
    assert_eq!(report.records_exported, 5, "{report:?}");
    // The open transaction holds the export at the LSO; p5, after it, waits too.
    assert_eq!(meta.export_progress(vec![tp()]).await.unwrap(), [Some(lso)]);
    assert!(report.lag_records > 0);
    // Nothing moves while it is open.
    let report = exporter.pass().await.unwrap();
    assert_eq!(report.records_exported, 0, "{report:?}");

    // It aborts: c1 is never exported, p5 is.
    end(&meta, &c, false).await;
    let report = exporter.pass().await.unwrap();
    assert_eq!(report.records_exported, 1, "{report:?}");
    let hw = meta.offsets(tp()).await.unwrap().high_watermark;
    assert_eq!(meta.export_progress(vec![tp()]).await.unwrap(), [Some(hw)]);
    let mut want = want;
    want.push((offset_of("p5"), "p5".to_owned()));
    assert_eq!(exported(&store).await, want);
    assert_eq!(report.lag_records, 0);
    meta.shutdown().await;
}

#[tokio::test]
async fn the_export_of_merged_segments_leaves_markers_and_aborted_records_out() {
    let (_dir, meta, store) = setup(&[("skiff.parquet.enable", "true")]).await;
    let (_a, _b, c) = history(&meta, &store).await;
    end(&meta, &c, true).await;
    for i in 0..4 {
        write(&meta, &store, None, &[("k", &format!("tail{i}"))]).await;
    }
    let mut merger = Merger::new(
        shared(&meta, &store),
        MergeConfig {
            target_bytes: 1 << 20,
            job_bytes: 2 << 20,
            lease_ttl: Duration::from_secs(60),
        },
    );
    assert!(merger.pass().await.unwrap().segments_written >= 1);
    assert!(common::runs(&meta, tp())
        .await
        .iter()
        .all(|r| !r.is_marker()));
    let mut exporter = Exporter::new(shared(&meta, &store), ExportConfig::default());
    exporter.pass().await.unwrap();
    let got: Vec<String> = exported(&store).await.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        got,
        ["p1", "a1", "a2", "a4", "p2", "c1", "p5", "tail0", "tail1", "tail2", "tail3"]
    );
    meta.shutdown().await;
}
