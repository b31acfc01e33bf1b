//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side, as Kafka speaks them
//! (KIP-84): no channel binding, the `tokenauth` extension refused. The credential is the one
//! Kafka stores: salt, iterations, stored key and server key, never the password.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use skiff_metastore::security::{ScramCredential, ScramMechanism};

/// Kafka's bounds on a credential's iterations (`ScramMechanism.minIterations`, `maxIterations`).
pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// The longest SCRAM message accepted; real ones are well under 1 KiB.
const MAX_MESSAGE_BYTES: usize = 4096;

fn algorithms(
    mechanism: ScramMechanism,
) -> (
    hmac::Algorithm,
    &'static digest::Algorithm,
    pbkdf2::Algorithm,
) {
    match mechanism {
        ScramMechanism::Sha256 => (
            hmac::HMAC_SHA256,
            &digest::SHA256,
            pbkdf2::PBKDF2_HMAC_SHA256,
        ),
        ScramMechanism::Sha512 => (
            hmac::HMAC_SHA512,
            &digest::SHA512,
            pbkdf2::PBKDF2_HMAC_SHA512,
        ),
    }
}

/// `Hi(password, salt, i)`: what a client sends AlterUserScramCredentials, and what PLAIN
/// derives from the password to check it against the same credential.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let (_, digest, pbkdf2) = algorithms(mechanism);
    let mut out = vec![0u8; digest.output_len()];
    let iterations =
        std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    pbkdf2::derive(pbkdf2, iterations, salt, password, &mut out);
    out
}

/// The credential kept for a salted password.
pub fn credential(
    mechanism: ScramMechanism,
    salted_password: &[u8],
    salt: Vec<u8>,
    iterations: u32,
) -> ScramCredential {
    let (hmac_alg, digest_alg, _) = algorithms(mechanism);
    let key = hmac::Key::new(hmac_alg, salted_password);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(digest_alg, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    ScramCredential {
        salt,
        iterations,
        stored_key: stored_key.as_ref().to_vec(),
        server_key: server_key.as_ref().to_vec(),
    }
}

/// Whether `password` is the one `credential` was made from (PLAIN over SCRAM credentials).
pub fn password_matches(
    mechanism: ScramMechanism,
    credential: &ScramCredential,
    password: &[u8],
) -> bool {
    let salted = salted_password(mechanism, password, &credential.salt, credential.iterations);
    let derived = self::credential(mechanism, &salted, Vec::new(), credential.iterations);
    same(&derived.stored_key, &credential.stored_key)
}

/// Why an exchange failed. Only logged: the client is told that authentication failed, never
/// which part.
#[derive(Debug, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("SCRAM extensions (delegation tokens) are not supported")]
    Extensions,
    #[error("the client's nonce does not match")]
    Nonce,
    #[error("wrong channel binding")]
    ChannelBinding,
    #[error("wrong proof")]
    Proof,
}

/// What the client's first message says.
#[derive(Debug)]
pub struct ClientFirst {
    pub user: String,
    nonce: String,
    /// The message without its GS2 header, part of the AuthMessage both sides sign.
    bare: String,
}

/// Parses `gs2-header client-first-message-bare`.
pub fn client_first(message: &[u8]) -> Result<ClientFirst, ScramError> {
    let text = message_text(message)?;
    // gs2-cbind-flag "n" (Kafka never binds channels; "y" says the client could have), then an
    // optional authzid, which Kafka ignores unless it equals the user.
    let (flag, rest) = text
        .split_once(',')
        .ok_or(ScramError::Malformed("no GS2 header"))?;
    if flag != "n" && flag != "y" {
        return Err(ScramError::ChannelBinding);
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("no GS2 header"))?;
    let mut user = None;
    let mut nonce = None;
    for (i, attr) in bare.split(',').enumerate() {
        match (i, attr.split_once('=')) {
            (0, Some(("n", name))) => user = Some(decode_name(name)?),
            (1, Some(("r", r))) if !r.is_empty() => nonce = Some(r.to_owned()),
            (_, Some(("m", _))) => return Err(ScramError::Malformed("mandatory extension")),
            // Kafka's extensions (`tokenauth=true`) follow the nonce.
            (i, Some((_, _))) if i >= 2 => return Err(ScramError::Extensions),
            _ => return Err(ScramError::Malformed("client-first-message")),
        }
    }
    let user = user.ok_or(ScramError::Malformed("no user"))?;
    let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
    if let Some(authzid) = authzid.strip_prefix("a=") {
        if decode_name(authzid)? != user {
            return Err(ScramError::Malformed(
                "authorization id differs from the user",
            ));
        }
    } else if !authzid.is_empty() {
        return Err(ScramError::Malformed("GS2 header"));
    }
    Ok(ClientFirst {
        user,
        nonce,
        bare: bare.to_owned(),
    })
}

