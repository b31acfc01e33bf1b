use proptest::prelude::*;

use super::*;
use crate::batch::{batches, Batch, BatchError, Corruption};
use crate::compression::tests::Codec;
use crate::encode::{update_crc, BatchBuilder};
use crate::records::records;
use crate::records::tests::compressed;

const NOW: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

fn batch(bytes: Bytes) -> Batch {
    batches(bytes, usize::MAX).next().unwrap().unwrap()
}

fn bounds(before: i64, after: i64) -> Checks {
    Checks {
        require_key: false,
        timestamps: Some(TimestampBounds {
            now: NOW,
            before_max_ms: before,
            after_max_ms: after,
        }),
    }
}

fn indices(c: &Checked) -> Vec<usize> {
    c.violations.iter().map(|v| v.index).collect()
}

#[test]
fn keyless_records_are_refused_on_a_compacted_topic_by_batch_index() {
    let b = batch(
        BatchBuilder::new(NOW)
            .record(NOW, Some(b"k"), Some(b"v"))
            .record(NOW, None, Some(b"v"))
            .record_with_headers(NOW, Some(b""), None, &[(b"h", Some(b"x"))])
            .record(NOW, None, None)
            .build(),
    );
    let compacted = Checks {
        require_key: true,
        timestamps: None,
    };
    let c = check(&b, &compacted, usize::MAX, 100).unwrap();
    assert_eq!(indices(&c), [1, 3], "an empty key is a key");
    assert!(c
        .violations
        .iter()
        .all(|v| v.violation == Violation::MissingKey));
    assert_eq!((c.refused, c.missing_keys), (2, 2));
    assert!(!c.invalid_timestamp());
    // Not compacted: nothing refused.
    let c = check(&b, &Checks::default(), usize::MAX, 100).unwrap();
    assert_eq!(c.refused, 0);
}

#[test]
fn the_list_of_refused_records_is_capped_but_all_are_counted() {
    let mut builder = BatchBuilder::new(NOW);
    for _ in 0..10 {
        builder = builder.record(NOW, None, Some(b"v"));
    }
    let compacted = Checks {
        require_key: true,
        timestamps: None,
    };
    let c = check(&batch(builder.build()), &compacted, usize::MAX, 3).unwrap();
    assert_eq!(indices(&c), [0, 1, 2]);
    assert_eq!(c.refused, 10);
}

#[test]
fn timestamps_outside_the_bounds_are_refused_record_by_record() {
    // The header's max is the producer's (NOW), and understates the record in the future: the
    // records are what is checked, as by Kafka.
    let mut v = BatchBuilder::new(NOW)
        .record(NOW, Some(b"a"), None)
        .record(NOW + HOUR + 1, Some(b"b"), None)
        .record(NOW - 10 * HOUR, Some(b"c"), None)
        .record(NO_TIMESTAMP, Some(b"d"), None)
        .record(NOW + HOUR, Some(b"e"), None)
        .build()
        .to_vec();
    v[35..43].copy_from_slice(&NOW.to_be_bytes());
    update_crc(&mut v);
    let b = batch(Bytes::from(v));
    assert!(b.header.trusted_timestamps().is_some());

    let c = check(&b, &bounds(i64::MAX, HOUR), usize::MAX, 100).unwrap();
    assert_eq!(
        c.violations,
        [RecordViolation {
            index: 1,
            violation: Violation::Timestamp {
                timestamp: NOW + HOUR + 1,
                offset: 1
            }
        }],
        "the bound itself is allowed, and -1 is no timestamp"
    );
    // The smallest timestamp is in no header: the third record is the one too old.
    let c = check(&b, &bounds(HOUR, i64::MAX), usize::MAX, 100).unwrap();
    assert_eq!(indices(&c), [2]);
    let c = check(&b, &bounds(HOUR, HOUR), usize::MAX, 100).unwrap();
    assert_eq!(indices(&c), [1, 2]);
    assert!(c.invalid_timestamp());
    // The index's timestamps come from the records.
    assert_eq!(
        c.timestamps,
        Timestamps {
            first: NOW,
            max: NOW + HOUR + 1
        }
    );
    let c = check(&b, &bounds(i64::MAX, i64::MAX), usize::MAX, 100).unwrap();
    assert_eq!(c.refused, 0);
}

