//! An agent over a local metastore and an in-memory object store, for unit tests.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use object_store::ObjectStore;
use skiff_metastore::local::LocalMetastore;

use crate::batcher::Batcher;
use crate::clock::{Clock, SystemClock};
use crate::config::AgentConfig;
use crate::context::Agent;
use crate::fetch::Reader;
use crate::metrics::Metrics;

pub struct TestAgent {
    pub agent: Arc<Agent>,
    pub store: Arc<dyn ObjectStore>,
    _dir: tempfile::TempDir,
}

pub async fn agent(config: AgentConfig) -> TestAgent {
    agent_with_clock(config, Arc::new(SystemClock)).await
}

/// [`agent`], with the agent's clock (append times, commit times) in the test's hands.
pub async fn agent_with_clock(config: AgentConfig, clock: Arc<dyn Clock>) -> TestAgent {
    let dir = tempfile::tempdir().expect("tempdir");
    let metastore = Arc::new(LocalMetastore::open(dir.path()).await.expect("metastore"));
    let metrics = Metrics::new();
    let store = crate::storage::open(
        &crate::storage::StoreSettings::new("memory://"),
        metrics.clone(),
    )
    .await
    .expect("store");
    let (batcher, _task) = Batcher::spawn(
        &config,
        store.clone(),
        metastore.clone(),
        metrics.clone(),
        clock.clone(),
    );
    let membership = crate::membership::Membership::new(
        config.advertised_host.clone(),
        config.advertised_port,
        config.session_timeout,
    );
    let agent = Arc::new(Agent {
        topics: crate::topics::TopicCache::new(std::time::Duration::from_secs(1)),
        groups: crate::groups::Coordinator::new(
            config.group_limits(),
            config.consumer_group_limits(),
        ),
        index_cache: crate::fetch::IndexCache::new(
            config.index_cache_batches,
            config.index_cache_ttl,
        ),
        membership,
        config,
        metastore,
        batcher,
        reader: Reader::new(store.clone()),
        metrics,
        clock,
    });
    TestAgent {
        agent,
        store,
        _dir: dir,
    }
}

/// A request as a client sends it: size, header, body.
pub fn request<R: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    let mut out = BytesMut::new();
    out.put_i32(0);
    header
        .encode(&mut out, api.request_header_version(version))
        .expect("header");
    body.encode(&mut out, version).expect("body");
    let size = i32::try_from(out.len() - 4).expect("size");
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}
