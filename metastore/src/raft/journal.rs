//! The Raft log on disk: one append-only file of framed records.
//!
//! ```text
//! file   = "SKIFFJNL" version:u32le record*
//! record = len:u32le crc32c(payload):u32le payload     payload = `Record`
//! ```
//!
//! Version 2 encodes payloads with [`codec`](crate::codec) (postcard), version 1 with JSON. A
//! version 1 journal is read and then rewritten as version 2 at once, so one file never mixes the
//! two.
//!
//! Every record is an assignment to the log state (see [`LogState::apply`]), so replaying the file
//! from the start rebuilds the state, and a rewrite can replace any prefix by the state it produced.
//! A crash can leave a torn last record; replay cuts the file at the first record that does not
//! check out, since nothing after it can be trusted.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Entry, LogId, Vote};

const MAGIC: &[u8; 8] = b"SKIFFJNL";
const VERSION: u32 = 2;
/// The first version: JSON payloads. Read, never written.
const VERSION_JSON: u32 = 1;
const HEADER_LEN: u64 = 12;
const FRAME_HEADER_LEN: usize = 8;
/// No legitimate record comes near this; a larger length is garbage and must not be allocated.
const MAX_RECORD_LEN: u32 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal io on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a skiff journal")]
    BadMagic { path: PathBuf },
    #[error("{path} has journal version {version}, this build reads version {VERSION}")]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("cannot encode journal record: {0}")]
    Encode(#[from] crate::codec::CodecError),
}

