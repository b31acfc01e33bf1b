//! Log compaction against a real (single-node) metastore and an in-memory store: many updates of
//! a few keys, in batches of every codec, with tombstones, become the latest record of each key at
//! its original offset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use skiff_compactor::compaction::{CompactionConfig, Compactor};
use skiff_compactor::Shared;
use skiff_format::batch::{Compression, BATCH_HEADER_LEN};
use skiff_format::encode::{update_crc, BatchBuilder};
use skiff_format::Batch;
use skiff_metastore::client::MetastoreClient;
use skiff_metastore::types::{CreateTopic, RunLayout, TopicId, TopicPartition};
use skiff_metastore::LocalMetastore;

fn tp() -> TopicPartition {
    TopicPartition {
        topic_id: TopicId::from_u128(5),
        partition: 0,
    }
}

const CODECS: [(Compression, i16); 5] = [
    (Compression::None, 0),
    (Compression::Gzip, 1),
    (Compression::Snappy, 2),
    (Compression::Lz4, 3),
    (Compression::Zstd, 4),
];

/// `builder`'s batch with its records compressed by `codec`, as a producer sends it.
fn with_codec(bytes: Bytes, codec: (Compression, i16)) -> Bytes {
    if codec.1 == 0 {
        return bytes;
    }
    let mut v = bytes[..BATCH_HEADER_LEN].to_vec();
    v.extend_from_slice(&skiff_format::compress(codec.0, &bytes[BATCH_HEADER_LEN..]).unwrap());
    let len = (v.len() - 12) as i32;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    let attributes = i16::from_be_bytes([v[21], v[22]]) | codec.1;
    v[21..23].copy_from_slice(&attributes.to_be_bytes());
    update_crc(&mut v);
    Bytes::from(v)
}

struct Record {
    key: String,
    value: Option<String>,
    timestamp: i64,
}

/// Commits each batch as its own object.
async fn commit(meta: &LocalMetastore, store: &InMemory, batches: Vec<Bytes>) {
    common::commit_each(meta, store, tp(), batches).await;
}

/// Every record a consumer would read: (offset, key, value, timestamp, headers).
type Seen = (
    i64,
    Option<Bytes>,
    Option<Bytes>,
    i64,
    Vec<(Bytes, Option<Bytes>)>,
);

/// Every batch, with its real base offset.
async fn all_batches(meta: &LocalMetastore, store: &InMemory) -> Vec<(i64, Batch)> {
    let mut out = Vec::new();
    for run in common::runs(meta, tp()).await {
        out.extend(common::batches_of(store, &run).await);
    }
    out
}

