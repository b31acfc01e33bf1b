//! The Raft log on disk: one append-only file of framed records.
//!
//! ```text
//! file   = "SKIFFJNL" version:u32le record*
//! record = len:u32le crc32c(payload):u32le payload     payload = `Record`
//! ```
//!
//! Versions 9 (written), 8, 7, 6, 5, 4, 3 and 2 encode payloads with [`codec`](crate::codec)
//! (postcard), version 1 with JSON. All share the record layout. A journal of an earlier version is read and then
//! rewritten in the current one at once, so one file never mixes versions.
//!
//! postcard names an enum variant by its position and a struct field by its order, so the
//! version covers the encoding of everything a record holds: [`Record`], openraft's `Entry`, and
//! [`Command`](crate::types::Command) with every type inside it. A new variant or field anywhere
//! there is a new version, or an older build would misread (or fail to decode) what a newer one
//! wrote instead of refusing it. The tests pin the encoding of one value of every variant against
//! a fixture per version (`tests/fixtures/journal-v*`) and fail until both are bumped. Version 3
//! has the layout and types of version 2 as it was last written; it exists because commands were
//! added under version 2, which an older build of version 2 cannot read. Version 4 added
//! `Command::ExpireState` (last, so a version 3 record decodes the same under version 4), version
//! 6 `Command::CreatePartitions`, `Command::CommitGroupOffsets` and `Command::AlterBrokerConfigs`
//! (last, so a version 5 record decodes the same under version 6), version 7 transactions (new
//! variants last; the commit, whose batches gained a field, became a new variant, the old one
//! `Command::CommitObjectV6` at its position, so a version 6 record decodes the same), version 8
//! SCRAM credentials and ACLs, version 9 `Command::AlterClientQuotas` and
//! `Command::SetAgentListeners` (both last again, so a version 8 record decodes the same).
//!
//! Every record is an assignment to the log state (see [`LogState::apply`]), so replaying the file
//! from the start rebuilds the state, and a rewrite can replace any prefix by the state it produced.
//!
//! # Torn tails and corruption
//!
//! Records are appended and fsynced before they count, so a crash can damage only what was
//! written after the last fsync: the end of the file. Replay stops at the first record that does
//! not check out (a header cut short, a length that is zero or over the cap, a checksum mismatch)
//! and decides by where that record's frame ends:
//!
//! - **torn tail**: the frame ends exactly at the end of the file or runs past it, or only zero
//!   bytes follow it (a filesystem may extend the file before the data lands). Nothing follows
//!   that can hold a record, so nothing acknowledged is lost: the file is cut there, with a
//!   warning that names the byte position and how much was dropped.
//! - **corruption**: anything else, that is, a bad record with more non-zero data after it.
//!   That data may hold acknowledged entries, so nothing is cut: [`Journal::open`] fails with
//!   [`JournalError::Corrupt`], naming the file and the record's byte position.
//!
//! A record whose checksum matches but whose payload does not decode is never torn: it was
//! written whole, so it is corruption, or a newer format that did not bump the version, and
//! open fails with [`JournalError::Undecodable`]. A version above [`VERSION`] fails with
//! [`JournalError::UnsupportedVersion`] before any record is read.
//!
//! The rule cannot tell a torn tail from a length field damaged to point past the end of the file
//! (there is no header checksum): such a record and everything after it is cut, as before. And
//! if the pages of the last, unsynced write reach the disk out of order, an unacknowledged record
//! can follow a torn one: that is refused as corruption, the safe side.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Entry, LogId, Vote};

const MAGIC: &[u8; 8] = b"SKIFFJNL";
/// The version written. A new variant or field in anything a record holds (above all
/// [`Command`](crate::types::Command)) means a new version, a fixture for it, and reading the
/// old one: see the module doc and the schema tests.
const VERSION: u32 = 9;
/// postcard, before `Command::AlterClientQuotas` and `Command::SetAgentListeners`; its records
/// decode as version 9's. Read, never written.
const VERSION_8: u32 = 8;
/// postcard, before `Command::AlterScramCredentials` and the ACL commands; its records decode as
/// version 8's. Read, never written.
const VERSION_7: u32 = 7;
/// postcard, before transactions (the `Command` variants from `InitTransactionalProducer` on,
/// `CommitBatch::transactional`, `RunLayout::Marker`); its commits decode as
/// `Command::CommitObjectV6`, everything else as version 7's. Read, never written.
const VERSION_6: u32 = 6;
/// postcard, before `Command::CreatePartitions`, `Command::CommitGroupOffsets` and
/// `Command::AlterBrokerConfigs`; its records decode as version 6's. Read, never written.
const VERSION_5: u32 = 5;
/// postcard, before index runs (`Command::ReplaceBatches` with run entries); its records decode
/// as version 5's, the old rewrite as `Command::ReplaceBatchesV4`. Read, never written.
const VERSION_4: u32 = 4;
/// postcard, before `Command::ExpireState`; its records decode as version 4's. Read, never
/// written.
const VERSION_3: u32 = 3;
/// postcard, with the types of version 3 (before it the version was not bumped for new
/// commands). Read, never written.
const VERSION_2: u32 = 2;
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
    #[error("{path} has journal version {version}, this build reads versions 1 to {VERSION}; was it written by a newer build?")]
    UnsupportedVersion { path: PathBuf, version: u32 },
    /// A damaged record with more data after it: not a torn tail, so nothing was cut.
    #[error("{path} is corrupt at byte {offset}: {damage}, with {following} more bytes after it; nothing was cut (see docs/operations.md, failure modes)")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        damage: Damage,
        following: u64,
    },
    /// A record that checks out but does not decode.
    #[error("{path} has a record at byte {offset} that checks out but does not decode ({reason}): corrupt, or written by a newer build; nothing was cut")]
    Undecodable {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("cannot encode journal record: {0}")]
    Encode(#[from] crate::codec::CodecError),
}

