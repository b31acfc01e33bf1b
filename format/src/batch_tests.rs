use super::*;
use crate::encode::{update_crc, BatchBuilder};

const MAX: usize = 1 << 20;

fn sample(records: usize) -> Bytes {
    let mut b = BatchBuilder::new(1_000).producer(7, 1, 42);
    for i in 0..records {
        b = b.record(1_000 + i as i64, Some(b"key"), Some(&[i as u8; 10]));
    }
    b.build()
}

fn first_error(bytes: Bytes) -> BatchError {
    match batches(bytes, MAX).find_map(Result::err) {
        Some(e) => e,
        None => panic!("expected an error"),
    }
}

fn edited(bytes: &Bytes, edit: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut v = bytes.to_vec();
    edit(&mut v);
    update_crc(&mut v);
    Bytes::from(v)
}

#[test]
fn parses_header_fields() {
    let bytes = sample(3);
    let h = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(h.base_offset, 0);
    assert_eq!(h.total_len(), bytes.len());
    assert_eq!(h.magic, 2);
    assert_eq!(h.last_offset_delta, 2);
    assert_eq!(h.record_count, 3);
    assert_eq!(h.base_timestamp, 1_000);
    assert_eq!(h.max_timestamp, 1_002);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (7, 1, 42)
    );
    assert_eq!(h.crc, crc32c::crc32c(&bytes[CRC_START..]));
    assert_eq!(h.compression(), Compression::None);
    assert!(!h.is_transactional() && !h.is_control() && !h.is_log_append_time());
}

#[test]
fn attribute_helpers() {
    let bytes = BatchBuilder::new(0)
        .attributes(0x30 | 4)
        .record(0, None, None)
        .build();
    let h = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(h.compression(), Compression::Zstd);
    assert!(h.is_transactional() && h.is_control());
    let codes = [
        (1, Compression::Gzip),
        (2, Compression::Snappy),
        (3, Compression::Lz4),
    ];
    for (bits, c) in codes.into_iter().chain([(7, Compression::Unknown(7))]) {
        let h = BatchHeader {
            attributes: bits,
            ..h
        };
        assert_eq!(h.compression(), c);
    }
}

#[test]
fn splits_concatenated_batches_zero_copy() {
    let parts = [sample(1), sample(5), sample(2)];
    let all = Bytes::from(parts.concat());
    let got: Vec<Batch> = batches(all.clone(), MAX).collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), 3);
    let mut at = 0;
    for (batch, part) in got.iter().zip(&parts) {
        assert_eq!(batch.bytes, part);
        assert_eq!(
            batch.bytes.as_ptr(),
            all[at..].as_ptr(),
            "not a slice of the input"
        );
        assert_eq!(Batch::parse(batch.bytes.clone(), MAX).as_ref(), Ok(batch));
        at += part.len();
    }
    assert!(batches(Bytes::new(), MAX).next().is_none());
}

#[test]
fn truncation_is_corrupt() {
    let bytes = sample(2);
    for cut in 1..bytes.len() {
        let e = first_error(bytes.slice(..cut));
        assert!(
            matches!(e, BatchError::Corrupt(Corruption::Truncated { .. })),
            "{cut}: {e}"
        );
        assert_eq!(e.kafka_error_code(), 2);
    }
    // A good batch followed by a partial one: the good one is yielded, then the error.
    let all = Bytes::from([bytes.to_vec(), bytes[..30].to_vec()].concat());
    let mut it = batches(all, MAX);
    assert!(it.next().unwrap().is_ok());
    assert!(matches!(it.next(), Some(Err(BatchError::Corrupt(_)))));
    assert!(it.next().is_none(), "fused after an error");
}

