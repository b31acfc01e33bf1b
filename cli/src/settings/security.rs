//! The agent's security settings: its listener, TLS, SASL and the authorizer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use skiff_agent::sasl::{oauthbearer, Mechanism, SaslConfig};
use skiff_agent::server::SecurityProtocol;

use super::{parse_host_port, FileSettings};

#[derive(Args, Debug, Default)]
pub struct SecurityFlags {
    /// Address the Kafka listener binds [default: 127.0.0.1:9092]
    #[arg(long, env = "SKIFF_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// host:port clients are told to connect to [default: the listen address]
    #[arg(long, env = "SKIFF_ADVERTISE")]
    pub advertise: Option<String>,
    /// The Kafka listeners as Kafka writes them, NAME://host:port comma-separated, NAME one of
    /// PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL or a name --listener-security-protocol-map
    /// maps (listeners); the first is the address the agent is known by; instead of --listen
    #[arg(long, env = "SKIFF_LISTENERS", conflicts_with = "listen")]
    pub listeners: Option<String>,
    /// NAME://host:port, comma-separated, clients of each listener are told to connect to
    /// (advertised.listeners) [default: each listener's own]; instead of
    /// --advertise
    #[arg(long, env = "SKIFF_ADVERTISED_LISTENERS", conflicts_with = "advertise")]
    pub advertised_listeners: Option<String>,
    /// Listener names and their security protocols, NAME:PROTOCOL comma-separated
    /// (listener.security.protocol.map), for listeners named otherwise than their protocol
    #[arg(long, env = "SKIFF_LISTENER_SECURITY_PROTOCOL_MAP")]
    pub listener_security_protocol_map: Option<String>,
    /// PEM file with the listener's private key and certificate chain (ssl.keystore.location,
    /// ssl.keystore.type=PEM); read again when it changes. SSL and SASL_SSL listeners need it
    #[arg(long, env = "SKIFF_SSL_KEYSTORE_LOCATION")]
    pub ssl_keystore_location: Option<PathBuf>,
    /// PEM file of the CAs client certificates must chain to (ssl.truststore.location)
    #[arg(long, env = "SKIFF_SSL_TRUSTSTORE_LOCATION")]
    pub ssl_truststore_location: Option<PathBuf>,
    /// none, requested or required (ssl.client.auth) [default: none]
    #[arg(long, env = "SKIFF_SSL_CLIENT_AUTH")]
    pub ssl_client_auth: Option<String>,
    /// How a client certificate's subject becomes its user, as Kafka writes them:
    /// RULE:pattern/replacement/[LU],...,DEFAULT (ssl.principal.mapping.rules) [default: DEFAULT]
    #[arg(long, env = "SKIFF_SSL_PRINCIPAL_MAPPING_RULES")]
    pub ssl_principal_mapping_rules: Option<String>,
    /// How often the keystore and truststore files are checked for changes [default: 10000]
    #[arg(long, env = "SKIFF_SSL_RELOAD_INTERVAL_MS")]
    pub ssl_reload_interval_ms: Option<u64>,
    /// Authenticate clients with SASL on the listener, offering these mechanisms
    /// (sasl.enabled.mechanisms): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (checked against the SCRAM
    /// credentials in the metastore), OAUTHBEARER (a JWT checked against
    /// --sasl-oauthbearer-jwks-endpoint-url) [default on a SASL listener: SCRAM-SHA-512,SCRAM-SHA-256]
    #[arg(long, env = "SKIFF_SASL_ENABLED_MECHANISMS", value_delimiter = ',')]
    pub sasl_enabled_mechanisms: Option<Vec<String>>,
    /// Largest frame read before a client has authenticated (sasl.server.max.receive.size)
    /// [default: 524288]
    #[arg(long, env = "SKIFF_SASL_SERVER_MAX_RECEIVE_SIZE")]
    pub sasl_server_max_receive_size: Option<usize>,
    /// A SASL session lasts this long; then the client must authenticate again, or its
    /// connection is closed (connections.max.reauth.ms, KIP-368); 0 for ever [default: 0]
    #[arg(long, env = "SKIFF_CONNECTIONS_MAX_REAUTH_MS")]
    pub connections_max_reauth_ms: Option<u64>,
    /// The identity provider's keys OAUTHBEARER tokens are checked against: a JWKS file, as
    /// file:///path or a path (sasl.oauthbearer.jwks.endpoint.url); read again when a token
    /// names a key it lacks
    #[arg(long, env = "SKIFF_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL")]
    pub sasl_oauthbearer_jwks_endpoint_url: Option<String>,
    /// How often the JWKS file is read again in any case
    /// (sasl.oauthbearer.jwks.endpoint.refresh.ms) [default: 3600000]
    #[arg(long, env = "SKIFF_SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS")]
    pub sasl_oauthbearer_jwks_endpoint_refresh_ms: Option<u64>,
    /// The issuer (iss) a token must name (sasl.oauthbearer.expected.issuer) [default: any]
    #[arg(long, env = "SKIFF_SASL_OAUTHBEARER_EXPECTED_ISSUER")]
    pub sasl_oauthbearer_expected_issuer: Option<String>,
    /// Audiences, comma-separated, of which a token's aud must name one
    /// (sasl.oauthbearer.expected.audience) [default: any]
    #[arg(
        long,
        env = "SKIFF_SASL_OAUTHBEARER_EXPECTED_AUDIENCE",
        value_delimiter = ','
    )]
    pub sasl_oauthbearer_expected_audience: Option<Vec<String>>,
    /// The claim that names a token's principal (sasl.oauthbearer.sub.claim.name) [default: sub]
    #[arg(long, env = "SKIFF_SASL_OAUTHBEARER_SUB_CLAIM_NAME")]
    pub sasl_oauthbearer_sub_claim_name: Option<String>,
    /// Slack allowed on a token's exp and nbf (sasl.oauthbearer.clock.skew.seconds)
    /// [default: 30]
    #[arg(long, env = "SKIFF_SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS")]
    pub sasl_oauthbearer_clock_skew_seconds: Option<u64>,
    /// Principals every ACL check allows, semicolon-separated (super.users): User:admin;User:ops
    #[arg(long, env = "SKIFF_SUPER_USERS")]
    pub super_users: Option<String>,
    /// Allow a request on a resource no ACL names (allow.everyone.if.no.acl.found)
    /// [default: false when clients authenticate (SASL, client certificates), else true]
    #[arg(long, env = "SKIFF_ALLOW_EVERYONE_IF_NO_ACL_FOUND")]
    pub allow_everyone_if_no_acl_found: Option<bool>,
    /// NAME:PASSWORD of a user whose SCRAM-SHA-256 and SCRAM-SHA-512 credentials are set at
    /// start-up (repeatable); for a first administrator, or a development setup
    #[arg(long = "scram-user", env = "SKIFF_SCRAM_USERS", value_delimiter = ',')]
    pub scram_users: Vec<String>,
}

