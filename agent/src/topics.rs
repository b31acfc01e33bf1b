//! The agent's view of the topics: the metastore's list, kept for a short while.
//!
//! Produce routes every request through a topic lookup on the connection's reading task, and
//! librdkafka sends one request per partition; against a quorum each uncached lookup is an HTTP
//! round trip to the leader plus a read-index check. So lookups are answered from a list fetched
//! at most once per `ttl`, and a name or id the list does not know refreshes it at once, so a topic
//! created anywhere is seen immediately; so does a partition past a known topic's cached count,
//! so that partitions that CreatePartitions added on another agent are served at once (the
//! `*_covering` lookups). Staleness is safe: a batch for a topic deleted meanwhile
//! is refused by the metastore when its object is committed, and a fetch of it by the index read.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::{TopicId, TopicMeta};
use tokio::time::Instant;

pub struct TopicCache {
    ttl: Duration,
    /// The list and when it was fetched. Never held across an await.
    list: RwLock<Option<(Instant, Arc<Vec<TopicMeta>>)>>,
    /// One refresh at a time: a burst of misses waits for one fetch instead of sending many.
    refreshing: tokio::sync::Mutex<()>,
}

impl TopicCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            list: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, max_age: Duration) -> Option<Arc<Vec<TopicMeta>>> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        match &*list {
            Some((at, topics)) if at.elapsed() <= max_age => Some(topics.clone()),
            _ => None,
        }
    }

    /// Fetches the list unless another caller fetched it after `since`.
    async fn refresh(
        &self,
        metastore: &dyn MetastoreClient,
        since: Instant,
    ) -> Result<Arc<Vec<TopicMeta>>, MetastoreError> {
        let _one = self.refreshing.lock().await;
        if let Some(fresh) = self.cached(since.elapsed()) {
            return Ok(fresh);
        }
        let topics = Arc::new(metastore.topics().await?);
        *self.list.write().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), topics.clone()));
        Ok(topics)
    }

    /// Every topic, at most `ttl` old.
    pub async fn all(
        &self,
        metastore: &dyn MetastoreClient,
    ) -> Result<Arc<Vec<TopicMeta>>, MetastoreError> {
        match self.cached(self.ttl) {
            Some(topics) => Ok(topics),
            None => self.refresh(metastore, Instant::now()).await,
        }
    }

    /// The topic `pick` finds, from the cached list or, when it is not there, a fresh one.
    async fn find(
        &self,
        metastore: &dyn MetastoreClient,
        pick: impl Fn(&TopicMeta) -> bool,
    ) -> Result<Option<TopicMeta>, MetastoreError> {
        let asked = Instant::now();
        if let Some(t) = self.all(metastore).await?.iter().find(|t| pick(t)) {
            return Ok(Some(t.clone()));
        }
        Ok(self
            .refresh(metastore, asked)
            .await?
            .iter()
            .find(|t| pick(t))
            .cloned())
    }

    pub async fn by_name(
        &self,
        metastore: &dyn MetastoreClient,
        name: &str,
    ) -> Result<Option<TopicMeta>, MetastoreError> {
        self.find(metastore, |t| t.name == name).await
    }

    pub async fn by_id(
        &self,
        metastore: &dyn MetastoreClient,
        id: TopicId,
    ) -> Result<Option<TopicMeta>, MetastoreError> {
        self.find(metastore, |t| t.topic_id == id).await
    }

    /// The topic named `name`, refreshed when the cached one has no partition `partition` (it
    /// may have grown elsewhere). The topic as it stands when even the fresh list lacks it.
    pub async fn by_name_covering(
        &self,
        metastore: &dyn MetastoreClient,
        name: &str,
        partition: i32,
    ) -> Result<Option<TopicMeta>, MetastoreError> {
        let covers = |t: &TopicMeta| t.name == name && partition < t.partitions;
        match self.find(metastore, covers).await? {
            Some(t) => Ok(Some(t)),
            None => self.by_name(metastore, name).await,
        }
    }

    /// [`TopicCache::by_name_covering`] by topic id.
    pub async fn by_id_covering(
        &self,
        metastore: &dyn MetastoreClient,
        id: TopicId,
        partition: i32,
    ) -> Result<Option<TopicMeta>, MetastoreError> {
        let covers = |t: &TopicMeta| t.topic_id == id && partition < t.partitions;
        match self.find(metastore, covers).await? {
            Some(t) => Ok(Some(t)),
            None => self.by_id(metastore, id).await,
        }
    }

    /// After this agent created or deleted a topic: the next lookup fetches the list.
    pub fn forget(&self) {
        *self.list.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Kafka's internal topics. What they hold (group offsets, transaction state, the cluster's
/// metadata) Skiff keeps in the metastore, so no log of these names exists or may be created.
pub const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__cluster_metadata",
];

pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_metastore::types::CreateTopic;
    use skiff_metastore::LocalMetastore;
    use std::collections::BTreeMap;

    fn create(name: &str, id: u128) -> CreateTopic {
        CreateTopic {
            name: name.into(),
            topic_id: TopicId::from_u128(id),
            partitions: 1,
            configs: BTreeMap::new(),
            now_ms: 0,
        }
    }

    #[tokio::test]
    async fn a_topic_created_elsewhere_is_found_at_once_and_lists_are_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ms = LocalMetastore::open(dir.path()).await.expect("metastore");
        let cache = TopicCache::new(Duration::from_secs(3600));
        ms.create_topic(create("a", 1)).await.expect("a");
        let first = cache.all(&ms).await.expect("list");
        assert_eq!(first.len(), 1);
        // Created behind the cache's back: a lookup by name or id still finds it.
        ms.create_topic(create("b", 2)).await.expect("b");
        assert!(cache.by_name(&ms, "b").await.expect("b").is_some());
        assert!(cache
            .by_id(&ms, TopicId::from_u128(2))
            .await
            .expect("b")
            .is_some());
        // The refreshed list is the one served now, without another fetch.
        let again = cache.all(&ms).await.expect("list");
        assert_eq!(again.len(), 2);
        assert!(Arc::ptr_eq(&again, &cache.all(&ms).await.expect("list")));
        assert!(cache.by_name(&ms, "nope").await.expect("lookup").is_none());
        ms.shutdown().await;
    }

    #[tokio::test]
    async fn a_partition_added_elsewhere_is_found_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ms = LocalMetastore::open(dir.path()).await.expect("metastore");
        let cache = TopicCache::new(Duration::from_secs(3600));
        let meta = ms.create_topic(create("a", 1)).await.expect("a");
        assert_eq!(cache.all(&ms).await.expect("list")[0].partitions, 1);
        ms.create_partitions(skiff_metastore::types::CreatePartitions {
            name: "a".into(),
            topic_id: meta.topic_id,
            count: 3,
        })
        .await
        .expect("grow");
        // The cached topic has one partition: a plain lookup serves it as it was...
        let cached = cache.by_name(&ms, "a").await.expect("a").expect("known");
        assert_eq!(cached.partitions, 1);
        // ...while a lookup of partition 2 refreshes and finds it, by name and by id.
        let fresh = cache.by_name_covering(&ms, "a", 2).await.expect("a");
        assert_eq!(fresh.map(|t| t.partitions), Some(3));
        let by_id = cache
            .by_id_covering(&ms, meta.topic_id, 2)
            .await
            .expect("a");
        assert_eq!(by_id.map(|t| t.partitions), Some(3));
        // Past even the fresh count: the topic as it stands, for the caller to refuse.
        let past = cache.by_name_covering(&ms, "a", 3).await.expect("a");
        assert_eq!(past.map(|t| t.partitions), Some(3));
        assert!(cache
            .by_name_covering(&ms, "nope", 0)
            .await
            .expect("lookup")
            .is_none());
        ms.shutdown().await;
    }
}