async fn read_all(meta: &LocalMetastore, store: &InMemory) -> Vec<Seen> {
    let mut out = Vec::new();
    for (base, batch) in all_batches(meta, store).await {
        for r in skiff_format::records(&batch).unwrap() {
            let r = r.unwrap();
            out.push((
                base + i64::from(r.offset_delta),
                r.key,
                r.value,
                r.timestamp,
                r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn keeps_the_latest_record_of_each_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.unwrap());
    let store = Arc::new(InMemory::new());
    let configs: BTreeMap<String, String> = [
        ("cleanup.policy", "compact"),
        ("delete.retention.ms", "60000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    meta.create_topic(CreateTopic {
        name: "c".into(),
        topic_id: tp().topic_id,
        partitions: 1,
        configs,
        now_ms: 0,
    })
    .await
    .unwrap();

    // 1,000 updates of 20 keys in batches of 10, each batch with the next codec. Keys 0 and 1 end
    // with a tombstone (one with an old timestamp, one recent: it makes no difference).
    let now = skiff_compactor::now_ms();
    let mut records = Vec::new();
    for i in 0..1000 {
        records.push(Record {
            key: format!("key-{}", i % 20),
            value: Some(format!("value {i}")),
            timestamp: now - 3_600_000 + i,
        });
    }
    let mut groups: Vec<Vec<Record>> = Vec::new();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        groups.push(records.by_ref().take(10).collect());
    }
    groups.push(vec![
        Record {
            key: "key-0".into(),
            value: None,
            timestamp: now - 120_000,
        },
        Record {
            key: "key-1".into(),
            value: None,
            timestamp: now - 1_000,
        },
    ]);
    // The last batch is never compacted (it plays Kafka's active segment): one more, unrelated.
    groups.push(
        (0..8)
            .map(|_| Record {
                key: "tail".into(),
                value: Some("t".into()),
                timestamp: now,
            })
            .collect(),
    );
    let mut batches = Vec::new();
    for (n, chunk) in groups.iter().enumerate() {
        let mut b = BatchBuilder::new(chunk[0].timestamp);
        for r in chunk {
            b = b.record_with_headers(
                r.timestamp,
                Some(r.key.as_bytes()),
                r.value.as_deref().map(str::as_bytes),
                &[(b"h", Some(b"x")), (b"h", Some(r.key.as_bytes()))],
            );
        }
        batches.push(with_codec(b.build(), CODECS[n % CODECS.len()]));
    }
    commit(&meta, &store, batches).await;
    let before = read_all(&meta, &store).await;
    assert_eq!(before.len(), 1010);

    let shared = Shared::new(
        meta.clone(),
        store.clone(),
        "test".into(),
        Duration::from_secs(60),
    );
    let mut compactor = Compactor::new(
        shared,
        CompactionConfig {
            read_bytes: 4096, // several chunks: the range is read twice
            segment_bytes: 8192,
            ..CompactionConfig::default()
        },
    );
    let report = compactor.pass(now).await.unwrap();
    assert_eq!(report.partitions_compacted, 1, "{report:?}");

    // What should be left: the last record of each key, tombstones included (they stay for
    // delete.retention.ms after the compaction that first kept them, whatever their own
    // timestamp), and the last batch whole.
    let mut last: HashMap<Option<Bytes>, Seen> = HashMap::new();
    for s in &before {
        last.insert(s.1.clone(), s.clone());
    }
    let mut want: Vec<Seen> = last
        .into_values()
        .filter(|s| s.1.as_deref() != Some(b"tail"))
        .collect();
    want.extend(before.iter().filter(|s| s.0 >= 1002).cloned());
    want.sort_by_key(|s| s.0);
    let after = read_all(&meta, &store).await;
    assert_eq!(after, want);
    assert_eq!(after.len(), 20 + 8);
    // Both tombstones are there, at offsets 1000 and 1001.
    assert_eq!((after[18].0, after[19].0), (1000, 1001));
    assert_eq!((after[18].2.as_ref(), after[19].2.as_ref()), (None, None));
    assert_eq!(report.records_removed, 1002 - 20);
    assert_eq!(report.tombstones_removed, 0);
    // The offsets still span what they did.
    let offsets = meta.offsets(tp()).await.unwrap();
    assert_eq!(offsets.high_watermark, 1010);
    assert_eq!(after.last().unwrap().0, 1009);

    // Nothing new and no tombstone due: the next pass rewrites nothing.
    let report = compactor.pass(now + 59_000).await.unwrap();
    assert_eq!(report.partitions_compacted, 0, "{report:?}");
    // delete.retention.ms (60 s) after that first compaction, both tombstones go.
    let report = compactor.pass(now + 60_000).await.unwrap();
    assert_eq!(report.tombstones_removed, 2, "{report:?}");
    let after = read_all(&meta, &store).await;
    assert_eq!(after.len(), 18 + 8);
    assert!(after.iter().all(|s| s.2.is_some()));
    meta.shutdown().await;
}

/// A topic "c" (1 partition) with `cleanup.policy=compact` and `configs`.
async fn compacted_topic(
    configs: &[(&str, &str)],
) -> (tempfile::TempDir, Arc<LocalMetastore>, Arc<InMemory>) {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetastore::open(dir.path()).await.unwrap());
    let store = Arc::new(InMemory::new());
    let mut all: BTreeMap<String, String> = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.insert("cleanup.policy".into(), "compact".into());
    meta.create_topic(CreateTopic {
        name: "c".into(),
        topic_id: tp().topic_id,
        partitions: 1,
        configs: all,
        now_ms: 0,
    })
    .await
    .unwrap();
    (dir, meta, store)
}

/// One batch of `key=value` records.
fn batch_of(records: &[(&str, &str)], ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(ts);
    for (k, v) in records {
        b = b.record(ts, Some(k.as_bytes()), Some(v.as_bytes()));
    }
    b.build()
}

fn compactor(
    meta: &Arc<LocalMetastore>,
    store: &Arc<InMemory>,
    config: CompactionConfig,
) -> Compactor {
    let shared = Shared::new(
        meta.clone(),
        store.clone(),
        "test".into(),
        Duration::from_secs(60),
    );
    Compactor::new(shared, config)
}

/// (offset, key, value) of every record, reading only batches that decode.
async fn keys_and_values(meta: &LocalMetastore, store: &InMemory) -> Vec<(i64, String, String)> {
    let text = |v: Option<Bytes>| String::from_utf8(v.unwrap_or_default().to_vec()).unwrap();
    common::records(meta, store, tp())
        .await
        .into_iter()
        .map(|(offset, key, value)| (offset, text(key), text(value)))
        .collect()
}

#[tokio::test]
async fn a_batch_whose_records_do_not_decode_is_kept_whole() {
    let (_dir, meta, store) = compacted_topic(&[]).await;
    let now = skiff_compactor::now_ms();
    // A valid header and CRC over records that are garbage: the produce path accepts it.
    let mut bad = batch_of(&[("k", "x")], now).to_vec();
    let records_at = BATCH_HEADER_LEN;
    bad[records_at] = 0x7f; // a record length far past the end
    update_crc(&mut bad);
    let bad = Bytes::from(bad);
    commit(
        &meta,
        &store,
        vec![
            batch_of(&[("a", "1"), ("b", "1")], now),
            bad.clone(),
            batch_of(&[("a", "2")], now),
            batch_of(&[("tail", "t")], now),
        ],
    )
    .await;
    let report = compactor(&meta, &store, CompactionConfig::default())
        .pass(now)
        .await
        .unwrap();
    assert_eq!(report.partitions_compacted, 1, "{report:?}");
    assert_eq!(report.records_removed, 1, "a=1 superseded by a=2");
    let got = keys_and_values(&meta, &store).await;
    assert_eq!(
        got,
        [
            (1, "b".into(), "1".into()),
            (3, "a".into(), "2".into()),
            (4, "tail".into(), "t".into())
        ]
    );
    // The undecodable batch is still at offset 2, byte for byte.
    let batches = all_batches(&meta, &store).await;
    let (_, stored) = batches.iter().find(|(base, _)| *base == 2).unwrap();
    assert_eq!(
        stored.bytes[8..],
        bad[8..],
        "the same bytes (the base offset field aside)"
    );
    meta.shutdown().await;
}

#[tokio::test]
async fn a_key_budget_compacts_in_rounds_from_the_dirty_part() {
    let (_dir, meta, store) = compacted_topic(&[("min.cleanable.dirty.ratio", "0.01")]).await;
    let now = skiff_compactor::now_ms();
    // Keys k0..k9, each written twice (20 one-record batches), then a tail.
    let mut batches = Vec::new();
    for round in 0..2 {
        for k in 0..10 {
            batches.push(batch_of(&[(&format!("k{k}"), &format!("{round}"))], now));
        }
    }
    batches.push(batch_of(&[("tail", "t")], now));
    commit(&meta, &store, batches).await;
    let mut c = compactor(
        &meta,
        &store,
        CompactionConfig {
            max_keys: 4,
            ..CompactionConfig::default()
        },
    );
    let mut passes = 0;
    while keys_and_values(&meta, &store).await.len() > 11 {
        let report = c.pass(now).await.unwrap();
        assert!(report.partitions_compacted <= 1);
        passes += 1;
        assert!(passes <= 10, "compaction does not progress");
    }
    // Several rounds, each mapping at most 4 keys of the dirty part.
    assert!(passes >= 3, "{passes} passes");
    let got = keys_and_values(&meta, &store).await;
    let want: Vec<(i64, String, String)> = (0..10)
        .map(|k| (10 + k, format!("k{k}"), "1".to_string()))
        .chain([(20, "tail".to_string(), "t".to_string())])
        .collect();
    assert_eq!(got, want);
    meta.shutdown().await;
}

#[tokio::test]
async fn an_exported_topic_is_compacted_only_as_far_as_it_is_exported() {
    let (_dir, meta, store) = compacted_topic(&[
        ("skiff.parquet.enable", "true"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ])
    .await;
    let now = skiff_compactor::now_ms();
    commit(
        &meta,
        &store,
        vec![
            batch_of(&[("a", "1")], now),
            batch_of(&[("a", "2")], now),
            batch_of(&[("a", "3")], now),
            batch_of(&[("tail", "t")], now),
        ],
    )
    .await;
    // Nothing exported yet: nothing compacted.
    let mut c = compactor(&meta, &store, CompactionConfig::default());
    let report = c.pass(now).await.unwrap();
    assert_eq!(report.records_removed, 0, "{report:?}");
    // Exported up to offset 2 (exclusive): a=1 goes; a=2 stays, the latest of what is
    // exported, though a=3 supersedes it.
    meta.advance_export(tp(), None, 2).await.unwrap();
    let report = c.pass(now).await.unwrap();
    assert_eq!(report.records_removed, 1, "{report:?}");
    let got = keys_and_values(&meta, &store).await;
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    meta.advance_export(tp(), Some(2), 3).await.unwrap();
    c.pass(now).await.unwrap();
    let got = keys_and_values(&meta, &store).await;
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3]);
    meta.shutdown().await;
}

