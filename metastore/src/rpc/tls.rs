//! TLS for the metastore's RPC, with a cluster CA: every node serves with a certificate the CA
//! issued, every caller (nodes, agents, compactors, the CLI) checks it against the CA and
//! presents its own, and a node takes a caller whose certificate chains to the CA as a member of
//! the cluster. One certificate per process serves both ends, so it needs both the serverAuth
//! and clientAuth uses (or none), and the names or addresses it is reached at.
//!
//! Certificates are read once at start-up; rotating them is a rolling restart, as for the rest
//! of a node's configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

/// Where the cluster's certificates are.
#[derive(Clone, Debug)]
pub struct ClusterTlsFiles {
    /// PEM: this process's private key and its certificate chain.
    pub cert: PathBuf,
    /// PEM: the cluster CA (or CAs) certificates chain to.
    pub ca: PathBuf,
}

/// The loaded configurations, client and server side.
pub struct ClusterTls {
    files: ClusterTlsFiles,
    client: rustls::ClientConfig,
    server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ClusterTls {
    pub fn load(files: ClusterTlsFiles) -> Result<Arc<Self>, String> {
        let pem = read(&files.cert)?;
        let bad = |path: &Path, reason: String| format!("{}: {reason}", path.display());
        let chain = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&files.cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(bad(&files.cert, "no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| bad(&files.cert, format!("private key: {e}")))?;
        let ca_pem = read(&files.ca)?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca_pem) {
            let cert = cert.map_err(|e| bad(&files.ca, e.to_string()))?;
            roots.add(cert).map_err(|e| bad(&files.ca, e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad(&files.ca, "no CA certificate".into()));
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| bad(&files.cert, e.to_string()))?;
        // A certificate is optional at the handshake so that a scraper can read /metrics; every
        // other route admits only a caller that presented one (or the cluster secret).
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| e.to_string())?;
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| bad(&files.cert, e.to_string()))?;
        Ok(Arc::new(Self {
            files,
            client,
            server: Arc::new(server),
        }))
    }

    /// For reqwest's `use_preconfigured_tls`.
    pub fn client_config(&self) -> rustls::ClientConfig {
        self.client.clone()
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}
