//! The Skiff object: what one flush writes, holding the batches of many partitions.
//!
//! ```text
//! header   32 B   magic "SKIFFOBJ" | version u16 | flags u16 | object id u128 | crc32c u32
//! batches         each batch exactly as produced, back to back
//! footer          entries (70 B each) | entry count u32 | crc32c u32 of entries and count
//! trailer  16 B   footer length u32 | version u16 | flags u16 | magic "SKIFFOBJ"
//! ```
//!
//! All integers are big-endian. A batch is served with one ranged read of `position..position+len`.
//! The full specification, and the reasons, are in `docs/format.md`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::Batch;

pub const MAGIC: [u8; 8] = *b"SKIFFOBJ";
/// The version this code writes; readers accept only versions they know.
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 32;
pub const TRAILER_LEN: usize = 16;
pub const ENTRY_LEN: usize = 70;
/// Entry count and CRC, after the entries.
const FOOTER_FIXED_LEN: usize = 8;

/// Why an object (or part of one) could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("not a skiff object: bad magic in the {0}")]
    BadMagic(&'static str),
    #[error("unsupported object format version {0}")]
    UnsupportedVersion(u16),
    #[error("unsupported object flags {0:#06x}")]
    UnsupportedFlags(u16),
    #[error("truncated {what}: {needed} bytes needed, {available} available")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("{what} checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        what: &'static str,
        stored: u32,
        computed: u32,
    },
    #[error("footer of {footer_len} bytes cannot hold {count} entries")]
    FooterLength { footer_len: u64, count: u32 },
    #[error("header version {header} differs from trailer version {trailer}")]
    VersionMismatch { header: u16, trailer: u16 },
    #[error("entry {index} ({position}+{len}) lies outside the batch area {start}..{end}")]
    EntryOutOfBounds {
        index: usize,
        position: u64,
        len: u32,
        start: u64,
        end: u64,
    },
}

/// The fixed header at the start of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectHeader {
    pub version: u16,
    pub flags: u16,
    /// The object's ULID, as a `u128`.
    pub object_id: u128,
}

/// Where the footer is, read from the trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FooterLocation {
    pub version: u16,
    /// The footer's length; it ends where the trailer starts.
    pub footer_len: u32,
}

impl FooterLocation {
    /// The footer's byte range in an object of `object_len` bytes.
    pub fn footer_range(&self, object_len: u64) -> Result<std::ops::Range<u64>, ObjectError> {
        let needed = (HEADER_LEN + TRAILER_LEN) as u64 + u64::from(self.footer_len);
        if object_len < needed {
            return Err(ObjectError::Truncated {
                what: "object",
                needed,
                available: object_len,
            });
        }
        let end = object_len - TRAILER_LEN as u64;
        Ok(end - u64::from(self.footer_len)..end)
    }

    /// The footer inside `tail`, the last bytes of an object, if `tail` is long enough.
    pub fn footer_in<'a>(&self, tail: &'a [u8]) -> Option<&'a [u8]> {
        let end = tail.len().checked_sub(TRAILER_LEN)?;
        let start = end.checked_sub(usize::try_from(self.footer_len).ok()?)?;
        tail.get(start..end)
    }
}

/// The index entry of one batch. `position` is from the start of the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectEntry {
    pub topic_id: [u8; 16],
    pub partition: i32,
    pub position: u64,
    pub len: u32,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ObjectEntry {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.topic_id);
        out.put_i32(self.partition);
        out.put_u64(self.position);
        out.put_u32(self.len);
        out.put_i32(self.last_offset_delta);
        out.put_i32(self.record_count);
        out.put_i64(self.first_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
    }

    fn decode(e: &[u8; ENTRY_LEN]) -> Self {
        let mut r = Reader(e);
        ObjectEntry {
            topic_id: r.take(),
            partition: i32::from_be_bytes(r.take()),
            position: u64::from_be_bytes(r.take()),
            len: u32::from_be_bytes(r.take()),
            last_offset_delta: i32::from_be_bytes(r.take()),
            record_count: i32::from_be_bytes(r.take()),
            first_timestamp: i64::from_be_bytes(r.take()),
            max_timestamp: i64::from_be_bytes(r.take()),
            producer_id: i64::from_be_bytes(r.take()),
            producer_epoch: i16::from_be_bytes(r.take()),
            base_sequence: i32::from_be_bytes(r.take()),
        }
    }
}

/// Reads fixed-size fields in order; a short input gives zeros rather than a panic (callers
/// check lengths first).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        if let Some((head, rest)) = self.0.split_first_chunk::<N>() {
            out = *head;
            self.0 = rest;
        }
        out
    }
}

/// Lays out one object from validated batches without copying their bytes.
#[derive(Debug)]
pub struct ObjectBuilder {
    object_id: u128,
    batches: Vec<Bytes>,
    entries: Vec<ObjectEntry>,
    position: u64,
}

