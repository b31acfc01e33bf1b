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
use skiff_format::Batch;
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
    agent_with_partitions(configs, 1).await
}

async fn agent_with_partitions(
    configs: &[(&str, &str)],
    partitions: i32,
) -> (test_support::TestAgent, TopicPartition) {
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
        .create_topic("t", partitions, configs)
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
    produce_to(t, vec![(0, records)]).await[0].error_code
}

/// Produces to partitions of topic `t` in one request; the partitions' answers.
async fn produce_to(
    t: &test_support::TestAgent,
    partitions: Vec<(i32, Bytes)>,
) -> Vec<PartitionProduceResponse> {
    let data = partitions
        .into_iter()
        .map(|(index, records)| {
            PartitionProduceData::default()
                .with_index(index)
                .with_records(Some(records))
        })
        .collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(data)]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(1);
    let answer = route(
        t.agent.clone(),
        &crate::test_support::anonymous(),
        header,
        req,
        std::time::Duration::ZERO,
    )
    .await
    .await
    .expect("answered")
    .expect("a response for acks=-1");
    let mut buf = answer.slice(4..);
    ResponseHeader::decode(&mut buf, ApiKey::Produce.response_header_version(VERSION))
        .expect("response header");
    let response = ProduceResponse::decode(&mut buf, VERSION).expect("response");
    assert!(!buf.has_remaining());
    response.responses[0].partition_responses.clone()
}

/// The batches of the partition as a fetch serves them.
async fn stored(t: &test_support::TestAgent, tp: TopicPartition) -> Vec<Batch> {
    let slice = t
        .agent
        .metastore
        .read_index(tp, 0, u64::MAX)
        .await
        .expect("index");
    let bytes = t
        .agent
        .reader
        .read(&slice.batches, 0, 1 << 20)
        .await
        .expect("read");
    batches(bytes, usize::MAX)
        .collect::<Result<_, _>>()
        .expect("valid batches, CRC and all")
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
    // No timestamp bound, so the records need not be read.
    let (t, tp) = agent(&[("message.timestamp.after.max.ms", "9223372036854775807")]).await;
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

#[tokio::test]
async fn a_log_append_time_topic_stores_stamped_headers_and_answers_the_time() {
    let (t, tp) = agent(&[("message.timestamp.type", "LogAppendTime")]).await;
    let plain = three_records(NOW - 30);
    let answers = produce_to(&t, vec![(0, plain.clone())]).await;
    assert_eq!(
        (answers[0].error_code, answers[0].log_append_time_ms),
        (0, NOW)
    );
    let gz = compressed(&plain, Compression::Gzip, 1);
    assert_eq!(produce(&t, gz.clone()).await, 0);
    let stored = stored(&t, tp).await;
    assert_eq!(stored.len(), 2);
    for (batch, sent) in stored.iter().zip([&plain, &gz]) {
        let h = &batch.header;
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, NOW);
        // The base timestamp, the records and everything else are as sent.
        assert_eq!(h.base_timestamp, NOW - 30);
        assert_eq!(batch.bytes[BATCH_HEADER_LEN..], sent[BATCH_HEADER_LEN..]);
        let times: Vec<i64> = skiff_format::records(batch)
            .expect("records")
            .map(|r| r.expect("record").timestamp)
            .collect();
        assert_eq!(times, [NOW; 3]);
    }
    assert_eq!(indexed(&t, tp).await, [(NOW, NOW); 2]);
}

#[tokio::test]
async fn a_create_time_topic_answers_no_log_append_time() {
    let (t, tp) = agent(&[]).await;
    let answers = produce_to(&t, vec![(0, three_records(NOW))]).await;
    assert_eq!(
        (answers[0].error_code, answers[0].log_append_time_ms),
        (0, -1)
    );
    assert!(!stored(&t, tp).await[0].header.is_log_append_time());
}

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn a_record_too_far_in_the_future_is_refused_with_invalid_timestamp() {
    // Kafka 4's default: an hour ahead at most.
    let (t, tp) = agent_with_partitions(&[], 2).await;
    let future = BatchBuilder::new(NOW)
        .record(NOW, Some(b"a"), None)
        .record(NOW + HOUR + 1, Some(b"b"), None)
        .build();
    let fine = BatchBuilder::new(NOW)
        .record(NOW + HOUR, Some(b"a"), None)
        .record(NOW - 1_000 * HOUR, Some(b"b"), None)
        .build();
    let answers = produce_to(&t, vec![(0, future), (1, fine)]).await;
    let refused = &answers[0];
    assert_eq!(refused.error_code, codes::INVALID_TIMESTAMP);
    assert_eq!(
        refused.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    assert_eq!(refused.record_errors.len(), 1);
    assert_eq!(refused.record_errors[0].batch_index, 1);
    let message = format!(
        "Timestamp {} of message with offset 1 is out of range. The timestamp should be within [{}, {}]",
        NOW + HOUR + 1,
        NOW.wrapping_sub(i64::MAX),
        NOW + HOUR
    );
    assert_eq!(
        refused.record_errors[0]
            .batch_index_error_message
            .as_deref(),
        Some(message.as_str())
    );
    assert_eq!(refused.base_offset, -1);
    assert_eq!(answers[1].error_code, 0);
    assert_eq!(indexed(&t, tp).await, []);
}

#[tokio::test]
async fn the_before_bound_needs_the_records_and_the_deprecated_name_is_read() {
    let (t, _) = agent(&[("message.timestamp.difference.max.ms", "60000")]).await;
    // The header's base and max are fine; the second record, a negative delta, is not.
    let old_inside = BatchBuilder::new(NOW)
        .record(NOW, Some(b"a"), None)
        .record(NOW - 60_001, Some(b"b"), None)
        .record(NOW, Some(b"c"), None)
        .build();
    let header = skiff_format::BatchHeader::parse(&old_inside).expect("header");
    assert_eq!((header.base_timestamp, header.max_timestamp), (NOW, NOW));
    let answers = produce_to(&t, vec![(0, old_inside)]).await;
    assert_eq!(answers[0].error_code, codes::INVALID_TIMESTAMP);
    let indices: Vec<i32> = answers[0]
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indices, [1]);
    // Compressed too.
    let plain = BatchBuilder::new(NOW)
        .record(NOW + 60_001, Some(b"a"), None)
        .build();
    assert_eq!(
        produce(&t, compressed(&plain, Compression::Lz4, 3)).await,
        codes::INVALID_TIMESTAMP
    );
    assert_eq!(produce(&t, three_records(NOW)).await, 0);
}

