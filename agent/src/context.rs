//! What every handler shares: settings, the metastore client, the batcher, the reader, metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::{CreateTopic, MetaError, TopicMeta};

use crate::batcher::Batcher;
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
}

impl Agent {
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

    /// The largest batch a topic accepts: its `max.message.bytes` or the agent's default.
    pub fn max_message_bytes(&self, topic: &TopicMeta) -> usize {
        topic
            .configs
            .get("max.message.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.config.max_message_bytes)
    }
}
