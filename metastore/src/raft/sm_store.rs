//! [`RaftStateMachine`] around the pure [`StateMachine`].
//!
//! The state lives in memory behind a lock shared with readers. It is persisted only through
//! snapshots: on restart the last snapshot is loaded and Raft re-applies the journal's committed
//! entries after it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot,
    StorageError, StorageIOError, StoredMembership,
};
use tokio::sync::watch;

use super::snapshot::{self, SnapshotError, SnapshotMeta};
use super::snapshot_policy::AppliedBytes;
use super::{Entry, LogId, NodeId, TypeConfig};
use crate::state_machine::StateMachine;
use crate::types::{Command, CommandResponse};

/// The state readers query. Never hold its guard across an `.await`.
pub type SharedState = Arc<RwLock<StateMachine>>;

pub struct StateMachineStore {
    state: SharedState,
    last_applied: Option<LogId>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    snapshots: Arc<SnapshotDir>,
    commits: watch::Sender<u64>,
    applied_bytes: Arc<AppliedBytes>,
}

/// The directory holding the current snapshot, shared with builders running on other tasks.
struct SnapshotDir {
    dir: PathBuf,
    /// The metadata of the file currently named [`snapshot::SNAPSHOT_FILE`]. Its lock also
    /// serializes renames onto that name, so a slow build cannot replace a newer snapshot.
    current: Mutex<Option<SnapshotMeta>>,
    next_tag: AtomicU64,
}

