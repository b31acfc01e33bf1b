//! SASL authentication (KIP-43, KIP-84, KIP-152, KIP-368): the mechanisms a listener offers and
//! the state of one connection's exchange.
//!
//! PLAIN and SCRAM check against the SCRAM credentials in the metastore: SCRAM-SHA-256 and -512
//! by the exchange RFC 5802 defines, PLAIN by deriving the stored key from the password it sends
//! (so one `skiff users add` serves both, and no password is ever stored). OAUTHBEARER checks a
//! JWT against an identity provider's published keys instead.

pub mod oauthbearer;
pub mod scram;

use std::time::{Duration, Instant};

use skiff_metastore::security::ScramMechanism;

/// A SASL mechanism a listener may offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Self::Plain),
            "OAUTHBEARER" => Some(Self::OAuthBearer),
            other => ScramMechanism::from_name(other).map(Self::Scram),
        }
    }
}

/// How a listener authenticates its clients.
#[derive(Clone, Debug)]
pub struct SaslConfig {
    /// Kafka's `sasl.enabled.mechanisms`, in the order the handshake lists them.
    pub mechanisms: Vec<Mechanism>,
    /// Kafka's `sasl.server.max.receive.size`: the largest frame read before a connection has
    /// authenticated.
    pub max_receive_bytes: usize,
    /// Kafka's `connections.max.reauth.ms`: a session lasts this long, then the client must
    /// authenticate again (KIP-368). `None`: for ever.
    pub reauth: Option<Duration>,
    /// Makes the made-up credentials of unknown users (see [`scram::decoy`]); random per process.
    pub decoy_secret: Secret,
    /// OAUTHBEARER's token checks; set when that mechanism is enabled.
    pub oauth: Option<std::sync::Arc<oauthbearer::Verifier>>,
}

/// Bytes kept out of logs.
#[derive(Clone)]
pub struct Secret(pub [u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl SaslConfig {
    pub fn new(mechanisms: Vec<Mechanism>) -> Self {
        let mut decoy_secret = [0u8; 32];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut decoy_secret);
        Self {
            mechanisms,
            max_receive_bytes: 524_288,
            reauth: None,
            decoy_secret: Secret(decoy_secret),
            oauth: None,
        }
    }
}

/// Where a connection's SASL exchange stands.
#[derive(Default)]
pub enum Exchange {
    /// Nothing under way: before the handshake, or between sessions.
    #[default]
    Idle,
    /// The handshake chose this mechanism; SaslAuthenticate comes next.
    Chosen(Mechanism),
    /// SCRAM's first round is done; the client's final message comes next.
    ScramSent {
        mechanism: ScramMechanism,
        user: String,
        server: Box<scram::ServerFirst>,
    },
}

/// A connection's authenticated identity, and until when it holds (KIP-368).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// As Kafka writes principals: `User:alice`.
    pub principal: String,
    pub expires: Option<Instant>,
}

impl Authenticated {
    pub fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}
