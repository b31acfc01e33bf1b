//! The compactor's metrics, registered (under `skiff_compactor_`) in the registry of the process
//! that runs it: `skiff dev` or `skiff compactor`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::PassReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `merge` or `compaction` for rewrites; `unreferenced` or `orphan` for deletions.
    pub kind: &'static str,
}

#[derive(Default)]
pub struct CompactorMetrics {
    pub passes: Counter,
    pub pass_failures: Counter,
    pub segments_written: Family<KindLabels, Counter>,
    pub bytes_rewritten: Family<KindLabels, Counter>,
    pub records_removed: Counter,
    pub tombstones_removed: Counter,
    pub aborted_records_removed: Counter,
    pub markers_removed: Counter,
    pub objects_deleted: Family<KindLabels, Counter>,
    pub bytes_deleted: Counter,
    pub rewrite_conflicts: Counter,
    /// Bytes waiting to be merged (leased elsewhere or failed) after the last pass.
    pub merge_backlog_bytes: Gauge,
    /// Dirty bytes of compacted topics not compacted by the last pass.
    pub compaction_dirty_bytes: Gauge,
    /// Garbage seen but inside its grace period at the last pass.
    pub garbage_waiting: Gauge,
    pub parquet_files_written: Counter,
    pub parquet_records_exported: Counter,
    pub parquet_batches_skipped: Counter,
    /// Offsets committed but not yet exported, over every exporting partition, after the last
    /// pass.
    pub parquet_export_lag: Gauge,
    /// What the metastore's expiry forgot, by kind (`producer`, `commit_answer`, `group`,
    /// `broker_id`).
    pub state_expired: Family<KindLabels, Counter>,
    /// What the metastore's state keeps of each of those kinds, after the last housekeeping pass.
    pub state_kept: Family<KindLabels, Gauge>,
    /// Seconds the last pass took.
    pub last_pass_seconds: Gauge<f64, AtomicU64>,
}

