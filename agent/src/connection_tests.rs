use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bytes::Buf;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, FetchRequest, GroupId, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, OffsetCommitRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use skiff_format::encode::BatchBuilder;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use super::*;
use crate::test_support::{self, request};

const TOPIC: &str = "idle";
const HOUR_MS: i32 = 3_600_000;

/// Serves the first connection made to the returned address.
async fn serve_one(agent: Arc<Agent>) -> (std::net::SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let memory = Arc::new(Semaphore::new(1 << 20));
        serve(
            agent,
            stream,
            Origin::plaintext(),
            memory,
            CancellationToken::new(),
        )
        .await;
    });
    (addr, server)
}

async fn agent_with_topic(config: AgentConfig) -> test_support::TestAgent {
    let t = test_support::agent(config).await;
    t.agent
        .create_topic(TOPIC, 1, BTreeMap::new())
        .await
        .expect("topic");
    t
}

/// A fetch of the empty topic that waits up to `max_wait_ms` for a record.
fn fetch(correlation_id: i32, max_wait_ms: i32) -> Vec<u8> {
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_partition_max_bytes(1 << 20);
    let topic = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![partition]);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![topic]);
    request(ApiKey::Fetch, 4, correlation_id, &req)
}

fn produce(correlation_id: i32) -> Vec<u8> {
    let records = BatchBuilder::new(1_000)
        .record(1_000, None, Some(b"v"))
        .build();
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(records));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partition_data(vec![partition]);
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]);
    request(ApiKey::Produce, 3, correlation_id, &req)
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the peer closes `client` within `wait`.
async fn closed_within(client: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait, client.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

fn with_timeout<F: Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(10), f)
}

#[tokio::test]
async fn fetches_go_one_at_a_time_and_produce_requests_get_past_them() {
    let config = AgentConfig {
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let t = agent_with_topic(config).await;
    let (addr, _server) = serve_one(t.agent.clone()).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    // A long poll, then produce requests, then more long polls, and never a read.
    let mut wire = fetch(0, HOUR_MS);
    for i in 0..100 {
        wire.extend(produce(1000 + i));
    }
    for i in 0..100 {
        wire.extend(fetch(2000 + i, HOUR_MS));
    }
    client.write_all(&wire).await.expect("send");

    let metrics = &t.agent.metrics;
    // Produce requests get past the long poll...
    eventually("all produce requests read", || {
        metrics.produce_requests.get() == 100
    })
    .await;
    // ...but no second fetch is started before the first is answered: a connection holds one
    // fetch answer at a time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(metrics.fetch_requests.get(), 1);
}

#[tokio::test]
async fn when_the_writer_gives_up_the_requests_queued_behind_it_stop() {
    let t = agent_with_topic(AgentConfig::default()).await;
    let (addr, server) = serve_one(t.agent.clone()).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut wire = request(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default());
    wire.extend(fetch(2, 300));
    wire.extend(fetch(3, HOUR_MS));
    client.write_all(&wire).await.expect("send");
    // The second waits for the first's answer to be written (one fetch at a time).
    eventually("the first fetch started", || {
        t.agent.metrics.fetch_requests.get() >= 1
    })
    .await;
    // Reset the connection, so that the short fetch's answer cannot be written.
    client.set_zero_linger().expect("linger");
    drop(client);

    with_timeout(server)
        .await
        .expect("the connection ends")
        .expect("serve");
    // Every task that held the agent has stopped: the hour-long poll too.
    assert_eq!(Arc::strong_count(&t.agent), 1);
}

fn offset_commit(correlation_id: i32, group: &str, offset: i64) -> Vec<u8> {
    let partition = OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(offset);
    let topic = OffsetCommitRequestTopic::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![partition]);
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![topic]);
    request(ApiKey::OffsetCommit, 7, correlation_id, &req)
}

