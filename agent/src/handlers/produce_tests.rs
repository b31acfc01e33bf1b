//! The timestamps the produce path gives the index: believed from a consistent header, computed
//! from the records otherwise, the append time for a `LogAppendTime` topic.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use skiff_format::batch::{Compression, BATCH_HEADER_LEN};
use skiff_format::encode::{update_crc, BatchBuilder};
use skiff_metastore::types::BatchLocation;

use super::*;
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::test_support;

const NOW: i64 = 1_700_000_000_000;
const VERSION: i16 = 8;

struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        NOW
    }
}

async fn agent(configs: &[(&str, &str)]) -> (test_support::TestAgent, TopicPartition) {
    let config = AgentConfig {
        flush_interval: Duration::from_millis(5),
        ..Default::default()
    };
    let t = test_support::agent_with_clock(config, Arc::new(FixedClock)).await;
    let configs: BTreeMap<String, String> = configs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let meta = t
        .agent
        .create_topic("t", 1, configs)
        .await
        .expect("create topic");
    let tp = TopicPartition {
        topic_id: meta.topic_id,
        partition: 0,
    };
    (t, tp)
}

/// Three records at NOW - 30, NOW, NOW - 10, from a producer that wrote `max_timestamp` as
/// `header_max`: first NOW - 30, max NOW.
fn three_records(header_max: i64) -> Bytes {
    let plain = BatchBuilder::new(NOW - 30)
        .record(NOW - 30, Some(b"a"), Some(b"x"))
        .record(NOW, Some(b"b"), Some(b"y"))
        .record(NOW - 10, Some(b"c"), Some(b"z"))
        .build();
    let mut v = plain.to_vec();
    v[35..43].copy_from_slice(&header_max.to_be_bytes());
    update_crc(&mut v);
    Bytes::from(v)
}

const THREE: (i64, i64) = (NOW - 30, NOW);

/// `plain` with its records compressed by `codec`, as a producer sends it.
fn compressed(plain: &[u8], codec: Compression, code: i16) -> Bytes {
    let mut v = plain[..BATCH_HEADER_LEN].to_vec();
    v.extend(skiff_format::compress(codec, &plain[BATCH_HEADER_LEN..]).expect("compress"));
    let len = i32::try_from(v.len() - 12).expect("len");
    v[8..12].copy_from_slice(&len.to_be_bytes());
    v[21..23].copy_from_slice(&code.to_be_bytes());
    update_crc(&mut v);
    Bytes::from(v)
}

/// Produces `records` to partition 0 of topic `t`; the partition's error code.
async fn produce(t: &test_support::TestAgent, records: Bytes) -> i16 {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(1);
    let answer = route(t.agent.clone(), header, req)
        .await
        .await
        .expect("answered")
        .expect("a response for acks=-1");
    let mut buf = answer.slice(4..);
    ResponseHeader::decode(&mut buf, ApiKey::Produce.response_header_version(VERSION))
        .expect("response header");
    let response = ProduceResponse::decode(&mut buf, VERSION).expect("response");
    assert!(!buf.has_remaining());
    response.responses[0].partition_responses[0].error_code
}

/// The index's (first, max) timestamps of every batch of the partition.
async fn indexed(t: &test_support::TestAgent, tp: TopicPartition) -> Vec<(i64, i64)> {
    let slice = t
        .agent
        .metastore
        .read_index(tp, 0, u64::MAX)
        .await
        .expect("index");
    slice
        .batches
        .iter()
        .map(|b: &BatchLocation| (b.first_timestamp, b.max_timestamp))
        .collect()
}

#[tokio::test]
async fn a_consistent_header_goes_to_the_index_as_it_is() {
    let (t, tp) = agent(&[]).await;
    // A max above every record's: believed, since the records are not read for a consistent
    // header.
    assert_eq!(produce(&t, three_records(NOW + 5)).await, 0);
    assert_eq!(indexed(&t, tp).await, [(NOW - 30, NOW + 5)]);
}

#[tokio::test]
async fn an_unset_max_timestamp_is_computed_from_the_records() {
    let (t, tp) = agent(&[]).await;
    assert_eq!(produce(&t, three_records(-1)).await, 0);
    assert_eq!(produce(&t, three_records(i64::MIN)).await, 0);
    assert_eq!(indexed(&t, tp).await, [THREE, THREE]);
}