#[test]
fn short_batch_length_is_corrupt() {
    let bytes = edited(&sample(1), |v| {
        v[8..12].copy_from_slice(&48i32.to_be_bytes())
    });
    assert_eq!(first_error(bytes), Corruption::InvalidLength(48).into());
    let bytes = edited(&sample(1), |v| {
        v[8..12].copy_from_slice(&(-1i32).to_be_bytes())
    });
    assert_eq!(first_error(bytes), Corruption::InvalidLength(-1).into());
}

#[test]
fn other_magic_is_unsupported() {
    for magic in [0u8, 1, 3, 0xff] {
        let e = first_error(edited(&sample(1), |v| v[16] = magic));
        assert_eq!(e, BatchError::UnsupportedMagic(magic as i8));
        assert_eq!(e.kafka_error_code(), 43);
    }
}

#[test]
fn record_count_must_match_offsets() {
    let set = |count: i32, delta: i32| {
        edited(&sample(2), |v| {
            v[23..27].copy_from_slice(&delta.to_be_bytes());
            v[57..61].copy_from_slice(&count.to_be_bytes());
        })
    };
    for (count, delta) in [(0, -1), (3, 1), (2, 2), (-1, -2), (i32::MIN, i32::MAX)] {
        let e = first_error(set(count, delta));
        assert_eq!(
            e,
            BatchError::InvalidRecord {
                record_count: count,
                last_offset_delta: delta
            }
        );
        assert_eq!(e.kafka_error_code(), 87);
    }
    assert!(batches(set(2, 1), MAX).all(|b| b.is_ok()));
}

#[test]
fn too_large() {
    let bytes = sample(3);
    let len = bytes.len();
    assert!(batches(bytes.clone(), len).all(|b| b.is_ok()));
    let e = first_error_with(bytes, len - 1);
    assert_eq!(e, BatchError::TooLarge { len, max: len - 1 });
    assert_eq!(e.kafka_error_code(), 10);
}

fn first_error_with(bytes: Bytes, max: usize) -> BatchError {
    match batches(bytes, max).find_map(Result::err) {
        Some(e) => e,
        None => panic!("expected an error"),
    }
}

/// Every single-bit flip is caught, except in the bytes the CRC leaves out on purpose.
#[test]
fn flipped_bytes_are_caught() {
    let bytes = sample(3);
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut v = bytes.to_vec();
            v[i] ^= bit;
            let result = batches(Bytes::from(v), MAX).collect::<Result<Vec<_>, _>>();
            match i {
                0..=7 | 12..=15 => assert!(result.is_ok(), "byte {i} is not covered by the crc"),
                16 => assert!(matches!(result, Err(BatchError::UnsupportedMagic(_)))),
                8..=11 => assert!(result.is_err(), "byte {i}"),
                _ => assert!(
                    matches!(
                        result,
                        Err(BatchError::Corrupt(Corruption::CrcMismatch { .. }))
                    ),
                    "byte {i}: {result:?}"
                ),
            }
        }
    }
}

#[test]
fn base_offset_rewrite_keeps_batch_valid() {
    let mut v = sample(2).to_vec();
    set_base_offset(&mut v, 1_234_567);
    let b = Batch::parse(Bytes::from(v), MAX).unwrap();
    assert_eq!(b.header.base_offset, 1_234_567);
    assert_eq!(b.header.last_offset(), 1_234_568);
    let mut short = [1u8, 2, 3];
    set_base_offset(&mut short, 9);
    assert_eq!(short, [1, 2, 3]);
}

#[test]
fn parse_rejects_trailing_bytes() {
    let mut v = sample(1).to_vec();
    v.push(0);
    let e = Batch::parse(Bytes::from(v), MAX).unwrap_err();
    assert_eq!(e, Corruption::TrailingBytes(1).into());
}

#[test]
fn error_messages_are_lowercase() {
    let e = BatchError::from(Corruption::CrcMismatch {
        expected: 1,
        actual: 2,
    });
    assert_eq!(
        e.to_string(),
        "corrupt record batch: crc mismatch: header says 0x00000001, bytes give 0x00000002"
    );
}