impl ObjectBuilder {
    pub fn new(object_id: u128) -> Self {
        ObjectBuilder {
            object_id,
            batches: Vec::new(),
            entries: Vec::new(),
            position: HEADER_LEN as u64,
        }
    }

    /// Appends a batch and returns its position in the object. Keeps a clone of the `Bytes`.
    pub fn push(&mut self, topic_id: [u8; 16], partition: i32, batch: &Batch) -> u64 {
        let position = self.add_entry(topic_id, partition, batch);
        self.batches.push(batch.bytes.clone());
        position
    }

    /// Appends a batch as [`ObjectBuilder::push`] does, with `base_offset` in its header instead
    /// of the one its bytes hold (a compactor's segment carries real offsets; the CRC does not
    /// cover them). Only those 8 bytes are new: the rest stays the batch's `Bytes`, uncopied.
    pub fn push_with_base_offset(
        &mut self,
        topic_id: [u8; 16],
        partition: i32,
        batch: &Batch,
        base_offset: i64,
    ) -> u64 {
        if batch.header.base_offset == base_offset {
            return self.push(topic_id, partition, batch);
        }
        let position = self.add_entry(topic_id, partition, batch);
        let field = batch.bytes.len().min(8);
        let offset = base_offset.to_be_bytes();
        self.batches.push(Bytes::copy_from_slice(
            offset.get(..field).unwrap_or_default(),
        ));
        self.batches.push(batch.bytes.slice(field..));
        position
    }

    /// Appends a batch as [`ObjectBuilder::push`] does, with `header` (61 bytes, which
    /// `batch.header` describes) in place of the header its bytes hold: a `LogAppendTime` topic's
    /// stamped header (`crate::validate::log_append_time_header`). The records stay the batch's
    /// `Bytes`, uncopied.
    pub fn push_with_header(
        &mut self,
        topic_id: [u8; 16],
        partition: i32,
        batch: &Batch,
        header: Bytes,
    ) -> u64 {
        let position = self.add_entry(topic_id, partition, batch);
        let records = if batch.bytes.len() >= header.len() {
            batch.bytes.slice(header.len()..)
        } else {
            Bytes::new()
        };
        self.batches.push(header);
        self.batches.push(records);
        position
    }

    /// The footer entry of `batch`, placed at the end of the batch area; answers its position.
    fn add_entry(&mut self, topic_id: [u8; 16], partition: i32, batch: &Batch) -> u64 {
        let position = self.position;
        // A validated batch is at most 12 + i32::MAX bytes, which fits a u32.
        let len = u32::try_from(batch.bytes.len()).unwrap_or(u32::MAX);
        let h = &batch.header;
        self.entries.push(ObjectEntry {
            topic_id,
            partition,
            position,
            len,
            last_offset_delta: h.last_offset_delta,
            record_count: h.record_count,
            // Every record of a `LogAppendTime` batch has its max timestamp.
            first_timestamp: if h.is_log_append_time() {
                h.max_timestamp
            } else {
                h.base_timestamp
            },
            max_timestamp: h.max_timestamp,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
        });
        self.position = self.position.saturating_add(batch.bytes.len() as u64);
        position
    }

    /// Appends bytes that are not a batch (a segment's [`crate::run::SegmentIndex`]) to the
    /// batch area, with no footer entry, and returns their position.
    pub fn push_bytes(&mut self, bytes: Bytes) -> u64 {
        let position = self.position;
        self.position = self.position.saturating_add(bytes.len() as u64);
        self.batches.push(bytes);
        position
    }

    /// The size of the object if it were finished now: header, batches, footer and trailer.
    pub fn len(&self) -> u64 {
        self.position
            .saturating_add(footer_len(self.entries.len()) as u64)
            .saturating_add(TRAILER_LEN as u64)
    }

    /// No batch was pushed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The parts to write, in order, as one object (header, every batch as pushed, footer with
    /// trailer), and the index entries.
    pub fn finish(self) -> (Vec<Bytes>, Vec<ObjectEntry>) {
        let mut parts = Vec::with_capacity(self.batches.len() + 2);
        parts.push(encode_header(&ObjectHeader {
            version: FORMAT_VERSION,
            flags: 0,
            object_id: self.object_id,
        }));
        parts.extend(self.batches);
        parts.push(encode_footer(&self.entries));
        (parts, self.entries)
    }
}

fn footer_len(entries: usize) -> usize {
    entries
        .saturating_mul(ENTRY_LEN)
        .saturating_add(FOOTER_FIXED_LEN)
}

fn encode_header(h: &ObjectHeader) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN);
    out.put_slice(&MAGIC);
    out.put_u16(h.version);
    out.put_u16(h.flags);
    out.put_u128(h.object_id);
    let crc = crc32c::crc32c(&out);
    out.put_u32(crc);
    out.freeze()
}

/// The footer followed by the trailer.
fn encode_footer(entries: &[ObjectEntry]) -> Bytes {
    let len = footer_len(entries.len());
    let mut out = BytesMut::with_capacity(len + TRAILER_LEN);
    for e in entries {
        e.encode(&mut out);
    }
    out.put_u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    let crc = crc32c::crc32c(&out);
    out.put_u32(crc);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    out.put_u16(FORMAT_VERSION);
    out.put_u16(0);
    out.put_slice(&MAGIC);
    out.freeze()
}

