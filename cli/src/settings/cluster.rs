//! How every role reaches the metastore's RPC, or serves it: the cluster secret and TLS with the
//! cluster CA.

use std::path::PathBuf;

use clap::Args;
use skiff_metastore::rpc::tls::{ClusterTls, ClusterTlsFiles};
use skiff_metastore::rpc::{ClusterAuth, ClusterSecret};

#[derive(Args, Clone, Debug, Default)]
pub struct ClusterAuthFlags {
    /// File holding the cluster's RPC credential (at least 16 printable characters), shared by
    /// its metastore nodes, agents, compactors and the CLI; a node then refuses callers without
    /// it (or a certificate from the cluster CA)
    #[arg(long, env = "SKIFF_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// PEM file with this process's private key and certificate chain, issued by the cluster CA
    /// for the serverAuth and clientAuth uses (and, on a node, for the names it is reached
    /// at): the metastore's RPC then runs over TLS, and a node admits callers that present one
    #[arg(long, env = "SKIFF_CLUSTER_TLS_CERT", requires = "cluster_tls_ca")]
    pub cluster_tls_cert: Option<PathBuf>,
    /// PEM file of the cluster CA that every node's and caller's certificate chains to
    #[arg(long, env = "SKIFF_CLUSTER_TLS_CA", requires = "cluster_tls_cert")]
    pub cluster_tls_ca: Option<PathBuf>,
}

impl ClusterAuthFlags {
    /// What the flags (or their `SKIFF_*` variables) name, read and checked.
    pub fn resolve(&self) -> anyhow::Result<ClusterAuth> {
        let secret = match &self.cluster_secret_file {
            None => None,
            Some(path) => Some(ClusterSecret::from_file(path).map_err(anyhow::Error::msg)?),
        };
        let tls = match (&self.cluster_tls_cert, &self.cluster_tls_ca) {
            (Some(cert), Some(ca)) => Some(
                ClusterTls::load(ClusterTlsFiles {
                    cert: cert.clone(),
                    ca: ca.clone(),
                })
                .map_err(anyhow::Error::msg)?,
            ),
            (None, None) => None,
            _ => anyhow::bail!("cluster-tls-cert and cluster-tls-ca go together"),
        };
        Ok(ClusterAuth { secret, tls })
    }

    /// For the CLI's admin commands, which take no flags for it: the `SKIFF_*` variables.
    pub fn from_env() -> anyhow::Result<ClusterAuth> {
        let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
        Self {
            cluster_secret_file: var("SKIFF_CLUSTER_SECRET_FILE"),
            cluster_tls_cert: var("SKIFF_CLUSTER_TLS_CERT"),
            cluster_tls_ca: var("SKIFF_CLUSTER_TLS_CA"),
        }
        .resolve()
    }
}