#[test]
fn timestamp_arithmetic_is_kafkas() {
    let b = |before, after| TimestampBounds {
        now: NOW,
        before_max_ms: before,
        after_max_ms: after,
    };
    assert!(!b(i64::MAX, i64::MAX).refuses(i64::MIN + 5));
    assert!(!b(i64::MAX, i64::MAX).refuses(i64::MAX));
    assert!(b(i64::MAX, HOUR).refuses(i64::MAX));
    assert!(!b(0, 0).refuses(NOW));
    assert!(b(0, 0).refuses(NOW + 1));
    assert!(b(0, 0).refuses(NOW - 1));
    assert!(!b(0, 0).refuses(NO_TIMESTAMP));
    // Java's long wraps: now - Long.MIN_VALUE is negative, read as a timestamp in the future.
    assert!(b(i64::MAX, HOUR).refuses(i64::MIN));
    assert_eq!(b(HOUR, HOUR).window(), (NOW - HOUR, NOW + HOUR));
}

#[test]
fn checks_read_records_only_when_needed() {
    let header = batch(BatchBuilder::new(NOW).record(NOW, None, None).build()).header;
    assert!(!Checks::default().needed(&header));
    assert!(!bounds(i64::MAX, i64::MAX).needed(&header));
    assert!(bounds(i64::MAX, HOUR).needed(&header));
    assert!(bounds(HOUR, i64::MAX).needed(&header));
    let untrusted = BatchHeader {
        max_timestamp: -1,
        ..header
    };
    assert!(bounds(i64::MAX, i64::MAX).needed(&untrusted));
    assert!(!Checks::default().needed(&untrusted), "LogAppendTime");
    let log_append_time = BatchHeader {
        attributes: 0x08,
        ..header
    };
    assert!(Checks::default().needed(&log_append_time));
    let compacted = Checks {
        require_key: true,
        timestamps: None,
    };
    assert!(compacted.needed(&header));
}

#[test]
fn a_producers_log_append_time_batch_is_refused() {
    let b = batch(
        BatchBuilder::new(NOW)
            .attributes(0x08)
            .record(NOW, Some(b"k"), None)
            .record(NOW, None, None)
            .build(),
    );
    let compacted = Checks {
        require_key: true,
        timestamps: None,
    };
    let c = check(&b, &compacted, usize::MAX, 10).unwrap();
    let got: Vec<Violation> = c.violations.iter().map(|v| v.violation).collect();
    assert_eq!(got, [Violation::LogAppendTimeSet, Violation::MissingKey]);
}

#[test]
fn compressed_batches_are_checked_inside() {
    let plain = BatchBuilder::new(NOW)
        .record(NOW, Some(b"k"), Some(b"v"))
        .record(NOW + 2 * HOUR, None, Some(b"v"))
        .build();
    let checks = Checks {
        require_key: true,
        timestamps: bounds(i64::MAX, HOUR).timestamps,
    };
    for codec in Codec::ALL {
        let b = compressed(codec, &plain);
        let c = check(&b, &checks, 1 << 20, 10).unwrap();
        assert_eq!(indices(&c), [1], "{codec:?}");
        assert_eq!(c.violations[0].violation, Violation::MissingKey);
        // Decompression is bounded.
        assert!(matches!(
            check(&b, &checks, 8, 10),
            Err(RecordError::Decompress(_))
        ));
    }
}

#[test]
fn truncated_or_corrupt_records_are_errors() {
    let plain = BatchBuilder::new(NOW)
        .record(NOW, Some(b"key"), Some(b"value"))
        .record(NOW, Some(b"key"), Some(b"value"))
        .build();
    for cut in 1..plain.len() - BATCH_HEADER_LEN {
        let mut v = plain[..plain.len() - cut].to_vec();
        let len = (v.len() - 12) as i32;
        v[8..12].copy_from_slice(&len.to_be_bytes());
        update_crc(&mut v);
        let b = batch(Bytes::from(v));
        assert!(
            check(&b, &Checks::default(), usize::MAX, 10).is_err(),
            "cut {cut}"
        );
    }
}

