//! Length-prefixed frames: a big-endian i32 size, then that many bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes is over the {max}-byte limit")]
    TooLarge { size: i64, max: usize },
    #[error("frame size {0} is negative")]
    Negative(i32),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the next frame's size. `None` when the peer closed the connection between frames.
pub async fn read_size<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<usize>, FrameError> {
    let mut size = [0u8; 4];
    match reader.read(&mut size[..1]).await? {
        0 => return Ok(None),
        _ => reader
            .read_exact(&mut size[1..])
            .await
            .map_err(|_| FrameError::Truncated)?,
    };
    let size = i32::from_be_bytes(size);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max,
        });
    }
    Ok(Some(size))
}

/// Reads the first `head.len()` bytes of a frame body (the api key, say), so the body's size can
/// be judged before the rest of it is read.
pub async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    head: &mut [u8],
) -> Result<(), FrameError> {
    reader
        .read_exact(head)
        .await
        .map_err(|_| FrameError::Truncated)?;
    Ok(())
}

/// Reads the rest of a frame body whose size [`read_size`] already checked and whose first bytes,
/// `head`, were read by [`read_head`].
pub async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    head: &[u8],
    size: usize,
) -> Result<Bytes, FrameError> {
    let mut body = BytesMut::zeroed(size);
    let (start, rest) = body.split_at_mut(head.len().min(size));
    start.copy_from_slice(&head[..start.len()]);
    reader
        .read_exact(rest)
        .await
        .map_err(|_| FrameError::Truncated)?;
    Ok(body.freeze())
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

    #[tokio::test]
    async fn a_body_read_in_two_steps_is_the_body() {
        let mut wire: &[u8] = b"\x00\x03rest";
        let mut head = [0u8; 2];
        read_head(&mut wire, &mut head).await.expect("head");
        let body = read_body(&mut wire, &head, 6).await.expect("body");
        assert_eq!(&body[..], b"\x00\x03rest");
    }
}