#[tokio::test]
async fn keyless_records_on_a_compacted_topic_are_refused_while_keyed_ones_succeed() {
    let (t, tp) = agent_with_partitions(&[("cleanup.policy", "compact,delete")], 2).await;
    let keyless = BatchBuilder::new(NOW)
        .record(NOW, Some(b"k"), Some(b"v"))
        .record(NOW, None, Some(b"v"))
        .record(NOW, None, None)
        .build();
    let keyed = three_records(NOW);
    let answers = produce_to(
        &t,
        vec![(0, compressed(&keyless, Compression::Zstd, 4)), (1, keyed)],
    )
    .await;
    let refused = &answers[0];
    assert_eq!(refused.error_code, codes::INVALID_RECORD);
    let indices: Vec<i32> = refused
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indices, [1, 2]);
    let each = "Compacted topic cannot accept message without key in topic partition t-0";
    for e in &refused.record_errors {
        assert_eq!(e.batch_index_error_message.as_deref(), Some(each));
    }
    assert_eq!(
        refused.error_message.as_deref().map(String::from),
        Some(format!(
            "One or more records have been rejected due to 2 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=1, message='{each}'), RecordError(batchIndex=2, message='{each}')]"
        ))
    );
    assert_eq!(answers[1].error_code, 0);
    assert_eq!(indexed(&t, tp).await, []);
    let metrics = t.agent.metrics.render();
    assert!(
        metrics.contains("skiff_produce_refused_records_total{reason=\"no_key\"} 2"),
        "{metrics}"
    );
    let other = TopicPartition { partition: 1, ..tp };
    assert_eq!(indexed(&t, other).await, [THREE]);
}

#[tokio::test]
async fn a_producer_may_not_set_log_append_time() {
    let (t, tp) = agent(&[]).await;
    let mut v = three_records(NOW).to_vec();
    v[21..23].copy_from_slice(&0x08i16.to_be_bytes());
    update_crc(&mut v);
    let answers = produce_to(&t, vec![(0, Bytes::from(v))]).await;
    assert_eq!(answers[0].error_code, codes::INVALID_TIMESTAMP);
    assert_eq!(answers[0].record_errors.len(), 3);
    assert_eq!(indexed(&t, tp).await, []);
}

#[tokio::test]
async fn corrupt_or_truncated_batches_are_refused_on_every_kind_of_topic() {
    for configs in [
        &[("cleanup.policy", "compact")][..],
        &[("message.timestamp.type", "LogAppendTime")],
        &[("message.timestamp.before.max.ms", "1000")],
    ] {
        let (t, _) = agent(configs).await;
        let good = three_records(NOW);
        // Cut short: the batch is not all there.
        assert_eq!(
            produce(&t, good.slice(..good.len() - 3)).await,
            codes::CORRUPT_MESSAGE,
            "{configs:?}"
        );
        // A flipped byte in the records: the CRC no longer matches.
        let mut v = good.to_vec();
        v[BATCH_HEADER_LEN + 2] ^= 0x40;
        assert_eq!(
            produce(&t, Bytes::from(v)).await,
            codes::CORRUPT_MESSAGE,
            "{configs:?}"
        );
        // Records that do not decode, with a CRC that matches: read for a check, refused.
        let mut v = good[..BATCH_HEADER_LEN].to_vec();
        v.extend_from_slice(&[0xff; 12]);
        let len = i32::try_from(v.len() - 12).expect("len");
        v[8..12].copy_from_slice(&len.to_be_bytes());
        update_crc(&mut v);
        let code = produce(&t, Bytes::from(v)).await;
        if configs[0].0 == "message.timestamp.type" {
            assert_eq!(code, 0, "a LogAppendTime topic does not read the records");
        } else {
            assert_eq!(code, codes::INVALID_RECORD, "{configs:?}");
        }
    }
}