/// `walk` reads exactly what `records` decodes, and refuses exactly what it refuses, with the
/// same error.
fn agrees_with_the_decoder(b: &Batch) {
    let decoded: Vec<Result<(i32, i64, bool), RecordError>> = records(b)
        .map(|it| {
            it.map(|r| r.map(|r| (r.offset_delta, r.timestamp, r.key.is_some())))
                .collect()
        })
        .unwrap_or_else(|e| vec![Err(e)]);
    let mut walked = Vec::new();
    let end = walk(b, crate::records::MAX_DECOMPRESSED_RECORDS, |r| {
        walked.push(Ok((r.offset_delta, r.timestamp, r.has_key)));
    });
    if let Err(e) = end {
        walked.push(Err(e));
    }
    assert_eq!(walked, decoded);
}

proptest! {
    #[test]
    fn walk_agrees_with_the_decoder_on_any_records(
        count in 0i32..6,
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut v = BatchBuilder::new(NOW).record(NOW, None, None).build().to_vec();
        v.truncate(BATCH_HEADER_LEN);
        v.extend_from_slice(&body);
        let len = (v.len() - 12) as i32;
        v[8..12].copy_from_slice(&len.to_be_bytes());
        v[23..27].copy_from_slice(&(count.max(1) - 1).to_be_bytes());
        v[57..61].copy_from_slice(&count.max(1).to_be_bytes());
        update_crc(&mut v);
        agrees_with_the_decoder(&batch(Bytes::from(v)));
    }

    #[test]
    fn walk_agrees_with_the_decoder_on_well_formed_records(
        records in proptest::collection::vec(
            (any::<i32>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)), 0usize..3),
            1..8,
        ),
    ) {
        let mut builder = BatchBuilder::new(NOW);
        for (delta, key, headers) in &records {
            let hs: Vec<(&[u8], Option<&[u8]>)> = (0..*headers).map(|_| (&b"h"[..], Some(&b"x"[..]))).collect();
            builder = builder.record_with_headers(NOW + i64::from(*delta), key.as_deref(), Some(b"v"), &hs);
        }
        agrees_with_the_decoder(&batch(builder.build()));
    }
}

fn stamped(b: &Batch, now: i64) -> Batch {
    let (header, parsed) = log_append_time_header(b, now).unwrap();
    let mut v = header.to_vec();
    v.extend_from_slice(&b.bytes[BATCH_HEADER_LEN..]);
    let again = Batch::parse(Bytes::from(v), usize::MAX).expect("a valid batch, CRC and all");
    assert_eq!(again.header, parsed);
    again
}

#[test]
fn log_append_time_rewrites_the_header_only() {
    let plain = BatchBuilder::new(NOW - 50)
        .base_offset(3)
        .producer(7, 1, 20)
        .record(NOW - 50, Some(b"a"), Some(b"x"))
        .record(NOW - 70, None, Some(b"y"))
        .build();
    let later = NOW + 1_000;
    let original = batch(plain.clone());
    for b in [original.clone()]
        .into_iter()
        .chain(Codec::ALL.map(|c| compressed(c, &plain)))
    {
        let s = stamped(&b, later);
        assert!(s.header.is_log_append_time());
        assert_eq!(s.header.compression(), b.header.compression());
        assert_eq!(s.header.max_timestamp, later);
        assert_eq!(
            BatchHeader {
                attributes: b.header.attributes,
                max_timestamp: b.header.max_timestamp,
                crc: b.header.crc,
                ..s.header
            },
            b.header,
            "nothing else changes: base timestamp, offsets, producer"
        );
        assert_eq!(s.bytes[BATCH_HEADER_LEN..], b.bytes[BATCH_HEADER_LEN..]);
        // Every record reads as the append time.
        let times: Vec<i64> = records(&s).unwrap().map(|r| r.unwrap().timestamp).collect();
        assert_eq!(times, [later, later]);
        assert_eq!(
            s.header.trusted_timestamps(),
            Some(Timestamps {
                first: later,
                max: later
            })
        );
    }
    // Stamping twice is stamping once with the second time.
    assert_eq!(
        stamped(&stamped(&original, 5), later),
        stamped(&original, later)
    );
}

#[test]
fn a_header_shorter_than_61_bytes_is_not_stamped() {
    let b = batch(BatchBuilder::new(NOW).record(NOW, None, None).build());
    let short = Batch {
        header: b.header,
        bytes: b.bytes.slice(..40),
    };
    assert_eq!(log_append_time_header(&short, NOW), None);
    // And validation never lets such a batch through.
    assert!(matches!(
        Batch::parse(short.bytes, usize::MAX),
        Err(BatchError::Corrupt(Corruption::Truncated { .. }))
    ));
}
