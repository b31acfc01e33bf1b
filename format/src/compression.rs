//! Decompression of the records section of a v2 batch, for the four codecs Kafka defines.
//!
//! Never used on the fetch path: batches are stored and served as produced. Only the few readers
//! that need individual records decompress: ListOffsets by timestamp, the compactor, and the
//! produce path for a topic whose records it checks (keys on compacted topics, timestamp bounds)
//! or a batch whose header timestamps it cannot believe.
//!
//! | codec | Kafka's payload | crate |
//! | --- | --- | --- |
//! | gzip | a gzip stream (RFC 1952), one member in practice | `flate2`, miniz_oxide backend |
//! | snappy | raw snappy (librdkafka) or xerial framing (the Java client), see below | `snap` |
//! | lz4 | LZ4 frames | `lz4_flex` (`frame`, safe decoder) |
//! | zstd | zstd frames | `ruzstd` (decoder) |
//!
//! Xerial framing, as snappy-java's `SnappyOutputStream` writes it (all integers big-endian):
//!
//! ```text
//! magic  82 53 4e 41 50 50 59 00  ("\x82SNAPPY\0")
//! version i32, min_compatible_version i32
//! then blocks: length i32, then `length` bytes of raw snappy
//! ```
//!
//! The output is capped: nothing decompresses to more than `max_out` bytes, and the output
//! buffer never grows past `max_out`, so a decompression bomb is an error, not an allocation.
//! Every input gives `Ok` or `Err`, never a panic.

use std::io::{ErrorKind, Read};

use bytes::Bytes;

use crate::batch::Compression;

/// The largest zstd window a frame may ever declare: 128 MiB, libzstd's default `windowLogMax`
/// (27), which is what Kafka's own consumer (zstd-jni) accepts.
pub const ZSTD_MAX_WINDOW: u64 = 128 << 20;
/// The window a frame may always declare, whatever `max_out`: 8 MiB, what zstd levels up to 19
/// use when the input size is not known up front (level 3, the default of librdkafka and the Java
/// client, uses 2 MiB). Levels 20 to 22 use 32 to 128 MiB, accepted only when `max_out` is as
/// large: 64 MiB (the records cap) accepts up to level 21.
pub const ZSTD_MIN_WINDOW_LIMIT: u64 = 8 << 20;

/// The magic that starts a snappy payload in xerial framing.
pub const XERIAL_MAGIC: [u8; 8] = *b"\x82SNAPPY\x00";
/// Magic, version and minimum compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// No codec produces an empty stream (each has a header or a length), but some decoders would
/// read an empty input as empty output; each codec refuses it with this reason.
const EMPTY: &str = "empty payload";

/// Why a payload could not be decompressed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("decompressed data is larger than the limit of {max} bytes")]
    TooLarge { max: usize },
    #[error("corrupt gzip data: {0}")]
    Gzip(String),
    #[error("corrupt snappy data: {0}")]
    Snappy(String),
    #[error("corrupt lz4 data: {0}")]
    Lz4(String),
    #[error("corrupt zstd data: {0}")]
    Zstd(String),
}

/// Decompresses `payload`, compressed with `codec`, into at most `max_out` bytes.
///
/// [`Compression::None`] copies the payload (still capped); a caller holding `Bytes` should slice
/// them instead. Trailing bytes after the compressed stream are an error for every codec.
pub fn decompress(
    codec: Compression,
    payload: &[u8],
    max_out: usize,
) -> Result<Bytes, DecompressError> {
    let out = match codec {
        Compression::None => {
            if payload.len() > max_out {
                return Err(DecompressError::TooLarge { max: max_out });
            }
            payload.to_vec()
        }
        Compression::Gzip => gzip(payload, max_out)?,
        Compression::Snappy => snappy(payload, max_out)?,
        Compression::Lz4 => lz4(payload, max_out)?,
        Compression::Zstd => zstd(payload, max_out)?,
        Compression::Unknown(code) => return Err(DecompressError::UnknownCodec(code)),
    };
    Ok(Bytes::from(out))
}

fn gzip(payload: &[u8], max_out: usize) -> Result<Vec<u8>, DecompressError> {
    if payload.is_empty() {
        return Err(DecompressError::Gzip(EMPTY.into()));
    }
    // Multi-member, as Java's GZIPInputStream: concatenated members are one stream.
    let decoder = flate2::read::MultiGzDecoder::new(payload);
    let mut out = Vec::new();
    read_capped(decoder, &mut out, max_out, |e| {
        DecompressError::Gzip(e.to_string())
    })?;
    Ok(out)
}

