//! The binary encoding of what metastore nodes write to disk (journal records, snapshots) and
//! send each other and agents (RPC bodies): postcard.
//!
//! A commit names a hundred partitions or more and passes through about ten encodes and decodes
//! on its way through a 3-node quorum (agent, leader, journal, two followers, their journals).
//! In JSON those were the largest cost of a commit; postcard is compact (varints, 16-byte uuids)
//! and needs no text parsing. It is not self-describing: a type's fields are identified by their
//! position, so changing any type that is encoded here means a new journal, snapshot or RPC
//! version, exactly as the on-disk format's version numbers already require.
//!
//! Decoding is safe on untrusted bytes: serde caps what a length prefix may pre-allocate, and a
//! truncated or malformed body is an error, never a panic.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The content type of every postcard body.
pub const CONTENT_TYPE: &str = "application/x-skiff-postcard";

#[derive(Debug, thiserror::Error)]
#[error("postcard: {0}")]
pub struct CodecError(#[from] postcard::Error);

/// Appends `value`'s encoding to `buf`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let taken = std::mem::take(buf);
    *buf = postcard::to_extend(value, taken)?;
    Ok(())
}

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_stdvec(value)?)
}

/// The length of `value`'s encoding, without allocating it.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    Ok(postcard::serialize_with_flavor(
        value,
        postcard::ser_flavors::Size::default(),
    )?)
}

/// Decodes one value that must fill `bytes` exactly: trailing bytes mean a framing bug or
/// corruption, not something to ignore.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(CodecError(postcard::Error::DeserializeBadEncoding));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = encode(&(1u32, "a".to_string())).unwrap();
        assert_eq!(decode::<(u32, String)>(&bytes).unwrap(), (1, "a".into()));
        bytes.push(0);
        assert!(decode::<(u32, String)>(&bytes).is_err());
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        // A Vec<u64> claiming u32::MAX elements in five bytes.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode::<Vec<u64>>(&bytes).is_err());
    }
}
