//! What removes data: DeleteRecords, retention by time and by size, and forgetting objects that
//! nothing points at. A child module of the state machine, so it sees its private state; every
//! function here is as deterministic as `apply` (time comes in the command).

use std::collections::{BTreeMap, BTreeSet};

use imbl::Vector;

use crate::types::{BatchLocation, TopicId};

use super::{PartitionState, StateMachine};
use crate::types::{
    EnforceRetention, MetaError, ObjectId, PartitionOffsets, TopicMeta, TopicPartition, Trimmed,
    UnreferencedObject,
};

/// A topic's retention settings: its own configs, else the cluster's dynamic broker defaults
/// (`log.retention.ms`, `.minutes`, `.hours`, `log.retention.bytes`, `log.cleanup.policy`), else
/// the pass's defaults. A config value that does not parse counts as unset (agents validate
/// them; an old bad value must not stop retention for every other topic). Retention runs for
/// the whole cluster, so an agent's own overrides do not count here.
struct Policy {
    delete: bool,
    retention_ms: i64,
    retention_bytes: i64,
}

/// Retention's defaults for topics that do not set their own: the pass's, under the cluster's
/// dynamic broker configs.
struct Defaults<'a> {
    retention_ms: i64,
    retention_bytes: i64,
    cleanup_policy: Option<&'a str>,
}

impl<'a> Defaults<'a> {
    fn of(pass: &EnforceRetention, cluster: &'a BTreeMap<String, String>) -> Self {
        let number = |key: &str| cluster.get(key).and_then(|v| v.trim().parse::<i64>().ok());
        // Kafka's precedence: milliseconds, then minutes, then hours; negative is no limit.
        let scaled = |key: &str, scale: i64| {
            number(key).map(|v| if v < 0 { -1 } else { v.saturating_mul(scale) })
        };
        let retention_ms = number("log.retention.ms")
            .or_else(|| scaled("log.retention.minutes", 60_000))
            .or_else(|| scaled("log.retention.hours", 3_600_000))
            .unwrap_or(pass.default_retention_ms);
        Self {
            retention_ms,
            retention_bytes: number("log.retention.bytes").unwrap_or(pass.default_retention_bytes),
            cleanup_policy: cluster.get("log.cleanup.policy").map(String::as_str),
        }
    }
}

impl Policy {
    fn of(meta: &TopicMeta, defaults: &Defaults<'_>) -> Self {
        let number = |key: &str, default: i64| {
            meta.configs
                .get(key)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        // Kafka's cleanup.policy is a list: "delete", "compact", or both.
        let delete = meta
            .configs
            .get("cleanup.policy")
            .map(String::as_str)
            .or(defaults.cleanup_policy)
            .is_none_or(|p| p.split(',').any(|x| x.trim() == "delete"));
        Self {
            delete,
            retention_ms: number("retention.ms", defaults.retention_ms),
            retention_bytes: number("retention.bytes", defaults.retention_bytes),
        }
    }
}

impl StateMachine {
    pub(super) fn delete_records(
        &mut self,
        tp: TopicPartition,
        offset: i64,
    ) -> Result<PartitionOffsets, MetaError> {
        let part = self.partition_mut(tp)?;
        let target = match offset {
            -1 => part.high_watermark,
            o if (0..=part.high_watermark).contains(&o) => o,
            _ => return Err(MetaError::OffsetOutOfRange),
        };
        let gone = part.trim_to(target);
        let offsets = part.offsets();
        self.drop_refs(gone.iter());
        Ok(offsets)
    }

    pub(super) fn enforce_retention(&mut self, pass: &EnforceRetention) -> Vec<Trimmed> {
        let mut trimmed = Vec::new();
        let mut gone = Vec::new();
        let ids: Vec<TopicId> = self.topics.keys().copied().collect();
        let cluster = self.broker_configs.cluster.clone();
        let defaults = Defaults::of(pass, &cluster);
        for id in &ids {
            let Some(topic) = self.topics.get_mut(id) else {
                continue;
            };
            let policy = Policy::of(&topic.meta, &defaults);
            if !policy.delete {
                continue;
            }
            for (partition, part) in (0..).zip(topic.partitions.iter_mut()) {
                let target = part
                    .start_for_time(policy.retention_ms, pass.now_ms)
                    .max(part.start_for_bytes(policy.retention_bytes));
                if target > part.log_start_offset {
                    gone.push(part.trim_to(target));
                    trimmed.push(Trimmed {
                        tp: TopicPartition {
                            topic_id: topic.meta.topic_id,
                            partition,
                        },
                        log_start_offset: part.log_start_offset,
                    });
                }
            }
        }
        for entries in &gone {
            self.drop_refs(entries.iter());
        }
        trimmed
    }

    /// The objects no index entry points at: trimmed away, replaced, of a deleted topic, or
    /// committed with nothing but duplicates. O(unreferenced objects): every change of an index
    /// keeps the count of entries per object (a state not yet derived scans the indexes).
    pub fn unreferenced_objects(&self) -> Vec<UnreferencedObject> {
        if let Some(ids) = self.derived_unreferenced() {
            return ids
                .filter_map(|id| self.objects.get(id).map(|e| (id, e)))
                .map(|(id, e)| UnreferencedObject {
                    object: *id,
                    size: e.size,
                    created_ms: e.created_ms,
                })
                .collect();
        }
        self.unreferenced_objects_by_scan()
    }

    /// [`StateMachine::unreferenced_objects`] the slow way, from every index entry.
    pub(super) fn unreferenced_objects_by_scan(&self) -> Vec<UnreferencedObject> {
        let referenced = self.referenced_objects();
        self.objects
            .iter()
            .filter(|(id, _)| !referenced.contains(id))
            .map(|(id, e)| UnreferencedObject {
                object: *id,
                size: e.size,
                created_ms: e.created_ms,
            })
            .collect()
    }

