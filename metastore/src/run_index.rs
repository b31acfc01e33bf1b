//! A partition's index: its runs in offset order, in a persistent vector.
//!
//! Runs are only ever appended at the end (commits), cut from the front (retention,
//! DeleteRecords) or swapped for a span of rewritten ones (merging, compaction), and looked up
//! by offset. A sorted RRB vector does all of that in O(log n) and keeps the tail, where every
//! commit lands, in the vector's own buffer: appending touches no tree node, where a B-tree map
//! walks its levels (a cache miss each on a large index) to find the last entry. Its chunks fill
//! completely as runs are appended, where a B-tree's split nodes stay half empty, and it clones
//! in O(1) for snapshots like the map did. In a snapshot it is the runs in order, as the map's
//! values were.

use imbl::Vector;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::types::BatchLocation;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunIndex {
    /// Strictly ascending by base offset, and not overlapping.
    runs: Vector<BatchLocation>,
}

impl RunIndex {
    /// From runs already in ascending order (an older snapshot's map, in key order).
    pub(crate) fn from_ascending(runs: impl IntoIterator<Item = BatchLocation>) -> Self {
        Self {
            runs: runs.into_iter().collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.runs.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &BatchLocation> + '_ {
        self.runs.iter()
    }

    pub(crate) fn last_mut(&mut self) -> Option<&mut BatchLocation> {
        self.runs.back_mut()
    }

    /// Appends a run past the last one; the caller (the commit path) assigns it the high
    /// watermark, which is past every run.
    pub(crate) fn push(&mut self, run: BatchLocation) {
        debug_assert!(self
            .runs
            .last()
            .is_none_or(|l| l.last_offset < run.base_offset));
        self.runs.push_back(run);
    }

    /// The index of the first run whose base offset is at or above `base`.
    fn first_at_or_above(&self, base: i64) -> usize {
        self.runs
            .binary_search_by(|r| {
                if r.base_offset < base {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            })
            .unwrap_or_else(|i| i)
    }

    /// The run starting exactly at `base`.
    pub(crate) fn get(&self, base: i64) -> Option<&BatchLocation> {
        self.runs
            .get(self.first_at_or_above(base))
            .filter(|r| r.base_offset == base)
    }

    /// The last run starting at or below `offset`: the one holding it, if any does.
    pub(crate) fn floor(&self, offset: i64) -> Option<&BatchLocation> {
        let i = self.first_at_or_above(offset.saturating_add(1));
        i.checked_sub(1).and_then(|i| self.runs.get(i))
    }

    /// The runs starting at or above `base`, in order.
    pub(crate) fn from(&self, base: i64) -> impl Iterator<Item = &BatchLocation> + '_ {
        let i = self.first_at_or_above(base);
        self.runs.focus().narrow(i..).into_iter()
    }

    /// The runs starting from `first` to `last` (both included), in order.
    pub(crate) fn between(
        &self,
        first: i64,
        last: i64,
    ) -> impl Iterator<Item = &BatchLocation> + '_ {
        self.from(first).take_while(move |r| r.base_offset <= last)
    }

    /// Removes the runs starting below `base` and answers them.
    pub(crate) fn split_below(&mut self, base: i64) -> Vector<BatchLocation> {
        let i = self.first_at_or_above(base);
        let rest = self.runs.split_off(i);
        std::mem::replace(&mut self.runs, rest)
    }

    /// Swaps the runs starting from `first` to `last` for `new` (which the caller checked lie
    /// in that span, in order) and answers the runs removed.
    pub(crate) fn splice(
        &mut self,
        first: i64,
        last: i64,
        new: impl IntoIterator<Item = BatchLocation>,
    ) -> Vector<BatchLocation> {
        let start = self.first_at_or_above(first);
        let end = self.first_at_or_above(last.saturating_add(1));
        let mut tail = self.runs.split_off(start);
        let after = tail.split_off(end.saturating_sub(start));
        self.runs.extend(new);
        self.runs.append(after);
        tail
    }
}

impl Serialize for RunIndex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.runs.iter())
    }
}

/// A snapshot's runs must be in order, or every lookup would go wrong: checked, not trusted.
impl<'de> Deserialize<'de> for RunIndex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let runs = Vec::<BatchLocation>::deserialize(d)?;
        if runs
            .windows(2)
            .any(|w| w[1].base_offset <= w[0].last_offset)
        {
            return Err(serde::de::Error::custom(
                "index runs out of order or overlapping",
            ));
        }
        Ok(Self::from_ascending(runs))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::{ObjectId, RunLayout};

    fn run(base: i64, last: i64) -> BatchLocation {
        BatchLocation {
            base_offset: base,
            last_offset: last,
            object: ObjectId(ulid::Ulid(1)),
            position: 0,
            len: 10,
            first_timestamp: 0,
            max_timestamp: 0,
            layout: RunLayout::Flushed,
        }
    }

    fn bases<'a>(runs: impl Iterator<Item = &'a BatchLocation>) -> Vec<i64> {
        runs.map(|r| r.base_offset).collect()
    }

    #[test]
    fn lookups_cuts_and_swaps() {
        let mut index = RunIndex::default();
        for b in (0..100).step_by(10) {
            index.push(run(b, b + 9));
        }
        assert_eq!(index.get(30).unwrap().base_offset, 30);
        assert!(index.get(31).is_none());
        assert_eq!(index.floor(35).unwrap().base_offset, 30);
        assert_eq!(index.floor(30).unwrap().base_offset, 30);
        assert!(index.floor(-1).is_none());
        assert_eq!(bases(index.from(35)), [40, 50, 60, 70, 80, 90]);
        assert_eq!(bases(index.between(20, 40)), [20, 30, 40]);
        let gone = index.splice(20, 49, [run(20, 49)]);
        assert_eq!(bases(gone.iter()), [20, 30, 40]);
        assert_eq!(bases(index.iter()), [0, 10, 20, 50, 60, 70, 80, 90]);
        let cut = index.split_below(50);
        assert_eq!(bases(cut.iter()), [0, 10, 20]);
        assert_eq!(bases(index.iter()), [50, 60, 70, 80, 90]);
        index.last_mut().unwrap().last_offset = 120;
        assert_eq!(index.iter().last().unwrap().last_offset, 120);
    }

    #[test]
    fn a_snapshot_out_of_order_is_refused() {
        let runs = vec![run(10, 19), run(0, 9)];
        let bytes = crate::codec::encode(&runs).unwrap();
        assert!(crate::codec::decode::<RunIndex>(&bytes).is_err());
        let ok = crate::codec::encode(&vec![run(0, 9), run(10, 19)]).unwrap();
        assert_eq!(crate::codec::decode::<RunIndex>(&ok).unwrap().len(), 2);
    }
}