impl SnapshotDir {
    fn tag(&self) -> String {
        self.next_tag.fetch_add(1, Ordering::Relaxed).to_string()
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<SnapshotMeta>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `tmp` current unless a snapshot at least as recent already is.
    fn promote(&self, tmp: &Path, meta: &SnapshotMeta) -> std::io::Result<bool> {
        let mut current = self.current();
        if current
            .as_ref()
            .is_some_and(|c| c.last_log_id > meta.last_log_id)
        {
            std::fs::remove_file(tmp)?;
            return Ok(false);
        }
        snapshot::install(tmp, &self.dir)?;
        *current = Some(meta.clone());
        Ok(true)
    }
}

fn snapshot_err(
    meta: Option<&SnapshotMeta>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError<NodeId> {
    let subject = ErrorSubject::Snapshot(meta.map(|m| m.signature()));
    StorageIOError::new(subject, verb, &e).into()
}

fn join_err(e: tokio::task::JoinError) -> StorageError<NodeId> {
    StorageIOError::<NodeId>::new(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e).into()
}

impl StateMachineStore {
    /// Loads the snapshot in `dir`, if any. Blocking: it reads the whole state.
    pub fn open(dir: &Path) -> Result<Self, SnapshotError> {
        snapshot::remove_leftovers(dir)?;
        let path = dir.join(snapshot::SNAPSHOT_FILE);
        let (meta, state) = match std::fs::File::open(&path) {
            Ok(mut f) => {
                let (meta, state) = snapshot::read(&mut f)?;
                tracing::info!(path = %path.display(), last_log_id = ?meta.last_log_id, "snapshot loaded");
                (Some(meta), state)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, StateMachine::new()),
            Err(e) => return Err(e.into()),
        };
        let (commits, _) = watch::channel(0);
        Ok(Self {
            state: Arc::new(RwLock::new(state)),
            last_applied: meta.as_ref().and_then(|m| m.last_log_id),
            last_membership: meta
                .as_ref()
                .map(|m| m.last_membership.clone())
                .unwrap_or_default(),
            snapshots: Arc::new(SnapshotDir {
                dir: dir.to_owned(),
                current: Mutex::new(meta),
                next_tag: AtomicU64::new(0),
            }),
            commits,
            applied_bytes: Arc::default(),
        })
    }

    /// What the snapshot policy weighs against the snapshot's size.
    pub fn applied_bytes(&self) -> Arc<AppliedBytes> {
        self.applied_bytes.clone()
    }

    pub fn state(&self) -> SharedState {
        self.state.clone()
    }

    /// Moves forward after every applied commit (and after a snapshot replaces the state).
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, StateMachine> {
        // A poisoned lock means `apply` panicked; openraft then stops this node, so readers
        // seeing the state as it was is the lesser evil.
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct SnapshotBuilder {
    snapshots: Arc<SnapshotDir>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    state: StateMachine,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let tag = self.snapshots.tag();
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id: match self.last_applied {
                Some(l) => format!("{}-{}-{tag}", l.leader_id, l.index),
                None => format!("none-{tag}"),
            },
        };
        let snapshots = self.snapshots.clone();
        let state = std::mem::take(&mut self.state);
        let meta2 = meta.clone();
        let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, SnapshotError> {
            let tmp = snapshot::write_tmp(&snapshots.dir, &tag, &meta2, &state)?;
            // Opened before the rename, so this handle reads our file whatever replaces it.
            let file = std::fs::File::open(&tmp)?;
            snapshots.promote(&tmp, &meta2)?;
            Ok(file)
        })
        .await
        .map_err(join_err)?
        .map_err(|e| snapshot_err(Some(&meta), ErrorVerb::Write, e))?;
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        let mut committed_objects = 0u64;
        let mut bytes = 0u64;
        {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            for entry in entries {
                self.last_applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => CommandResponse::Empty,
                    EntryPayload::Normal(cmd) => {
                        // What moves a partition's high watermark or last stable offset
                        // wakes the long-polling fetches.
                        if matches!(
                            cmd,
                            Command::CommitObject(_)
                                | Command::CommitObjectV6(_)
                                | Command::EndTxn(_)
                                | Command::InitTransactionalProducer(_)
                                | Command::ExpireTransactions(_)
                                | Command::AbortTransaction { .. }
                        ) {
                            committed_objects += 1;
                        }
                        bytes += crate::codec::encoded_len(&cmd).unwrap_or(0) as u64;
                        state.apply(&cmd)
                    }
                    EntryPayload::Membership(m) => {
                        self.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        CommandResponse::Empty
                    }
                };
                responses.push(response);
            }
        }
        self.applied_bytes.add(bytes);
        if committed_objects > 0 {
            self.commits.send_modify(|c| *c += committed_objects);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // A copy, because the build runs on another task while applies continue.
        let state = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.applied_bytes.snapshot_taken();
        SnapshotBuilder {
            snapshots: self.snapshots.clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            state,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        let path = self
            .snapshots
            .dir
            .join(format!("snapshot-recv-{}.tmp", self.snapshots.tag()));
        let err = |e| snapshot_err(None, ErrorVerb::Write, e);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(err)?;
        // Unlinked at once: the handle is all we need, and nothing is left behind if the
        // transfer is abandoned. (`install_snapshot` copies it into a named file.)
        std::fs::remove_file(&path).map_err(err)?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut src = snapshot.into_std().await;
        let snapshots = self.snapshots.clone();
        let tag = snapshots.tag();
        let expected = meta.clone();
        let state = tokio::task::spawn_blocking(move || -> Result<StateMachine, SnapshotError> {
            let tmp = snapshot::copy_to_tmp(&mut src, &snapshots.dir, &tag)?;
            let mut file = std::fs::File::open(&tmp)?;
            let (found, state) = snapshot::read(&mut file)?;
            if found.last_log_id != expected.last_log_id
                || found.last_membership != expected.last_membership
            {
                let _ = std::fs::remove_file(&tmp);
                return Err(SnapshotError::Corrupt(
                    "contents do not match the snapshot's metadata".into(),
                ));
            }
            snapshots.promote(&tmp, &expected)?;
            Ok(state)
        })
        .await
        .map_err(join_err)?
        .map_err(|e| snapshot_err(Some(meta), ErrorVerb::Write, e))?;
        *self.write_state() = state;
        self.applied_bytes.snapshot_taken();
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.commits.send_modify(|c| *c += 1);
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self.snapshots.current();
        let Some(meta) = current.clone() else {
            return Ok(None);
        };
        let path = self.snapshots.dir.join(snapshot::SNAPSHOT_FILE);
        // Opened under the lock so the file and the metadata belong together.
        let file = std::fs::File::open(&path)
            .map_err(|e| snapshot_err(Some(&meta), ErrorVerb::Read, e))?;
        drop(current);
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}
