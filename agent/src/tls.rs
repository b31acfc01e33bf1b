//! TLS for the Kafka listener (SSL and SASL_SSL): a certificate chain and key from PEM files,
//! reloaded when the files change, and optional client certificates (mTLS) whose subject becomes
//! the connection's principal through Kafka's `ssl.principal.mapping.rules`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Kafka's `ssl.client.auth`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate asked for.
    #[default]
    None,
    /// Asked for; a client without one is still served (as `User:ANONYMOUS`, or by SASL).
    Requested,
    /// A client without a trusted certificate fails the handshake.
    Required,
}

impl ClientAuth {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "requested" => Some(Self::Requested),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// Kafka's `ssl.keystore.location` with `ssl.keystore.type=PEM`: the private key and the
    /// certificate chain, server certificate first.
    pub keystore: PathBuf,
    /// Kafka's `ssl.truststore.location` (PEM): the CAs client certificates must chain to.
    pub truststore: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub principal_rules: PrincipalRules,
    /// How often the files are checked for changes.
    pub reload_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("ssl.principal.mapping.rules: {0}")]
    Rules(String),
}

/// The listener's TLS: the current server configuration, swapped when the files change.
pub struct Tls {
    config: TlsConfig,
    current: RwLock<Loaded>,
}

struct Loaded {
    server: Arc<ServerConfig>,
    stamps: Vec<Option<SystemTime>>,
}

impl Tls {
    pub fn load(config: TlsConfig) -> Result<Arc<Self>, TlsError> {
        let loaded = load(&config)?;
        Ok(Arc::new(Self {
            config,
            current: RwLock::new(loaded),
        }))
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        tokio_rustls::TlsAcceptor::from(current.server.clone())
    }

    pub fn principal_rules(&self) -> &PrincipalRules {
        &self.config.principal_rules
    }

    /// Checks the files every `reload_interval` until `shutdown`, and loads them again when one
    /// changed. A set that does not load (a certificate copied before its key) is logged and the
    /// one before kept; the next change is tried again.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.reload_interval) => {}
                () = shutdown.cancelled() => return,
            }
            let stamps = stamps(&self.config);
            let changed = {
                let current = self.current.read().unwrap_or_else(|p| p.into_inner());
                current.stamps != stamps
            };
            if !changed {
                continue;
            }
            match load(&self.config) {
                Ok(loaded) => {
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
                    info!(keystore = %self.config.keystore.display(), "TLS certificates reloaded");
                }
                Err(e) => {
                    warn!(error = %e, "TLS certificates changed but do not load; keeping the previous ones");
                    let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                    current.stamps = stamps;
                }
            }
        }
    }
}

fn files(config: &TlsConfig) -> impl Iterator<Item = &Path> {
    std::iter::once(config.keystore.as_path()).chain(config.truststore.as_deref())
}

