//! What every handler shares: settings, the metastore client, the batcher, the reader, metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::{CreateTopic, MetaError, TopicMeta};

use crate::batcher::Batcher;
use crate::broker_config::{BrokerView, DynamicConfigs};
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::fetch::IndexCache;
use crate::fetch::Reader;
use crate::groups::Coordinator;
use crate::membership::Membership;
use crate::metrics::Metrics;
use crate::topics::TopicCache;

pub struct Agent {
    pub config: AgentConfig,
    pub metastore: Arc<dyn MetastoreClient>,
    pub batcher: Batcher,
    pub reader: Reader,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub membership: Arc<Membership>,
    pub topics: TopicCache,
    pub index_cache: IndexCache,
    pub groups: Arc<Coordinator>,
    /// The dynamic broker configs as last read from the metastore.
    pub broker_configs: Arc<DynamicConfigs>,
    /// The ACLs as last read from the metastore, and the rules they are checked by.
    pub acls: Arc<crate::acl::Authorizer>,
    /// The client quotas as last read from the metastore, and the rates measured against them.
    pub quotas: Arc<crate::quotas::Quotas>,
}

impl Agent {
    /// Whether `caller` may do `op` on the resource (see [`crate::acl`]).
    pub fn allowed(
        &self,
        caller: &crate::acl::Caller,
        op: crate::acl::Operation,
        resource_type: i8,
        name: &str,
    ) -> bool {
        self.acls.allowed(caller, op, resource_type, name)
    }

    /// The broker id clients know this agent by: the metastore's, once a heartbeat has been
    /// answered.
    pub fn broker_id(&self) -> i32 {
        self.membership
            .me()
            .map_or(self.config.node_id, |me| me.broker_id)
    }

    /// Whether this agent coordinates `group`: the live agent its id hashes to. Before the first
    /// heartbeat is answered there is no view of the others, and an agent serves its own.
    pub fn coordinates(&self, group: &str) -> bool {
        let view = self.membership.view();
        match crate::membership::coordinator_of(group, &view.agents) {
            Some(a) => self
                .membership
                .me()
                .is_some_and(|me| me.broker_id == a.broker_id),
            None => true,
        }
    }

    /// Every topic, from the agent's short-lived cache (see [`TopicCache`]).
    pub async fn all_topics(&self) -> Result<Arc<Vec<TopicMeta>>, MetastoreError> {
        self.topics.all(self.metastore.as_ref()).await
    }

    pub async fn topic_named(&self, name: &str) -> Result<Option<TopicMeta>, MetastoreError> {
        self.topics.by_name(self.metastore.as_ref(), name).await
    }

    pub async fn topic_with_id(
        &self,
        id: skiff_metastore::types::TopicId,
    ) -> Result<Option<TopicMeta>, MetastoreError> {
        self.topics.by_id(self.metastore.as_ref(), id).await
    }

    /// The topic named `name` with partitions up to `partition` (the largest a request names),
    /// looking past the cache when the cached topic has fewer: they may have just been created on
    /// another agent.
    pub async fn topic_named_covering(
        &self,
        name: &str,
        partition: i32,
    ) -> Result<Option<TopicMeta>, MetastoreError> {
        self.topics
            .by_name_covering(self.metastore.as_ref(), name, partition)
            .await
    }

    pub async fn topic_with_id_covering(
        &self,
        id: skiff_metastore::types::TopicId,
        partition: i32,
    ) -> Result<Option<TopicMeta>, MetastoreError> {
        self.topics
            .by_id_covering(self.metastore.as_ref(), id, partition)
            .await
    }

    /// CreatePartitions: grows the topic, and drops the cached list so this agent serves the new
    /// partitions at once (other agents look past their cache for a partition they do not know).
    pub async fn create_partitions(
        &self,
        req: skiff_metastore::types::CreatePartitions,
    ) -> Result<TopicMeta, MetastoreError> {
        let grown = self.metastore.create_partitions(req).await;
        self.topics.forget();
        grown
    }

    pub async fn delete_topic(&self, name: &str) -> Result<TopicMeta, MetastoreError> {
        let deleted = self.metastore.delete_topic(name, self.clock.now_ms()).await;
        self.topics.forget();
        deleted
    }

    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicMeta, MetastoreError> {
        let created = self
            .metastore
            .create_topic(CreateTopic {
                name: name.to_string(),
                topic_id: uuid::Uuid::new_v4(),
                partitions,
                configs,
                now_ms: self.clock.now_ms(),
            })
            .await;
        self.topics.forget();
        created
    }

    /// Looks a topic up, creating it with the default partition count when auto-creation is on
    /// and `allow_create` says the request permits it.
    pub async fn topic_or_create(
        &self,
        name: &str,
        allow_create: bool,
    ) -> Result<TopicMeta, MetastoreError> {
        if crate::topics::is_internal_topic(name) {
            return Err(MetaError::UnknownTopicOrPartition.into());
        }
        if let Some(topic) = self.topic_named(name).await? {
            return Ok(topic);
        }
        if !(allow_create && self.config.auto_create_topics) {
            return Err(MetaError::UnknownTopicOrPartition.into());
        }
        match self
            .create_topic(name, self.config.num_partitions, BTreeMap::new())
            .await
        {
            // Another client created it first.
            Err(MetastoreError::Rejected(MetaError::TopicAlreadyExists)) => self
                .topic_named(name)
                .await?
                .ok_or(MetaError::UnknownTopicOrPartition.into()),
            other => other,
        }
    }

    /// This agent's broker settings, with the dynamic configs in force now.
    pub fn broker_view(&self) -> BrokerView<'_> {
        BrokerView::new(self.broker_configs.get(), self.broker_id(), &self.config)
    }

    /// A topic config in force for `topic`: the topic's own, else the broker-wide default
    /// (dynamic, then this agent's setting), else Kafka's default. The one place topic configs
    /// fall back to the broker's, so every check that reads a topic config through it follows
    /// dynamic changes. `None` only for a name that is not a topic config.
    pub fn topic_config(&self, topic: &TopicMeta, name: &str) -> Option<String> {
        if let Some(v) = topic.configs.get(name) {
            return Some(v.clone());
        }
        self.broker_default(name)
            .or_else(|| crate::topic_config::default_of(name).map(str::to_owned))
    }

    /// The broker-wide default in force for the topic config `name` (dynamic, then this
    /// agent's setting), if the broker has one: what [`crate::topic_config::InForce`] falls
    /// back to before Kafka's default.
    pub fn broker_default(&self, name: &str) -> Option<String> {
        self.broker_view().topic_default(name).and_then(|d| d.value)
    }

    /// The largest batch a topic accepts: its `max.message.bytes` or the broker's
    /// `message.max.bytes`.
    pub fn max_message_bytes(&self, topic: &TopicMeta) -> usize {
        self.topic_config(topic, "max.message.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.config.max_message_bytes)
    }
}