impl CompactorMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("compactor");
        r.register("passes", "Compactor passes run", self.passes.clone());
        r.register(
            "pass_failures",
            "Compactor passes that failed (retried next pass)",
            self.pass_failures.clone(),
        );
        r.register(
            "segments_written",
            "Segments written, by kind (merge, compaction)",
            self.segments_written.clone(),
        );
        r.register(
            "rewritten_bytes",
            "Batch bytes rewritten, by kind (merge, compaction)",
            self.bytes_rewritten.clone(),
        );
        r.register(
            "records_removed",
            "Records removed by log compaction (superseded or expired tombstones)",
            self.records_removed.clone(),
        );
        r.register(
            "tombstones_removed",
            "Tombstones removed by log compaction after delete.retention.ms",
            self.tombstones_removed.clone(),
        );
        r.register(
            "aborted_records_removed",
            "Records of aborted transactions removed by log compaction",
            self.aborted_records_removed.clone(),
        );
        r.register(
            "markers_removed",
            "Commit markers removed by log compaction: no record of their transaction left, delete.retention.ms passed",
            self.markers_removed.clone(),
        );
        r.register(
            "objects_deleted",
            "Objects deleted, by kind (unreferenced, orphan)",
            self.objects_deleted.clone(),
        );
        r.register(
            "deleted_bytes",
            "Bytes of objects deleted",
            self.bytes_deleted.clone(),
        );
        r.register(
            "rewrite_conflicts",
            "Rewrites refused because their run changed meanwhile",
            self.rewrite_conflicts.clone(),
        );
        r.register(
            "merge_backlog_bytes",
            "Bytes planned for merging but not merged by the last pass",
            self.merge_backlog_bytes.clone(),
        );
        r.register(
            "compaction_dirty_bytes",
            "Dirty bytes of compacted topics not compacted by the last pass",
            self.compaction_dirty_bytes.clone(),
        );
        r.register(
            "garbage_waiting_objects",
            "Garbage objects inside their grace period at the last pass",
            self.garbage_waiting.clone(),
        );
        r.register(
            "parquet_files_written",
            "Parquet files written by the export",
            self.parquet_files_written.clone(),
        );
        r.register(
            "parquet_records_exported",
            "Records exported to Parquet",
            self.parquet_records_exported.clone(),
        );
        r.register(
            "parquet_batches_skipped",
            "Batches left out of the export because their records do not decode",
            self.parquet_batches_skipped.clone(),
        );
        r.register(
            "parquet_export_lag_records",
            "Records committed but not yet exported to Parquet, over every exporting partition",
            self.parquet_export_lag.clone(),
        );
        r.register(
            "state_expired",
            "Metastore state forgotten by expiry, by kind (producer, commit_answer, group, broker_id)",
            self.state_expired.clone(),
        );
        r.register(
            "state_kept",
            "Metastore state kept after the last housekeeping pass, by kind (producer: one per \
             producer and partition; commit_answer: objects keeping a retry's answer; group: \
             groups with offsets; broker_id: addresses keeping an id)",
            self.state_kept.clone(),
        );
        r.register(
            "last_pass_seconds",
            "Duration of the last pass",
            self.last_pass_seconds.clone(),
        );
    }

    pub(crate) fn record(&self, report: &PassReport, seconds: f64) {
        let kind = |kind| KindLabels { kind };
        self.passes.inc();
        self.segments_written
            .get_or_create(&kind("merge"))
            .inc_by(report.merge.segments_written as u64);
        self.bytes_rewritten
            .get_or_create(&kind("merge"))
            .inc_by(report.merge.bytes_rewritten);
        self.segments_written
            .get_or_create(&kind("compaction"))
            .inc_by(report.compaction.segments_written as u64);
        self.bytes_rewritten
            .get_or_create(&kind("compaction"))
            .inc_by(report.compaction.bytes_written);
        self.records_removed
            .inc_by(report.compaction.records_removed);
        self.tombstones_removed
            .inc_by(report.compaction.tombstones_removed);
        self.aborted_records_removed
            .inc_by(report.compaction.aborted_records_removed);
        self.markers_removed
            .inc_by(report.compaction.markers_removed);
        self.objects_deleted
            .get_or_create(&kind("unreferenced"))
            .inc_by(report.gc.unreferenced_deleted as u64);
        self.objects_deleted
            .get_or_create(&kind("orphan"))
            .inc_by(report.gc.orphans_deleted as u64);
        self.bytes_deleted.inc_by(report.gc.bytes_deleted);
        self.rewrite_conflicts
            .inc_by((report.merge.conflicts + report.compaction.conflicts) as u64);
        self.merge_backlog_bytes
            .set(i64::try_from(report.merge.backlog_bytes).unwrap_or(i64::MAX));
        self.compaction_dirty_bytes
            .set(i64::try_from(report.compaction.dirty_bytes).unwrap_or(i64::MAX));
        if report.housekeeping {
            self.garbage_waiting
                .set(i64::try_from(report.gc.waiting).unwrap_or(i64::MAX));
            let e = &report.expired;
            let kinds = [
                ("producer", e.producers_expired, e.left.producers),
                (
                    "commit_answer",
                    e.commit_answers_dropped,
                    e.left.commit_answers,
                ),
                ("group", e.groups_expired, e.left.groups),
                ("broker_id", e.broker_ids_forgotten, e.left.broker_ids),
                // Never expired: retention and merging keep it in check.
                ("index_entry", 0, e.left.index_entries),
            ];
            for (name, expired, kept) in kinds {
                self.state_expired
                    .get_or_create(&kind(name))
                    .inc_by(expired);
                self.state_kept
                    .get_or_create(&kind(name))
                    .set(i64::try_from(kept).unwrap_or(i64::MAX));
            }
        }
        self.parquet_files_written
            .inc_by(report.export.files_written as u64);
        self.parquet_records_exported
            .inc_by(report.export.records_exported);
        self.parquet_batches_skipped
            .inc_by(report.export.batches_skipped);
        self.parquet_export_lag
            .set(i64::try_from(report.export.lag_records).unwrap_or(i64::MAX));
        self.last_pass_seconds.set(seconds);
    }
}
