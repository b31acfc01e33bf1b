//! An agent over a local metastore and an in-memory object store, for unit tests.

use std::sync::{Arc, Mutex};

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use object_store::ObjectStore;
use skiff_metastore::client::{MetastoreClient, Transport};
use skiff_metastore::local::LocalMetastore;
use skiff_metastore::rpc::{Read, ReadAnswer};
use skiff_metastore::types::{Command, CommandResponse, ObjectId};
use skiff_store::{CountingStore, Op, StoreObserver};

use crate::batcher::Batcher;
use crate::clock::{Clock, SystemClock};
use crate::config::AgentConfig;
use crate::context::Agent;
use crate::fetch::Reader;
use crate::metrics::Metrics;
use crate::storage::object_path;

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
    build(config, clock, metastore, dir).await
}

/// [`agent`], over a metastore whose writes each wait a random moment first, as writes over a
/// network do: writes sent concurrently then land in any order.
pub async fn agent_with_jittered_writes(config: AgentConfig) -> TestAgent {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = LocalMetastore::open(dir.path()).await.expect("metastore");
    let metastore = Arc::new(Jittered(local));
    build(config, Arc::new(SystemClock), metastore, dir).await
}

struct Jittered<T>(T);

#[async_trait::async_trait]
impl<T: Transport> Transport for Jittered<T> {
    async fn write(&self, cmd: Command) -> skiff_metastore::client::Result<CommandResponse> {
        let wait = std::time::Duration::from_micros(fastrand::u64(0..2_000));
        tokio::time::sleep(wait).await;
        self.0.write(cmd).await
    }

    async fn read(&self, read: Read) -> skiff_metastore::client::Result<ReadAnswer> {
        self.0.read(read).await
    }

    fn commit_counter(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.commit_counter()
    }
}

