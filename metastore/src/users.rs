//! The security state: SCRAM credentials, ACL bindings and agents' listeners (snapshot version 9
//! on), client quotas (snapshot version 10 on). Bounded by [`crate::limits::MAX_SCRAM_USERS`],
//! [`crate::limits::MAX_ACLS`] and [`crate::limits::MAX_QUOTA_ENTITIES`], and the listeners by
//! the agents' addresses (an address's go when it is forgotten); what each holds is checked on
//! the way in, so a state can never hold more.

use std::collections::BTreeMap;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::StateMachine;
use crate::limits::{
    MAX_ACLS, MAX_AGENT_LISTENERS, MAX_LISTENER_HOST_BYTES, MAX_LISTENER_NAME_BYTES,
    MAX_QUOTA_ENTITIES, MAX_QUOTA_KEYS, MAX_QUOTA_KEY_BYTES, MAX_SCRAM_SALT_BYTES, MAX_SCRAM_USERS,
    MAX_USER_NAME_BYTES,
};
use crate::security::{
    AclBinding, AclFilter, Acls, AdvertisedListener, AlterScramCredentials, ClientQuotas,
    QuotaAlteration, QuotaEntity, QuotaName, QuotaValue, ScramCredential, ScramMechanism,
    ScramUpsertion, ScramUser,
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
    /// Client quotas by entity (snapshot version 10 on); an entity with no key is not kept.
    #[serde(deserialize_with = "crate::capped::map")]
    quotas: OrdMap<QuotaEntity, BTreeMap<String, QuotaValue>>,
    /// Moves forward with every change of `quotas`.
    quotas_version: u64,
}

impl Security {
    /// The security state as snapshot version 9 held it, with no quotas.
    pub(crate) fn from_v9(
        users: OrdMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
        acls: OrdMap<AclBinding, ()>,
        acls_version: u64,
        listeners: BTreeMap<String, Vec<AdvertisedListener>>,
    ) -> Self {
        Self {
            users,
            acls,
            acls_version,
            listeners,
            quotas: OrdMap::new(),
            quotas_version: 0,
        }
    }
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

    /// AlterClientQuotas: one answer per alteration, each applied on its own (removals, then
    /// sets) or refused whole: an entity with neither user nor client id
    /// ([`MetaError::InvalidRequest`]), or a result past [`MAX_QUOTA_ENTITIES`],
    /// [`MAX_QUOTA_KEYS`], [`MAX_QUOTA_KEY_BYTES`] or a name over [`MAX_USER_NAME_BYTES`]
    /// ([`MetaError::SecurityOverLimit`]). The version moves forward once if anything changed.
    pub(crate) fn alter_client_quotas(
        &mut self,
        alterations: &[QuotaAlteration],
    ) -> Vec<Result<(), MetaError>> {
        let mut changed = false;
        let answers = alterations
            .iter()
            .map(|a| {
                let answer = self.alter_client_quota(a);
                changed |= answer == Ok(true);
                answer.map(|_| ())
            })
            .collect();
        if changed {
            self.security.quotas_version += 1;
        }
        answers
    }

    /// One alteration: whether it changed anything.
    fn alter_client_quota(&mut self, a: &QuotaAlteration) -> Result<bool, MetaError> {
        let entity = &a.entity;
        if entity.user.is_none() && entity.client_id.is_none() {
            return Err(MetaError::InvalidRequest);
        }
        let too_long = |n: &Option<QuotaName>| match n {
            Some(QuotaName::Named(name)) => name.len() > MAX_USER_NAME_BYTES,
            Some(QuotaName::Default) | None => false,
        };
        // Removed keys are not kept, so only the keys set are bounded.
        if too_long(&entity.user)
            || too_long(&entity.client_id)
            || a.set.iter().any(|(k, _)| k.len() > MAX_QUOTA_KEY_BYTES)
        {
            return Err(MetaError::SecurityOverLimit);
        }
        let quotas = &mut self.security.quotas;
        let before = quotas.get(entity);
        let mut after = before.cloned().unwrap_or_default();
        for key in &a.remove {
            after.remove(key);
        }
        for (key, value) in &a.set {
            after.insert(key.clone(), *value);
        }
        if after.len() > MAX_QUOTA_KEYS
            || (before.is_none() && !after.is_empty() && quotas.len() >= MAX_QUOTA_ENTITIES)
        {
            return Err(MetaError::SecurityOverLimit);
        }
        if before.map_or(after.is_empty(), |b| *b == after) {
            return Ok(false);
        }
        if after.is_empty() {
            quotas.remove(entity);
        } else {
            quotas.insert(entity.clone(), after);
        }
        Ok(true)
    }

    /// Every entity's quotas. (Agents keep them all and meter requests against their copy.)
    pub fn client_quotas(&self) -> ClientQuotas {
        ClientQuotas {
            version: self.security.quotas_version,
            entries: self
                .security
                .quotas
                .iter()
                .map(|(e, keys)| {
                    (
                        e.clone(),
                        keys.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    )
                })
                .collect(),
        }
    }

    /// SetAgentListeners: the agent's listeners become `listeners`. Only an agent in `agents`
    /// may set any, and they go when the expiry pass forgets its address, as its broker id does
    /// (not when its session lapses: an agent that comes back under its old id keeps them). So
    /// the map never holds more addresses than the state keeps broker ids for.
    pub(crate) fn set_agent_listeners(
        &mut self,
        agent: &str,
        listeners: &[AdvertisedListener],
    ) -> Result<(), MetaError> {
        if !self.agents.contains_key(agent) {
            return Err(MetaError::UnknownAgent);
        }
        if listeners.len() > MAX_AGENT_LISTENERS
            || listeners.iter().any(|l| {
                l.name.len() > MAX_LISTENER_NAME_BYTES || l.host.len() > MAX_LISTENER_HOST_BYTES
            })
        {
            return Err(MetaError::SecurityOverLimit);
        }
        // No listeners is no entry: the map holds only agents that advertise something.
        if listeners.is_empty() {
            self.security.listeners.remove(agent);
        } else {
            self.security
                .listeners
                .insert(agent.to_owned(), listeners.to_vec());
        }
        Ok(())
    }

    /// Forgets an address's listeners, with the address (expiry).
    pub(super) fn forget_agent_listeners(&mut self, agent: &str) {
        self.security.listeners.remove(agent);
    }

    pub fn agent_listeners(&self) -> &BTreeMap<String, Vec<AdvertisedListener>> {
        &self.security.listeners
    }
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
