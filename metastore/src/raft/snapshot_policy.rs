//! When a node builds a snapshot: after at least `min_entries` applied entries, and once the
//! commands applied since the last snapshot amount to `log_ratio` times its size.
//!
//! openraft's own policy counts entries only. A snapshot costs a pass over the whole state (its
//! encoding, 64 bytes an index entry, is written out), while an entry costs its own size; with a
//! fixed count, the larger the state, the larger the share of the machine that snapshots take:
//! the scale bench (docs/benchmarks.md) saw three nodes of a 700 MiB state spend most of two
//! cores building a snapshot every 2,000 commits. Measured in bytes, snapshot work is bounded by
//! `1 / log_ratio` times the bytes applied, whatever the state's size, and what a restart
//! replays (the journal behind the snapshot) by `log_ratio` times the state plus `min_entries`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;

use super::Raft;

/// Encoded bytes of the commands applied, in total and when the latest snapshot's state was
/// taken. Shared by the state machine store, which counts, and the trigger, which reads.
#[derive(Debug, Default)]
pub struct AppliedBytes {
    total: AtomicU64,
    at_snapshot: AtomicU64,
}

impl AppliedBytes {
    pub(super) fn add(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The state as it is now is what the snapshot being built or installed holds.
    pub(super) fn snapshot_taken(&self) {
        self.at_snapshot
            .store(self.total.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    pub fn since_snapshot(&self) -> u64 {
        self.total
            .load(Ordering::Relaxed)
            .saturating_sub(self.at_snapshot.load(Ordering::Relaxed))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SnapshotPolicy {
    pub min_entries: u64,
    pub log_ratio: f64,
}

impl SnapshotPolicy {
    /// Whether to build a snapshot now.
    pub fn due(&self, entries_since: u64, bytes_since: u64, snapshot_bytes: u64) -> bool {
        entries_since >= self.min_entries
            && bytes_since as f64 >= self.log_ratio * snapshot_bytes as f64
    }
}

/// Asks `raft` for a snapshot whenever `policy` says one is due, until the node shuts down.
/// `snapshot_bytes` reports the size of the current snapshot file.
pub async fn run(
    raft: Raft,
    applied: Arc<AppliedBytes>,
    policy: SnapshotPolicy,
    snapshot_bytes: impl Fn() -> u64 + Send + 'static,
) {
    let mut metrics = raft.metrics();
    loop {
        // Checked on every change of the node's metrics (each apply moves them), at most a few
        // times a second: the condition moves slowly.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if metrics.changed().await.is_err() {
            return;
        }
        let (state, applied_index, snapshot_index) = {
            let m = metrics.borrow_and_update();
            (
                m.state,
                m.last_applied.map(|l| l.index),
                m.snapshot.map(|l| l.index),
            )
        };
        if state == ServerState::Shutdown {
            return;
        }
        let Some(applied_index) = applied_index else {
            continue;
        };
        let entries_since = match snapshot_index {
            Some(s) => applied_index.saturating_sub(s),
            None => applied_index.saturating_add(1),
        };
        if policy.due(entries_since, applied.since_snapshot(), snapshot_bytes()) {
            // Ignored by openraft while a build is under way; the next check asks again.
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_entries_and_bytes_both() {
        let p = SnapshotPolicy {
            min_entries: 100,
            log_ratio: 0.5,
        };
        assert!(!p.due(99, u64::MAX, 0), "too few entries");
        assert!(p.due(100, 0, 0), "nothing to weigh against yet");
        assert!(
            !p.due(10_000, 499, 1000),
            "applied less than half the state"
        );
        assert!(p.due(10_000, 500, 1000));
    }

    #[test]
    fn bytes_since_the_snapshot() {
        let a = AppliedBytes::default();
        a.add(10);
        a.snapshot_taken();
        a.add(5);
        assert_eq!(a.since_snapshot(), 5);
    }
}
