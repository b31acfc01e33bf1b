//! What the compactor changes in place: rewritten runs of batches (merged segments, compacted
//! logs) and the leases that keep several compactors off the same work. A child module of the
//! state machine, as deterministic as `apply`.

use super::{Lease, ObjectEntry, StateMachine};
use crate::types::{AcquireLeases, MetaError, ObjectId, ReplaceBatches, TopicPartition};

impl StateMachine {
    /// Swaps a run of index entries for the rewritten ones, in one step: a reader sees either
    /// the old run or the new one, and both hold the same records at the same offsets.
    pub(super) fn replace_batches(&mut self, req: &ReplaceBatches) -> Result<(), MetaError> {
        // Marker entries name no object: a rewrite naming theirs would count marker entries
        // as references to an object GC could then list, and its entries as markers' bytes.
        if req.object == ObjectId::MARKER {
            return Err(MetaError::RewriteConflict);
        }
        if self.objects.contains_key(&req.object) {
            // A retry of a rewrite that applied: the object is only ever named by one.
            return Ok(());
        }
        let part = self.partition_mut(req.tp)?;
        let (Some(&(first, _)), Some(&(last_base, _))) =
            (req.replaced.first(), req.replaced.last())
        else {
            return Err(MetaError::RewriteConflict);
        };
        // Commands come from the network: a descending run would make the range below panic on
        // every replica, at every replay of the log.
        let ascending = req.replaced.windows(2).all(|w| w[0].0 < w[1].0);
        if !ascending || first > last_base {
            return Err(MetaError::RewriteConflict);
        }
        // The run must be exactly as read: the same entries, no more, no fewer.
        let current: Vec<_> = part.index.between(first, last_base).collect();
        let unchanged = current.len() == req.replaced.len()
            && current
                .iter()
                .zip(&req.replaced)
                .all(|(b, &(want_base, want_object))| {
                    b.base_offset == want_base && b.object == want_object
                });
        if !unchanged {
            return Err(MetaError::RewriteConflict);
        }
        let last = current.last().map_or(last_base, |b| b.last_offset);
        // The new entries: inside the run, in order, not overlapping, all in the new object (a
        // rewritten marker is a control batch there, never a marker entry naming an object).
        let mut next = first;
        for b in &req.batches {
            if b.object != req.object
                || b.is_marker()
                || b.base_offset < next
                || b.last_offset < b.base_offset
                || b.last_offset > last
            {
                return Err(MetaError::RewriteConflict);
            }
            next = b.last_offset.saturating_add(1);
        }
        let gone = part
            .index
            .splice(first, last_base, req.batches.iter().copied());
        for b in gone.iter() {
            part.sub_bytes(b.len);
        }
        for b in &req.batches {
            part.add_bytes(b.len);
        }
        part.repair_timestamp_highs(first, last);
        self.drop_refs(&gone);
        self.add_refs(req.object, req.batches.len());
        self.objects.insert(
            req.object,
            ObjectEntry {
                size: req.size,
                created_ms: req.now_ms,
                answer: Vec::new(),
            },
        );
        self.note_object(req.object);
        Ok(())
    }

    /// [`StateMachine::replace_batches`], and the abort markers at `aborts` leave the aborted
    /// index with it. Only markers inside the replaced run count (the rewrite is what removes
    /// their bytes); a retry of a rewrite that applied changes nothing.
    pub(super) fn replace_dropping_aborts(
        &mut self,
        req: &ReplaceBatches,
        aborts: &[i64],
    ) -> Result<(), MetaError> {
        if self.objects.contains_key(&req.object) {
            return Ok(());
        }
        let span = match (req.replaced.first(), req.replaced.last()) {
            (Some(&(first, _)), Some(&(last_base, _))) if first <= last_base => {
                let part = self.partition(req.tp)?;
                let last = part
                    .index
                    .between(first, last_base)
                    .last()
                    .map(|b| b.last_offset);
                last.map(|last| first..=last)
            }
            _ => None,
        };
        self.replace_batches(req)?;
        let Some(span) = span else { return Ok(()) };
        let gone: Vec<i64> = aborts
            .iter()
            .copied()
            .filter(|o| span.contains(o))
            .collect();
        self.partition_mut(req.tp)?.forget_aborted(&gone);
        Ok(())
    }

    pub(super) fn acquire_leases(&mut self, req: &AcquireLeases) -> Vec<bool> {
        self.leases.retain(|_, l| l.expires_ms > req.now_ms);
        let expires_ms = req.now_ms.saturating_add(req.ttl_ms.max(0));
        req.keys
            .iter()
            .map(|key| match self.leases.get_mut(key) {
                Some(l) if l.holder != req.holder => false,
                Some(l) => {
                    l.expires_ms = l.expires_ms.max(expires_ms);
                    true
                }
                None => {
                    self.leases.insert(
                        key.clone(),
                        Lease {
                            holder: req.holder.clone(),
                            expires_ms,
                        },
                    );
                    true
                }
            })
            .collect()
    }

    pub(super) fn release_leases(&mut self, holder: &str, keys: &[String]) -> Vec<bool> {
        keys.iter()
            .map(|key| {
                let held = self.leases.get(key).is_some_and(|l| l.holder == holder);
                if held {
                    self.leases.remove(key);
                }
                held
            })
            .collect()
    }

    pub(super) fn advance_export(
        &mut self,
        tp: TopicPartition,
        from: Option<i64>,
        to: i64,
    ) -> Result<(), MetaError> {
        self.partition(tp)?;
        let current = self.exports.get(&tp).copied();
        if current == Some(to) {
            // A retry of an advance that applied.
            return Ok(());
        }
        if current != from || from.is_some_and(|f| to < f) {
            return Err(MetaError::RewriteConflict);
        }
        self.exports.insert(tp, to);
        Ok(())
    }

    /// How far each partition's export has got, if it ever started.
    pub fn export_progress(&self, tps: &[TopicPartition]) -> Vec<Option<i64>> {
        tps.iter().map(|tp| self.exports.get(tp).copied()).collect()
    }

    /// Who holds each lease and until when (for tests and for operators).
    pub fn leases(&self) -> Vec<(String, String, i64)> {
        self.leases
            .iter()
            .map(|(k, l)| (k.clone(), l.holder.clone(), l.expires_ms))
            .collect()
    }
}
