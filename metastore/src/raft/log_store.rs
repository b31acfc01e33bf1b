//! [`RaftLogStorage`] over the [`journal`](super::journal).
//!
//! Entries are kept in memory between the last purge and the end of the log (the snapshot policy
//! keeps that short), so reads never touch the disk. Writes go, in order, to one writer thread that
//! owns the file: it gathers whatever is queued, writes it, fsyncs once, and only then reports the
//! entries as flushed. Raft's task never blocks on an fsync, and a burst of appends shares one.

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use openraft::storage::{LogFlushed, LogState as RaftLogState, RaftLogReader, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, StorageError};
use tokio::sync::oneshot;

use super::journal::{self, Journal, JournalError, LogState, Record, RecordRef};
use super::{io_error, Entry, LogId, NodeId, TypeConfig, Vote};

/// The journal's file name inside the data directory.
pub const JOURNAL_FILE: &str = "raft-log.journal";

#[derive(Clone, Debug)]
pub struct LogStoreOptions {
    /// Rewrite the journal once this many entries have been purged since the last rewrite: the
    /// file then mostly holds dead records, and replay time grows with it.
    pub compact_after_purged: u64,
}

impl Default for LogStoreOptions {
    fn default() -> Self {
        Self {
            compact_after_purged: 8192,
        }
    }
}

/// What to do once a write has reached the disk.
enum Done {
    Flushed(LogFlushed<TypeConfig>),
    Reply(oneshot::Sender<io::Result<()>>),
    Nothing,
}

impl Done {
    fn complete(self, result: &io::Result<()>) {
        let result = match result {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        match self {
            Done::Flushed(cb) => cb.log_io_completed(result),
            Done::Reply(tx) => {
                // The caller may have given up waiting; the write happened all the same.
                let _ = tx.send(result);
            }
            Done::Nothing => {}
        }
    }
}

enum Op {
    Write {
        frame: Vec<u8>,
        sync: bool,
        done: Done,
    },
    Rewrite {
        state: Box<LogState>,
        done: Done,
    },
}

/// The journal's writer thread.
pub struct JournalWriter {
    handle: thread::JoinHandle<()>,
}

impl JournalWriter {
    /// Blocks until the writer has written everything queued and closed the file.
    pub fn join(self) {
        if self.handle.join().is_err() {
            tracing::error!("raft journal writer panicked");
        }
    }
}

/// The log store handed to openraft.
pub struct LogStore {
    state: Arc<Mutex<LogState>>,
    writer: mpsc::Sender<Op>,
    options: LogStoreOptions,
    purged_since_rewrite: u64,
}

/// Reads the in-memory log; openraft hands these to replication tasks.
#[derive(Clone)]
pub struct LogReader {
    state: Arc<Mutex<LogState>>,
}

fn lock(state: &Mutex<LogState>) -> MutexGuard<'_, LogState> {
    // Every mutation is a single `LogState::apply`, so a panic elsewhere cannot leave it half done.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LogStore {
    /// Opens the journal in `dir`, replaying it, and starts the writer thread. The thread ends
    /// once the store is dropped and everything queued is written; join the returned handle to
    /// know the file is closed.
    pub fn open(
        dir: &Path,
        options: LogStoreOptions,
    ) -> Result<(Self, JournalWriter), JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let (mut journal, replayed) = Journal::open(&path)?;
        let live = replayed.state.entries.len() as u64;
        if replayed.records > live + options.compact_after_purged {
            journal
                .rewrite(&replayed.state)
                .map_err(|source| JournalError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        tracing::info!(
            path = %path.display(),
            records = replayed.records,
            entries = live,
            last_log_id = ?replayed.state.last_log_id(),
            "raft journal replayed"
        );
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("skiff-raft-journal".into())
            .spawn(move || writer_loop(journal, rx))
            .map_err(|source| JournalError::Io { path, source })?;
        let store = Self {
            state: Arc::new(Mutex::new(replayed.state)),
            writer: tx,
            options,
            purged_since_rewrite: 0,
        };
        Ok((store, JournalWriter { handle }))
    }

    fn send(&self, op: Op) -> io::Result<()> {
        self.writer
            .send(op)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "journal writer has stopped"))
    }

    /// Applies `record` in memory, queues its frame, and waits until it is on disk.
    async fn write_durably(&self, frame: Vec<u8>, record: Record) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        lock(&self.state).apply(record);
        self.send(Op::Write {
            frame,
            sync: true,
            done: Done::Reply(tx),
        })?;
        rx.await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "journal writer has stopped"))?
    }
}

fn frame(record: &RecordRef<'_>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    journal::encode(record, &mut buf)?;
    Ok(buf)
}

