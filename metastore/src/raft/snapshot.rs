//! The snapshot file: the state machine as of one log id.
//!
//! ```text
//! "SKIFFSNP" version:u32le meta_len:u32le crc32c(meta):u32le meta(JSON)
//! state(streamed) state_len:u64le crc32c(state):u32le
//! ```
//!
//! Version 1 holds the state in JSON; versions 2 and on in [`codec`](crate::codec) (postcard),
//! each with the fields of its time (3 added consumer groups' offsets, 4 compactor leases, 5
//! producers' last writes and addresses' last heartbeats, for expiry, 6 index runs, 7 dynamic
//! broker configs, 8 transactions, 9 the security state (SCRAM users, ACLs, agents' listeners),
//! 10 client quotas). All are read; the current one is written.
//!
//! The state's length and checksum trail it so that it can be streamed out without buffering;
//! the file is the unit Raft ships to followers too, so a received snapshot is checked the same
//! way as one read back from disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use openraft::BasicNode;

use super::journal::sync_dir;
use super::NodeId;
use crate::state_machine::StateMachine;

pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, BasicNode>;

/// The current snapshot's file name inside the data directory.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
const MAGIC: &[u8; 8] = b"SKIFFSNP";
const VERSION: u32 = 10;
/// Before client quotas. Read, never written.
const VERSION_9: u32 = 9;
/// Before the security state (users, ACLs). Read, never written.
const VERSION_8: u32 = 8;
/// Before transactions. Read, never written.
const VERSION_7: u32 = 7;
/// Before dynamic broker configs. Read, never written.
const VERSION_6: u32 = 6;
/// Before index runs: one entry per batch.
const VERSION_5: u32 = 5;
/// The first version: the state in JSON. Read, never written.
const VERSION_JSON: u32 = 1;
/// postcard, before consumer groups' offsets. Read, never written.
const VERSION_2: u32 = 2;
/// postcard, before compactor leases. Read, never written.
const VERSION_3: u32 = 3;
/// postcard, before producers' last writes and addresses' last heartbeats. Read, never written.
const VERSION_4: u32 = 4;
const TRAILER_LEN: u64 = 12;
/// Metadata is a log id and a membership; anything this large is corruption.
const MAX_META_LEN: u32 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot io: {0}")]
    Io(#[from] io::Error),
    #[error("not a skiff snapshot")]
    BadMagic,
    #[error("snapshot version {0}, this build reads version {VERSION}")]
    UnsupportedVersion(u32),
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    #[error("snapshot encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("snapshot encoding: {0}")]
    Codec(#[from] crate::codec::CodecError),
}

/// Counts and checksums what passes through, so the trailer needs no second pass.
/// How much of a snapshot's body is encoded before it is checksummed and written.
const BODY_CHUNK: usize = 1 << 20;

struct ChecksumWriter<W> {
    inner: W,
    len: u64,
    crc: u32,
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        // A chunk of [`BODY_CHUNK`] at a time. Encoding a large state keeps a core busy for
        // seconds; offering it up between chunks lets the node's applies and RPCs, and on a
        // small machine the other nodes', run at once instead of waiting for a time slice.
        std::thread::yield_now();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a complete snapshot to a new temporary file in `dir` and syncs it. The caller decides
/// whether it replaces the current one (see [`install`]).
pub fn write_tmp(
    dir: &Path,
    tag: &str,
    meta: &SnapshotMeta,
    state: &StateMachine,
) -> Result<PathBuf, SnapshotError> {
    let path = dir.join(format!("snapshot-{tag}.tmp"));
    let file = create(&path)?;
    let mut out = BufWriter::new(file);
    let meta_json = serde_json::to_vec(meta)?;
    let meta_len = u32::try_from(meta_json.len())
        .map_err(|_| SnapshotError::Corrupt("metadata too large".into()))?;
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&meta_len.to_le_bytes())?;
    out.write_all(&crc32c::crc32c(&meta_json).to_le_bytes())?;
    out.write_all(&meta_json)?;
    // postcard writes field by field, a few bytes each: buffered before the checksum, which
    // then runs over whole chunks instead of once per field.
    let mut body = BufWriter::with_capacity(
        BODY_CHUNK,
        ChecksumWriter {
            inner: out,
            len: 0,
            crc: 0,
        },
    );
    postcard::to_io(state, &mut body).map_err(crate::codec::CodecError::from)?;
    let ChecksumWriter {
        inner: mut out,
        len,
        crc,
    } = body.into_inner().map_err(|e| e.into_error())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&crc.to_le_bytes())?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(path)
}

/// Makes `tmp` the current snapshot, durably.
pub fn install(tmp: &Path, dir: &Path) -> io::Result<()> {
    let path = dir.join(SNAPSHOT_FILE);
    fs::rename(tmp, &path)?;
    sync_dir(&path)
}

/// Copies a snapshot received from elsewhere into a temporary file of our own, so that what we
/// verify is exactly what we keep.
pub fn copy_to_tmp(src: &mut File, dir: &Path, tag: &str) -> io::Result<PathBuf> {
    let path = dir.join(format!("snapshot-{tag}.tmp"));
    let mut dst = create(&path)?;
    src.seek(SeekFrom::Start(0))?;
    io::copy(src, &mut dst)?;
    dst.sync_all()?;
    Ok(path)
}

