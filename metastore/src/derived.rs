//! What the state machine keeps derived from its own state so that no read or command has to
//! scan every index: how many index entries point at each object (and which known objects none
//! point at), and each partition's bytes. Derived, so never written to a snapshot: rebuilt once
//! after a state is decoded (or by the first `apply`), and kept up to date by every change of an
//! index. Every replica derives the same from the same state, so this is as deterministic as
//! the state itself. A child module of the state machine.

use imbl::{OrdMap, OrdSet};

use super::{PartitionState, StateMachine};
use crate::types::{BatchLocation, ObjectId};

/// A value derived from the rest of the state: not serialized (`#[serde(skip)]` where it is
/// used, so the snapshot format does not change) and left out of comparisons of states, which
/// it cannot make differ.
#[derive(Clone, Debug, Default)]
pub(crate) struct Derived<T>(pub(crate) T);

impl<T> PartialEq for Derived<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Derived<T> {}

/// The index entries pointing at each object. Persistent maps, so a snapshot's clone of the
/// state stays O(1).
#[derive(Clone, Debug, Default)]
pub(crate) struct ObjectRefs {
    /// False in a state just decoded, until [`StateMachine::rebuild_derived`].
    built: bool,
    /// Only objects with at least one entry.
    counts: OrdMap<ObjectId, u32>,
    /// The known objects (in `objects`) that no entry points at: what GC collects.
    unreferenced: OrdSet<ObjectId>,
}

impl StateMachine {
    /// Derives everything again from the state: O(index entries), once per decoded snapshot.
    pub fn rebuild_derived(&mut self) {
        let mut counts: OrdMap<ObjectId, u32> = OrdMap::new();
        let ids: Vec<_> = self.topics.keys().copied().collect();
        for id in &ids {
            let Some(topic) = self.topics.get_mut(id) else {
                continue;
            };
            for part in topic.partitions.iter_mut() {
                let mut bytes = 0u64;
                for b in part.index.iter() {
                    bytes += u64::from(b.len);
                    if b.is_marker() {
                        continue;
                    }
                    let c = counts.entry(b.object).or_insert(0);
                    *c = c.saturating_add(1);
                }
                part.bytes = Derived(bytes);
            }
        }
        let unreferenced = self
            .objects
            .keys()
            .filter(|id| !counts.contains_key(*id))
            .copied()
            .collect();
        self.refs = Derived(ObjectRefs {
            built: true,
            counts,
            unreferenced,
        });
    }

    /// Called by `apply` before any change: a state decoded without a rebuild derives now.
    pub(super) fn ensure_derived(&mut self) {
        if !self.refs.0.built {
            self.rebuild_derived();
        }
    }

    /// The known objects no index entry points at, oldest id first; `None` until derived.
    pub(super) fn derived_unreferenced(&self) -> Option<impl Iterator<Item = &ObjectId>> {
        self.refs.0.built.then(|| self.refs.0.unreferenced.iter())
    }

    /// Whether an index entry points at `id` (the state is derived: called inside `apply`).
    pub(super) fn is_referenced(&self, id: &ObjectId) -> bool {
        self.refs.0.counts.contains_key(id)
    }

    /// `n` new index entries point at `object`.
    pub(super) fn add_refs(&mut self, object: ObjectId, n: usize) {
        if n == 0 {
            return;
        }
        let refs = &mut self.refs.0;
        let c = refs.counts.entry(object).or_insert(0);
        *c = c.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        refs.unreferenced.remove(&object);
    }

    /// These index entries are gone.
    pub(super) fn drop_refs<'a>(&mut self, gone: impl IntoIterator<Item = &'a BatchLocation>) {
        let refs = &mut self.refs.0;
        for b in gone {
            match refs.counts.get_mut(&b.object) {
                Some(c) if *c > 1 => *c -= 1,
                Some(_) => {
                    refs.counts.remove(&b.object);
                    if self.objects.contains_key(&b.object) {
                        refs.unreferenced.insert(b.object);
                    }
                }
                None => {}
            }
        }
    }

    /// `id` was just added to `objects`, or removed from it.
    pub(super) fn note_object(&mut self, id: ObjectId) {
        let refs = &mut self.refs.0;
        if self.objects.contains_key(&id) && !refs.counts.contains_key(&id) {
            refs.unreferenced.insert(id);
        } else {
            refs.unreferenced.remove(&id);
        }
    }
}

impl PartitionState {
    /// The bytes of the batches in the index.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes.0
    }

    pub(super) fn add_bytes(&mut self, len: u32) {
        self.bytes.0 = self.bytes.0.saturating_add(u64::from(len));
    }

    pub(super) fn sub_bytes(&mut self, len: u32) {
        self.bytes.0 = self.bytes.0.saturating_sub(u64::from(len));
    }
}

#[cfg(test)]
#[path = "derived_tests.rs"]
mod tests;