/// What the security flags resolve to.
#[derive(Debug)]
pub struct Security {
    /// Every listener, the first being the one the agent is known by; `protocol`, `listen` and
    /// `advertise` are the first's.
    pub listeners: Vec<ListenerSettings>,
    pub protocol: SecurityProtocol,
    pub listen: SocketAddr,
    pub advertise: (String, u16),
    pub tls: Option<skiff_agent::tls::TlsConfig>,
    pub sasl: Option<Arc<SaslConfig>>,
    pub authorizer: skiff_agent::acl::AuthorizerConfig,
    /// Users whose SCRAM credentials are set at start-up: (name, password).
    pub scram_users: Vec<(String, String)>,
}

impl Security {
    pub fn resolve(args: &SecurityFlags, file: &FileSettings) -> anyhow::Result<Self> {
        let listeners = resolve_listeners(args, file)?;
        let first = listeners.first().context("no listener")?;
        let (protocol, listen, advertise) = (first.protocol, first.bind, first.advertised.clone());
        let any_tls = listeners.iter().any(|l| l.protocol.tls());
        let any_sasl = listeners.iter().any(|l| l.protocol.sasl());
        let tls = match args
            .ssl_keystore_location
            .clone()
            .or(file.ssl_keystore_location.clone())
        {
            Some(keystore) => {
                if !any_tls {
                    bail!("ssl-keystore-location needs an SSL or SASL_SSL listener (--listeners)");
                }
                let client_auth = match args
                    .ssl_client_auth
                    .clone()
                    .or(file.ssl_client_auth.clone())
                {
                    None => skiff_agent::tls::ClientAuth::None,
                    Some(name) => {
                        skiff_agent::tls::ClientAuth::from_name(&name).with_context(|| {
                            format!("ssl-client-auth {name:?}: none, requested or required")
                        })?
                    }
                };
                let principal_rules = match args
                    .ssl_principal_mapping_rules
                    .clone()
                    .or(file.ssl_principal_mapping_rules.clone())
                {
                    None => skiff_agent::tls::PrincipalRules::default(),
                    Some(rules) => skiff_agent::tls::PrincipalRules::parse(&rules)?,
                };
                let reload_ms = args
                    .ssl_reload_interval_ms
                    .or(file.ssl_reload_interval_ms)
                    .unwrap_or(10_000)
                    .max(100);
                Some(skiff_agent::tls::TlsConfig {
                    keystore,
                    truststore: args
                        .ssl_truststore_location
                        .clone()
                        .or(file.ssl_truststore_location.clone()),
                    client_auth,
                    principal_rules,
                    reload_interval: std::time::Duration::from_millis(reload_ms),
                })
            }
            None if any_tls => {
                bail!("an SSL or SASL_SSL listener needs --ssl-keystore-location")
            }
            None => None,
        };
        let sasl = resolve_sasl(args, file, any_sasl)?;
        let authenticates = any_sasl
            || tls
                .as_ref()
                .is_some_and(|t| t.client_auth != skiff_agent::tls::ClientAuth::None);
        let authorizer = skiff_agent::acl::AuthorizerConfig {
            super_users: args
                .super_users
                .clone()
                .or(file.super_users.clone())
                .map(|list| {
                    list.split(';')
                        .map(|p| p.trim().to_owned())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            allow_if_no_acl: args
                .allow_everyone_if_no_acl_found
                .or(file.allow_everyone_if_no_acl_found)
                .unwrap_or(!authenticates),
        };
        if let Some(bad) = authorizer.super_users.iter().find(|p| !p.contains(':')) {
            bail!("super-users: {bad:?} is not a principal (User:name)");
        }
        let users = if args.scram_users.is_empty() {
            file.scram_users.clone().unwrap_or_default()
        } else {
            args.scram_users.clone()
        };
        let mut scram_users = Vec::new();
        for user in users {
            let (name, password) = user
                .split_once(':')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .context("scram-user must be NAME:PASSWORD")?;
            scram_users.push((name.to_owned(), password.to_owned()));
        }
        Ok(Self {
            listeners,
            protocol,
            listen,
            advertise,
            tls,
            sasl,
            authorizer,
            scram_users,
        })
    }
}

/// One listener: Kafka's name, protocol, the address it binds and the one clients are told.
#[derive(Clone, Debug)]
pub struct ListenerSettings {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    pub advertised: (String, u16),
}

/// `listeners` and `advertised.listeners` as Kafka writes them (`NAME://host:port,...`, the
/// name a protocol or one `listener.security.protocol.map` maps), or `--listen` and
/// `--advertise` for one PLAINTEXT listener.
fn resolve_listeners(
    args: &SecurityFlags,
    file: &FileSettings,
) -> anyhow::Result<Vec<ListenerSettings>> {
    let map = match args
        .listener_security_protocol_map
        .clone()
        .or(file.listener_security_protocol_map.clone())
    {
        None => Vec::new(),
        Some(text) => {
            let mut map = Vec::new();
            for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, protocol) = pair.split_once(':').with_context(|| {
                    format!("listener-security-protocol-map: {pair:?} is not NAME:PROTOCOL")
                })?;
                let protocol = SecurityProtocol::from_name(protocol.trim()).with_context(|| {
                    format!("listener-security-protocol-map: {protocol:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
                })?;
                map.push((name.trim().to_owned(), protocol));
            }
            map
        }
    };
    let protocol_of = |name: &str| {
        map.iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .or_else(|| SecurityProtocol::from_name(name))
            .with_context(|| {
                format!("listener {name:?}: not a security protocol, and not in --listener-security-protocol-map")
            })
    };
    let mut listeners: Vec<ListenerSettings> = Vec::new();
    match args.listeners.clone().or(file.listeners.clone()) {
        Some(list) => {
            for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let (name, (host, port)) = parse_listener(item)?;
                let addr = format!("{}:{port}", if host.is_empty() { "0.0.0.0" } else { &host });
                let bind: SocketAddr = addr.parse().with_context(|| {
                    format!("listeners: {item:?} must name an IP address to bind")
                })?;
                if listeners.iter().any(|l| l.name == name) {
                    bail!("listeners: {name} given twice");
                }
                if listeners.iter().any(|l| l.bind.port() == port && port != 0) {
                    bail!("listeners: port {port} given twice");
                }
                listeners.push(ListenerSettings {
                    protocol: protocol_of(&name)?,
                    advertised: (bind.ip().to_string(), bind.port()),
                    name,
                    bind,
                });
            }
            if listeners.is_empty() {
                bail!("listeners: give at least one, NAME://host:port");
            }
        }
        None => {
            let bind = args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9092)));
            listeners.push(ListenerSettings {
                name: SecurityProtocol::Plaintext.name().to_owned(),
                protocol: SecurityProtocol::Plaintext,
                advertised: (bind.ip().to_string(), bind.port()),
                bind,
            });
        }
    }
    match (
        args.advertised_listeners
            .clone()
            .or(file.advertised_listeners.clone()),
        args.advertise.clone().or(file.advertise.clone()),
    ) {
        (Some(list), _) => {
            for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let (name, address) = parse_listener(item)?;
                let l = listeners
                    .iter_mut()
                    .find(|l| l.name == name)
                    .with_context(|| {
                        format!("advertised-listeners: {name} is not one of --listeners")
                    })?;
                l.advertised = address;
            }
        }
        (None, Some(a)) => listeners[0].advertised = parse_host_port(&a)?,
        (None, None) => {}
    }
    Ok(listeners)
}

