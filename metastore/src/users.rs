//! The security state: SCRAM credentials, ACL bindings and agents' listeners (snapshot version 9
//! on). Bounded by [`crate::limits::MAX_SCRAM_USERS`] and [`crate::limits::MAX_ACLS`]; what
//! each holds is checked on the way in, so a state can never hold more.

use std::collections::BTreeMap;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::StateMachine;
use crate::limits::{MAX_ACLS, MAX_SCRAM_SALT_BYTES, MAX_SCRAM_USERS, MAX_USER_NAME_BYTES};
use crate::security::{
    AclBinding, AclFilter, Acls, AdvertisedListener, AlterScramCredentials, ScramCredential,
    ScramMechanism, ScramUpsertion, ScramUser,
};
use crate::types::MetaError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Security {
    #[serde(deserialize_with = "crate::capped::map")]
    users: OrdMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    #[serde(deserialize_with = "crate::capped::map")]
    acls: OrdMap<AclBinding, ()>,
    /// Moves forward with every change of `acls`.
    acls_version: u64,
    /// Each agent's listeners by its address (as `agents` keys it).
    listeners: BTreeMap<String, Vec<AdvertisedListener>>,
}

impl StateMachine {
    /// AlterUserScramCredentials: each user's changes apply, or none of them do, with one answer
    /// per user in the order they first appear (deletions, then upsertions).
    pub(crate) fn alter_scram_credentials(
        &mut self,
        req: &AlterScramCredentials,
    ) -> Vec<(String, Result<(), MetaError>)> {
        // Each user's deletions and upsertions, in the order the users first appear: one pass,
        // so a request naming many users costs n log n, not n².
        let mut order: Vec<&str> = Vec::new();
        let mut changes: BTreeMap<&str, (Vec<ScramMechanism>, Vec<&ScramUpsertion>)> =
            BTreeMap::new();
        for d in &req.deletions {
            let entry = changes.entry(d.user.as_str()).or_insert_with(|| {
                order.push(d.user.as_str());
                Default::default()
            });
            entry.0.push(d.mechanism);
        }
        for u in &req.upsertions {
            let entry = changes.entry(u.user.as_str()).or_insert_with(|| {
                order.push(u.user.as_str());
                Default::default()
            });
            entry.1.push(u);
        }
        let users = &mut self.security.users;
        order
            .into_iter()
            .map(|user| {
                let (deletions, upsertions) = &changes[user];
                let mut creds = users.get(user).cloned().unwrap_or_default();
                let mut result = Ok(());
                for mechanism in deletions {
                    if creds.remove(mechanism).is_none() {
                        result = Err(MetaError::CredentialNotFound);
                    }
                }
                for u in upsertions {
                    if u.user.len() > MAX_USER_NAME_BYTES
                        || u.credential.salt.len() > MAX_SCRAM_SALT_BYTES
                        || u.credential.stored_key.len() > 64
                        || u.credential.server_key.len() > 64
                    {
                        result = Err(MetaError::SecurityOverLimit);
                    }
                    creds.insert(u.mechanism, u.credential.clone());
                }
                let new_user = !users.contains_key(user);
                if result.is_ok() && new_user && !creds.is_empty() && users.len() >= MAX_SCRAM_USERS
                {
                    result = Err(MetaError::SecurityOverLimit);
                }
                if result.is_ok() {
                    if creds.is_empty() {
                        users.remove(user);
                    } else {
                        users.insert(user.to_owned(), creds);
                    }
                }
                (user.to_owned(), result)
            })
            .collect()
    }

    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<ScramCredential> {
        self.security.users.get(user)?.get(&mechanism).cloned()
    }

    /// The users named (all of them for `None`), without their secrets. A named user with no
    /// credential is left out: the agent answers RESOURCE_NOT_FOUND for it.
    pub fn scram_users(&self, names: Option<&[String]>) -> Vec<ScramUser> {
        let describe =
            |(user, creds): (&String, &BTreeMap<ScramMechanism, ScramCredential>)| ScramUser {
                user: user.clone(),
                mechanisms: creds.iter().map(|(m, c)| (*m, c.iterations)).collect(),
            };
        match names {
            None => self.security.users.iter().map(describe).collect(),
            Some(names) => names
                .iter()
                .filter_map(|n| self.security.users.get_key_value(n))
                .map(describe)
                .collect(),
        }
    }

    /// Every ACL binding. (Agents keep them all and check requests against their copy.)
    pub fn acls(&self) -> Acls {
        Acls {
            version: self.security.acls_version,
            bindings: self.security.acls.keys().cloned().collect(),
        }
    }

    /// CreateAcls: each binding is added (one already there is no change), or refused past
    /// [`MAX_ACLS`] or with a principal or name over [`MAX_USER_NAME_BYTES`].
    pub(crate) fn create_acls(&mut self, bindings: &[AclBinding]) -> Vec<Result<(), MetaError>> {
        let answers: Vec<_> = bindings
            .iter()
            .map(|b| {
                if self.security.acls.contains_key(b) {
                    return Ok(());
                }
                if self.security.acls.len() >= MAX_ACLS
                    || b.principal.len() > MAX_USER_NAME_BYTES
                    || b.resource_name.len() > MAX_USER_NAME_BYTES
                    || b.host.len() > MAX_USER_NAME_BYTES
                {
                    return Err(MetaError::SecurityOverLimit);
                }
                self.security.acls.insert(b.clone(), ());
                Ok(())
            })
            .collect();
        self.security.acls_version += 1;
        answers
    }

    /// DeleteAcls: for each filter, the bindings it matched, which are gone.
    pub(crate) fn delete_acls(&mut self, filters: &[AclFilter]) -> Vec<Vec<AclBinding>> {
        let answers = filters
            .iter()
            .map(|f| {
                let matched: Vec<AclBinding> = self
                    .security
                    .acls
                    .keys()
                    .filter(|b| f.matches(b))
                    .cloned()
                    .collect();
                for b in &matched {
                    self.security.acls.remove(b);
                }
                matched
            })
            .collect();
        self.security.acls_version += 1;
        answers
    }

    pub fn agent_listeners(&self) -> &BTreeMap<String, Vec<AdvertisedListener>> {
        &self.security.listeners
    }
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