fn lz4(payload: &[u8], max_out: usize) -> Result<Vec<u8>, DecompressError> {
    if payload.is_empty() {
        return Err(DecompressError::Lz4(EMPTY.into()));
    }
    let mut input = payload;
    let mut out = Vec::new();
    // One frame in practice; concatenated frames are one stream, as for the lz4 tool.
    while !input.is_empty() {
        // lz4_flex ends a frame quietly at EOF, with or without its end mark, so find the frame's
        // end first: a truncated frame is an error, not a shorter output.
        let len = lz4_frame_len(input).map_err(|e| DecompressError::Lz4(e.into()))?;
        let (frame, rest) = input.split_at_checked(len).unwrap_or((input, &[]));
        input = rest;
        if u32::from_le_bytes(frame.first_chunk().copied().unwrap_or_default()) != LZ4_MAGIC {
            continue; // a skippable frame
        }
        // Its buffers are bounded by the frame's block size (4 MiB at most).
        let mut decoder = lz4_flex::frame::FrameDecoder::new(frame);
        read_capped(&mut decoder, &mut out, max_out, |e| {
            DecompressError::Lz4(e.to_string())
        })?;
        if !decoder.get_ref().is_empty() {
            return Err(DecompressError::Lz4(
                "decoder stopped before the end of the frame".into(),
            ));
        }
    }
    Ok(out)
}

const LZ4_MAGIC: u32 = 0x184D_2204;

/// The length of the LZ4 frame (or skippable frame) at the start of `input`, from its header and
/// block lengths. Checks the framing only; the decoder checks the rest.
fn lz4_frame_len(input: &[u8]) -> Result<usize, &'static str> {
    const TRUNCATED: &str = "truncated frame";
    let u32_at = |at: usize| {
        input
            .get(at..)
            .and_then(|s| s.first_chunk::<4>())
            .map(|b| u32::from_le_bytes(*b))
            .ok_or(TRUNCATED)
    };
    let magic = u32_at(0)?;
    if (0x184D_2A50..=0x184D_2A5F).contains(&magic) {
        let len = usize::try_from(u32_at(4)?).map_err(|_| TRUNCATED)?;
        return 8usize
            .checked_add(len)
            .filter(|&end| end <= input.len())
            .ok_or(TRUNCATED);
    }
    if magic != LZ4_MAGIC {
        return Err("not an lz4 frame");
    }
    // FLG: bit 4 block checksums, bit 3 content size, bit 2 content checksum, bit 0 dictionary id.
    let flg = *input.get(4).ok_or(TRUNCATED)?;
    let flag = |bit: u8, len: usize| if flg & (1 << bit) != 0 { len } else { 0 };
    // Magic, FLG, BD, optional content size and dictionary id, header checksum.
    let mut pos = 7 + flag(3, 8) + flag(0, 4);
    loop {
        let block = u32_at(pos)?;
        pos += 4;
        if block == 0 {
            break; // the end mark
        }
        // The high bit marks an uncompressed block; the rest is the block's length.
        let len = usize::try_from(block & 0x7FFF_FFFF).map_err(|_| TRUNCATED)?;
        pos = pos
            .checked_add(len + flag(4, 4))
            .filter(|&end| end <= input.len())
            .ok_or(TRUNCATED)?;
    }
    pos += flag(2, 4);
    if pos > input.len() {
        return Err(TRUNCATED);
    }
    Ok(pos)
}

fn zstd(payload: &[u8], max_out: usize) -> Result<Vec<u8>, DecompressError> {
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    use ruzstd::decoding::StreamingDecoder;

    if payload.is_empty() {
        return Err(DecompressError::Zstd(EMPTY.into()));
    }
    let err = |e: &dyn std::fmt::Display| DecompressError::Zstd(e.to_string());
    // ruzstd reserves the declared window up front and keeps up to a window of output before it
    // yields any, so the window is what bounds its memory before `read_capped` can count bytes:
    // keep it within `max_out` (but never below what ordinary compression levels use). A frame
    // declaring more is refused, as libzstd refuses windows over its `windowLogMax`.
    let window_limit = u64::try_from(max_out)
        .unwrap_or(u64::MAX)
        .clamp(ZSTD_MIN_WINDOW_LIMIT, ZSTD_MAX_WINDOW);
    let mut input = payload;
    let mut out = Vec::new();
    // One frame in practice; concatenated and skippable frames are accepted, as libzstd does.
    loop {
        match StreamingDecoder::new_with_max_window_size(&mut input, window_limit) {
            Ok(decoder) => read_capped(decoder, &mut out, max_out, |e| err(&e))?,
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                // The magic and the length are read; skip the frame's content.
                input = usize::try_from(length)
                    .ok()
                    .and_then(|n| input.get(n..))
                    .ok_or_else(|| DecompressError::Zstd("truncated skippable frame".into()))?;
            }
            Err(e) => return Err(err(&e)),
        }
        if input.is_empty() {
            return Ok(out);
        }
    }
}

