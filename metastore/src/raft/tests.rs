#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{blank_ent, log_id, StoreBuilder, Suite};
use openraft::{EntryPayload, StorageError};
use tempfile::TempDir;

use super::snapshot::{self, SnapshotError};
use super::*;
use crate::types::{Command, InitProducerId};

const LOCAL: NodeId = 1;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        // The writer thread is detached: it ends on its own when the suite drops the store.
        let (log, _writer) = LogStore::open(dir.path(), LogStoreOptions::default()).unwrap();
        let sm = StateMachineStore::open(dir.path()).unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn blank(term: u64, index: u64) -> Entry {
    blank_ent::<TypeConfig>(term, LOCAL, index)
}

fn command(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, LOCAL, index),
        payload: EntryPayload::Normal(Command::InitProducerId(InitProducerId {
            transactional_id: None,
            now_ms: index as i64,
        })),
    }
}

fn open(dir: &Path, compact_after_purged: u64) -> (LogStore, JournalWriter) {
    LogStore::open(
        dir,
        LogStoreOptions {
            compact_after_purged,
        },
    )
    .unwrap()
}

/// Drops the store and waits until its file is closed, like a clean stop.
fn close(store: LogStore, writer: JournalWriter) {
    drop(store);
    writer.join();
}

async fn indexes(store: &mut LogStore) -> Vec<u64> {
    let entries = store.try_get_log_entries(..).await.unwrap();
    entries.iter().map(|e| e.log_id.index).collect()
}

fn journal_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(log_store::JOURNAL_FILE))
        .unwrap()
        .len()
}

#[tokio::test]
async fn journal_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, writer) = open(dir.path(), 1000);
    store.save_vote(&Vote::new(3, LOCAL)).await.unwrap();
    store
        .blocking_append((1..=5).map(|i| command(3, i)))
        .await
        .unwrap();
    store.truncate(log_id(3, LOCAL, 4)).await.unwrap();
    store.blocking_append([blank(4, 4)]).await.unwrap();
    store
        .save_committed(Some(log_id(3, LOCAL, 3)))
        .await
        .unwrap();
    store.purge(log_id(3, LOCAL, 1)).await.unwrap();
    close(store, writer);

    let (mut store, writer) = open(dir.path(), 1000);
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, LOCAL)));
    assert_eq!(
        store.read_committed().await.unwrap(),
        Some(log_id(3, LOCAL, 3))
    );
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(3, LOCAL, 1)));
    assert_eq!(state.last_log_id, Some(log_id(4, LOCAL, 4)));
    assert_eq!(indexes(&mut store).await, vec![2, 3, 4]);
    let entries = store.try_get_log_entries(2..3).await.unwrap();
    assert_eq!(entries, vec![command(3, 2)]);
    close(store, writer);
}

#[tokio::test]
async fn torn_tail_is_cut_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, writer) = open(dir.path(), 1000);
    store
        .blocking_append((1..=3).map(|i| command(1, i)))
        .await
        .unwrap();
    let good_len = journal_len(dir.path());
    store.blocking_append([command(1, 4)]).await.unwrap();
    close(store, writer);

    // A crash in the middle of the last write.
    let full = journal_len(dir.path());
    let f = OpenOptions::new()
        .write(true)
        .open(dir.path().join(log_store::JOURNAL_FILE))
        .unwrap();
    f.set_len(full - 3).unwrap();
    drop(f);

    let (mut store, writer) = open(dir.path(), 1000);
    assert_eq!(indexes(&mut store).await, vec![1, 2, 3]);
    assert_eq!(
        journal_len(dir.path()),
        good_len,
        "the torn record is cut off"
    );
    // Appending continues cleanly after the cut.
    store
        .blocking_append([command(1, 4), command(1, 5)])
        .await
        .unwrap();
    close(store, writer);
    let (mut store, writer) = open(dir.path(), 1000);
    assert_eq!(indexes(&mut store).await, vec![1, 2, 3, 4, 5]);
    close(store, writer);
}