/// Reads and checks a whole snapshot.
pub fn read(file: &mut File) -> Result<(SnapshotMeta, StateMachine), SnapshotError> {
    let file_len = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let (version, meta, state_start) = {
        let mut r = BufReader::new(&mut *file);
        let (version, meta) = read_header(&mut r)?;
        let consumed = r.stream_position()?;
        (version, meta, consumed)
    };
    if file_len < state_start + TRAILER_LEN {
        return Err(SnapshotError::Corrupt("truncated".into()));
    }
    file.seek(SeekFrom::Start(file_len - TRAILER_LEN))?;
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.read_exact(&mut trailer)?;
    let state_len = u64::from_le_bytes(
        trailer[..8]
            .try_into()
            .map_err(|_| SnapshotError::Corrupt("trailer".into()))?,
    );
    let crc = u32::from_le_bytes([trailer[8], trailer[9], trailer[10], trailer[11]]);
    if state_len != file_len - TRAILER_LEN - state_start {
        return Err(SnapshotError::Corrupt(
            "state length does not match the file".into(),
        ));
    }
    file.seek(SeekFrom::Start(state_start))?;
    let mut region = BufReader::with_capacity(1 << 20, (&mut *file).take(state_len));
    let mut state: StateMachine = if version == VERSION_JSON {
        // Checksum first, in big reads (deserializing reads byte by byte and would make a
        // per-byte checksum slow), then parse the same bytes again.
        let mut actual = 0u32;
        loop {
            let buf = region.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            actual = crc32c::crc32c_append(actual, buf);
            let n = buf.len();
            region.consume(n);
        }
        if actual != crc {
            return Err(SnapshotError::Corrupt("state checksum mismatch".into()));
        }
        file.seek(SeekFrom::Start(state_start))?;
        serde_json::from_reader::<_, crate::state_machine::StateMachineV5>(BufReader::new(
            (&mut *file).take(state_len),
        ))?
        .into()
    } else {
        // The whole state is about to be in memory anyway; its encoding is a fraction of that.
        let mut bytes = Vec::with_capacity(usize::try_from(state_len).unwrap_or(0).min(1 << 30));
        region.read_to_end(&mut bytes)?;
        if crc32c::crc32c(&bytes) != crc {
            return Err(SnapshotError::Corrupt("state checksum mismatch".into()));
        }
        decode_state(version, &bytes)?
    };
    // What the state keeps derived (object references, partition sizes) is not in the file.
    state.rebuild_derived();
    Ok((meta, state))
}

/// Decodes a binary (postcard) snapshot's state as its `version` wrote it. Public for the fuzz
/// target (metastore/fuzz): the bytes have passed a checksum here, but a checksum is no proof
/// against a bug or a forged file.
pub fn decode_state(version: u32, bytes: &[u8]) -> Result<StateMachine, SnapshotError> {
    Ok(if version == VERSION_2 {
        crate::codec::decode::<crate::state_machine::StateMachineV2>(bytes)?.into()
    } else if version == VERSION_3 {
        crate::codec::decode::<crate::state_machine::StateMachineV3>(bytes)?.into()
    } else if version == VERSION_4 {
        crate::codec::decode::<crate::state_machine::StateMachineV4>(bytes)?.into()
    } else if version == VERSION_5 {
        crate::codec::decode::<crate::state_machine::StateMachineV5>(bytes)?.into()
    } else if version == VERSION_6 {
        crate::codec::decode::<crate::state_machine::StateMachineV6>(bytes)?.into()
    } else if version == VERSION_7 {
        crate::codec::decode::<crate::state_machine::StateMachineV7>(bytes)?.into()
    } else if version == VERSION_8 {
        crate::codec::decode::<crate::state_machine::StateMachineV8>(bytes)?.into()
    } else if version == VERSION_9 {
        crate::codec::decode::<crate::state_machine::StateMachineV9>(bytes)?.into()
    } else {
        crate::codec::decode(bytes)?
    })
}

fn read_header(r: &mut impl Read) -> Result<(u32, SnapshotMeta), SnapshotError> {
    let mut header = [0u8; 20];
    r.read_exact(&mut header)
        .map_err(|_| SnapshotError::Corrupt("truncated header".into()))?;
    if &header[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let version = word(8);
    if ![
        VERSION,
        VERSION_9,
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
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let meta_len = word(12);
    if meta_len > MAX_META_LEN {
        return Err(SnapshotError::Corrupt(
            "metadata length over the cap".into(),
        ));
    }
    let mut meta_json = vec![0u8; meta_len as usize];
    r.read_exact(&mut meta_json)
        .map_err(|_| SnapshotError::Corrupt("truncated metadata".into()))?;
    if crc32c::crc32c(&meta_json) != word(16) {
        return Err(SnapshotError::Corrupt("metadata checksum mismatch".into()));
    }
    Ok((version, serde_json::from_slice(&meta_json)?))
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Removes temporary files a crash may have left behind.
pub fn remove_leftovers(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("snapshot-") && name.ends_with(".tmp") {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}
