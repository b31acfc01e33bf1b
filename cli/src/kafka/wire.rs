//! Kafka requests over blocking TCP: one connection per broker address, opened on first use.
//!
//! A frame is a 4-byte big-endian length, then the request header and body; the answer is a
//! length, the response header and body. Every read and write has a timeout, answers are capped
//! in size, and a body is checked against its schema ([`super::shape`]) before kafka-protocol
//! decodes it. Any failure on a connection closes it (it may be mid-frame); errors name the
//! broker and the request.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::shape::{walk, Shape};

/// Reads, writes and connects give up after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;
const CLIENT_ID: &str = "skiff-cli";

/// The name of a request type, for messages ("ListGroups").
fn api_name<R: Request>() -> String {
    ApiKey::try_from(R::KEY).map_or_else(|_| format!("api key {}", R::KEY), |k| format!("{k:?}"))
}

/// What a connection is carried by: TCP, or TLS over it.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Connections to brokers by address, and the correlation ids.
#[derive(Default)]
pub struct Client {
    conns: HashMap<String, Box<dyn Stream>>,
    next_correlation_id: i32,
    security: super::security::ClientSecurity,
}

impl Client {
    /// A client whose connections use TLS and SASL as `security` says.
    pub fn with_security(security: super::security::ClientSecurity) -> Self {
        Self {
            security,
            ..Self::default()
        }
    }

    /// Opens a connection to `addr`: TCP, then TLS and SASL if the client has them.
    fn open(&mut self, addr: &str) -> anyhow::Result<()> {
        let tcp = connect(addr)?;
        let stream: Box<dyn Stream> = match &self.security.tls {
            None => Box::new(tcp),
            Some(config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let name = rustls::pki_types::ServerName::try_from(
                    host.trim_matches(['[', ']']).to_owned(),
                )
                .with_context(|| format!("{host} is not a name TLS can check"))?;
                let conn =
                    rustls::ClientConnection::new(config.clone(), name).context("starting TLS")?;
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
        };
        self.conns.insert(addr.to_owned(), stream);
        if let Some(login) = self.security.sasl.clone() {
            if let Err(e) = self.sasl(addr, &login) {
                // Never reuse a connection that did not authenticate.
                self.conns.remove(addr);
                return Err(e.context(format!(
                    "authenticating to {addr} with {}",
                    login.mechanism.name()
                )));
            }
        }
        Ok(())
    }

    /// SaslHandshake v1, then SaslAuthenticate for each message of the exchange.
    fn sasl(&mut self, addr: &str, login: &super::security::Login) -> anyhow::Result<()> {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let req = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(login.mechanism.name()));
        let frame = encode(&req, 1, correlation_id)?;
        let body = self.exchange(addr, &frame)?;
        // Not flexible, so not for `Shape`: the correlation id and the error are all we need.
        if body.len() < 6 || body[..4] != correlation_id.to_be_bytes() {
            bail!("a malformed SaslHandshake response");
        }
        let code = i16::from_be_bytes([body[4], body[5]]);
        if code != 0 {
            bail!(
                "the broker refused the mechanism: {}",
                super::error_name(code)
            );
        }
        super::security::authenticate(login, |msg| {
            let req =
                SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(msg));
            let answer = self.call(addr, &req)?;
            if answer.error_code != 0 {
                bail!(
                    "{}",
                    answer
                        .error_message
                        .map_or_else(|| super::error_name(answer.error_code), |m| m.to_string())
                );
            }
            Ok(answer.auth_bytes.to_vec())
        })
    }

    /// Sends `req` to `addr` (host:port) at the version its response's [`Shape`] names, and
    /// returns the decoded response.
    pub fn call<R>(&mut self, addr: &str, req: &R) -> anyhow::Result<R::Response>
    where
        R: Request,
        R::Response: Shape,
    {
        let version = <R::Response as Shape>::VERSION;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode(req, version, correlation_id)
            .with_context(|| format!("encoding a {} request", api_name::<R>()))?;
        let result = self.exchange(addr, &frame).and_then(|body| {
            decode::<R::Response>(body, version, correlation_id).map_err(|e| {
                // kafka-protocol's messages may end in a newline.
                let e = format!("{e:#}");
                anyhow!("a malformed {} response: {}", api_name::<R>(), e.trim_end())
            })
        });
        result.map_err(|e| {
            // Whatever went wrong, the connection may be mid-frame: never reuse it.
            self.conns.remove(addr);
            e.context(format!("{} to {addr}", api_name::<R>()))
        })
    }

    fn exchange(&mut self, addr: &str, frame: &[u8]) -> anyhow::Result<Bytes> {
        if !self.conns.contains_key(addr) {
            self.open(addr)?;
        }
        let Some(stream) = self.conns.get_mut(addr) else {
            bail!("no connection to {addr}");
        };
        stream
            .write_all(frame)
            .map_err(|e| io_error("sending the request", &e))?;
        let mut size = [0u8; 4];
        stream
            .read_exact(&mut size)
            .map_err(|e| io_error("reading the response size", &e))?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=MAX_RESPONSE_BYTES).contains(s))
            .ok_or_else(|| {
                anyhow!(
                    "the broker announced a response of {size} bytes (accepted: 4 to {MAX_RESPONSE_BYTES})"
                )
            })?;
        // Grown as bytes arrive, not allocated up front from the announced size.
        let mut body = Vec::new();
        let read = stream
            .take(size as u64)
            .read_to_end(&mut body)
            .map_err(|e| io_error("reading the response", &e))?;
        if read != size {
            bail!("the connection closed after {read} of the response's {size} bytes");
        }
        Ok(Bytes::from(body))
    }
}

fn connect(addr: &str) -> anyhow::Result<TcpStream> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .collect();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, IO_TIMEOUT) {
            Ok(stream) => {
                stream.set_read_timeout(Some(IO_TIMEOUT))?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(io_error(&format!("cannot connect to {addr}"), &e)),
        None => Err(anyhow!(
            "cannot connect to {addr}: it resolves to no address"
        )),
    }
}

fn io_error(doing: &str, e: &std::io::Error) -> anyhow::Error {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            anyhow!("{doing}: no answer within {} s", IO_TIMEOUT.as_secs())
        }
        ErrorKind::UnexpectedEof => anyhow!("{doing}: the broker closed the connection"),
        _ => anyhow!("{doing}: {e}"),
    }
}

fn encode<R: Request>(req: &R, version: i16, correlation_id: i32) -> anyhow::Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut buf = BytesMut::new();
    buf.put_i32(0); // the size, filled in below
    header.encode(&mut buf, R::header_version(version))?;
    req.encode(&mut buf, version)?;
    let size = i32::try_from(buf.len() - 4).context("request too large")?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.to_vec())
}

fn decode<T: Decodable + HeaderVersion + Shape>(
    mut body: Bytes,
    version: i16,
    correlation_id: i32,
) -> anyhow::Result<T> {
    let header =
        ResponseHeader::decode(&mut body, T::header_version(version)).context("response header")?;
    if header.correlation_id != correlation_id {
        bail!(
            "correlation id {} where {correlation_id} was expected",
            header.correlation_id
        );
    }
    walk(T::FIELDS, &body).map_err(|e| anyhow!("{e}"))?;
    T::decode(&mut body, version)
}