/// Decodes the header at the start of an object.
pub fn decode_header(buf: &[u8]) -> Result<ObjectHeader, ObjectError> {
    let (h, _) =
        buf.split_first_chunk::<HEADER_LEN>()
            .ok_or(truncated("header", HEADER_LEN, buf.len()))?;
    let mut r = Reader(h);
    if r.take::<8>() != MAGIC {
        return Err(ObjectError::BadMagic("header"));
    }
    let header = ObjectHeader {
        version: u16::from_be_bytes(r.take()),
        flags: u16::from_be_bytes(r.take()),
        object_id: u128::from_be_bytes(r.take()),
    };
    let stored = u32::from_be_bytes(r.take());
    let computed = crc32c::crc32c(h.get(..HEADER_LEN - 4).unwrap_or_default());
    if stored != computed {
        return Err(ObjectError::ChecksumMismatch {
            what: "header",
            stored,
            computed,
        });
    }
    check_version(header.version, header.flags)?;
    Ok(header)
}

/// Reads the trailer from the last [`TRAILER_LEN`] bytes of `tail` (the end of an object, of any
/// length), telling where the footer is.
pub fn decode_trailer(tail: &[u8]) -> Result<FooterLocation, ObjectError> {
    let (_, t) = tail.split_last_chunk::<TRAILER_LEN>().ok_or(truncated(
        "trailer",
        TRAILER_LEN,
        tail.len(),
    ))?;
    let mut r = Reader(t);
    let footer_len = u32::from_be_bytes(r.take());
    let version = u16::from_be_bytes(r.take());
    let flags = u16::from_be_bytes(r.take());
    if r.take::<8>() != MAGIC {
        return Err(ObjectError::BadMagic("trailer"));
    }
    check_version(version, flags)?;
    Ok(FooterLocation {
        version,
        footer_len,
    })
}

fn check_version(version: u16, flags: u16) -> Result<(), ObjectError> {
    if version != FORMAT_VERSION {
        return Err(ObjectError::UnsupportedVersion(version));
    }
    if flags != 0 {
        return Err(ObjectError::UnsupportedFlags(flags));
    }
    Ok(())
}

/// Decodes a version-1 footer: exactly the footer's bytes, without the trailer. The entry count
/// must match the footer's length, so nothing is allocated beyond what the bytes can hold.
pub fn decode_footer(footer: &[u8]) -> Result<Vec<ObjectEntry>, ObjectError> {
    let (body, crc) = footer.split_last_chunk::<4>().ok_or(truncated(
        "footer",
        FOOTER_FIXED_LEN,
        footer.len(),
    ))?;
    let (entries, count) =
        body.split_last_chunk::<4>()
            .ok_or(truncated("footer", FOOTER_FIXED_LEN, footer.len()))?;
    let count = u32::from_be_bytes(*count);
    if usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(ENTRY_LEN))
        != Some(entries.len())
    {
        return Err(ObjectError::FooterLength {
            footer_len: footer.len() as u64,
            count,
        });
    }
    let stored = u32::from_be_bytes(*crc);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(ObjectError::ChecksumMismatch {
            what: "footer",
            stored,
            computed,
        });
    }
    Ok(entries
        .chunks_exact(ENTRY_LEN)
        .filter_map(|c| c.try_into().ok())
        .map(ObjectEntry::decode)
        .collect())
}

/// Decodes a whole object: header, trailer and footer, and checks that every entry lies inside
/// the batch area. The batches themselves are not checked (each carries its own CRC).
pub fn decode_object(bytes: &[u8]) -> Result<(ObjectHeader, Vec<ObjectEntry>), ObjectError> {
    let header = decode_header(bytes)?;
    let location = decode_trailer(bytes)?;
    if location.version != header.version {
        return Err(ObjectError::VersionMismatch {
            header: header.version,
            trailer: location.version,
        });
    }
    let range = location.footer_range(bytes.len() as u64)?;
    let footer = location.footer_in(bytes).ok_or(truncated(
        "footer",
        location.footer_len as usize,
        bytes.len(),
    ))?;
    let entries = decode_footer(footer)?;
    let (start, end) = (HEADER_LEN as u64, range.start);
    for (index, e) in entries.iter().enumerate() {
        let inside = e.position >= start
            && e.position
                .checked_add(u64::from(e.len))
                .is_some_and(|stop| stop <= end);
        if !inside {
            return Err(ObjectError::EntryOutOfBounds {
                index,
                position: e.position,
                len: e.len,
                start,
                end,
            });
        }
    }
    Ok((header, entries))
}

fn truncated(what: &'static str, needed: usize, available: usize) -> ObjectError {
    ObjectError::Truncated {
        what,
        needed: needed as u64,
        available: available as u64,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "object_tests.rs"]
mod tests;