impl From<JournalError> for io::Error {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// One change to the log state. Borrowed entries on write, owned on replay: the two serialize the
/// same way.
#[derive(Debug, Serialize)]
pub enum RecordRef<'a> {
    Append(&'a [Entry]),
    /// Removes every entry from this log id's index on.
    Truncate(&'a LogId),
    /// Removes every entry up to and including this log id's index.
    Purge(&'a LogId),
    Vote(&'a Vote),
    Committed(&'a Option<LogId>),
}

#[derive(Debug, Deserialize)]
pub enum Record {
    Append(Vec<Entry>),
    Truncate(LogId),
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
}

/// What the journal describes. The log store keeps one in memory too, updated by the same
/// `apply`, so memory and disk cannot disagree about what a record means.
#[derive(Clone, Debug, Default)]
pub struct LogState {
    pub entries: BTreeMap<u64, Entry>,
    pub last_purged: Option<LogId>,
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
}

impl LogState {
    pub fn apply(&mut self, record: Record) {
        match record {
            Record::Append(entries) => {
                if let Some(first) = entries.first() {
                    // Appending at an index replaces whatever followed it, which also makes a
                    // replayed append that is already in a rewritten journal harmless.
                    self.entries.split_off(&first.log_id.index);
                }
                for e in entries {
                    self.entries.insert(e.log_id.index, e);
                }
            }
            Record::Truncate(since) => {
                self.entries.split_off(&since.index);
            }
            Record::Purge(upto) => self.purge(upto),
            Record::Vote(v) => self.vote = Some(v),
            Record::Committed(c) => self.committed = c,
        }
    }

    pub fn purge(&mut self, upto: LogId) {
        if self.last_purged.is_some_and(|p| p.index >= upto.index) {
            return;
        }
        self.entries = self.entries.split_off(&(upto.index + 1));
        self.last_purged = Some(upto);
    }

    pub fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(self.last_purged)
    }
}

/// Appends one framed record to `buf`.
pub fn encode(record: &RecordRef<'_>, buf: &mut Vec<u8>) -> Result<(), JournalError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    crate::codec::encode_into(record, buf)?;
    let payload = &buf[start + FRAME_HEADER_LEN..];
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= MAX_RECORD_LEN)
        .ok_or_else(|| JournalError::Io {
            path: PathBuf::new(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "journal record too large"),
        })?;
    let crc = crc32c::crc32c(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The open journal file, positioned at its end.
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// What replaying a journal found.
pub struct Replayed {
    pub state: LogState,
    pub records: u64,
}

impl Journal {
    /// Opens (or creates) the journal, replays it, and cuts off a torn or corrupt tail.
    pub fn open(path: &Path) -> Result<(Self, Replayed), JournalError> {
        let io_err = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        if file_len < HEADER_LEN {
            // Empty, or a crash while the header was being written: nothing was ever logged.
            write_header(&mut file).map_err(io_err)?;
            sync_dir(path).map_err(io_err)?;
            let journal = Self {
                path: path.to_owned(),
                file,
            };
            let replayed = Replayed {
                state: LogState::default(),
                records: 0,
            };
            return Ok((journal, replayed));
        }
        let mut reader = BufReader::new(&mut file);
        let mut header = [0u8; HEADER_LEN as usize];
        reader.read_exact(&mut header).map_err(io_err)?;
        if &header[..8] != MAGIC {
            return Err(JournalError::BadMagic {
                path: path.to_owned(),
            });
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version != VERSION && version != VERSION_JSON {
            return Err(JournalError::UnsupportedVersion {
                path: path.to_owned(),
                version,
            });
        }
        let mut state = LogState::default();
        let mut records = 0;
        let mut valid_len = HEADER_LEN;
        let cut_reason = loop {
            match read_record(&mut reader, file_len - valid_len, version) {
                Ok(None) => break None,
                Ok(Some((record, frame_len))) => {
                    state.apply(record);
                    records += 1;
                    valid_len += frame_len;
                }
                Err(reason) => break Some(reason),
            }
        };
        drop(reader);
        if let Some(reason) = cut_reason {
            tracing::warn!(
                path = %path.display(),
                offset = valid_len,
                dropped_bytes = file_len - valid_len,
                %reason,
                "cutting torn or corrupt journal tail"
            );
            file.set_len(valid_len).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        file.seek(SeekFrom::Start(valid_len)).map_err(io_err)?;
        let mut journal = Self {
            path: path.to_owned(),
            file,
        };
        if version != VERSION {
            journal.rewrite(&state).map_err(io_err)?;
            tracing::info!(path = %path.display(), from = version, to = VERSION, "journal rewritten in the current version");
        }
        Ok((journal, Replayed { state, records }))
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Replaces the journal by one that holds only `state`, atomically: a crash leaves either the
    /// old file or the new one.
    pub fn rewrite(&mut self, state: &LogState) -> io::Result<()> {
        let tmp = self.path.with_extension("rewrite");
        let mut buf = Vec::new();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        let entries: Vec<Entry> = state.entries.values().cloned().collect();
        let mut records = Vec::new();
        if let Some(v) = &state.vote {
            records.push(RecordRef::Vote(v));
        }
        if let Some(p) = &state.last_purged {
            records.push(RecordRef::Purge(p));
        }
        records.push(RecordRef::Committed(&state.committed));
        // Chunked so that no record approaches the length cap however many entries are kept.
        for chunk in entries.chunks(256) {
            records.push(RecordRef::Append(chunk));
        }
        for r in &records {
            encode(r, &mut buf)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(&buf)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        sync_dir(&self.path)?;
        self.file = file;
        Ok(())
    }
}

fn write_header(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(MAGIC)?;
    file.write_all(&VERSION.to_le_bytes())?;
    file.sync_all()
}

/// `Ok(None)` at a clean end of file; `Err` with the reason when the rest must be cut.
fn read_record(
    reader: &mut impl Read,
    remaining: u64,
    version: u32,
) -> Result<Option<(Record, u64)>, String> {
    if remaining == 0 {
        return Ok(None);
    }
    if remaining < FRAME_HEADER_LEN as u64 {
        return Err("torn record header".into());
    }
    let mut header = [0u8; FRAME_HEADER_LEN];
    reader.read_exact(&mut header).map_err(|e| e.to_string())?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD_LEN {
        return Err(format!("record length {len} over the cap"));
    }
    if u64::from(len) > remaining - FRAME_HEADER_LEN as u64 {
        return Err("torn record".into());
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload).map_err(|e| e.to_string())?;
    if crc32c::crc32c(&payload) != crc {
        return Err("record checksum mismatch".into());
    }
    let record = if version == VERSION_JSON {
        serde_json::from_slice(&payload).map_err(|e| format!("undecodable record: {e}"))?
    } else {
        crate::codec::decode(&payload).map_err(|e| format!("undecodable record: {e}"))?
    };
    Ok(Some((record, FRAME_HEADER_LEN as u64 + u64::from(len))))
}

/// A rename or a new file is durable only once its directory is.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or_else(|| Path::new("."));
    File::open(dir)?.sync_all()
}