/// The server's side of one exchange, between its first message and the client's last.
pub struct ServerFirst {
    mechanism: ScramMechanism,
    credential: ScramCredential,
    client_first_bare: String,
    message: String,
    nonce: String,
    /// The client's part of `nonce`, at its start.
    client_nonce_len: usize,
}

impl ServerFirst {
    /// Answers `first` with the credential of its user. An unknown user gets a made-up
    /// credential (see [`decoy`]), so that the exchange fails only at the proof, as a wrong
    /// password does.
    pub fn new(
        mechanism: ScramMechanism,
        first: ClientFirst,
        credential: ScramCredential,
        random: &dyn SecureRandom,
    ) -> Self {
        let mut bytes = [0u8; 24];
        // A failing system RNG leaves zeros: the nonce still has the client's part, and the
        // proof still has to be right, so it costs replay protection only.
        let _ = random.fill(&mut bytes);
        Self::with_server_nonce(mechanism, first, credential, &B64.encode(bytes))
    }

    fn with_server_nonce(
        mechanism: ScramMechanism,
        first: ClientFirst,
        credential: ScramCredential,
        server_nonce: &str,
    ) -> Self {
        let client_nonce_len = first.nonce.len();
        let nonce = format!("{}{server_nonce}", first.nonce);
        let message = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        Self {
            mechanism,
            credential,
            client_first_bare: first.bare,
            message,
            nonce,
            client_nonce_len,
        }
    }

    pub fn message(&self) -> &[u8] {
        self.message.as_bytes()
    }

    /// Checks the client's final message; the server's final message when its proof is right.
    pub fn client_final(&self, message: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = message_text(message)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("no channel binding"))?;
        // The GS2 header again: "n,," for no binding and no authzid ("biws"); with an authzid
        // it is "n,a=user,".
        let header = B64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("channel binding"))?;
        if !(header.starts_with(b"n,") || header.starts_with(b"y,")) || !header.ends_with(b",") {
            return Err(ScramError::ChannelBinding);
        }
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        if attrs.next().is_some() {
            return Err(ScramError::Extensions);
        }
        // librdkafka before 2.6.1 sends its own nonce again in front of the combined one
        // (librdkafka #4895); Kafka 3.8.1 accepted that, as does this, since the server's fresh
        // part is still there to defeat a replay. Any other nonce is refused.
        let doubled = nonce
            .strip_prefix(&self.nonce[..self.client_nonce_len])
            .is_some_and(|rest| same(rest.as_bytes(), self.nonce.as_bytes()));
        if !same(nonce.as_bytes(), self.nonce.as_bytes()) && !doubled {
            return Err(ScramError::Nonce);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof"))?;
        let (hmac_alg, digest_alg, _) = algorithms(self.mechanism);
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.message, without_proof
        );
        let stored = hmac::Key::new(hmac_alg, &self.credential.stored_key);
        let signature = hmac::sign(&stored, auth_message.as_bytes());
        if proof.len() != signature.as_ref().len() {
            return Err(ScramError::Proof);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        let stored_key = digest::digest(digest_alg, &client_key);
        if !same(stored_key.as_ref(), &self.credential.stored_key) {
            return Err(ScramError::Proof);
        }
        let server = hmac::Key::new(hmac_alg, &self.credential.server_key);
        let verifier = hmac::sign(&server, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(verifier)).into_bytes())
    }
}

/// A credential for a user who has none: derived from the name and a secret of this process,
/// so the same name always gets the same salt (a client cannot tell it from a real one by
/// asking twice) and no password matches it.
pub fn decoy(mechanism: ScramMechanism, user: &str, secret: &[u8]) -> ScramCredential {
    let (hmac_alg, digest_alg, _) = algorithms(mechanism);
    let key = hmac::Key::new(hmac_alg, secret);
    let salt = hmac::sign(&key, user.as_bytes());
    let stored = hmac::sign(&key, salt.as_ref());
    ScramCredential {
        salt: salt.as_ref()[..16].to_vec(),
        iterations: MIN_ITERATIONS,
        stored_key: stored.as_ref()[..digest_alg.output_len()].to_vec(),
        server_key: stored.as_ref()[..digest_alg.output_len()].to_vec(),
    }
}

/// Equality in time that depends on the lengths only, not on where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn message_text(message: &[u8]) -> Result<&str, ScramError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(ScramError::Malformed("message too long"));
    }
    std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))
}

/// `saslname`: `=2C` is a comma and `=3D` an equals sign; any other `=` is malformed.
fn decode_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("user name escape")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user"));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
