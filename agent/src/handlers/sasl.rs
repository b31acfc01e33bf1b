//! SaslHandshake and SaslAuthenticate: run on the connection's reading task, in order, since
//! each step changes what the connection may do next.
//!
//! A failed authentication is answered SASL_AUTHENTICATION_FAILED with the same message whatever
//! failed (an unknown user, a wrong password, a bad nonce), logged with the reason, counted, and
//! the connection is closed once the answer is written.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::security::{ScramCredential, ScramMechanism};
use tracing::{info, warn};

use crate::context::Agent;
use crate::handlers::Close;
use crate::protocol::codes;
use crate::sasl::{scram, Authenticated, Exchange, Mechanism};
use crate::session::Session;

/// SaslHandshake. After v0 (KIP-43's original form), the exchange's messages come as bare
/// length-prefixed tokens instead of SaslAuthenticate requests: see [`raw_token`].
pub fn handshake(
    agent: &Agent,
    session: &mut Session,
    version: i16,
    req: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let Some(sasl) = session.sasl.clone() else {
        // A listener without SASL: nothing to hand over to.
        return SaslHandshakeResponse::default().with_error_code(codes::ILLEGAL_SASL_STATE);
    };
    let offered = sasl
        .mechanisms
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(offered);
    if !matches!(session.exchange, Exchange::Idle) {
        session.closing = true;
        return response.with_error_code(codes::ILLEGAL_SASL_STATE);
    }
    match Mechanism::from_name(&req.mechanism).filter(|m| sasl.mechanisms.contains(m)) {
        Some(mechanism) => {
            session.exchange = Exchange::Chosen(mechanism);
            session.raw_sasl = version == 0;
            response
        }
        None => {
            agent.metrics.authentication("unsupported_mechanism");
            warn!(peer = %session.peer, mechanism = %req.mechanism, "closing connection: SASL mechanism not enabled");
            session.closing = true;
            response.with_error_code(codes::UNSUPPORTED_SASL_MECHANISM)
        }
    }
}

pub async fn authenticate(
    agent: &Arc<Agent>,
    session: &mut Session,
    req: SaslAuthenticateRequest,
) -> Result<SaslAuthenticateResponse, Close> {
    authenticate_step(agent, session, req).await
}

async fn authenticate_step(
    agent: &Arc<Agent>,
    session: &mut Session,
    req: SaslAuthenticateRequest,
) -> Result<SaslAuthenticateResponse, Close> {
    let exchange = std::mem::take(&mut session.exchange);
    let step = match exchange {
        Exchange::Idle => {
            session.closing = true;
            return Ok(SaslAuthenticateResponse::default()
                .with_error_code(codes::ILLEGAL_SASL_STATE)
                .with_error_message(Some(StrBytes::from_static_str(
                    "SaslAuthenticate before SaslHandshake",
                ))));
        }
        Exchange::Chosen(Mechanism::Plain) => plain(agent, session, &req.auth_bytes).await,
        Exchange::Chosen(Mechanism::OAuthBearer) => oauth_bearer(session, &req.auth_bytes),
        Exchange::Chosen(Mechanism::Scram(mechanism)) => {
            scram_first(agent, session, mechanism, &req.auth_bytes).await
        }
        Exchange::ScramSent {
            mechanism,
            user,
            server,
        } => server
            .client_final(&req.auth_bytes)
            .map(|last| Step::Done {
                user,
                answer: Bytes::from(last),
                expires: None,
            })
            .map_err(|e| Failure::new(Mechanism::Scram(mechanism), e.to_string())),
    };
    Ok(match step {
        Ok(Step::Continue(exchange, answer)) => {
            session.exchange = exchange;
            SaslAuthenticateResponse::default().with_auth_bytes(answer)
        }
        Ok(Step::Done {
            user,
            answer,
            expires,
        }) => succeeded(agent, session, user, answer, expires),
        Err(failure) if failure.unavailable => {
            agent.metrics.authentication("unavailable");
            return Err(Close::AuthenticationUnavailable(failure.reason));
        }
        Err(failure) => {
            agent.metrics.authentication("failed");
            warn!(
                peer = %session.peer,
                mechanism = failure.mechanism.name(),
                reason = %failure.reason,
                "closing connection: authentication failed"
            );
            session.closing = true;
            let message = format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                failure.mechanism.name()
            );
            SaslAuthenticateResponse::default()
                .with_error_code(codes::SASL_AUTHENTICATION_FAILED)
                .with_error_message(Some(StrBytes::from_string(message)))
        }
    })
}

/// One SASL token of a v0 exchange: the frame is the token, the answer a bare token too. A
/// failure closes the connection without an answer, as Kafka does for this form.
pub async fn raw_token(
    agent: &Arc<Agent>,
    session: &mut Session,
    token: Bytes,
) -> Result<Bytes, Close> {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(token);
    let answer = authenticate_step(agent, session, req).await?;
    if answer.error_code != codes::NONE {
        return Err(Close::AuthenticationFailed);
    }
    if session.authenticated.is_some() && matches!(session.exchange, Exchange::Idle) {
        session.raw_sasl = false;
    }
    let len = i32::try_from(answer.auth_bytes.len()).map_err(|_| Close::AuthenticationFailed)?;
    let mut out = Vec::with_capacity(4 + answer.auth_bytes.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&answer.auth_bytes);
    Ok(Bytes::from(out))
}

enum Step {
    Continue(Exchange, Bytes),
    Done {
        user: String,
        answer: Bytes,
        /// When the credential itself expires (an OAUTHBEARER token): the session ends then,
        /// if sooner than `connections.max.reauth.ms` says.
        expires: Option<SystemTime>,
    },
}