#[tokio::test]
async fn a_max_timestamp_below_the_base_is_computed_from_the_records() {
    let (t, tp) = agent(&[]).await;
    assert_eq!(produce(&t, three_records(NOW - 31)).await, 0);
    assert_eq!(indexed(&t, tp).await, [THREE]);
}

#[tokio::test]
async fn an_unset_max_timestamp_is_computed_inside_compressed_batches() {
    let (t, tp) = agent(&[]).await;
    let plain = three_records(-1);
    for (codec, code) in [
        (Compression::Gzip, 1),
        (Compression::Snappy, 2),
        (Compression::Lz4, 3),
        (Compression::Zstd, 4),
    ] {
        assert_eq!(
            produce(&t, compressed(&plain, codec, code)).await,
            0,
            "{codec:?}"
        );
    }
    assert_eq!(indexed(&t, tp).await, [THREE; 4]);
}

#[tokio::test]
async fn an_unset_base_timestamp_gives_the_first_records_timestamp() {
    let (t, tp) = agent(&[]).await;
    // A record's timestamp is base + delta: with a base of -1, the deltas carry the times.
    let mut v = BatchBuilder::new(-1)
        .record(NOW - 30, None, Some(b"a"))
        .record(NOW, None, Some(b"b"))
        .build()
        .to_vec();
    v[35..43].copy_from_slice(&(-1i64).to_be_bytes());
    update_crc(&mut v);
    assert_eq!(produce(&t, Bytes::from(v)).await, 0);
    assert_eq!(indexed(&t, tp).await, [THREE]);
}

#[tokio::test]
async fn undecodable_records_are_refused_when_their_timestamps_are_needed() {
    let (t, tp) = agent(&[]).await;
    let good = three_records(-1);
    let mut v = good[..BATCH_HEADER_LEN].to_vec();
    v.extend_from_slice(&[0xff; 12]);
    let len = i32::try_from(v.len() - 12).expect("len");
    v[8..12].copy_from_slice(&len.to_be_bytes());
    update_crc(&mut v);
    let junk = Bytes::from(v);
    assert_eq!(
        produce(&t, junk.clone()).await,
        skiff_format::batch::codes::INVALID_RECORD
    );
    // Compressed, cut short.
    let gz = compressed(&good, Compression::Gzip, 1);
    let mut v = gz[..gz.len() - 8].to_vec();
    let len = i32::try_from(v.len() - 12).expect("len");
    v[8..12].copy_from_slice(&len.to_be_bytes());
    update_crc(&mut v);
    assert_eq!(
        produce(&t, Bytes::from(v)).await,
        skiff_format::batch::codes::INVALID_RECORD
    );
    // The partition's data is refused whole: a good batch before the bad one is not written.
    let both = [good.clone(), junk].concat();
    assert_eq!(
        produce(&t, Bytes::from(both)).await,
        skiff_format::batch::codes::INVALID_RECORD
    );
    assert_eq!(indexed(&t, tp).await, []);
    assert_eq!(produce(&t, good).await, 0);
    assert_eq!(indexed(&t, tp).await, [THREE]);
}

#[tokio::test]
async fn a_log_append_time_topic_indexes_the_append_time() {
    let (t, tp) = agent(&[("message.timestamp.type", "LogAppendTime")]).await;
    // Old records, consistent or not, and records that would not even decode: the index says
    // when the agent appended them, and the records are not read.
    let old = BatchBuilder::new(1_000)
        .record(1_000, None, Some(b"a"))
        .record(2_000, None, Some(b"b"))
        .build();
    assert_eq!(produce(&t, old).await, 0);
    assert_eq!(produce(&t, three_records(-1)).await, 0);
    let mut v = three_records(-1)[..BATCH_HEADER_LEN].to_vec();
    v.extend_from_slice(&[0xff; 12]);
    let len = i32::try_from(v.len() - 12).expect("len");
    v[8..12].copy_from_slice(&len.to_be_bytes());
    update_crc(&mut v);
    assert_eq!(produce(&t, Bytes::from(v)).await, 0);
    assert_eq!(indexed(&t, tp).await, [(NOW, NOW); 3]);
}
