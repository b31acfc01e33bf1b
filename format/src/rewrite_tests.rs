#![allow(clippy::unwrap_used)]

use super::*;
use crate::compression::tests::Codec;
use crate::encode::BatchBuilder;
use crate::records::records;
use crate::records::tests::compressed;

/// Ten records: key `k{i % 3}`, value `v{i}` (none for i = 4), headers `h`="a" and `h`="{i}",
/// timestamps 1000 + 10 i; producer 7, epoch 2, base sequence 40; base offset 100.
fn sample() -> Bytes {
    let mut b = BatchBuilder::new(1_000).base_offset(100).producer(7, 2, 40);
    for i in 0..10u8 {
        let key = format!("k{}", i % 3);
        let value = format!("v{i}");
        let n = [b'0' + i];
        b = b.record_with_headers(
            1_000 + 10 * i64::from(i),
            Some(key.as_bytes()),
            (i != 4).then_some(value.as_bytes()),
            &[(b"h", Some(b"a")), (b"h", Some(&n))],
        );
    }
    b.build()
}

fn parse(bytes: Bytes) -> Batch {
    Batch::parse_stored(bytes).unwrap()
}

fn decoded(b: &Batch) -> Vec<Record> {
    records(b).unwrap().map(Result::unwrap).collect()
}

#[test]
fn keeps_chosen_records_with_their_offsets_timestamps_and_headers() {
    let plain = parse(sample());
    let inputs = std::iter::once(plain.clone())
        .chain(Codec::ALL.into_iter().map(|c| compressed(c, &plain.bytes)));
    for original in inputs {
        let codec = original.header.compression();
        let all = decoded(&original);
        // Keep the odd offsets, and offset 4 (the null value).
        let keep = |r: &Record| r.offset_delta % 2 == 1 || r.offset_delta == 4;
        let Retained::Some(bytes) = retain(&original, 1 << 20, keep).unwrap() else {
            panic!("some records were dropped");
        };
        // Fewer records than offsets: a stored batch, not one a producer may send.
        assert!(Batch::parse(bytes.clone(), usize::MAX).is_err());
        let rewritten = parse(bytes);
        let h = rewritten.header;
        assert_eq!(h.compression(), codec, "same codec");
        assert_eq!(h.attributes, original.header.attributes);
        assert_eq!((h.base_offset, h.last_offset_delta), (100, 9));
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (7, 2, 40)
        );
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_090);
        assert_eq!(h.record_count, 6);
        let want: Vec<Record> = all.into_iter().filter(|r| keep(r)).collect();
        let got = decoded(&rewritten);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.offset_delta, g.timestamp, &g.key, &g.value, &g.headers),
                (w.offset_delta, w.timestamp, &w.key, &w.value, &w.headers),
                "{codec:?}"
            );
        }
        // Repeated header keys survive.
        assert_eq!(got[0].headers.len(), 2);
        assert_eq!(got[0].headers[0].key, got[0].headers[1].key);
    }
}

#[test]
fn max_timestamp_follows_the_kept_records() {
    let original = parse(sample());
    let Retained::Some(bytes) = retain(&original, 1 << 20, |r| r.offset_delta < 3).unwrap() else {
        panic!()
    };
    assert_eq!(parse(bytes).header.max_timestamp, 1_020);
}

#[test]
fn all_or_nothing_is_said_without_rewriting() {
    let original = parse(sample());
    assert_eq!(retain(&original, 1 << 20, |_| true).unwrap(), Retained::All);
    assert_eq!(
        retain(&original, 1 << 20, |_| false).unwrap(),
        Retained::Nothing
    );
}

#[test]
fn undecodable_batches_are_errors_not_partial_rewrites() {
    let original = compressed(Codec::Gzip, &parse(sample()).bytes);
    // Too small a decompression budget.
    assert!(matches!(
        retain(&original, 10, |_| true),
        Err(RewriteError::Records(_))
    ));
}
