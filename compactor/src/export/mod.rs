//! Parquet export for analytics engines: topics with `skiff.parquet.enable=true` are written, as
//! the compactor passes, to Parquet files under a Hive-style layout
//! (`<prefix>/topic=<name>/date=<YYYY-MM-DD>/part-<partition>-<first offset>.parquet`) that
//! DuckDB, Spark, Trino or pyarrow read as one table partitioned by topic and date.
//!
//! - **Progress lives in the metastore.** Each partition's export offset moves forward with a
//!   compare-and-set command after the files of a chunk are written. A compactor that dies in
//!   between exports the chunk again from the same first offset; the file names depend only on
//!   that offset and the date, so the second export replaces the first instead of duplicating it.
//! - **One chunk, one file per date.** A chunk is the batches from the export offset up to the
//!   last stable offset (at most [`ExportConfig::chunk_bytes`] at a time); its records go to the
//!   file of their UTC date, so a chunk spanning midnight writes two files.
//! - **Committed records only**, as a read_committed consumer reads them: nothing at or past the
//!   last stable offset (a transaction still open there holds the export back until it ends),
//!   no record of an aborted transaction (the partition's aborted index names them), and never
//!   a control batch.
//! - **A JSON value can be projected** to typed columns with the topic config
//!   `skiff.parquet.json.schema` (`name:type,…`, see [`projection`]).

pub mod file;
pub mod projection;

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use skiff_format::Batch;
use skiff_metastore::client::MetastoreError;
use skiff_metastore::types::{AbortedTxn, BatchLocation, MetaError, TopicMeta, TopicPartition};
use tracing::{info, warn};

use crate::txns::Aborted;
use crate::Shared;

pub use file::{ExportRecord, FileBuilder};
pub use projection::Projection;

/// Index entries read per metastore call.
const PAGE_BYTES: u64 = 64 << 20;

