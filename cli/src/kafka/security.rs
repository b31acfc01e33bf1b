//! How the CLI's Kafka client reaches a secured listener: TLS and SASL (PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512), from a client properties file as Kafka's tools take one (`--command-config`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::hmac;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use skiff_metastore::security::ScramMechanism;

/// TLS and SASL for every connection, or neither.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<Login>,
}

#[derive(Clone)]
pub struct Login {
    pub mechanism: Mechanism,
    pub user: String,
    pub password: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
        }
    }
}

impl ClientSecurity {
    /// Reads a Java properties file of Kafka client settings: `security.protocol`,
    /// `sasl.mechanism`, `sasl.username` and `sasl.password` (or `sasl.jaas.config`'s
    /// `username="…" password="…"`), and the CA as `ssl.truststore.location` (PEM) or
    /// `ssl.ca.location`.
    pub fn from_properties(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let props = properties(text);
        let get = |k: &str| props.get(k).map(String::as_str);
        let protocol = get("security.protocol").unwrap_or("PLAINTEXT");
        let (tls, sasl) = match protocol.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                bail!("security.protocol {other:?}: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            }
        };
        let tls = if tls {
            let ca = get("ssl.truststore.location")
                .or_else(|| get("ssl.ca.location"))
                .context("a TLS listener needs ssl.truststore.location (a PEM file of CAs)")?;
            Some(Arc::new(tls_config(Path::new(ca))?))
        } else {
            None
        };
        let sasl = if sasl {
            let mechanism = match get("sasl.mechanism").unwrap_or("GSSAPI") {
                "PLAIN" => Mechanism::Plain,
                other => Mechanism::Scram(ScramMechanism::from_name(other).with_context(|| {
                    format!("sasl.mechanism {other:?}: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
                })?),
            };
            let jaas = get("sasl.jaas.config").unwrap_or("");
            let user = get("sasl.username")
                .map(str::to_owned)
                .or_else(|| jaas_option(jaas, "username"))
                .context("SASL needs sasl.username (or sasl.jaas.config's username)")?;
            let password = get("sasl.password")
                .map(str::to_owned)
                .or_else(|| jaas_option(jaas, "password"))
                .context("SASL needs sasl.password (or sasl.jaas.config's password)")?;
            Some(Login {
                mechanism,
                user,
                password,
            })
        } else {
            None
        };
        Ok(Self { tls, sasl })
    }
}

/// `key=value` (or `key: value`) lines; `#` and `!` start comments, as Java's `Properties`.
fn properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_owned(), l[at + 1..].trim().to_owned()))
        })
        .collect()
}

/// `name="value"` from a JAAS line such as Kafka's ScramLoginModule's.
fn jaas_option(jaas: &str, name: &str) -> Option<String> {
    let start = jaas.find(&format!("{name}=\""))? + name.len() + 2;
    let len = jaas[start..].find('"')?;
    Some(jaas[start..start + len].to_owned())
}

