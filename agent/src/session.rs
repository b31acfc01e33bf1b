//! What one connection has told the agent about its client, kept for the answers that depend on
//! it. Requests are routed in order on the connection's reading task, so the session is plain
//! data that routing reads and updates.

use std::sync::Arc;
use std::time::Instant;

use crate::sasl::{Authenticated, Exchange, SaslConfig};

/// The client software a connection announced in ApiVersions (v3+).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Client {
    /// Anything else, or a client that never said: Java, KafkaJS, kafka-python, franz-go... They
    /// put every partition of a broker in one ProduceRequest.
    #[default]
    Other,
    /// librdkafka 2.10 or later, or a client built on it (confluent-kafka-python, -go, ...),
    /// which sends one ProduceRequest per partition and so is given several broker ids per
    /// agent (see [`crate::brokers`]). Before 2.10 librdkafka matched brokers by address, and
    /// several ids at one address made it move one connection from id to id (librdkafka #4212),
    /// so older versions are `Other`.
    Librdkafka,
}

/// The first librdkafka that tells brokers apart by id alone.
const LIBRDKAFKA_DISTINCT_IDS: (u32, u32) = (2, 10);

impl Client {
    /// From ApiVersions' `client_software_name` and `client_software_version`. librdkafka
    /// names itself `librdkafka` with its version; the Confluent clients put librdkafka's
    /// version after their own (`2.12.0-rdkafka-2.16.0`).
    pub fn from_software(name: &str, version: &str) -> Self {
        let librdkafka = if name == "librdkafka" {
            Some(version)
        } else {
            version.split_once("rdkafka-").map(|(_, v)| v)
        };
        match librdkafka.and_then(major_minor) {
            Some(v) if v >= LIBRDKAFKA_DISTINCT_IDS => Self::Librdkafka,
            _ => Self::Other,
        }
    }
}

/// `2.16.0`, `v2.16.0` or `2.16.0-RC1` as (2, 16).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The principal of a connection nothing authenticated, as Kafka names it.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

#[derive(Default)]
pub struct Session {
    /// The client's address, as `host:port`.
    pub peer: String,
    pub client: Client,
    /// The listener's SASL settings; `None` on a listener without SASL.
    pub sasl: Option<Arc<SaslConfig>>,
    pub exchange: Exchange,
    /// After a SaslHandshake v0: the next frames are bare SASL tokens, not requests.
    pub raw_sasl: bool,
    /// Who the connection is; `None` until a SASL listener's client has authenticated.
    pub authenticated: Option<Authenticated>,
    /// Set when the answer being routed is the connection's last (a failed authentication):
    /// it is written, then the connection closes.
    pub closing: bool,
    /// Set by throttled answers (client quotas): the next request is not read before it ends.
    pub mute: Arc<crate::quotas::Mute>,
    /// The name of the listener the connection came in on (KIP-103).
    pub listener: Arc<str>,
}

impl Session {
    /// A session on a listener with `sasl` (or none); `certificate` is the principal a client
    /// certificate named, which SASL, when the listener has it, replaces.
    pub fn new(peer: String, sasl: Option<Arc<SaslConfig>>, certificate: Option<String>) -> Self {
        let authenticated = sasl.is_none().then(|| Authenticated {
            principal: certificate.unwrap_or_else(|| ANONYMOUS.to_owned()),
            expires: None,
        });
        Self {
            peer,
            client: Client::Other,
            sasl,
            exchange: Exchange::Idle,
            raw_sasl: false,
            authenticated,
            closing: false,
            mute: Arc::default(),
            listener: "PLAINTEXT".into(),
        }
    }

    /// Whether the connection may send anything but ApiVersions and the SASL requests: it has
    /// authenticated, and its session has not run out.
    pub fn may_proceed(&self, now: Instant) -> bool {
        self.authenticated.as_ref().is_some_and(|a| !a.expired(now))
    }

    /// Who sends this connection's requests, for the authorizer. Only called once
    /// [`Session::may_proceed`] holds; before that, it is `User:ANONYMOUS`.
    pub fn caller(&self) -> crate::acl::Caller {
        let principal = self
            .authenticated
            .as_ref()
            .map_or(ANONYMOUS, |a| a.principal.as_str())
            .to_owned();
        let host = self
            .peer
            .rsplit_once(':')
            .map_or(self.peer.as_str(), |(h, _)| h)
            .trim_matches(['[', ']'])
            .to_owned();
        crate::acl::Caller { principal, host }
    }

    /// The largest frame the connection may send next: small until it has authenticated.
    pub fn frame_limit(&self, max: usize) -> usize {
        match &self.sasl {
            Some(sasl) if self.authenticated.is_none() => sasl.max_receive_bytes.min(max),
            _ => max,
        }
    }

    /// Whether this connection's client is given every slot of every agent as a broker.
    pub fn slotted(&self) -> bool {
        self.client == Client::Librdkafka
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_and_the_clients_on_it_are_told_apart() {
        for (name, version) in [
            ("librdkafka", "2.16.0"),
            ("librdkafka", "v2.10.0-RC3"),
            ("confluent-kafka-python", "2.12.0-rdkafka-2.16.0"),
            ("confluent-kafka-go", "v2.11.0-librdkafka-v2.11.0"),
            ("librdkafka", "3.0.0"),
        ] {
            assert_eq!(
                Client::from_software(name, version),
                Client::Librdkafka,
                "{name}"
            );
        }
        for (name, version) in [
            // Before 2.10, several ids at one address confuse librdkafka.
            ("librdkafka", "2.0.2"),
            ("confluent-kafka-python", "2.3.0-rdkafka-2.3.0"),
            ("confluent-kafka-dotnet", "2.6.0"),
            ("librdkafka", "garbage"),
            ("librdkafka", ""),
            ("apache-kafka-java", "3.9.0"),
            ("kafka-python", "2.2.0"),
            ("kafkajs", ""),
            ("", ""),
        ] {
            assert_eq!(
                Client::from_software(name, version),
                Client::Other,
                "{name}"
            );
        }
    }
}
