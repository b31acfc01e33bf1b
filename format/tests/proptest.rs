//! Property tests: round trips through the builders and decoders, and "no input panics".
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use skiff_format::batch::{batches, Batch, BatchError, BatchHeader};
use skiff_format::encode::{update_crc, BatchBuilder};
use skiff_format::object::{decode_footer, decode_object, decode_trailer, ObjectBuilder};
use skiff_format::records::{first_offset_at_or_after, records};

type Header = (Vec<u8>, Option<Vec<u8>>);

#[derive(Clone, Debug)]
struct RecordSpec {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn record_spec() -> impl Strategy<Value = RecordSpec> {
    let bytes = || vec(any::<u8>(), 0..24);
    (
        -1_000i64..1_000,
        proptest::option::of(bytes()),
        proptest::option::of(bytes()),
        vec((bytes(), proptest::option::of(bytes())), 0..3),
    )
        .prop_map(|(timestamp, key, value, headers)| RecordSpec {
            timestamp,
            key,
            value,
            headers,
        })
}

fn build(base_timestamp: i64, producer: (i64, i16, i32), specs: &[RecordSpec]) -> Bytes {
    let mut b = BatchBuilder::new(base_timestamp).producer(producer.0, producer.1, producer.2);
    for r in specs {
        let headers: Vec<(&[u8], Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        b = b.record_with_headers(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers);
    }
    b.build()
}

fn batch_strategy() -> impl Strategy<Value = (Bytes, Vec<RecordSpec>)> {
    (
        any::<i64>(),
        any::<(i64, i16, i32)>(),
        vec(record_spec(), 1..6),
    )
        .prop_map(|(ts, producer, specs)| {
            let ts = ts / 4; // keep timestamp deltas from wrapping
            let specs: Vec<RecordSpec> = specs
                .into_iter()
                .map(|r| RecordSpec {
                    timestamp: ts + r.timestamp,
                    ..r
                })
                .collect();
            (build(ts, producer, &specs), specs)
        })
}

/// Frames arbitrary bytes as the records of an uncompressed batch with a valid CRC, so that the
/// record decoder (not the CRC check) sees them.
fn frame(count: i32, records: &[u8]) -> Batch {
    let mut v = BatchBuilder::new(0).record(0, None, None).build()[..61].to_vec();
    v.extend_from_slice(records);
    let len = (v.len() - 12) as i32;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    v[23..27].copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
    v[57..61].copy_from_slice(&count.to_be_bytes());
    update_crc(&mut v);
    let header = BatchHeader::parse(&v).unwrap();
    Batch {
        header,
        bytes: Bytes::from(v),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn batches_never_panic(bytes in vec(any::<u8>(), 0..300), max in 0usize..400) {
        for b in batches(Bytes::from(bytes.clone()), max).flatten() {
            prop_assert!(b.bytes.len() <= max);
            let _ = records(&b).map(|r| r.count());
        }
        let _ = BatchHeader::parse(&bytes);
        let _ = Batch::parse(Bytes::from(bytes), max);
    }

    #[test]
    fn records_never_panic(count in -2i32..8, bytes in vec(any::<u8>(), 0..200), ts: i64) {
        let b = frame(count, &bytes);
        if let Ok(it) = records(&b) {
            for r in it {
                let _ = r;
            }
        }
        let _ = first_offset_at_or_after(&b, ts, 0);
        // A hand-built Batch whose header lies about its length must not panic either.
        let mut lying = b.clone();
        lying.header.batch_length = i32::MAX;
        let _ = records(&lying).map(|r| r.count());
        lying.header.batch_length = 0;
        let _ = records(&lying).map(|r| r.count());
    }

    #[test]
    fn object_decoding_never_panics(bytes in vec(any::<u8>(), 0..400)) {
        let _ = decode_object(&bytes);
        let _ = decode_footer(&bytes);
        if let Ok(loc) = decode_trailer(&bytes) {
            let _ = loc.footer_range(bytes.len() as u64);
            let _ = loc.footer_in(&bytes);
        }
    }

    #[test]
    fn records_round_trip((bytes, specs) in batch_strategy()) {
        let batch = batches(bytes, usize::MAX).next().unwrap().unwrap();
        prop_assert_eq!(batch.header.record_count as usize, specs.len());
        let decoded: Vec<_> = records(&batch).unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded.len(), specs.len());
        for (i, (r, s)) in decoded.iter().zip(&specs).enumerate() {
            prop_assert_eq!(r.offset_delta as usize, i);
            prop_assert_eq!(r.timestamp, s.timestamp);
            prop_assert_eq!(r.key.as_deref(), s.key.as_deref());
            prop_assert_eq!(r.value.as_deref(), s.value.as_deref());
            let headers: Vec<Header> = r
                .headers
                .iter()
                .map(|h| (h.key.to_vec(), h.value.as_ref().map(|v| v.to_vec())))
                .collect();
            prop_assert_eq!(&headers, &s.headers);
        }
        let target = specs[specs.len() / 2].timestamp;
        let want = specs.iter().position(|s| s.timestamp >= target).unwrap();
        let got = first_offset_at_or_after(&batch, target, 0).unwrap();
        prop_assert_eq!(got, Some((want as i64, specs[want].timestamp)));
    }

    #[test]
    fn object_round_trip(
        id: u128,
        input in vec((any::<[u8; 16]>(), 0i32..4, batch_strategy()), 0..8),
    ) {
        let mut builder = ObjectBuilder::new(id);
        let mut pushed = Vec::new();
        for (topic, partition, (bytes, _)) in &input {
            let batch = batches(bytes.clone(), usize::MAX).next().unwrap().unwrap();
            let position = builder.push(*topic, *partition, &batch);
            pushed.push((position, batch));
        }
        let len = builder.len();
        let (parts, entries) = builder.finish();
        let object = parts.concat();
        prop_assert_eq!(object.len() as u64, len);
        let (header, decoded) = decode_object(&object).unwrap();
        prop_assert_eq!(header.object_id, id);
        prop_assert_eq!(&decoded, &entries);
        for ((e, (position, batch)), (topic, partition, _)) in decoded.iter().zip(&pushed).zip(&input) {
            prop_assert_eq!((e.topic_id, e.partition, e.position), (*topic, *partition, *position));
            let slice = Bytes::copy_from_slice(&object[e.position as usize..][..e.len as usize]);
            prop_assert_eq!(&Batch::parse(slice, usize::MAX).unwrap(), batch);
        }
    }

    /// Flipping a byte of a valid object, or cutting it short, never panics; outside the batch
    /// area it is always caught.
    #[test]
    fn mutated_objects(
        input in vec(batch_strategy(), 1..4),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let mut builder = ObjectBuilder::new(1);
        for (bytes, _) in &input {
            builder.push([0; 16], 0, &batches(bytes.clone(), usize::MAX).next().unwrap().unwrap());
        }
        let (parts, entries) = builder.finish();
        let mut object = parts.concat();
        let batch_end = entries.last().map_or(32, |e| e.position + e.len as u64) as usize;
        let i = at.index(object.len());
        object[i] ^= 1 << bit;
        let result = decode_object(&object);
        if !(32..batch_end).contains(&i) {
            prop_assert!(result.is_err(), "byte {} of {}", i, object.len());
        }
        let n = cut.index(object.len());
        let _ = decode_object(&object[..n]);
        let _ = decode_trailer(&object[n..]);
    }

    /// A valid stream cut anywhere yields its whole batches, then `Corrupt`.
    #[test]
    fn cut_streams(input in vec(batch_strategy(), 1..4), cut in any::<prop::sample::Index>()) {
        let all: Vec<u8> = input.iter().flat_map(|(b, _)| b.to_vec()).collect();
        let n = cut.index(all.len());
        let mut whole = 0;
        let mut end = 0;
        for (b, _) in &input {
            if end + b.len() > n {
                break;
            }
            end += b.len();
            whole += 1;
        }
        let got: Vec<_> = batches(Bytes::copy_from_slice(&all[..n]), usize::MAX).collect();
        prop_assert_eq!(got.iter().filter(|r| r.is_ok()).count(), whole);
        if end < n {
            prop_assert!(matches!(got.last(), Some(Err(BatchError::Corrupt(_)))));
        }
    }
}
