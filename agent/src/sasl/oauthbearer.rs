//! OAUTHBEARER (KIP-255, RFC 7628): the client sends a JWT; it is checked against the keys of a
//! JWKS file (signature, expiry, issuer, audience) and names its principal by a claim, as
//! Kafka's built-in validator does (KIP-768's `sasl.oauthbearer.*` settings).
//!
//! The JWKS file is read again when a token names a key it does not hold (at most once a
//! second) and every `refresh` otherwise, so keys can be rotated by rewriting the file.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How tokens are checked.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    /// The JWKS file (`sasl.oauthbearer.jwks.endpoint.url`, as a `file:` URL or a path).
    pub jwks: PathBuf,
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms`: how often the file is read even when no
    /// token asks for an unknown key.
    pub refresh: Duration,
    /// `sasl.oauthbearer.expected.issuer`: the `iss` a token must carry, if set.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.expected.audience`: a token's `aud` must name one of these, if any.
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.sub.claim.name`: the claim that names the principal.
    pub sub_claim: String,
    /// `sasl.oauthbearer.clock.skew.seconds`: slack on `exp` and `nbf`.
    pub clock_skew: Duration,
}

impl OAuthConfig {
    pub fn new(jwks: PathBuf) -> Self {
        Self {
            jwks,
            refresh: Duration::from_secs(3600),
            expected_issuer: None,
            expected_audience: Vec::new(),
            sub_claim: "sub".to_owned(),
            clock_skew: Duration::from_secs(30),
        }
    }
}

/// Why a token was refused: for the log only, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("malformed OAUTHBEARER message: {0}")]
    Message(&'static str),
    #[error("JWKS file {path}: {reason}")]
    Jwks { path: String, reason: String },
    #[error("no key in the JWKS file verifies a token signed with {0:?}")]
    NoKey(Algorithm),
    #[error("token refused: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    #[error("token has no string claim {0:?} to name its principal")]
    NoPrincipal(String),
    #[error("authorization id {0:?} is not the token's principal")]
    AuthzId(String),
}

/// A token that passed.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// Without the `User:` prefix.
    pub principal: String,
    /// When the token expires.
    pub expires: SystemTime,
}

/// The client's first (and only) message: `n,[a=authzid],` then `\x01`-separated key-value
/// pairs, one of them `auth=Bearer <token>`, ended by an empty pair.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientMessage<'a> {
    pub authzid: Option<&'a str>,
    pub token: &'a str,
}

pub fn client_message(message: &[u8]) -> Result<ClientMessage<'_>, OAuthError> {
    let text = std::str::from_utf8(message).map_err(|_| OAuthError::Message("not UTF-8"))?;
    let (gs2, rest) = text
        .split_once('\x01')
        .ok_or(OAuthError::Message("no key-value separator"))?;
    let authzid = match gs2
        .strip_prefix("n,")
        .and_then(|g| g.strip_suffix(','))
        .ok_or(OAuthError::Message("bad GS2 header"))?
    {
        "" => None,
        a => Some(
            a.strip_prefix("a=")
                .ok_or(OAuthError::Message("bad authorization id"))?,
        ),
    };
    let pairs = rest
        .strip_suffix("\x01\x01")
        .ok_or(OAuthError::Message("not ended by an empty key-value pair"))?;
    let mut token = None;
    for pair in pairs.split('\x01') {
        let (key, value) = pair
            .split_once('=')
            .ok_or(OAuthError::Message("key-value pair without '='"))?;
        if key == "auth" {
            let bearer = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or(OAuthError::Message("auth is not a bearer token"))?;
            token = Some(bearer.trim());
        }
    }
    let token = token.ok_or(OAuthError::Message("no auth pair"))?;
    Ok(ClientMessage { authzid, token })
}

/// Checks tokens against a JWKS file it keeps a copy of.
pub struct Verifier {
    config: OAuthConfig,
    keys: Mutex<Keys>,
}

struct Keys {
    set: JwkSet,
    read_at: Instant,
}

/// A token named a key the file lacks: read it again, but not more often than this.
const UNKNOWN_KEY_REREAD: Duration = Duration::from_secs(1);

/// Asymmetric algorithms only: a JWKS file publishes public keys, and an HMAC "key" there
/// would let anyone who reads the file sign tokens.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Reads the JWKS file once, so that a wrong path fails at start-up.
    pub fn new(config: OAuthConfig) -> Result<Self, OAuthError> {
        let set = read_jwks(&config)?;
        Ok(Self {
            config,
            keys: Mutex::new(Keys {
                set,
                read_at: Instant::now(),
            }),
        })
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// Checks the client's message and its token.
    pub fn verify(&self, message: &[u8]) -> Result<Verified, OAuthError> {
        let message = client_message(message)?;
        let header = jsonwebtoken::decode_header(message.token)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(OAuthError::NoKey(header.alg));
        }
        let keys = self.keys_for(header.kid.as_deref(), header.alg)?;
        let validation = self.validation(header.alg);
        let mut last = OAuthError::NoKey(header.alg);
        for key in &keys {
            match jsonwebtoken::decode::<Claims>(message.token, key, &validation) {
                Ok(data) => return self.accept(message.authzid, data.claims),
                Err(e) => last = e.into(),
            }
        }
        Err(last)
    }

    fn accept(&self, authzid: Option<&str>, claims: Claims) -> Result<Verified, OAuthError> {
        let principal = claims
            .rest
            .get(&self.config.sub_claim)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OAuthError::NoPrincipal(self.config.sub_claim.clone()))?
            .to_owned();
        if let Some(a) = authzid.filter(|a| *a != principal) {
            return Err(OAuthError::AuthzId(a.to_owned()));
        }
        let expires = UNIX_EPOCH
            .checked_add(Duration::from_secs(claims.exp))
            .ok_or(OAuthError::Message("exp out of range"))?;
        Ok(Verified { principal, expires })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.config.clock_skew.as_secs();
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp"]);
        if let Some(iss) = &self.config.expected_issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".to_owned());
        }
        if self.config.expected_audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.config.expected_audience);
            v.required_spec_claims.insert("aud".to_owned());
        }
        v
    }

    /// The keys that may have signed a token with this header, reading the file again when it
    /// is due or the token names a key it lacks.
    fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<DecodingKey>, OAuthError> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let unknown = kid.is_some_and(|kid| keys.set.find(kid).is_none());
        let due = now.duration_since(keys.read_at) >= self.config.refresh
            || (unknown && now.duration_since(keys.read_at) >= UNKNOWN_KEY_REREAD);
        if due {
            keys.read_at = now;
            match read_jwks(&self.config) {
                Ok(set) => {
                    tracing::debug!(jwks = %self.config.jwks.display(), keys = set.keys.len(), "JWKS file read");
                    keys.set = set;
                }
                // Keep the keys we have: a file caught mid-rewrite is not a reason to refuse
                // every client.
                Err(e) => tracing::warn!(error = %e, "keeping the JWKS keys read before"),
            }
        }
        Ok(keys
            .set
            .keys
            .iter()
            .filter(|jwk| kid.is_none() || jwk.common.key_id.as_deref() == kid)
            .filter(|jwk| fits(jwk, alg))
            .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
            .collect())
    }
}

/// Whether a key can verify a signature made with `alg`: its type matches, and so does the
/// algorithm it names, if it names one.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(_) => {
            matches!(alg, Algorithm::ES256 | Algorithm::ES384)
        }
        AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => false,
    };
    let named = jwk
        .common
        .key_algorithm
        .and_then(|ka| ka.to_string().parse::<Algorithm>().ok());
    family && named.is_none_or(|a| a == alg)
}

#[derive(Deserialize)]
struct Claims {
    exp: u64,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// A JWKS file's size limit: a few keys take a few KiB.
const MAX_JWKS_BYTES: u64 = 1 << 20;

fn read_jwks(config: &OAuthConfig) -> Result<JwkSet, OAuthError> {
    let fail = |reason: String| OAuthError::Jwks {
        path: config.jwks.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(&config.jwks).map_err(|e| fail(e.to_string()))?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_JWKS_BYTES + 1),
        &mut text,
    )
    .map_err(|e| fail(e.to_string()))?;
    if text.len() as u64 > MAX_JWKS_BYTES {
        return Err(fail(format!("larger than {MAX_JWKS_BYTES} bytes")));
    }
    serde_json::from_slice(&text).map_err(|e| fail(e.to_string()))
}

/// Turns `sasl.oauthbearer.jwks.endpoint.url` into the file it names: `file:` URLs and plain
/// paths. HTTPS endpoints are not fetched (an operator syncs the file instead).
pub fn jwks_path(url: &str) -> Result<PathBuf, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = url.strip_prefix("file:") {
        return Ok(PathBuf::from(path));
    }
    if url.contains("://") {
        return Err(format!(
            "{url}: only file: JWKS endpoints are read; keep the identity provider's keys in a file"
        ));
    }
    Ok(PathBuf::from(url))
}

#[cfg(test)]
#[path = "oauthbearer_tests.rs"]
mod tests;