#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Where files go in the store: the prefix of the Hive layout.
    pub prefix: String,
    /// Batch bytes read per chunk (and so, roughly, per file).
    pub chunk_bytes: u64,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            prefix: "parquet".into(),
            // Compressed bytes: the records of a chunk are held decompressed while its files
            // are built, several times this with compressible data.
            chunk_bytes: 32 << 20,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub files_written: usize,
    pub records_exported: u64,
    /// Offsets committed but not exported yet, over every exported partition, after the pass
    /// (an open transaction holds the export at the last stable offset: its offsets count).
    pub lag_records: u64,
    /// Batches left out because their records do not decode.
    pub batches_skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("metastore: {0}")]
    Metastore(#[from] MetastoreError),
    #[error("reading object {0}")]
    Unreadable(skiff_metastore::types::ObjectId),
    #[error("{0}")]
    File(#[from] file::FileError),
    #[error("{0}")]
    Batch(#[from] crate::read::StoredBatchError),
    #[error("writing {path}: {source}")]
    Put {
        path: String,
        source: object_store::Error,
    },
}

/// Whether a topic exports, and how it projects its values.
pub fn topic_projection(meta: &TopicMeta) -> Option<Projection> {
    let on = meta
        .configs
        .get("skiff.parquet.enable")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !on {
        return None;
    }
    match meta.configs.get("skiff.parquet.json.schema") {
        None => Some(Projection::default()),
        Some(spec) => match spec.parse() {
            Ok(p) => Some(p),
            Err(e) => {
                warn!(topic = %meta.name, error = %e, "exporting without the JSON projection");
                Some(Projection::default())
            }
        },
    }
}

/// Decodes `batch`, whose real base offset is `base_offset` (its header's may be a producer's),
/// into export records from offset `from` on.
pub fn records_of(
    batch: &Batch,
    base_offset: i64,
    partition: i32,
    from: i64,
    out: &mut Vec<ExportRecord>,
) -> Result<(), String> {
    if batch.header.is_control() {
        return Ok(());
    }
    for r in skiff_format::records(batch).map_err(|e| e.to_string())? {
        let r = r.map_err(|e| e.to_string())?;
        let offset = base_offset + i64::from(r.offset_delta);
        if offset < from {
            continue;
        }
        out.push(ExportRecord {
            partition,
            offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|h| (String::from_utf8_lossy(&h.key).into_owned(), h.value))
                .collect(),
        });
    }
    Ok(())
}

/// Writes `records` (one partition, in offset order, exported from chunk offset `first`) as one
/// file per UTC date under `prefix`. Answers the files written.
pub async fn write_files(
    sink: &Arc<dyn ObjectStore>,
    prefix: &str,
    topic: &str,
    partition: i32,
    first: i64,
    records: Vec<ExportRecord>,
    projection: &Projection,
) -> Result<usize, ExportError> {
    let mut by_date: BTreeMap<String, FileBuilder> = BTreeMap::new();
    for r in records {
        by_date
            .entry(file::utc_date(r.timestamp))
            .or_default()
            .push(r, projection);
    }
    let files = by_date.len();
    for (date, builder) in by_date {
        let path = file::file_path(prefix, topic, &date, partition, first);
        let bytes = builder.finish(projection)?;
        sink.put(&Path::from(path.as_str()), PutPayload::from(bytes))
            .await
            .map_err(|source| ExportError::Put { path, source })?;
    }
    Ok(files)
}

pub struct Exporter {
    shared: Shared,
    config: ExportConfig,
}

impl Exporter {
    pub fn new(shared: Shared, config: ExportConfig) -> Self {
        Self { shared, config }
    }

    pub async fn pass(&mut self) -> Result<ExportReport, ExportError> {
        let mut report = ExportReport::default();
        for topic in self.shared.metastore.topics().await? {
            let Some(projection) = topic_projection(&topic) else {
                continue;
            };
            for partition in 0..topic.partitions {
                let tp = TopicPartition {
                    topic_id: topic.topic_id,
                    partition,
                };
                match self.partition(&topic, tp, &projection, &mut report).await {
                    Ok(()) => {}
                    Err(ExportError::Metastore(MetastoreError::Rejected(
                        MetaError::UnknownTopicOrPartition,
                    ))) => {}
                    Err(e) => {
                        warn!(topic = %topic.name, partition = tp.partition, error = %e, "export failed; trying again next pass")
                    }
                }
            }
        }
        if report.files_written > 0 {
            info!(?report, "exported to parquet");
        }
        Ok(report)
    }

    async fn partition(
        &self,
        topic: &TopicMeta,
        tp: TopicPartition,
        projection: &Projection,
        report: &mut ExportReport,
    ) -> Result<(), ExportError> {
        let key = crate::lease::export_key(&tp);
        if !self.shared.leases.acquire_one(key.clone()).await? {
            // Another compactor exports it; its lag is on its report.
            return Ok(());
        }
        // Progress is read under the lease: read before it, it could be another exporter's
        // stale view, and a chunk from a stale start would overwrite newer files.
        let result = self
            .export_partition(topic, tp, &key, projection, report)
            .await;
        self.shared.leases.release(vec![key]).await;
        result
    }

    async fn export_partition(
        &self,
        topic: &TopicMeta,
        tp: TopicPartition,
        key: &str,
        projection: &Projection,
        report: &mut ExportReport,
    ) -> Result<(), ExportError> {
        let at = self.progress(tp).await?;
        let offsets = self.shared.metastore.offsets(tp).await?;
        // Retention may have trimmed what was never exported: that part is gone.
        let start = at.unwrap_or(0).max(offsets.log_start_offset);
        // read_committed: what an open transaction wrote may still abort.
        let end = offsets.last_stable_offset.min(offsets.high_watermark);
        let reached = if start < end {
            self.export_chunks(topic, tp, (key, at), start, end, projection, report)
                .await?
        } else {
            start
        };
        report.lag_records += (offsets.high_watermark - reached).max(0) as u64;
        Ok(())
    }

    async fn progress(&self, tp: TopicPartition) -> Result<Option<i64>, MetastoreError> {
        let progress = self.shared.metastore.export_progress(vec![tp]).await?;
        Ok(progress.first().copied().flatten())
    }

    /// Exports `start..end` chunk by chunk; answers how far it got.
    #[allow(clippy::too_many_arguments)]
    async fn export_chunks(
        &self,
        topic: &TopicMeta,
        tp: TopicPartition,
        (key, mut at): (&str, Option<i64>),
        mut start: i64,
        end: i64,
        projection: &Projection,
        report: &mut ExportReport,
    ) -> Result<i64, ExportError> {
        while start < end {
            // Renew the lease for this chunk, and stop if it was lost or the progress moved
            // (another exporter after a lapse): files must only be written from the progress.
            if !self.shared.leases.acquire_one(key.to_owned()).await?
                || self.progress(tp).await? != at
            {
                warn!(topic = %topic.name, partition = tp.partition, "export lease lost; stopping");
                break;
            }
            let (batches, aborted) = self.chunk(tp, start, end).await?;
            // The last run may reach past `end`: what lies there is not exported yet.
            let Some(next) = batches.last().map(|b| (b.last_offset + 1).min(end)) else {
                break;
            };
            let aborted = Aborted::new(aborted);
            let mut objects = 0;
            let (bytes, unreadable) =
                crate::read::batches(&self.shared.store, &batches, &mut objects).await;
            if let Some(o) = unreadable.first() {
                return Err(ExportError::Unreadable(*o));
            }
            let mut records = Vec::new();
            for run in &batches {
                for b in crate::read::stored_run(&bytes, run)? {
                    // The run holding `start` may begin before it, the last one reach past the
                    // end; a batch of an aborted transaction is no committed record.
                    if b.last_offset() < start
                        || b.base_offset >= end
                        || aborted.contains(&b.batch, b.base_offset)
                    {
                        continue;
                    }
                    let before = records.len();
                    if let Err(e) =
                        records_of(&b.batch, b.base_offset, tp.partition, start, &mut records)
                    {
                        // The produce path checks batch headers only, so a producer can store
                        // records that do not decode. They cannot be exported; the rest can.
                        records.truncate(before);
                        report.batches_skipped += 1;
                        warn!(topic = %topic.name, partition = tp.partition, base_offset = b.base_offset, error = %e, "a batch whose records do not decode is left out of the export");
                    }
                }
            }
            // A batch crossing the end: its records from the end on wait for the next chunk.
            records.retain(|r| r.offset < end);
            let count = records.len() as u64;
            report.files_written += write_files(
                &self.shared.store,
                &self.config.prefix,
                &topic.name,
                tp.partition,
                start,
                records,
                projection,
            )
            .await?;
            self.shared.metastore.advance_export(tp, at, next).await?;
            report.records_exported += count;
            at = Some(next);
            start = next;
        }
        Ok(start)
    }

    /// The runs from the one holding `start`, up to the chunk budget, below `end`, and the
    /// aborted transactions overlapping them.
    async fn chunk(
        &self,
        tp: TopicPartition,
        start: i64,
        end: i64,
    ) -> Result<(Vec<BatchLocation>, Vec<AbortedTxn>), MetastoreError> {
        let mut out = Vec::new();
        let mut aborted = Vec::new();
        let mut bytes = 0u64;
        let mut offset = start;
        while offset < end && bytes < self.config.chunk_bytes {
            let slice = self
                .shared
                .metastore
                .read_index(tp, offset, PAGE_BYTES.min(self.config.chunk_bytes))
                .await?;
            let Some(last) = slice.batches.last().map(|b| b.last_offset) else {
                break;
            };
            // More than the runs taken may overlap: harmless, a span names its producer.
            aborted.extend(slice.aborted);
            for b in slice.batches {
                if b.base_offset >= end || bytes >= self.config.chunk_bytes && !out.is_empty() {
                    return Ok((out, aborted));
                }
                bytes += u64::from(b.len);
                out.push(b);
            }
            offset = last + 1;
        }
        Ok((out, aborted))
    }
}