    /// Whether each object is one the metastore knows (committed and not forgotten).
    pub fn objects_known(&self, objects: &[ObjectId]) -> Vec<bool> {
        objects
            .iter()
            .map(|id| self.objects.contains_key(id))
            .collect()
    }

    pub(super) fn forget_objects(&mut self, objects: &[ObjectId]) -> Vec<ObjectId> {
        let mut forgotten = Vec::new();
        for id in objects {
            if !self.is_referenced(id) && self.objects.remove(id).is_some() {
                self.note_object(*id);
                forgotten.push(*id);
            }
        }
        forgotten
    }

    fn referenced_objects(&self) -> BTreeSet<ObjectId> {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .flat_map(|p| p.index.iter().map(|b| b.object))
            .collect()
    }
}

impl PartitionState {
    /// Moves the log start offset up to `offset` (never down, never past the high watermark) and
    /// drops the batches wholly below it. The batch holding the new start stays: a fetch from
    /// there returns it, and the client skips the records before the offset it asked for, as with
    /// Kafka's segments. Answers the entries dropped, O(them).
    pub(super) fn trim_to(&mut self, offset: i64) -> Vector<BatchLocation> {
        let offset = offset.min(self.high_watermark);
        if offset <= self.log_start_offset {
            return Vector::new();
        }
        self.log_start_offset = offset;
        self.trim_aborted();
        let keep_from = match self.index.floor(offset) {
            Some(b) if b.last_offset >= offset => b.base_offset,
            _ => offset,
        };
        let gone = self.index.split_below(keep_from);
        for b in gone.iter() {
            self.sub_bytes(b.len);
        }
        // The highs of the entries gone go (they lead the vector); of what is left nothing
        // changed, only what precedes it.
        let gone_highs = self.highs_before(keep_from);
        self.timestamp_highs = self.timestamp_highs.split_off(gone_highs);
        self.repair_timestamp_highs(keep_from, keep_from.saturating_sub(1));
        gone
    }

    /// Brings `timestamp_highs` up to date after the index changed: entries before `from` were
    /// left alone (or removed with their highs), and those from `from` to `changed_until`
    /// replaced. Highs before
    /// `from` stay. From `from` the running maximum is computed again only until the first old
    /// high past the change that is still above it: that one and every later high are still
    /// highs (each was above everything before it, and nothing before it has grown past it).
    /// So a trim costs the entries up to the first surviving high, and a rewrite its run plus
    /// as much; only timestamps that go down for long make it a long scan.
    pub(super) fn repair_timestamp_highs(&mut self, from: i64, changed_until: i64) {
        let at = self.highs_before(from);
        let mut old = self.timestamp_highs.split_off(at);
        let mut running = self.timestamp_highs.last().map(|&(ts, _)| ts);
        for b in self.index.from(from) {
            if b.base_offset > changed_until {
                while old.front().is_some_and(|&(_, base)| base < b.base_offset) {
                    old.pop_front();
                }
                let still_high = old.front().is_some_and(|&(_, base)| base == b.base_offset)
                    && running.is_none_or(|r| b.max_timestamp > r);
                if still_high {
                    self.timestamp_highs.append(old);
                    return;
                }
            }
            if running.is_none_or(|r| b.max_timestamp > r) {
                running = Some(b.max_timestamp);
                self.timestamp_highs
                    .push_back((b.max_timestamp, b.base_offset));
            }
        }
    }

    /// How many of `timestamp_highs` are of batches before `offset`.
    fn highs_before(&self, offset: i64) -> usize {
        self.timestamp_highs
            .binary_search_by(|&(_, base)| {
                if base < offset {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            })
            .unwrap_or_else(|i| i)
    }

    /// Starts the running maximum of timestamps again from the whole index (tests compare
    /// [`PartitionState::repair_timestamp_highs`] with it).
    #[cfg(test)]
    pub(super) fn rebuild_timestamp_highs(&mut self) {
        self.timestamp_highs.clear();
        for b in self.index.iter() {
            if self
                .timestamp_highs
                .last()
                .is_none_or(|&(ts, _)| b.max_timestamp > ts)
            {
                self.timestamp_highs
                    .push_back((b.max_timestamp, b.base_offset));
            }
        }
    }

    /// The first offset to keep under `retention.ms`: that of the first batch whose newest record
    /// is younger than the limit (Kafka deletes a segment once its newest record is older), or
    /// the high watermark when every batch has expired.
    fn start_for_time(&self, retention_ms: i64, now_ms: i64) -> i64 {
        if retention_ms < 0 {
            return self.log_start_offset;
        }
        let cutoff = now_ms.saturating_sub(retention_ms);
        // Batch timestamps need not increase, so this is a scan from the oldest, stopping at the
        // first batch to keep: only expired batches are visited, plus one.
        self.index
            .iter()
            .find(|b| b.max_timestamp >= cutoff)
            .map_or(self.high_watermark, |b| {
                b.base_offset.max(self.log_start_offset)
            })
    }

    /// The first offset to keep under `retention.bytes`: drop the oldest batches while the
    /// partition holds more than the limit.
    fn start_for_bytes(&self, retention_bytes: i64) -> i64 {
        let Ok(limit) = u64::try_from(retention_bytes) else {
            return self.log_start_offset;
        };
        // Only the batches to drop are visited, plus one.
        let mut size = self.bytes();
        for b in self.index.iter() {
            if size <= limit {
                return b.base_offset.max(self.log_start_offset);
            }
            size -= u64::from(b.len);
        }
        self.high_watermark
    }
}