fn triples(records: &[(i64, &str, &str)]) -> Vec<(i64, String, String)> {
    records
        .iter()
        .map(|&(o, k, v)| (o, k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn compacted_runs_become_one_segment_entry_with_gaps() {
    let (_dir, meta, store) = compacted_topic(&[]).await;
    let now = skiff_compactor::now_ms();
    // Three flushes of several batches each (offsets 0 | 1 | 2; 3..=4 | 5; 6), then a tail.
    common::commit_run(
        &meta,
        &store,
        tp(),
        vec![
            batch_of(&[("a", "1")], now),
            batch_of(&[("c", "1")], now),
            batch_of(&[("a", "2")], now),
        ],
    )
    .await;
    common::commit_run(
        &meta,
        &store,
        tp(),
        vec![
            batch_of(&[("b", "1"), ("e", "1")], now),
            batch_of(&[("b", "2")], now),
        ],
    )
    .await;
    common::commit_run(&meta, &store, tp(), vec![batch_of(&[("a", "3")], now)]).await;
    common::commit_run(&meta, &store, tp(), vec![batch_of(&[("tail", "t")], now)]).await;
    assert_eq!(common::runs(&meta, tp()).await.len(), 4);

    let report = compactor(&meta, &store, CompactionConfig::default())
        .pass(now)
        .await
        .unwrap();
    assert_eq!(report.records_removed, 3, "{report:?}");
    assert_eq!(report.segments_written, 1);
    let runs = common::runs(&meta, tp()).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let seg = runs[0];
    assert!(matches!(seg.layout, RunLayout::Segment { .. }), "{seg:?}");
    // The batch at offset 0 went whole, so the segment starts at 1, whose timestamp the index
    // never held.
    assert_eq!((seg.base_offset, seg.last_offset), (1, 6));
    assert_eq!(seg.first_timestamp, i64::MIN);
    assert_eq!(seg.max_timestamp, now);
    assert_eq!(runs[1].layout, RunLayout::Flushed);
    // Offset 2 is a gap between batches; offset 3 (b=1) a gap inside the rewritten batch.
    let bases: Vec<i64> = common::batches_of(&store, &seg)
        .await
        .iter()
        .map(|(base, _)| *base)
        .collect();
    assert_eq!(bases, [1, 3, 5, 6]);
    assert_eq!(
        keys_and_values(&meta, &store).await,
        triples(&[
            (1, "c", "1"),
            (4, "e", "1"),
            (5, "b", "2"),
            (6, "a", "3"),
            (7, "tail", "t")
        ])
    );
    // Compacted again, nothing changes.
    let report = compactor(&meta, &store, CompactionConfig::default())
        .pass(now)
        .await
        .unwrap();
    assert_eq!(report.records_removed, 0, "{report:?}");
    assert_eq!(common::runs(&meta, tp()).await, runs);
    meta.shutdown().await;
}

#[tokio::test]
async fn a_key_budget_cut_inside_a_run_never_drops_the_latest_record() {
    let (_dir, meta, store) = compacted_topic(&[("min.cleanable.dirty.ratio", "0.01")]).await;
    let now = skiff_compactor::now_ms();
    // One run of ten one-record batches: k0..k4, then k0..k4 again; then a tail.
    let batches = (0..2)
        .flat_map(|round| (0..5).map(move |k| (k, round)))
        .map(|(k, round)| batch_of(&[(&format!("k{k}"), &format!("{round}"))], now))
        .collect();
    common::commit_run(&meta, &store, tp(), batches).await;
    common::commit_run(&meta, &store, tp(), vec![batch_of(&[("tail", "t")], now)]).await;
    let latest: Vec<(i64, String, String)> = (0..5)
        .map(|k| (5 + k, format!("k{k}"), "1".to_string()))
        .chain([(10, "tail".to_string(), "t".to_string())])
        .collect();
    // Three keys a round: the budget runs out inside the run every time.
    let mut c = compactor(
        &meta,
        &store,
        CompactionConfig {
            max_keys: 3,
            ..CompactionConfig::default()
        },
    );
    let mut passes = 0;
    loop {
        let got = keys_and_values(&meta, &store).await;
        for want in &latest {
            assert!(got.contains(want), "pass {passes} lost {want:?}: {got:?}");
        }
        if got == latest {
            break;
        }
        c.pass(now).await.unwrap();
        passes += 1;
        assert!(passes <= 10, "compaction does not progress");
    }
    assert!(passes >= 3, "{passes} passes");
    let runs = common::runs(&meta, tp()).await;
    assert_eq!(runs.len(), 2);
    assert!(matches!(runs[0].layout, RunLayout::Segment { .. }));
    meta.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_run_fails_its_compaction_without_a_swap() {
    let (_dir, meta, store) = compacted_topic(&[]).await;
    let now = skiff_compactor::now_ms();
    for round in 0..3 {
        common::commit_run(
            &meta,
            &store,
            tp(),
            vec![
                batch_of(&[("a", &round.to_string())], now),
                batch_of(&[("b", &round.to_string())], now),
            ],
        )
        .await;
    }
    common::commit_run(&meta, &store, tp(), vec![batch_of(&[("tail", "t")], now)]).await;
    // The last byte of the second run's second batch: its checksum no longer matches.
    let before = common::runs(&meta, tp()).await;
    let victim = before[1];
    let at = (victim.position + u64::from(victim.len) - 1) as usize;
    let mut bytes = store
        .get(&common::path(victim.object))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    bytes[at] ^= 0xff;
    store
        .put(&common::path(victim.object), bytes.into())
        .await
        .unwrap();
    let objects = common::object_count(&store).await;

    let report = compactor(&meta, &store, CompactionConfig::default())
        .pass(now)
        .await
        .unwrap();
    assert_eq!(report.partitions_compacted, 0, "{report:?}");
    assert!(report.dirty_bytes > 0);
    assert_eq!(common::runs(&meta, tp()).await, before);
    assert_eq!(
        common::object_count(&store).await,
        objects,
        "no segment written"
    );
    meta.shutdown().await;
}
