//! The authorizer: Kafka's `AclAuthorizer` rules over the ACL bindings in the metastore, as this
//! agent last read them.
//!
//! A request is allowed when its principal is a super user; otherwise a DENY binding that
//! matches (principal or `User:*`, host or `*`, the operation or `ALL`) refuses it; otherwise an
//! ALLOW binding that matches allows it, where READ, WRITE, DELETE and ALTER imply DESCRIBE and
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS; a resource no binding names at all is allowed only
//! with `allow.everyone.if.no.acl.found`. Bindings name a resource literally (or `*`) or by
//! prefix.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::security::codes::{ALL, ALLOW, DENY, LITERAL, PREFIXED};
use skiff_metastore::security::{AclBinding, Acls};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use crate::authz::Operation;

/// Kafka's `ResourceType` codes.
pub mod resource {
    pub use skiff_metastore::security::codes::{CLUSTER, GROUP, TOPIC, TRANSACTIONAL_ID};
    /// The one cluster resource's name.
    pub const CLUSTER_NAME: &str = "kafka-cluster";
}

/// Who sends a request: its principal and the address it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub principal: String,
    pub host: String,
}

#[derive(Clone, Debug, Default)]
pub struct AuthorizerConfig {
    /// Kafka's `super.users`: principals every check allows.
    pub super_users: Vec<String>,
    /// Kafka's `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// The bindings, indexed by resource for the checks.
#[derive(Default)]
struct Index {
    version: u64,
    count: usize,
    literal: HashMap<(i8, String), Vec<AclBinding>>,
    prefixed: HashMap<(i8, String), Vec<AclBinding>>,
}

impl Index {
    fn new(acls: Acls) -> Self {
        let mut index = Self {
            version: acls.version,
            count: acls.bindings.len(),
            ..Default::default()
        };
        for b in acls.bindings {
            let key = (b.resource_type, b.resource_name.clone());
            match b.pattern_type {
                LITERAL => index.literal.entry(key).or_default().push(b),
                PREFIXED => index.prefixed.entry(key).or_default().push(b),
                _ => {}
            }
        }
        index
    }

    /// Every binding that applies to the resource, whoever and whatever it names.
    fn applying<'a>(&'a self, resource_type: i8, name: &str) -> Vec<&'a AclBinding> {
        let mut out = Vec::new();
        for key in [name, "*"] {
            if let Some(list) = self.literal.get(&(resource_type, key.to_owned())) {
                out.extend(list);
            }
        }
        if !self.prefixed.is_empty() {
            for (i, _) in name.char_indices().skip(1).chain([(name.len(), ' ')]) {
                if let Some(list) = self.prefixed.get(&(resource_type, name[..i].to_owned())) {
                    out.extend(list);
                }
            }
        }
        out
    }
}

pub struct Authorizer {
    config: AuthorizerConfig,
    current: RwLock<Arc<Index>>,
}

impl Authorizer {
    pub fn new(config: AuthorizerConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            current: RwLock::new(Arc::new(Index::default())),
        })
    }

    /// Whether `caller` may do `op` on some resource of the type (Kafka's
    /// `authorizeByResourceType`, which an idempotent producer's InitProducerId is checked by):
    /// an ALLOW binding for it on any resource of the type, unless a DENY on all of them (`*`)
    /// refuses it; with no binding of the type at all, `allow.everyone.if.no.acl.found`.
    pub fn allowed_on_any(&self, caller: &Caller, op: Operation, resource_type: i8) -> bool {
        if self.config.super_users.contains(&caller.principal) {
            return true;
        }
        let index = self.index();
        let of_type: Vec<&AclBinding> = index
            .literal
            .iter()
            .chain(index.prefixed.iter())
            .filter(|((t, _), _)| *t == resource_type)
            .flat_map(|(_, list)| list)
            .collect();
        if of_type.is_empty() {
            return self.config.allow_if_no_acl;
        }
        // A DENY refuses every resource of the type only if it names them all.
        decide(of_type, caller, op, |b| {
            b.pattern_type == LITERAL && b.resource_name == "*"
        })
    }

    /// The bindings as last read.
    fn index(&self) -> Arc<Index> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn allowed(&self, caller: &Caller, op: Operation, resource_type: i8, name: &str) -> bool {
        if self.config.super_users.contains(&caller.principal) {
            return true;
        }
        let index = self.index();
        let applying = index.applying(resource_type, name);
        if applying.is_empty() {
            return self.config.allow_if_no_acl;
        }
        decide(applying, caller, op, |_| true)
    }

    /// Takes `acls` unless what is here is as new.
    pub fn set(&self, acls: Acls) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if acls.version > current.version || (current.version == 0 && current.count == 0) {
            if acls.version != current.version {
                info!(
                    bindings = acls.bindings.len(),
                    version = acls.version,
                    "ACLs changed"
                );
            }
            *current = Arc::new(Index::new(acls));
        }
    }

    pub async fn refresh(&self, metastore: &dyn MetastoreClient) -> Result<(), MetastoreError> {
        self.set(metastore.acls().await?);
        Ok(())
    }

    /// Reads the ACLs every `every` until `shutdown`; a failed read keeps the last ones.
    pub fn spawn(
        self: Arc<Self>,
        metastore: Arc<dyn MetastoreClient>,
        every: Duration,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        crate::refresh::every("ACLs", every, shutdown, move || {
            let this = self.clone();
            let metastore = metastore.clone();
            async move { this.refresh(metastore.as_ref()).await }
        })
    }
}

/// The AclAuthorizer's verdict over `bindings` for `caller` and `op`: a matching DENY for
/// which `deny_counts` holds refuses, else a matching ALLOW (or one that implies `op`) allows.
fn decide(
    bindings: Vec<&AclBinding>,
    caller: &Caller,
    op: Operation,
    deny_counts: impl Fn(&AclBinding) -> bool,
) -> bool {
    let op = op as i8;
    let mine = bindings.into_iter().filter(|b| {
        (b.principal == caller.principal || b.principal == "User:*")
            && (b.host == caller.host || b.host == "*")
    });
    let mut allowed = false;
    for b in mine {
        let exact = b.operation == op || b.operation == ALL;
        if b.permission_type == DENY && exact && deny_counts(b) {
            return false;
        }
        if b.permission_type == ALLOW && (exact || implies(b.operation, op)) {
            allowed = true;
        }
    }
    allowed
}

/// Kafka's implied operations: READ, WRITE, DELETE and ALTER allow DESCRIBE; ALTER_CONFIGS allows
/// DESCRIBE_CONFIGS.
fn implies(granted: i8, asked: i8) -> bool {
    use Operation::*;
    (asked == Describe as i8
        && [Read, Write, Delete, Alter]
            .iter()
            .any(|o| *o as i8 == granted))
        || (asked == DescribeConfigs as i8 && granted == AlterConfigs as i8)
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