fn writer_loop(mut journal: Journal, rx: mpsc::Receiver<Op>) {
    // Once a write fails the file's tail is unknown; refusing everything after it keeps a later
    // record from landing after a hole.
    let mut failed: Option<io::Error> = None;
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        while ops.len() < 1024 {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let mut buf = Vec::new();
        let mut sync = false;
        let mut dones = Vec::new();
        for op in ops {
            match op {
                Op::Write {
                    frame,
                    sync: s,
                    done,
                } => {
                    buf.extend_from_slice(&frame);
                    sync |= s;
                    dones.push(done);
                }
                Op::Rewrite { state, done } => {
                    flush(&mut journal, &mut failed, &mut buf, sync, &mut dones);
                    sync = false;
                    let result = match &failed {
                        Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        None => journal.rewrite(&state),
                    };
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "raft journal rewrite failed");
                        failed.get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
                    }
                    done.complete(&result);
                }
            }
        }
        flush(&mut journal, &mut failed, &mut buf, sync, &mut dones);
    }
}

fn flush(
    journal: &mut Journal,
    failed: &mut Option<io::Error>,
    buf: &mut Vec<u8>,
    sync: bool,
    dones: &mut Vec<Done>,
) {
    let result = match failed {
        Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
        None if buf.is_empty() && !sync => Ok(()),
        None => journal
            .write(buf)
            .and_then(|()| if sync { journal.sync() } else { Ok(()) }),
    };
    if let Err(e) = &result {
        if failed.is_none() {
            tracing::error!(error = %e, "raft journal write failed");
            *failed = Some(io::Error::new(e.kind(), e.to_string()));
        }
    }
    buf.clear();
    for done in dones.drain(..) {
        done.complete(&result);
    }
}

fn read_entries<RB: RangeBounds<u64>>(state: &Mutex<LogState>, range: RB) -> Vec<Entry> {
    lock(state)
        .entries
        .range(range)
        .map(|(_, e)| e.clone())
        .collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        Ok(read_entries(&self.state, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        Ok(read_entries(&self.state, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<RaftLogState<TypeConfig>, StorageError<NodeId>> {
        let state = lock(&self.state);
        Ok(RaftLogState {
            last_purged_log_id: state.last_purged,
            last_log_id: state.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            state: self.state.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError<NodeId>> {
        let err = |e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e);
        let frame = frame(&RecordRef::Vote(vote)).map_err(err)?;
        self.write_durably(frame, Record::Vote(*vote))
            .await
            .map_err(err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError<NodeId>> {
        Ok(lock(&self.state).vote)
    }

    /// Not fsynced: a lost committed id is recomputed by the next leader. Saving it lets a
    /// restart re-apply committed entries the snapshot does not cover without waiting for that.
    async fn save_committed(
        &mut self,
        committed: Option<LogId>,
    ) -> Result<(), StorageError<NodeId>> {
        let err = |e| io_error(ErrorSubject::Store, ErrorVerb::Write, e);
        let frame = frame(&RecordRef::Committed(&committed)).map_err(err)?;
        lock(&self.state).apply(Record::Committed(committed));
        self.send(Op::Write {
            frame,
            sync: false,
            done: Done::Nothing,
        })
        .map_err(err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError<NodeId>> {
        Ok(lock(&self.state).committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let err = |e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e);
        let frame = frame(&RecordRef::Append(&entries)).map_err(err)?;
        // Readable as soon as this returns, durable when the callback fires.
        lock(&self.state).apply(Record::Append(entries));
        self.send(Op::Write {
            frame,
            sync: true,
            done: Done::Flushed(callback),
        })
        .map_err(err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        let err = |e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e);
        let frame = frame(&RecordRef::Truncate(&log_id)).map_err(err)?;
        self.write_durably(frame, Record::Truncate(log_id))
            .await
            .map_err(err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        let err = |e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e);
        let before = lock(&self.state).last_purged.map_or(0, |p| p.index + 1);
        let frame = frame(&RecordRef::Purge(&log_id)).map_err(err)?;
        self.write_durably(frame, Record::Purge(log_id))
            .await
            .map_err(err)?;
        self.purged_since_rewrite += (log_id.index + 1).saturating_sub(before);
        if self.purged_since_rewrite >= self.options.compact_after_purged {
            // Taken here, on Raft's task, so the copy is exactly the state after every write
            // queued so far, which is where the rewrite lands in the writer's queue.
            let state = Box::new(lock(&self.state).clone());
            let (tx, rx) = oneshot::channel();
            self.send(Op::Rewrite {
                state,
                done: Done::Reply(tx),
            })
            .map_err(err)?;
            rx.await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::BrokenPipe, "journal writer has stopped")
                })
                .and_then(|r| r)
                .map_err(err)?;
            self.purged_since_rewrite = 0;
        }
        Ok(())
    }
}
