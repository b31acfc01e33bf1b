//! Length-prefixed frames: a big-endian i32 size, then that many bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes is over the {max}-byte limit")]
    TooLarge { size: i64, max: usize },
    #[error("frame size {0} is negative")]
    Negative(i32),
}

/// Checks a frame's size prefix against the largest frame accepted.
pub fn check_size(size: i32, max: usize) -> Result<usize, FrameError> {
    let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
    if size > max {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max,
        });
    }
    Ok(size)
}

/// What the first bytes of every request say, read before anything is decoded.
#[derive(Clone, Copy, Debug)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

pub fn peek_prefix(frame: &[u8]) -> Option<RequestPrefix> {
    let mut b = frame.get(..8)?;
    Some(RequestPrefix {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("malformed request header: {0}")]
pub struct HeaderError(String);

/// Decodes the request header, leaving `frame` at the start of the body.
pub fn decode_header(
    api_key: ApiKey,
    api_version: i16,
    frame: &mut Bytes,
) -> Result<RequestHeader, HeaderError> {
    let header_version = api_key.request_header_version(api_version);
    RequestHeader::decode(frame, header_version).map_err(|e| HeaderError(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
#[error("cannot encode response: {0}")]
pub struct EncodeError(String);

/// Encodes a whole response frame: size, header, body.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, EncodeError> {
    let header_version = api_key.response_header_version(api_version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + body.compute_size(api_version)?))
        .map_err(|e| EncodeError(e.to_string()))?;
    // The size prefix is an i32: a larger answer (a fetch asking for more than 2 GiB) would go out
    // with a wrong length and leave the client reading garbage.
    let prefix = i32::try_from(size).map_err(|_| {
        EncodeError(format!(
            "{size}-byte response is over the protocol's limit of {} bytes",
            i32::MAX
        ))
    })?;
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_i32(prefix);
    header
        .encode(&mut out, header_version)
        .map_err(|e| EncodeError(e.to_string()))?;
    body.encode(&mut out, api_version)
        .map_err(|e| EncodeError(e.to_string()))?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::FetchResponse;

    use super::*;

    #[test]
    fn a_response_whose_size_does_not_fit_an_i32_is_refused() {
        // 2,048 partitions sharing one 1 MiB chunk: over 2 GiB encoded, 1 MiB in memory.
        let chunk = Bytes::from(vec![0u8; 1 << 20]);
        let partitions = (0..2048)
            .map(|i| {
                PartitionData::default()
                    .with_partition_index(i)
                    .with_records(Some(chunk.clone()))
            })
            .collect();
        let body = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_partitions(partitions)
        ]);
        assert!(body.compute_size(4).expect("size") > i32::MAX as usize);
        assert!(encode_response(ApiKey::Fetch, 4, 1, &body).is_err());

        let small = FetchResponse::default();
        let fits = encode_response(ApiKey::Fetch, 4, 1, &small).expect("encodes");
        assert_eq!(fits.len(), 4 + small.compute_size(4).expect("size") + 4);
        assert_eq!(&fits[..4], &((fits.len() - 4) as i32).to_be_bytes());
    }

    #[test]
    fn sizes_are_checked() {
        assert_eq!(check_size(10, 10).expect("fits"), 10);
        assert!(matches!(
            check_size(11, 10),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(check_size(-1, 10), Err(FrameError::Negative(-1))));
    }
}
