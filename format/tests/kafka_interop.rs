//! Interop with an independent implementation of the v2 batch format (the `kafka-protocol`
//! crate): batches it encodes pass our validation and decode to the same records, and batches our
//! test builder encodes decode there.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use skiff_format::batch::batches;
use skiff_format::encode::BatchBuilder;
use skiff_format::records::records;

fn kafka_record(offset: i64, timestamp: i64, key: Option<&'static str>) -> Record {
    let mut headers = kafka_protocol::indexmap::IndexMap::new();
    headers.insert(StrBytes::from_static_str("trace"), Some(Bytes::from("abc")));
    headers.insert(StrBytes::from_static_str("empty"), None);
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: 77,
        producer_epoch: 2,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: 5 + offset as i32,
        timestamp,
        key: key.map(Bytes::from),
        value: Some(Bytes::from(format!("value-{offset}"))),
        headers,
    }
}

#[test]
fn kafka_encoded_batches_validate_and_decode() {
    let input = vec![
        kafka_record(0, 1_000, Some("a")),
        kafka_record(1, 1_010, None),
        kafka_record(2, 1_005, Some("c")),
    ];
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &input, &options).unwrap();
    let all: Vec<_> = batches(buf.freeze(), 1 << 20).collect();
    assert_eq!(all.len(), 1);
    let batch = all.into_iter().next().unwrap().unwrap();
    let h = batch.header;
    assert_eq!((h.record_count, h.last_offset_delta), (3, 2));
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (77, 2, 5)
    );
    assert_eq!((h.base_timestamp, h.max_timestamp), (1_000, 1_010));
    let decoded: Vec<_> = records(&batch).unwrap().map(|r| r.unwrap()).collect();
    for (ours, theirs) in decoded.iter().zip(&input) {
        assert_eq!(i64::from(ours.offset_delta), theirs.offset);
        assert_eq!(ours.timestamp, theirs.timestamp);
        assert_eq!(ours.key, theirs.key);
        assert_eq!(ours.value, theirs.value);
        let headers: Vec<_> = ours
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        let want: Vec<_> = theirs
            .headers
            .iter()
            .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), v.clone()))
            .collect();
        assert_eq!(headers, want);
    }
}

#[test]
fn our_batches_decode_in_kafka_protocol() {
    let bytes = BatchBuilder::new(2_000)
        .base_offset(40)
        .producer(9, 1, 100)
        .record(2_000, Some(b"k"), Some(b"v1"))
        .record_with_headers(2_003, None, Some(b"v2"), &[(b"h", Some(b"x"))])
        .build();
    let mut buf = bytes.clone();
    let set = RecordBatchDecoder::decode(&mut buf).unwrap();
    let got: Vec<_> = set
        .records
        .iter()
        .map(|r| {
            (
                r.offset,
                r.timestamp,
                r.key.clone(),
                r.value.clone(),
                r.sequence,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                40,
                2_000,
                Some(Bytes::from("k")),
                Some(Bytes::from("v1")),
                100
            ),
            (41, 2_003, None, Some(Bytes::from("v2")), 101),
        ]
    );
    assert_eq!(set.records[1].headers.len(), 1);
}