struct Failure {
    mechanism: Mechanism,
    /// For the log only.
    reason: String,
    /// The credentials could not be looked up: nothing is known to be wrong, so the connection
    /// closes without an answer and the client connects again.
    unavailable: bool,
}

impl Failure {
    fn new(mechanism: Mechanism, reason: String) -> Self {
        Self {
            mechanism,
            reason,
            unavailable: false,
        }
    }
}

fn succeeded(
    agent: &Agent,
    session: &mut Session,
    user: String,
    answer: Bytes,
    credential_expires: Option<SystemTime>,
) -> SaslAuthenticateResponse {
    let principal = format!("User:{user}");
    // KIP-368: a re-authentication may renew the session, never change who it is.
    if let Some(before) = &session.authenticated {
        if before.principal != principal {
            agent.metrics.authentication("failed");
            warn!(peer = %session.peer, before = %before.principal, after = %principal, "closing connection: re-authentication as another principal");
            session.closing = true;
            return SaslAuthenticateResponse::default()
                .with_error_code(codes::SASL_AUTHENTICATION_FAILED)
                .with_error_message(Some(StrBytes::from_static_str(
                    "Cannot change principals during re-authentication",
                )));
        }
    }
    // As Kafka: with re-authentication on, a session ends at the sooner of the limit and the
    // credential's expiry; with it off, sessions do not end.
    let reauth = session.sasl.as_ref().and_then(|s| s.reauth).map(|limit| {
        credential_expires.map_or(limit, |at| {
            limit.min(at.duration_since(SystemTime::now()).unwrap_or_default())
        })
    });
    let lifetime_ms = reauth.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    agent.metrics.authentication("succeeded");
    info!(peer = %session.peer, %principal, "authenticated");
    session.authenticated = Some(Authenticated {
        principal,
        expires: reauth.map(|d| Instant::now() + d),
    });
    SaslAuthenticateResponse::default()
        .with_auth_bytes(answer)
        .with_session_lifetime_ms(lifetime_ms)
}

/// PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, checked against the user's SCRAM
/// credential, the strongest it has.
async fn plain(agent: &Arc<Agent>, session: &Session, message: &[u8]) -> Result<Step, Failure> {
    let fail = |reason: &str| Failure::new(Mechanism::Plain, reason.to_owned());
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(fail("malformed PLAIN message"));
    };
    let user = std::str::from_utf8(user).map_err(|_| fail("user name not UTF-8"))?;
    if user.is_empty() || (!authzid.is_empty() && authzid != user.as_bytes()) {
        return Err(fail(
            "empty user, or an authorization id that is not the user",
        ));
    }
    let mut found = None;
    for mechanism in [ScramMechanism::Sha512, ScramMechanism::Sha256] {
        if let Some(c) = credential(agent, user, mechanism).await? {
            found = Some((mechanism, c));
            break;
        }
    }
    // An unknown user costs the same derivation as a known one.
    let (mechanism, credential, known) = match found {
        Some((m, c)) => (m, c, true),
        None => (
            ScramMechanism::Sha512,
            scram::decoy(ScramMechanism::Sha512, user, &decoy_secret(session)),
            false,
        ),
    };
    let matches = scram::password_matches(mechanism, &credential, password);
    if matches && known {
        Ok(Step::Done {
            user: user.to_owned(),
            answer: Bytes::new(),
            expires: None,
        })
    } else if known {
        Err(fail("wrong password"))
    } else {
        Err(fail("unknown user"))
    }
}

/// OAUTHBEARER (RFC 7628): one message carrying the token. A refused token is answered
/// SASL_AUTHENTICATION_FAILED at once rather than with RFC 7628's error challenge, which
/// clients answer only to be refused anyway.
fn oauth_bearer(session: &Session, message: &[u8]) -> Result<Step, Failure> {
    let fail = |reason: String| Failure::new(Mechanism::OAuthBearer, reason);
    let verifier = session
        .sasl
        .as_ref()
        .and_then(|s| s.oauth.clone())
        .ok_or_else(|| fail("OAUTHBEARER has no JWKS configured".to_owned()))?;
    let verified = verifier.verify(message).map_err(|e| fail(e.to_string()))?;
    Ok(Step::Done {
        user: verified.principal,
        answer: Bytes::new(),
        expires: Some(verified.expires),
    })
}

async fn scram_first(
    agent: &Arc<Agent>,
    session: &Session,
    mechanism: ScramMechanism,
    message: &[u8],
) -> Result<Step, Failure> {
    let first = scram::client_first(message)
        .map_err(|e| Failure::new(Mechanism::Scram(mechanism), e.to_string()))?;
    let user = first.user.clone();
    let credential = match credential(agent, &user, mechanism).await? {
        Some(c) => c,
        None => scram::decoy(mechanism, &user, &decoy_secret(session)),
    };
    let server = scram::ServerFirst::new(
        mechanism,
        first,
        credential,
        &ring::rand::SystemRandom::new(),
    );
    let answer = Bytes::copy_from_slice(server.message());
    Ok(Step::Continue(
        Exchange::ScramSent {
            mechanism,
            user,
            server: Box::new(server),
        },
        answer,
    ))
}

fn decoy_secret(session: &Session) -> [u8; 32] {
    session
        .sasl
        .as_ref()
        .map(|s| s.decoy_secret.0)
        .unwrap_or_default()
}

async fn credential(
    agent: &Arc<Agent>,
    user: &str,
    mechanism: ScramMechanism,
) -> Result<Option<ScramCredential>, Failure> {
    agent
        .metastore
        .scram_credential(user, mechanism)
        .await
        .map_err(|e| Failure {
            unavailable: true,
            ..Failure::new(Mechanism::Scram(mechanism), format!("metastore: {e}"))
        })
}