async fn build(
    config: AgentConfig,
    clock: Arc<dyn Clock>,
    metastore: Arc<dyn MetastoreClient>,
    dir: tempfile::TempDir,
) -> TestAgent {
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
        broker_configs: crate::broker_config::DynamicConfigs::new(),
        acls: crate::acl::Authorizer::new(crate::acl::AuthorizerConfig {
            super_users: Vec::new(),
            allow_if_no_acl: true,
        }),
        quotas: Arc::new(crate::quotas::Quotas::new(Default::default())),
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

/// A batch of `records` records of `value_len` bytes each, with `base_offset` in its header and
/// the timestamps `timestamp(r)` for record `r`.
pub fn batch(
    base_offset: i64,
    records: i32,
    value_len: usize,
    timestamp: impl Fn(i32) -> i64,
) -> bytes::Bytes {
    let value = vec![b'v'; value_len];
    let mut b = skiff_format::encode::BatchBuilder::new(timestamp(0)).base_offset(base_offset);
    for r in 0..records {
        b = b.record(timestamp(r), Some(b"k"), Some(&value));
    }
    b.build()
}

/// A compactor's segment of `batches` (their real base offsets in their headers): the batches
/// back to back, and the encoded index that follows them in the object.
pub fn segment(batches: &[bytes::Bytes]) -> (Vec<u8>, bytes::Bytes) {
    let mut run = Vec::new();
    let mut index = skiff_format::run::SegmentIndex::default();
    for b in batches {
        let header = skiff_format::batch::BatchHeader::parse(b).expect("header");
        let position = u32::try_from(run.len()).expect("position");
        index.push(header.base_offset, position, header.max_timestamp);
        run.extend_from_slice(b);
    }
    (run, index.encode())
}

/// The index entry of a run of `batches` laid out at `position`, with the offsets and
/// timestamps its batches' headers give it (for a flushed run, the first batch's base offset is
/// `base_offset` and the others follow).
pub fn location(
    object: skiff_metastore::types::ObjectId,
    position: u64,
    batches: &[bytes::Bytes],
    layout: skiff_metastore::types::RunLayout,
    base_offset: i64,
) -> skiff_metastore::types::BatchLocation {
    let headers: Vec<_> = batches
        .iter()
        .map(|b| skiff_format::batch::BatchHeader::parse(b).expect("header"))
        .collect();
    let last_offset = match layout {
        skiff_metastore::types::RunLayout::Flushed => {
            let count: i64 = headers
                .iter()
                .map(|h| i64::from(h.last_offset_delta) + 1)
                .sum();
            base_offset + count - 1
        }
        skiff_metastore::types::RunLayout::Segment { .. }
        | skiff_metastore::types::RunLayout::Marker { .. } => {
            headers.last().map(|h| h.last_offset()).expect("a batch")
        }
    };
    skiff_metastore::types::BatchLocation {
        base_offset,
        last_offset,
        object,
        position,
        len: u32::try_from(batches.iter().map(|b| b.len()).sum::<usize>()).expect("len"),
        first_timestamp: headers.first().map(|h| h.base_timestamp).expect("a batch"),
        max_timestamp: headers
            .iter()
            .map(|h| h.max_timestamp)
            .max()
            .expect("a batch"),
        layout,
    }
}

/// Writes `batches` back to back into a new object and commits them to `tp`, as a flush does:
/// the metastore makes one run of them. Their header timestamps are believed.
pub async fn commit_run(
    t: &TestAgent,
    tp: skiff_metastore::types::TopicPartition,
    batches: &[bytes::Bytes],
) -> skiff_metastore::types::ObjectId {
    let object = skiff_metastore::types::ObjectId(ulid::Ulid::new());
    let mut bytes = Vec::new();
    let mut commits = Vec::new();
    for b in batches {
        let header = skiff_format::batch::BatchHeader::parse(b).expect("header");
        commits.push(skiff_metastore::types::CommitBatch {
            tp,
            position: bytes.len() as u64,
            len: u32::try_from(b.len()).expect("len"),
            last_offset_delta: header.last_offset_delta,
            record_count: header.record_count,
            first_timestamp: header.base_timestamp,
            max_timestamp: header.max_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
        });
        bytes.extend_from_slice(b);
    }
    let size = bytes.len() as u64;
    t.store
        .put(&crate::storage::object_path(object), bytes.into())
        .await
        .expect("put");
    let answers = t
        .agent
        .metastore
        .commit_object(skiff_metastore::types::CommitObject {
            object,
            size,
            batches: commits,
            now_ms: 0,
        })
        .await
        .expect("commit");
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    object
}

/// Replaces the runs of `tp` based at `replaced` with one segment of `batches` (their real base
/// offsets in their headers), as the compactor does, and returns its entry.
pub async fn replace_with_segment(
    t: &TestAgent,
    tp: skiff_metastore::types::TopicPartition,
    replaced: Vec<(i64, skiff_metastore::types::ObjectId)>,
    batches: &[bytes::Bytes],
) -> skiff_metastore::types::BatchLocation {
    let object = skiff_metastore::types::ObjectId(ulid::Ulid::new());
    let (mut bytes, index) = segment(batches);
    let first = skiff_format::batch::BatchHeader::parse(&batches[0]).expect("header");
    let run = location(
        object,
        0,
        batches,
        skiff_metastore::types::RunLayout::Segment {
            index_len: u32::try_from(index.len()).expect("index"),
        },
        first.base_offset,
    );
    bytes.extend_from_slice(&index);
    let size = bytes.len() as u64;
    t.store
        .put(&crate::storage::object_path(object), bytes.into())
        .await
        .expect("put");
    t.agent
        .metastore
        .replace_batches(skiff_metastore::types::ReplaceBatches {
            tp,
            object,
            size,
            replaced,
            batches: vec![run],
            now_ms: 0,
        })
        .await
        .expect("replace");
    run
}

/// An object id for tests.
pub fn oid(n: u128) -> ObjectId {
    ObjectId(ulid::Ulid::from_parts(1, n))
}

/// The byte counts of the ranged GETs that reached the store.
#[derive(Default)]
pub struct Gets(Mutex<Vec<u64>>);

impl StoreObserver for Gets {
    fn request(&self, op: Op, bytes: u64) {
        if op == Op::RangedGet {
            self.0.lock().expect("not poisoned").push(bytes);
        }
    }
}

impl Gets {
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }

    pub fn count(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

pub async fn store_with(objects: &[(ObjectId, Vec<u8>)]) -> (Arc<dyn ObjectStore>, Arc<Gets>) {
    let memory: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    for (id, bytes) in objects {
        memory
            .put(&object_path(*id), bytes.clone().into())
            .await
            .expect("an in-memory PUT");
    }
    let gets = Arc::new(Gets::default());
    let store: Arc<dyn ObjectStore> = Arc::new(CountingStore::new(memory, gets.clone()));
    (store, gets)
}

/// The caller of a plaintext connection from loopback.
pub fn anonymous() -> crate::acl::Caller {
    crate::acl::Caller {
        principal: crate::session::ANONYMOUS.to_owned(),
        host: "127.0.0.1".to_owned(),
    }
}
