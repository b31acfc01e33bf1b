use super::*;
use crate::batch::batches;
use crate::compression::tests::{sample, Codec};
use crate::encode::{update_crc, BatchBuilder};

fn batch(bytes: Bytes) -> Batch {
    batches(bytes, usize::MAX).next().unwrap().unwrap()
}

#[test]
fn decodes_records_zero_copy() {
    let bytes = BatchBuilder::new(100)
        .record(100, Some(b"k0"), Some(b"v0"))
        .record_with_headers(
            90,
            None,
            Some(b""),
            &[(b"h", Some(b"1")), (b"h", None), (b"other", Some(b"x"))],
        )
        .record(150, Some(b""), None)
        .build();
    let b = batch(bytes.clone());
    let got: Vec<Record> = records(&b).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(got[0].value.as_deref(), Some(&b"v0"[..]));
    assert_eq!((got[0].offset_delta, got[0].timestamp), (0, 100));
    assert_eq!(
        (
            got[1].offset_delta,
            got[1].timestamp_delta,
            got[1].timestamp
        ),
        (1, -10, 90)
    );
    assert_eq!(got[1].key, None);
    assert_eq!(got[1].value.as_deref(), Some(&b""[..]));
    let keys: Vec<&[u8]> = got[1].headers.iter().map(|h| &h.key[..]).collect();
    assert_eq!(
        keys,
        [&b"h"[..], b"h", b"other"],
        "repeated keys kept in order"
    );
    assert_eq!(got[1].headers[1].value, None);
    assert_eq!(
        (got[2].key.as_deref(), got[2].value.as_deref()),
        (Some(&b""[..]), None)
    );
    // Zero copy: the key points into the batch's bytes.
    let range = bytes.as_ptr_range();
    assert!(range.contains(&got[0].key.as_ref().unwrap().as_ptr()));
}

#[test]
fn timestamp_lookup() {
    let b = batch(
        BatchBuilder::new(1_000)
            .record(1_000, None, Some(b"a"))
            .record(1_005, None, Some(b"b"))
            .record(1_003, None, Some(b"c"))
            .record(1_010, None, Some(b"d"))
            .build(),
    );
    assert_eq!(first_offset_at_or_after(&b, 0, 0), Ok(Some((0, 1_000))));
    assert_eq!(first_offset_at_or_after(&b, 1_001, 0), Ok(Some((1, 1_005))));
    assert_eq!(first_offset_at_or_after(&b, 1_006, 0), Ok(Some((3, 1_010))));
    assert_eq!(first_offset_at_or_after(&b, 1_011, 0), Ok(None));
    // From offset delta 2 on (a log start inside the batch), the first record late enough.
    assert_eq!(first_offset_at_or_after(&b, 0, 2), Ok(Some((2, 1_003))));
    assert_eq!(first_offset_at_or_after(&b, 1_004, 2), Ok(Some((3, 1_010))));
}

#[test]
fn log_append_time_uses_max_timestamp() {
    let b = batch(
        BatchBuilder::new(5)
            .attributes(0x08)
            .record(5, None, None)
            .record(9, None, None)
            .build(),
    );
    assert!(records(&b).unwrap().all(|r| r.unwrap().timestamp == 9));
    assert_eq!(first_offset_at_or_after(&b, 7, 0), Ok(Some((0, 9))));
}

/// `bytes`, an uncompressed batch, with its records compressed by `codec` and its attributes,
/// length and CRC set to match: what a producer sends.
pub(crate) fn compressed(codec: Codec, bytes: &[u8]) -> Batch {
    let mut v = bytes[..BATCH_HEADER_LEN].to_vec();
    v.extend_from_slice(&codec.compress(&bytes[BATCH_HEADER_LEN..]));
    let len = (v.len() - 12) as i32;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    let attributes = i16::from_be_bytes([v[21], v[22]]) | codec.compression().code();
    v[21..23].copy_from_slice(&attributes.to_be_bytes());
    update_crc(&mut v);
    let b = batch(Bytes::from(v));
    assert_eq!(b.header.compression(), codec.compression());
    b
}

impl Compression {
    fn code(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
            Compression::Unknown(c) => i16::from(c),
        }
    }
}