fn stamps(config: &TlsConfig) -> Vec<Option<SystemTime>> {
    files(config)
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn load(config: &TlsConfig) -> Result<Loaded, TlsError> {
    let stamps = stamps(config);
    let pem = read(&config.keystore)?;
    let pem_error = |reason: String| TlsError::Pem {
        path: config.keystore.clone(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error("no certificate".into()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&pem).map_err(|e| pem_error(format!("private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match (config.client_auth, &config.truststore) {
        (ClientAuth::None, _) => WebPkiClientVerifier::no_client_auth(),
        (_, None) => {
            return Err(TlsError::Config(
                "ssl.client.auth needs a truststore of the CAs client certificates chain to".into(),
            ))
        }
        (auth, Some(path)) => {
            let pem = read(path)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| TlsError::Pem {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                roots.add(cert).map_err(|e| TlsError::Pem {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if auth == ClientAuth::Requested {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?
        }
    };
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Loaded {
        server: Arc::new(server),
        stamps,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A certificate's subject as Java's `X500Principal.getName()` writes it (RFC 2253): the most
/// specific part first, `CN=alice,OU=eng,O=Example,C=US`. This is what Kafka's rules match.
pub fn subject_dn(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let mut parts = Vec::new();
    for rdn in cert.subject().iter().collect::<Vec<_>>().into_iter().rev() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|a| {
                let oid = a.attr_type().to_id_string();
                let key = match oid.as_str() {
                    "2.5.4.3" => "CN".to_owned(),
                    "2.5.4.11" => "OU".to_owned(),
                    "2.5.4.10" => "O".to_owned(),
                    "2.5.4.7" => "L".to_owned(),
                    "2.5.4.8" => "ST".to_owned(),
                    "2.5.4.6" => "C".to_owned(),
                    "2.5.4.9" => "STREET".to_owned(),
                    "0.9.2342.19200300.100.1.25" => "DC".to_owned(),
                    "0.9.2342.19200300.100.1.1" => "UID".to_owned(),
                    _ => oid,
                };
                let value = a.as_str().map(escape).unwrap_or_default();
                format!("{key}={value}")
            })
            .collect();
        parts.push(attrs.join("+"));
    }
    Some(parts.join(","))
}

/// RFC 2253's escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge =
            (i == 0 && (c == ' ' || c == '#')) || (i + 1 == value.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Kafka's `ssl.principal.mapping.rules`: `RULE:pattern/replacement/[LU]` entries and `DEFAULT`,
/// comma-separated, tried in order on the subject; the first whose pattern matches the whole
/// subject names the user. With no rules, `DEFAULT`: the subject itself.
#[derive(Clone, Debug, Default)]
pub struct PrincipalRules(Vec<Rule>);

#[derive(Clone, Debug)]
enum Rule {
    Default,
    Map {
        pattern: regex::Regex,
        replacement: String,
        case: Option<char>,
    },
}

impl PrincipalRules {
    pub fn parse(text: &str) -> Result<Self, TlsError> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| TlsError::Rules(format!("no replacement in {rest:?}")))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| TlsError::Rules(format!("unterminated rule {rest:?}")))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| TlsError::Rules(e.to_string()))?;
                rules.push(Rule::Map {
                    pattern,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(TlsError::Rules(format!(
                    "expected RULE: or DEFAULT at {rest:?}"
                )));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(TlsError::Rules(format!("expected a comma at {rest:?}"))),
            }
        }
        Ok(Self(rules))
    }

    /// The user name for `subject`; `None` when rules exist and none matches (Kafka then fails
    /// the connection's authentication).
    pub fn apply(&self, subject: &str) -> Option<String> {
        if self.0.is_empty() {
            return Some(subject.to_owned());
        }
        self.0.iter().find_map(|rule| match rule {
            Rule::Default => Some(subject.to_owned()),
            Rule::Map {
                pattern,
                replacement,
                case,
            } => {
                if !pattern.is_match(subject) {
                    return None;
                }
                let name = pattern.replace(subject, replacement.as_str()).into_owned();
                Some(match case {
                    Some('L') => name.to_lowercase(),
                    Some('U') => name.to_uppercase(),
                    _ => name,
                })
            }
        })
    }
}

/// Reads up to the next `/` that is not escaped as `\/`; the part with `\/` unescaped, and what
/// follows the slash.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &text[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` group references as the regex crate writes them (`${1}`), so that `$1x` is group
/// 1 then `x`, as in Java, not a group named `1x`.
fn java_replacement(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut group = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                group.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{group}}}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_principal_mapping_rules() {
        let rules = PrincipalRules::parse(
            r"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .expect("parses");
        assert_eq!(
            rules
                .apply("CN=kafka-server1,OU=ServiceUsers,O=Org,C=US")
                .as_deref(),
            Some("kafka-server1")
        );
        assert_eq!(
            rules
                .apply("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Palo Alto,ST=CA,C=US")
                .as_deref(),
            Some("duke@javasoft")
        );
        assert_eq!(rules.apply("OU=x,CN=Adm1n.x").as_deref(), Some("adm1n.x"));
        assert_eq!(rules.apply("O=nothing").as_deref(), Some("O=nothing"));
        // Without DEFAULT, an unmatched subject has no user.
        let strict = PrincipalRules::parse(r"RULE:^CN=([^,]+)$/$1/U").expect("parses");
        assert_eq!(strict.apply("CN=bob").as_deref(), Some("BOB"));
        assert_eq!(strict.apply("CN=bob,O=x"), None);
        // An escaped slash belongs to the pattern.
        let slash = PrincipalRules::parse(r"RULE:^CN=(.*)\/(.*)$/$2-$1/").expect("parses");
        assert_eq!(slash.apply("CN=a/b").as_deref(), Some("b-a"));
        assert_eq!(
            PrincipalRules::default().apply("CN=x").as_deref(),
            Some("CN=x")
        );
        for bad in [
            "RULE:nope",
            "RULE:^a$/b",
            "SOMETHING",
            "DEFAULT DEFAULT",
            "RULE:(/x/",
        ] {
            assert!(PrincipalRules::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape("a,b"), r"a\,b");
        assert_eq!(escape(" lead"), r"\ lead");
        assert_eq!(escape("#x"), r"\#x");
        assert_eq!(escape("plain"), "plain");
    }
}
