//! What every handler shares: settings, the metastore client, the batcher, the reader, metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::{CreateTopic, MetaError, TopicMeta};

use crate::batcher::Batcher;
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::fetch::Reader;
use crate::membership::Membership;
use crate::metrics::Metrics;

pub struct Agent {
    pub config: AgentConfig,
    pub metastore: Arc<dyn MetastoreClient>,
    pub batcher: Batcher,
    pub reader: Reader,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub membership: Arc<Membership>,
}

impl Agent {
    /// The broker id clients know this agent by: the metastore's, once a heartbeat has been
    /// answered.
    pub fn broker_id(&self) -> i32 {
        self.membership
            .me()
            .map_or(self.config.node_id, |me| me.broker_id)
    }

    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicMeta, MetastoreError> {
        self.metastore
            .create_topic(CreateTopic {
                name: name.to_string(),
                topic_id: uuid::Uuid::new_v4(),
                partitions,
                configs,
                now_ms: self.clock.now_ms(),
            })
            .await
    }

    /// Looks a topic up, creating it with the default partition count when auto-creation is on
    /// and `allow_create` says the request permits it.
    pub async fn topic_or_create(
        &self,
        name: &str,
        allow_create: bool,
    ) -> Result<TopicMeta, MetastoreError> {
        if let Some(topic) = self.metastore.topic_by_name(name).await? {
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
                .metastore
                .topic_by_name(name)
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
