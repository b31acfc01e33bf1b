use super::*;
use crate::batch::batches;
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
    assert_eq!(first_offset_at_or_after(&b, 0), Ok(Some((0, 1_000))));
    assert_eq!(first_offset_at_or_after(&b, 1_001), Ok(Some((1, 1_005))));
    assert_eq!(first_offset_at_or_after(&b, 1_006), Ok(Some((3, 1_010))));
    assert_eq!(first_offset_at_or_after(&b, 1_011), Ok(None));
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
    assert_eq!(first_offset_at_or_after(&b, 7), Ok(Some((0, 9))));
}

#[test]
fn compressed_batches_are_refused() {
    let b = batch(
        BatchBuilder::new(0)
            .attributes(2)
            .record(0, None, None)
            .build(),
    );
    assert_eq!(
        records(&b).err(),
        Some(RecordError::Compressed(Compression::Snappy))
    );
    assert_eq!(
        first_offset_at_or_after(&b, 0),
        Err(RecordError::Compressed(Compression::Snappy))
    );
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
