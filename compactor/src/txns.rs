//! What a rewrite and the export need to know of a partition's transactions (KIP-98), below its
//! last stable offset, where every transaction has ended: which batches belong to an aborted
//! one (the partition's aborted index says), and, walking the log in offset order, whether a
//! marker's transaction still has a record in the log.

use std::collections::HashMap;

use skiff_format::control::marker_kind;
use skiff_format::Batch;
use skiff_metastore::types::AbortedTxn;

/// The aborted transactions of one partition, by producer id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Aborted {
    /// Per producer, the offsets its aborted transactions span (first record to marker).
    by_producer: HashMap<i64, Vec<(i64, i64)>>,
}

impl Aborted {
    pub fn new(list: impl IntoIterator<Item = AbortedTxn>) -> Self {
        let mut by_producer: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for a in list {
            let spans = by_producer.entry(a.producer_id).or_default();
            if !spans.contains(&(a.first_offset, a.last_offset)) {
                spans.push((a.first_offset, a.last_offset));
            }
        }
        Self { by_producer }
    }

    /// Whether `batch`, at real base offset `base_offset`, holds records of an aborted
    /// transaction: a transactional data batch of the producer between its transaction's first
    /// offset and its abort marker. Only meaningful below the last stable offset, where every
    /// transaction has ended (above it, a transaction may still abort).
    pub fn contains(&self, batch: &Batch, base_offset: i64) -> bool {
        let h = &batch.header;
        if !h.is_transactional() || h.is_control() {
            return false;
        }
        self.by_producer.get(&h.producer_id).is_some_and(|spans| {
            spans
                .iter()
                .any(|&(first, marker)| first <= base_offset && base_offset < marker)
        })
    }
}

/// A control batch, as the compactor judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// A transaction marker of `producer_id`.
    Marker { producer_id: i64, commit: bool },
    /// Another kind of control record, or one that does not decode: kept as it is.
    Other,
}

/// What `batch` (a control batch) is.
pub(crate) fn control(batch: &Batch) -> Control {
    let Ok(mut records) = skiff_format::records(batch) else {
        return Control::Other;
    };
    let kind = match records.next() {
        Some(Ok(r)) => r.key.as_deref().and_then(marker_kind),
        _ => None,
    };
    match kind {
        Some(commit) => Control::Marker {
            producer_id: batch.header.producer_id,
            commit,
        },
        None => Control::Other,
    }
}

/// Follows the transactions of a log walked in offset order from its start, to tell when a
/// marker may go: once no record of its transaction remains, and `delete.retention.ms` has
/// passed since the marker was written (Kafka's cleaner keeps a marker while its transaction
/// has a batch left, then for the delete retention, so that a consumer that read the records
/// also reads the marker).
pub(crate) struct Markers {
    /// Per producer, whether its transaction since its last marker kept a record.
    open: HashMap<i64, bool>,
    now_ms: i64,
    delete_retention_ms: i64,
    /// When the earliest marker kept only for its delete retention comes due.
    pub due_ms: Option<i64>,
}

impl Markers {
    pub fn new(now_ms: i64, delete_retention_ms: i64) -> Self {
        Self {
            open: HashMap::new(),
            now_ms,
            delete_retention_ms,
            due_ms: None,
        }
    }

    /// A transactional data batch of `producer_id` was walked; `kept` is whether any of its
    /// records stays in the log.
    pub fn data(&mut self, producer_id: i64, kept: bool) {
        *self.open.entry(producer_id).or_insert(false) |= kept;
    }

    /// Whether the marker `control` (a control batch whose newest timestamp is `timestamp`)
    /// stays. The same rule for both kinds; an abort marker that goes must leave the
    /// partition's aborted index in the same swap (`ReplaceBatchesDroppingAborts`), since a
    /// read_committed consumer handed an aborted transaction skips its producer's batches
    /// until it meets the abort marker, and without the marker would skip the producer's
    /// later, committed, transactions too.
    pub fn keep(&mut self, control: Control, timestamp: i64) -> bool {
        let Control::Marker {
            producer_id,
            commit,
        } = control
        else {
            return true;
        };
        let has_records = self.open.remove(&producer_id).unwrap_or(false);
        let _ = commit;
        if has_records {
            return true;
        }
        let due = timestamp.saturating_add(self.delete_retention_ms);
        if self.now_ms >= due {
            return false;
        }
        self.due_ms = Some(self.due_ms.map_or(due, |d| d.min(due)));
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skiff_format::control::Marker;
    use skiff_format::encode::BatchBuilder;

    fn txn_batch(producer_id: i64) -> Batch {
        let bytes = BatchBuilder::new(0)
            .attributes(0x10)
            .producer(producer_id, 0, 0)
            .record(0, Some(b"k"), Some(b"v"))
            .build();
        Batch::parse(bytes, 1 << 20).unwrap()
    }

    fn marker(producer_id: i64, commit: bool) -> Batch {
        let bytes = Marker {
            producer_id,
            producer_epoch: 0,
            commit,
            timestamp: 100,
            coordinator_epoch: 0,
        }
        .encode(9);
        Batch::parse_stored(bytes).unwrap()
    }

    #[test]
    fn a_batch_is_aborted_inside_its_producers_aborted_span_only() {
        let aborted = Aborted::new([AbortedTxn {
            producer_id: 7,
            first_offset: 10,
            last_offset: 20,
        }]);
        assert!(aborted.contains(&txn_batch(7), 10));
        assert!(aborted.contains(&txn_batch(7), 19));
        assert!(!aborted.contains(&txn_batch(7), 21), "a later transaction");
        assert!(!aborted.contains(&txn_batch(7), 9));
        assert!(!aborted.contains(&txn_batch(8), 15), "another producer");
        let plain = Batch::parse(
            BatchBuilder::new(0)
                .producer(7, 0, 0)
                .record(0, None, Some(b"v"))
                .build(),
            1 << 20,
        )
        .unwrap();
        assert!(!aborted.contains(&plain, 15), "not transactional");
        assert!(!aborted.contains(&marker(7, false), 15), "a control batch");
    }

    #[test]
    fn markers_are_told_apart_from_their_key() {
        assert_eq!(
            control(&marker(3, true)),
            Control::Marker {
                producer_id: 3,
                commit: true
            }
        );
        assert_eq!(
            control(&marker(3, false)),
            Control::Marker {
                producer_id: 3,
                commit: false
            }
        );
    }

    #[test]
    fn a_commit_marker_goes_once_its_records_are_gone_and_its_retention_passed() {
        let commit = Control::Marker {
            producer_id: 1,
            commit: true,
        };
        let abort = Control::Marker {
            producer_id: 1,
            commit: false,
        };
        let mut m = Markers::new(1_000, 500);
        m.data(1, true);
        assert!(m.keep(commit, 100), "its transaction has a record left");
        m.data(1, false);
        assert!(!m.keep(commit, 100), "no record left, retention passed");
        assert!(m.keep(commit, 900), "no record left, retention not passed");
        assert_eq!(m.due_ms, Some(1_400));
        m.data(1, true);
        assert!(m.keep(abort, 0), "its aborted records are still there");
        assert!(!m.keep(abort, 0), "an abort marker goes by the same rule");
        assert!(m.keep(Control::Other, 0));
    }
}