#[test]
fn decodes_compressed_batches() {
    let big = sample(50_000);
    let plain = BatchBuilder::new(1_000)
        .base_offset(7)
        .record(1_000, Some(b"k0"), Some(b"v0"))
        .record_with_headers(
            990,
            None,
            Some(b""),
            &[(b"h", Some(b"1")), (b"h", None), (b"other", Some(b"x"))],
        )
        .record(1_020, Some(b""), None)
        .record_with_headers(1_020, Some(b"big"), Some(&big), &[(b"h", Some(&big[..99]))])
        .record(1_005, Some(b"k4"), Some(b"v4"))
        .build();
    let want = decode(&batch(plain.clone())).unwrap();
    assert_eq!(want.len(), 5);
    for codec in Codec::ALL.into_iter().chain([Codec::Xerial(100)]) {
        let b = compressed(codec, &plain);
        assert!(b.bytes.len() < plain.len(), "{codec:?} compresses");
        let got = decode(&b).unwrap();
        assert_eq!(got, want, "{codec:?}");
        let summary: Vec<_> = got
            .iter()
            .map(|r| (r.offset_delta, r.timestamp_delta, r.timestamp))
            .collect();
        assert_eq!(
            summary,
            [
                (0, 0, 1_000),
                (1, -10, 990),
                (2, 20, 1_020),
                (3, 20, 1_020),
                (4, 5, 1_005)
            ],
            "{codec:?}"
        );
        assert_eq!(got[0].key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(got[3].value.as_deref(), Some(&big[..]));
        let keys: Vec<&[u8]> = got[1].headers.iter().map(|h| &h.key[..]).collect();
        assert_eq!(keys, [&b"h"[..], b"h", b"other"], "{codec:?}");
        assert_eq!(got[1].headers[1].value, None);
        // Lookups see the records inside.
        assert_eq!(first_offset_at_or_after(&b, 0, 0), Ok(Some((0, 1_000))));
        assert_eq!(first_offset_at_or_after(&b, 1_001, 0), Ok(Some((2, 1_020))));
        assert_eq!(first_offset_at_or_after(&b, 1_021, 0), Ok(None));
        assert_eq!(
            max_timestamp(&b),
            Ok(Some((2, 1_020))),
            "first of the tied records"
        );
    }
}

#[test]
fn compressed_log_append_time_uses_max_timestamp() {
    let plain = BatchBuilder::new(5)
        .attributes(0x08)
        .record(5, None, None)
        .record(9, None, None)
        .build();
    for codec in Codec::ALL {
        let b = compressed(codec, &plain);
        assert!(records(&b).unwrap().all(|r| r.unwrap().timestamp == 9));
        assert_eq!(first_offset_at_or_after(&b, 7, 0), Ok(Some((0, 9))));
        assert_eq!(max_timestamp(&b), Ok(Some((0, 9))));
    }
}

#[test]
fn max_timestamp_reads_the_records() {
    let b = batch(
        BatchBuilder::new(10)
            .record(10, None, None)
            .record(30, None, None)
            .record(20, None, None)
            .record(30, None, None)
            .build(),
    );
    assert_eq!(max_timestamp(&b), Ok(Some((1, 30))));
    // A record past the maximum that the header claims still counts: the records are the truth.
    let mut v = b.bytes.to_vec();
    v[35..43].copy_from_slice(&25i64.to_be_bytes());
    update_crc(&mut v);
    assert_eq!(max_timestamp(&batch(Bytes::from(v))), Ok(Some((1, 30))));
}

#[test]
fn unreadable_compressed_batches_are_errors() {
    let plain = BatchBuilder::new(0)
        .record(0, Some(b"key"), Some(&sample(5_000)))
        .build();
    for codec in Codec::ALL {
        let b = compressed(codec, &plain);
        // Truncated: cut the compressed records (and fix the frame so only they are wrong).
        let body = &b.bytes[BATCH_HEADER_LEN..];
        let cut = reframe(&b.bytes[..BATCH_HEADER_LEN], &body[..body.len() / 2]);
        assert!(
            matches!(decode(&cut), Err(RecordError::Decompress(_))),
            "{codec:?}: {:?}",
            decode(&cut)
        );
        // Garbage in place of the compressed records.
        let garbage: Vec<u8> = sample(300).iter().map(|b| b ^ 0x5a).collect();
        let junk = reframe(&b.bytes[..BATCH_HEADER_LEN], &garbage);
        assert!(
            matches!(decode(&junk), Err(RecordError::Decompress(_))),
            "{codec:?}"
        );
        assert!(first_offset_at_or_after(&junk, 0, 0).is_err());
        assert!(max_timestamp(&junk).is_err());
        // Over the limit.
        assert_eq!(
            records_with_limit(&b, 5_000).err(),
            Some(RecordError::Decompress(DecompressError::TooLarge {
                max: 5_000
            })),
            "{codec:?}"
        );
        assert_eq!(records_with_limit(&b, 6_000).unwrap().count(), 1);
    }
    // Compression bits over plain records; a codec Kafka does not define.
    let plain = BatchBuilder::new(0).record(0, None, None).build();
    for (attributes, want) in [
        (2, "corrupt snappy data"),
        (4, "corrupt zstd data"),
        (5, "unknown compression codec 5"),
    ] {
        let mut v = plain.to_vec();
        v[22] = attributes;
        update_crc(&mut v);
        let e = decode(&batch(Bytes::from(v))).unwrap_err();
        assert!(matches!(e, RecordError::Decompress(_)), "{e:?}");
        assert!(e.to_string().contains(want), "{e}");
    }
}

/// `header` (61 bytes of a valid batch) followed by `body`, with length and CRC fixed.
fn reframe(header: &[u8], body: &[u8]) -> Batch {
    let mut v = [header, body].concat();
    let len = (v.len() - 12) as i32;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    update_crc(&mut v);
    batch(Bytes::from(v))
}

/// Re-frames hand-written record bytes as a batch claiming `count` records.
fn raw(count: i32, record_bytes: &[u8]) -> Batch {
    let mut v = BatchBuilder::new(0).record(0, None, None).build()[..BATCH_HEADER_LEN].to_vec();
    v.extend_from_slice(record_bytes);
    let len = (v.len() - 12) as i32;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    v[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    v[57..61].copy_from_slice(&count.to_be_bytes());
    update_crc(&mut v);
    batch(Bytes::from(v))
}

fn decode(b: &Batch) -> Result<Vec<Record>, RecordError> {
    records(b)?.collect()
}

#[test]
fn malformed_records() {
    // length 6: attrs, ts 0, offset 0, key null, value null, 0 headers — then one extra byte.
    let good = [12u8, 0, 0, 0, 1, 1, 0];
    assert_eq!(decode(&raw(1, &good)).unwrap().len(), 1);
    let cases: [(&[u8], i32, RecordError); 7] = [
        (&good, 2, RecordError::Truncated),
        (
            &[good.as_slice(), &[0]].concat(),
            1,
            RecordError::TrailingBytes(1),
        ),
        (
            &[14, 0, 0, 0, 1, 1, 0, 0],
            1,
            RecordError::SizeMismatch {
                declared: 7,
                read: 6,
            },
        ),
        (&[12, 0, 0, 0, 1, 1], 1, RecordError::Truncated),
        (
            &[3],
            1,
            RecordError::InvalidLength {
                what: "record",
                len: -2,
            },
        ),
        (&[12, 0, 0, 0, 100, 1, 0], 1, RecordError::Truncated),
        (
            &[12, 0, 0, 0, 1, 1, 1],
            1,
            RecordError::InvalidLength {
                what: "header count",
                len: -1,
            },
        ),
    ];
    for (bytes, count, want) in cases {
        assert_eq!(decode(&raw(count, bytes)), Err(want.clone()), "{bytes:?}");
    }
    // A header with a null key; a huge header count is refused without a huge allocation.
    let null_key = [16u8, 0, 0, 0, 1, 1, 2, 1, 1];
    let e = decode(&raw(1, &null_key)).unwrap_err();
    assert_eq!(
        e,
        RecordError::InvalidLength {
            what: "header key",
            len: -1
        }
    );
    let huge = [20u8, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(decode(&raw(1, &huge)), Err(RecordError::Truncated));
    let bad_varint = [0xffu8; 12];
    assert!(matches!(
        decode(&raw(1, &bad_varint)),
        Err(RecordError::Varint(_))
    ));
}

/// `bytes` with its header's base and max timestamps replaced, CRC fixed.
fn with_header_timestamps(bytes: &[u8], base: i64, max: i64) -> Bytes {
    let mut v = bytes.to_vec();
    v[27..35].copy_from_slice(&base.to_be_bytes());
    v[35..43].copy_from_slice(&max.to_be_bytes());
    update_crc(&mut v);
    Bytes::from(v)
}

/// Three records at 1_000, 1_030, 1_020: first 1_000, max 1_030 (the second record).
fn three_records() -> Bytes {
    BatchBuilder::new(1_000)
        .record(1_000, Some(b"a"), Some(b"x"))
        .record(1_030, Some(b"b"), Some(b"y"))
        .record(1_020, Some(b"c"), Some(b"z"))
        .build()
}

const THREE: Timestamps = Timestamps {
    first: 1_000,
    max: 1_030,
};

#[test]
fn a_consistent_header_is_believed_as_it_is() {
    let b = batch(three_records());
    assert_eq!(b.header.trusted_timestamps(), Some(THREE));
    assert_eq!(timestamps(&b), Ok(THREE));
    // The header is not checked against the records (that would cost a decode per batch): a
    // consistent header over undecodable records is still believed.
    let h = b.bytes[..BATCH_HEADER_LEN].to_vec();
    let junk = reframe(&h, &[0xff; 12]);
    assert_eq!(junk.header.trusted_timestamps(), Some(THREE));
    // An equal base and max, as a one-record batch has, is consistent.
    let one = batch(BatchBuilder::new(5).record(5, None, None).build());
    assert_eq!(
        one.header.trusted_timestamps(),
        Some(Timestamps { first: 5, max: 5 })
    );
}

#[test]
fn an_unset_max_timestamp_is_computed_from_the_records() {
    let b = batch(with_header_timestamps(&three_records(), 1_000, -1));
    assert_eq!(b.header.trusted_timestamps(), None);
    assert_eq!(timestamps(&b), Ok(THREE));
    // Any negative max is unset.
    let b = batch(with_header_timestamps(&three_records(), 1_000, i64::MIN));
    assert_eq!(b.header.trusted_timestamps(), None);
    assert_eq!(timestamps(&b), Ok(THREE));
}

#[test]
fn a_max_timestamp_below_the_base_is_computed_from_the_records() {
    let b = batch(with_header_timestamps(&three_records(), 1_000, 999));
    assert_eq!(b.header.trusted_timestamps(), None);
    assert_eq!(timestamps(&b), Ok(THREE));
}

#[test]
fn an_unset_max_timestamp_is_computed_inside_compressed_batches() {
    let plain = with_header_timestamps(&three_records(), 1_000, -1);
    for codec in Codec::ALL.into_iter().chain([Codec::Xerial(100)]) {
        let b = compressed(codec, &plain);
        assert_eq!(b.header.trusted_timestamps(), None, "{codec:?}");
        assert_eq!(timestamps(&b), Ok(THREE), "{codec:?}");
    }
}

#[test]
fn an_unset_base_timestamp_gives_the_first_records_timestamp() {
    // Timestamps are base + delta, so with a base of -1 the deltas carry the real times.
    let plain = BatchBuilder::new(-1)
        .record(1_700_000_000_000, None, Some(b"a"))
        .record(1_699_999_999_000, None, Some(b"b"))
        .build();
    let want = Timestamps {
        first: 1_700_000_000_000,
        max: 1_700_000_000_000,
    };
    for max in [-1, 1_700_000_000_000] {
        let b = batch(with_header_timestamps(&plain, -1, max));
        assert_eq!(b.header.trusted_timestamps(), None, "max {max}");
        assert_eq!(timestamps(&b), Ok(want), "max {max}");
        let gz = compressed(Codec::Gzip, &b.bytes);
        assert_eq!(timestamps(&gz), Ok(want), "max {max}, compressed");
    }
    // The first record's timestamp, not the smallest: ListOffsets answers the base offset with
    // `first` when it is late enough, and that must be the timestamp of the record there.
    let later_first = batch(with_header_timestamps(
        &BatchBuilder::new(-1)
            .record(50, None, None)
            .record(40, None, None)
            .build(),
        -1,
        -1,
    ));
    assert_eq!(
        timestamps(&later_first),
        Ok(Timestamps { first: 50, max: 50 })
    );
}

#[test]
fn a_log_append_time_batch_is_believed_without_its_records() {
    let plain = BatchBuilder::new(5)
        .attributes(0x08)
        .record(5, None, None)
        .record(9, None, None)
        .build();
    let want = Some(Timestamps { first: 9, max: 9 });
    assert_eq!(batch(plain.clone()).header.trusted_timestamps(), want);
    let h = plain[..BATCH_HEADER_LEN].to_vec();
    assert_eq!(reframe(&h, &[0xff; 12]).header.trusted_timestamps(), want);
}

#[test]
fn undecodable_records_are_an_error_when_the_header_is_not_believed() {
    let header = with_header_timestamps(&three_records(), 1_000, -1);
    let h = header[..BATCH_HEADER_LEN].to_vec();
    let junk = reframe(&h, &[0xff; 12]);
    assert_eq!(junk.header.trusted_timestamps(), None);
    let e = timestamps(&junk).unwrap_err();
    assert!(matches!(e, RecordError::Varint(_)), "{e:?}");
    // Fewer records than the header counts.
    let short = reframe(&h, &three_records()[BATCH_HEADER_LEN..][..6]);
    assert!(timestamps(&short).is_err());
    // A compressed batch whose payload is cut short (the gzip trailer is missing).
    let gz = compressed(Codec::Gzip, &header).bytes;
    let bad = reframe(&gz[..BATCH_HEADER_LEN], &gz[BATCH_HEADER_LEN..gz.len() - 8]);
    let e = timestamps(&bad).unwrap_err();
    assert!(matches!(e, RecordError::Decompress(_)), "{e:?}");
    // The produce path refuses such a batch as Kafka does.
    assert_eq!(
        crate::batch::BatchError::Records(e).kafka_error_code(),
        crate::batch::codes::INVALID_RECORD
    );
}