async fn read_frame(client: &mut TcpStream) -> Bytes {
    let size = client.read_i32().await.expect("size");
    let mut frame = vec![0u8; usize::try_from(size).expect("size")];
    client.read_exact(&mut frame).await.expect("frame");
    Bytes::from(frame)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_commits_take_effect_in_the_order_they_were_sent() {
    let t = test_support::agent_with_jittered_writes(AgentConfig::default()).await;
    t.agent
        .create_topic(TOPIC, 1, BTreeMap::new())
        .await
        .expect("topic");
    let (addr, _server) = serve_one(t.agent.clone()).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let commits = 200;
    // Interleaved with fetches that wait: they must hold up neither the commits' effects nor,
    // once they answer, their answers for longer than they wait.
    let mut wire = Vec::new();
    for i in 1..=commits {
        wire.extend(offset_commit(i, "ordered", i64::from(i)));
        if i % 50 == 0 {
            wire.extend(fetch(10_000 + i, 200));
        }
    }
    client.write_all(&wire).await.expect("send");
    let mut answered = Vec::new();
    for _ in 0..commits + commits / 50 {
        let mut frame = with_timeout(read_frame(&mut client)).await.expect("answer");
        answered.push(frame.get_i32());
    }
    // Answers come back in request order...
    let mut expected = Vec::new();
    for i in 1..=commits {
        expected.push(i);
        if i % 50 == 0 {
            expected.push(10_000 + i);
        }
    }
    assert_eq!(answered, expected);
    // ...and the commits took effect in it: the last one sent is the one kept.
    let committed = t
        .agent
        .metastore
        .group_offsets("ordered")
        .await
        .expect("offsets");
    let offsets: Vec<i64> = committed.iter().map(|(_, c)| c.offset).collect();
    assert_eq!(offsets, vec![i64::from(commits)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_after_a_produce_sees_its_records() {
    let t = agent_with_topic(AgentConfig::default()).await;
    let (addr, _server) = serve_one(t.agent.clone()).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let partition = ListOffsetsPartition::default()
        .with_partition_index(0)
        .with_timestamp(-1);
    let topic = ListOffsetsTopic::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![partition]);
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![topic]);
    let mut wire = produce(1);
    wire.extend(produce(2));
    wire.extend(request(ApiKey::ListOffsets, 1, 3, &list));
    client.write_all(&wire).await.expect("send");
    for _ in 0..2 {
        with_timeout(read_frame(&mut client))
            .await
            .expect("produced");
    }
    let mut frame = with_timeout(read_frame(&mut client)).await.expect("listed");
    assert_eq!(frame.get_i32(), 3);
    let answer = ListOffsetsResponse::decode(&mut frame, 1).expect("decode");
    let p = &answer.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset), (0, 2));
}

#[tokio::test]
async fn only_produce_may_be_larger_than_the_non_produce_limit() {
    let t = test_support::agent(AgentConfig::default()).await;
    let over = t.agent.config.max_non_produce_request_bytes + 1;
    for (api, closes) in [(ApiKey::Metadata, true), (ApiKey::Produce, false)] {
        let (addr, _server) = serve_one(t.agent.clone()).await;
        let mut client = TcpStream::connect(addr).await.expect("connect");
        // Only the size and the header: a limit must be applied before the body arrives.
        let mut wire = i32::try_from(over).expect("size").to_be_bytes().to_vec();
        wire.extend((api as i16).to_be_bytes());
        wire.extend([0, 3, 0, 0, 0, 1]);
        client.write_all(&wire).await.expect("send");
        let wait = Duration::from_millis(if closes { 5000 } else { 500 });
        assert_eq!(closed_within(&mut client, wait).await, closes, "{api:?}");
    }
}

#[test]
fn large_requests_of_real_clients_fit_the_non_produce_limit() {
    let limit = AgentConfig::default().max_non_produce_request_bytes;
    let name = |i: usize| TopicName(StrBytes::from_string(format!("{i:0100}")));
    // 20,000 partitions over 1,000 topics, in the last Fetch version that names topics (the
    // next sends 16-byte ids instead).
    let topics = (0..1000)
        .map(|t| {
            FetchTopic::default().with_topic(name(t)).with_partitions(
                (0..20)
                    .map(|p| FetchPartition::default().with_partition(p))
                    .collect(),
            )
        })
        .collect();
    let req = FetchRequest::default().with_topics(topics);
    assert!(request(ApiKey::Fetch, 12, 1, &req).len() - 4 <= limit);
    // 8,000 topics named in one Metadata request, with their ids (v12).
    let topics = (0..8000)
        .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
        .collect();
    let req = MetadataRequest::default().with_topics(Some(topics));
    assert!(request(ApiKey::Metadata, 12, 1, &req).len() - 4 <= limit);
}