/// Why a record does not check out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("record header cut short")]
    CutHeader,
    /// Zero (no record encodes to nothing), over the cap, or past the end of the file.
    #[error("bad record length {0}")]
    Length(u32),
    #[error("record checksum mismatch")]
    Checksum,
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
    /// Opens (or creates) the journal, replays it, and cuts off a torn tail; refuses a corrupt
    /// journal or a newer version (see the module doc).
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
        if ![
            VERSION,
            VERSION_8,
            VERSION_7,
            VERSION_6,
            VERSION_5,
            VERSION_4,
            VERSION_3,
            VERSION_2,
            VERSION_JSON,
        ]
        .contains(&version)
        {
            return Err(JournalError::UnsupportedVersion {
                path: path.to_owned(),
                version,
            });
        }
        let mut state = LogState::default();
        let mut records = 0;
        let mut valid_len = HEADER_LEN;
        let damage = loop {
            let remaining = file_len - valid_len;
            match read_record(&mut reader, remaining, version).map_err(io_err)? {
                Frame::End => break None,
                Frame::Record(record, frame_len) => {
                    state.apply(record);
                    records += 1;
                    valid_len += frame_len;
                }
                Frame::Undecodable(reason) => {
                    return Err(JournalError::Undecodable {
                        path: path.to_owned(),
                        offset: valid_len,
                        reason,
                    });
                }
                Frame::Damaged { damage, frame_len } => {
                    // The bytes after the damaged frame, if it ends inside the file.
                    let following = remaining.saturating_sub(frame_len);
                    if following > 0 {
                        reader
                            .seek(SeekFrom::Start(file_len - following))
                            .map_err(io_err)?;
                        if !only_zeros(&mut reader).map_err(io_err)? {
                            return Err(JournalError::Corrupt {
                                path: path.to_owned(),
                                offset: valid_len,
                                damage,
                                following,
                            });
                        }
                    }
                    break Some(damage);
                }
            }
        };
        drop(reader);
        if let Some(damage) = damage {
            tracing::warn!(
                path = %path.display(),
                offset = valid_len,
                dropped_bytes = file_len - valid_len,
                %damage,
                "cutting the journal's torn tail (written after the last fsync, never acknowledged)"
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

/// What the next frame of the file holds.
enum Frame {
    /// A clean end of file.
    End,
    /// A record, and its frame's length.
    Record(Record, u64),
    /// A frame that checks out whose payload does not decode.
    Undecodable(String),
    /// A frame that does not check out, and its length as far as it can be told (the length
    /// field's, or all that is left of the file when even the header is cut).
    Damaged { damage: Damage, frame_len: u64 },
}

/// Reads the frame at the reader's position, `remaining` bytes before the end of the file. Reads
/// only what lies inside the file, and allocates only what the length cap allows.
fn read_record(reader: &mut impl Read, remaining: u64, version: u32) -> io::Result<Frame> {
    if remaining == 0 {
        return Ok(Frame::End);
    }
    if remaining < FRAME_HEADER_LEN as u64 {
        return Ok(Frame::Damaged {
            damage: Damage::CutHeader,
            frame_len: remaining,
        });
    }
    let mut header = [0u8; FRAME_HEADER_LEN];
    reader.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let frame_len = FRAME_HEADER_LEN as u64 + u64::from(len);
    if len == 0 || len > MAX_RECORD_LEN || frame_len > remaining {
        return Ok(Frame::Damaged {
            damage: Damage::Length(len),
            frame_len,
        });
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload)?;
    if crc32c::crc32c(&payload) != crc {
        return Ok(Frame::Damaged {
            damage: Damage::Checksum,
            frame_len,
        });
    }
    let decoded = if version == VERSION_JSON {
        serde_json::from_slice(&payload).map_err(|e| e.to_string())
    } else {
        crate::codec::decode(&payload).map_err(|e| e.to_string())
    };
    Ok(match decoded {
        Ok(record) => Frame::Record(record, frame_len),
        Err(reason) => Frame::Undecodable(reason),
    })
}

/// Whether everything from the reader's position to the end of the file is zero.
fn only_zeros(reader: &mut impl Read) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// A rename or a new file is durable only once its directory is.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or_else(|| Path::new("."));
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