fn tls_config(ca: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.with_context(|| format!("a certificate in {}", ca.display()))?)
            .with_context(|| format!("a certificate in {}", ca.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", ca.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The messages of one SASL exchange for `login`: `send` takes the client's message and answers
/// the server's.
pub fn authenticate(
    login: &Login,
    mut send: impl FnMut(&[u8]) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    match login.mechanism {
        Mechanism::Plain => {
            let msg = format!("\0{}\0{}", login.user, login.password);
            send(msg.as_bytes())?;
            Ok(())
        }
        Mechanism::Scram(m) => scram(m, login, send),
    }
}

/// RFC 5802's client side.
fn scram(
    mechanism: ScramMechanism,
    login: &Login,
    mut send: impl FnMut(&[u8]) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    let mut raw = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| anyhow::anyhow!("no randomness for a SCRAM nonce"))?;
    let nonce = B64.encode(raw);
    let name = login.user.replace('=', "=3D").replace(',', "=2C");
    let bare = format!("n={name},r={nonce}");
    let server_first = String::from_utf8(send(format!("n,,{bare}").as_bytes())?)
        .context("the server's first SCRAM message is not UTF-8")?;
    let attr = |k: &str| {
        server_first
            .split(',')
            .find_map(|a| a.strip_prefix(&format!("{k}=")))
            .map(str::to_owned)
    };
    let combined = attr("r").context("no nonce in the server's SCRAM message")?;
    if !combined.starts_with(&nonce) || combined.len() == nonce.len() {
        bail!("the server's SCRAM nonce does not extend the client's");
    }
    let salt = B64
        .decode(attr("s").context("no salt in the server's SCRAM message")?)
        .context("the server's SCRAM salt is not base64")?;
    let iterations: u32 = attr("i")
        .context("no iteration count in the server's SCRAM message")?
        .parse()
        .context("the server's SCRAM iteration count")?;
    if !(1..=1_000_000).contains(&iterations) {
        bail!("the server asks for {iterations} SCRAM iterations");
    }
    let salted = skiff_agent::sasl::scram::salted_password(
        mechanism,
        login.password.as_bytes(),
        &salt,
        iterations,
    );
    let credential = skiff_agent::sasl::scram::credential(mechanism, &salted, salt, iterations);
    let hmac_alg = match mechanism {
        ScramMechanism::Sha256 => hmac::HMAC_SHA256,
        ScramMechanism::Sha512 => hmac::HMAC_SHA512,
    };
    let without_proof = format!("c=biws,r={combined}");
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let client_key = hmac::sign(&hmac::Key::new(hmac_alg, &salted), b"Client Key");
    let signature = hmac::sign(
        &hmac::Key::new(hmac_alg, &credential.stored_key),
        auth_message.as_bytes(),
    );
    let proof: Vec<u8> = client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(a, b)| a ^ b)
        .collect();
    let server_final = String::from_utf8(send(
        format!("{without_proof},p={}", B64.encode(proof)).as_bytes(),
    )?)
    .context("the server's final SCRAM message is not UTF-8")?;
    let expected = hmac::sign(
        &hmac::Key::new(hmac_alg, &credential.server_key),
        auth_message.as_bytes(),
    );
    match server_final.strip_prefix("v=") {
        Some(v) if v == B64.encode(expected.as_ref()) => Ok(()),
        _ => bail!("the server's SCRAM signature is wrong: is it the server it claims to be?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_as_kafkas_tools_write_them() {
        let s = ClientSecurity::parse(
            "# admin\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"s3cret\";\n",
        )
        .expect("parses");
        let login = s.sasl.expect("sasl");
        assert_eq!(login.mechanism, Mechanism::Scram(ScramMechanism::Sha512));
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("admin", "s3cret")
        );
        assert!(s.tls.is_none());
        assert!(
            ClientSecurity::parse("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\n")
                .is_err()
        );
        assert!(
            ClientSecurity::parse("security.protocol=SSL\n").is_err(),
            "needs a CA"
        );
        assert!(ClientSecurity::parse("").expect("plain").sasl.is_none());
    }

    /// Runs `login` against the agent's own server side holding `credential`.
    fn exchange(
        login: &Login,
        credential: &skiff_metastore::security::ScramCredential,
    ) -> anyhow::Result<()> {
        use skiff_agent::sasl::scram;
        let Mechanism::Scram(mechanism) = login.mechanism else {
            anyhow::bail!("not SCRAM");
        };
        let mut server: Option<scram::ServerFirst> = None;
        authenticate(login, |msg| {
            Ok(match server.take() {
                None => {
                    let first = scram::client_first(msg)?;
                    let rng = ring::rand::SystemRandom::new();
                    let s = scram::ServerFirst::new(mechanism, first, credential.clone(), &rng);
                    let answer = s.message().to_vec();
                    server = Some(s);
                    answer
                }
                Some(s) => s.client_final(msg)?,
            })
        })
    }

    #[test]
    fn scram_against_the_agents_server() {
        let mechanism = ScramMechanism::Sha256;
        let salt = b"0123456789abcdef".to_vec();
        let salted = skiff_agent::sasl::scram::salted_password(mechanism, b"pw", &salt, 4096);
        let credential = skiff_agent::sasl::scram::credential(mechanism, &salted, salt, 4096);
        let login = Login {
            mechanism: Mechanism::Scram(mechanism),
            user: "alice".into(),
            password: "pw".into(),
        };
        let result = exchange(&login, &credential);
        assert!(result.is_ok(), "{result:?}");
        let wrong = Login {
            password: "nope".into(),
            ..login
        };
        assert!(exchange(&wrong, &credential).is_err());
    }
}