/// `NAME://host:port`, one of Kafka's `listeners`.
fn parse_listener(s: &str) -> anyhow::Result<(String, (String, u16))> {
    let (name, address) = s
        .split_once("://")
        .with_context(|| format!("listener {s:?} is not NAME://host:port"))?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        bail!("listener {s:?}: a name is letters, digits and underscores");
    }
    Ok((name.to_owned(), parse_host_port(address)?))
}

fn resolve_sasl(
    args: &SecurityFlags,
    file: &FileSettings,
    any_sasl: bool,
) -> anyhow::Result<Option<Arc<SaslConfig>>> {
    let names = args
        .sasl_enabled_mechanisms
        .clone()
        .or(file.sasl_enabled_mechanisms.clone());
    if names.is_some() && !any_sasl {
        bail!("sasl-enabled-mechanisms needs a SASL_PLAINTEXT or SASL_SSL listener (--listeners)");
    }
    if !any_sasl {
        return Ok(None);
    }
    // Kafka's default is GSSAPI, which Skiff does not have: SCRAM, never PLAIN unless asked.
    let names =
        names.unwrap_or_else(|| vec!["SCRAM-SHA-512".to_owned(), "SCRAM-SHA-256".to_owned()]);
    let mut mechanisms = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let m = Mechanism::from_name(name).with_context(|| {
            format!(
                "unknown SASL mechanism {name:?}: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
            )
        })?;
        if !mechanisms.contains(&m) {
            mechanisms.push(m);
        }
    }
    if mechanisms.is_empty() {
        bail!("sasl-enabled-mechanisms: a SASL listener needs at least one mechanism");
    }
    let oauth = resolve_oauth(args, file)?;
    if mechanisms.contains(&Mechanism::OAuthBearer) != oauth.is_some() {
        bail!("OAUTHBEARER (in sasl-enabled-mechanisms) and sasl-oauthbearer-jwks-endpoint-url go together");
    }
    let mut sasl = SaslConfig::new(mechanisms);
    sasl.oauth = oauth;
    if let Some(n) = args
        .sasl_server_max_receive_size
        .or(file.sasl_server_max_receive_size)
    {
        if n < 1024 {
            bail!("sasl-server-max-receive-size must be at least 1024");
        }
        sasl.max_receive_bytes = n;
    }
    if let Some(ms) = args
        .connections_max_reauth_ms
        .or(file.connections_max_reauth_ms)
    {
        sasl.reauth = (ms > 0).then(|| Duration::from_millis(ms));
    }
    Ok(Some(Arc::new(sasl)))
}