fn snappy(payload: &[u8], max_out: usize) -> Result<Vec<u8>, DecompressError> {
    if payload.is_empty() {
        return Err(DecompressError::Snappy(EMPTY.into()));
    }
    let mut out = Vec::new();
    if !payload.starts_with(&XERIAL_MAGIC) {
        snappy_block(payload, &mut out, max_out)?;
        return Ok(out);
    }
    let corrupt = |what: &str| DecompressError::Snappy(format!("xerial framing: {what}"));
    let mut rest = payload;
    // The header may repeat where two xerial streams were concatenated (snappy-java reads them
    // as one); an empty stream is valid and holds no data.
    while !rest.is_empty() {
        if rest.starts_with(&XERIAL_MAGIC) {
            rest = rest
                .get(XERIAL_HEADER_LEN..)
                .ok_or_else(|| corrupt("truncated header"))?;
            continue;
        }
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("truncated block length"))?;
        let len = i32::from_be_bytes(*len);
        let block = usize::try_from(len)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| corrupt(&format!("invalid block length {len}")))?;
        let (block, tail) = tail
            .split_at_checked(block)
            .ok_or_else(|| corrupt("truncated block"))?;
        snappy_block(block, &mut out, max_out)?;
        rest = tail;
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, which must stay within `max_out` bytes.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, max_out: usize) -> Result<(), DecompressError> {
    let corrupt = |e: snap::Error| DecompressError::Snappy(e.to_string());
    // The block starts with its decompressed length: check it before allocating.
    let len = snap::raw::decompress_len(block).map_err(corrupt)?;
    let start = out.len();
    if len > max_out.saturating_sub(start) {
        return Err(DecompressError::TooLarge { max: max_out });
    }
    out.resize(start + len, 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    let written = snap::raw::Decoder::new()
        .decompress(block, dst)
        .map_err(corrupt)?;
    out.truncate(start + written);
    Ok(())
}

/// Reads `reader` to its end, appending to `out`, which never grows past `max_out` bytes: more
/// data than that is [`DecompressError::TooLarge`], whatever the stream claims.
fn read_capped<R: Read>(
    mut reader: R,
    out: &mut Vec<u8>,
    max_out: usize,
    corrupt: impl Fn(std::io::Error) -> DecompressError,
) -> Result<(), DecompressError> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        let data = chunk.get(..n).unwrap_or_default();
        if data.len() > max_out.saturating_sub(out.len()) {
            return Err(DecompressError::TooLarge { max: max_out });
        }
        // Grow by doubling, but never past the cap (`Vec`'s own doubling could reach twice it).
        if out.capacity() - out.len() < data.len() {
            let target = out
                .capacity()
                .saturating_mul(2)
                .max(out.len() + data.len())
                .min(max_out);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(data);
    }
}

/// Why a records section could not be compressed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompressError {
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("{codec} compression failed: {reason}")]
    Failed { codec: &'static str, reason: String },
}

/// The xerial block size snappy-java writes (32 KiB): each block is compressed on its own.
const XERIAL_BLOCK: usize = 32 * 1024;

/// Compresses a records section with `codec`, in the framing Kafka's clients read:
///
/// - gzip: one gzip member (flate2, default level);
/// - snappy: xerial framing (version 1, compatible 1, 32 KiB blocks), as the Java client writes
///   it; librdkafka reads it too;
/// - lz4: one LZ4 frame (lz4_flex);
/// - zstd: one zstd frame at ruzstd's fastest level (about zstd's level 1; the compactor cares
///   for keeping the codec, not for the ratio).
///
/// Used only by the compactor, which re-encodes batches whose records it dropped.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, CompressError> {
    use std::io::Write;
    let failed = |codec: &'static str| {
        move |e: std::io::Error| CompressError::Failed {
            codec,
            reason: e.to_string(),
        }
    };
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).map_err(failed("gzip"))?;
            enc.finish().map_err(failed("gzip"))
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK) {
                let packed = enc.compress_vec(block).map_err(|e| CompressError::Failed {
                    codec: "snappy",
                    reason: e.to_string(),
                })?;
                let len = i32::try_from(packed.len()).map_err(|_| CompressError::Failed {
                    codec: "snappy",
                    reason: "block too large".into(),
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&packed);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(data).map_err(failed("lz4"))?;
            enc.finish().map_err(|e| CompressError::Failed {
                codec: "lz4",
                reason: e.to_string(),
            })
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            data,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
        Compression::Unknown(code) => Err(CompressError::UnknownCodec(code)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "compression_tests.rs"]
pub(crate) mod tests;