#[tokio::test]
async fn corrupt_or_garbage_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, writer) = open(dir.path(), 1000);
    store
        .blocking_append((1..=2).map(|i| command(1, i)))
        .await
        .unwrap();
    let good_len = journal_len(dir.path());
    store.blocking_append([command(1, 3)]).await.unwrap();
    close(store, writer);

    // Flip a byte inside the last record's payload: its checksum no longer matches.
    let path = dir.path().join(log_store::JOURNAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let (mut store, writer) = open(dir.path(), 1000);
    assert_eq!(indexes(&mut store).await, vec![1, 2]);
    close(store, writer);
    assert_eq!(journal_len(dir.path()), good_len);

    // Garbage with an absurd length after the good records.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0xff; 64]).unwrap();
    drop(f);
    let (mut store, writer) = open(dir.path(), 1000);
    assert_eq!(indexes(&mut store).await, vec![1, 2]);
    close(store, writer);
    assert_eq!(journal_len(dir.path()), good_len);
}

#[tokio::test]
async fn foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(log_store::JOURNAL_FILE),
        b"definitely not a journal",
    )
    .unwrap();
    let err = LogStore::open(dir.path(), LogStoreOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, journal::JournalError::BadMagic { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn purge_rewrites_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, writer) = open(dir.path(), 20);
    store.save_vote(&Vote::new(1, LOCAL)).await.unwrap();
    for i in 1..=50 {
        store.blocking_append([command(1, i)]).await.unwrap();
        store
            .save_committed(Some(log_id(1, LOCAL, i)))
            .await
            .unwrap();
    }
    let before = journal_len(dir.path());
    store.purge(log_id(1, LOCAL, 10)).await.unwrap();
    assert!(
        journal_len(dir.path()) > before,
        "no rewrite below the threshold"
    );
    store.purge(log_id(1, LOCAL, 40)).await.unwrap();
    let after = journal_len(dir.path());
    assert!(after < before / 3, "rewritten: {before} -> {after}");
    store.blocking_append([command(1, 51)]).await.unwrap();
    close(store, writer);

    let (mut store, writer) = open(dir.path(), 20);
    assert_eq!(indexes(&mut store).await, (41..=51).collect::<Vec<_>>());
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(1, LOCAL)));
    assert_eq!(
        store.read_committed().await.unwrap(),
        Some(log_id(1, LOCAL, 50))
    );
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, LOCAL, 40)));
    close(store, writer);
}

#[tokio::test]
async fn snapshot_survives_reopen_and_detects_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    sm.apply([command(1, 1), command(1, 2)]).await.unwrap();
    let built = sm.get_snapshot_builder().await;
    let mut builder = built;
    let snap = openraft::RaftSnapshotBuilder::build_snapshot(&mut builder)
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, LOCAL, 2)));
    drop(sm);

    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    assert_eq!(
        sm.applied_state().await.unwrap().0,
        Some(log_id(1, LOCAL, 2))
    );
    assert_eq!(sm.state().read().unwrap().next_producer_id(), 2);
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snap.meta);
    drop(sm);

    let path = dir.path().join(snapshot::SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() - 20;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = StateMachineStore::open(dir.path()).err().unwrap();
    assert!(
        matches!(err, SnapshotError::Corrupt(_) | SnapshotError::Json(_)),
        "{err}"
    );
}

#[test]
fn newer_snapshot_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let meta = snapshot::SnapshotMeta {
        last_log_id: Some(log_id(1, LOCAL, 2)),
        ..Default::default()
    };
    let state = crate::state_machine::StateMachine::default();
    let tmp = snapshot::write_tmp(dir.path(), "t", &meta, &state).unwrap();
    snapshot::install(&tmp, dir.path()).unwrap();
    let path = dir.path().join(snapshot::SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let written = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    assert!(StateMachineStore::open(dir.path()).is_ok());

    bytes[8..12].copy_from_slice(&(written + 1).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = StateMachineStore::open(dir.path()).err().unwrap();
    assert!(
        matches!(err, SnapshotError::UnsupportedVersion(v) if v == written + 1),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the snapshot is kept");
}