fn resolve_oauth(
    args: &SecurityFlags,
    file: &FileSettings,
) -> anyhow::Result<Option<Arc<oauthbearer::Verifier>>> {
    let Some(url) = args
        .sasl_oauthbearer_jwks_endpoint_url
        .clone()
        .or(file.sasl_oauthbearer_jwks_endpoint_url.clone())
    else {
        return Ok(None);
    };
    let path = oauthbearer::jwks_path(&url).map_err(anyhow::Error::msg)?;
    let mut config = oauthbearer::OAuthConfig::new(path);
    if let Some(ms) = args
        .sasl_oauthbearer_jwks_endpoint_refresh_ms
        .or(file.sasl_oauthbearer_jwks_endpoint_refresh_ms)
    {
        config.refresh = Duration::from_millis(ms.max(1000));
    }
    config.expected_issuer = args
        .sasl_oauthbearer_expected_issuer
        .clone()
        .or(file.sasl_oauthbearer_expected_issuer.clone());
    config.expected_audience = args
        .sasl_oauthbearer_expected_audience
        .clone()
        .or(file.sasl_oauthbearer_expected_audience.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if let Some(claim) = args
        .sasl_oauthbearer_sub_claim_name
        .clone()
        .or(file.sasl_oauthbearer_sub_claim_name.clone())
    {
        config.sub_claim = claim;
    }
    if let Some(s) = args
        .sasl_oauthbearer_clock_skew_seconds
        .or(file.sasl_oauthbearer_clock_skew_seconds)
    {
        config.clock_skew = Duration::from_secs(s);
    }
    let verifier =
        oauthbearer::Verifier::new(config).context("sasl-oauthbearer-jwks-endpoint-url")?;
    Ok(Some(Arc::new(verifier)))
}
