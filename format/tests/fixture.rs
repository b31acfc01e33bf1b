//! A pinned version-1 object guards the format: today's builder must write the same bytes, and
//! today's decoder must read them. Regenerate (only for a deliberate format change, together with
//! a version bump) with `SKIFF_BLESS=1 cargo test -p skiff-format --test fixture`.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use skiff_format::batch::{batches, Batch};
use skiff_format::encode::BatchBuilder;
use skiff_format::object::{decode_object, ObjectBuilder};
use skiff_format::records::records;

/// Found at run time: a test binary may be reused by another checkout sharing the target dir.
fn fixture() -> std::path::PathBuf {
    let root = std::env::var_os("CARGO_MANIFEST_DIR").unwrap();
    std::path::Path::new(&root).join("tests/data/object-v1.bin")
}
const OBJECT_ID: u128 = 0x0197_0000_0000_0000_0000_0000_0000_0001;

fn batch(bytes: Bytes) -> Batch {
    batches(bytes, usize::MAX).next().unwrap().unwrap()
}

fn build() -> Vec<u8> {
    let a = BatchBuilder::new(1_700_000_000_000)
        .producer(1_000, 0, 0)
        .record(1_700_000_000_000, Some(b"k1"), Some(b"hello"))
        .record_with_headers(
            1_700_000_000_007,
            None,
            Some(b"world"),
            &[(b"h", Some(b"v"))],
        )
        .build();
    let b = BatchBuilder::new(1_700_000_000_100)
        .record(1_700_000_000_100, Some(b"k2"), None)
        .build();
    let c = BatchBuilder::new(1_700_000_000_200)
        .attributes(4) // zstd bit set, records left plain: header-only paths do not care
        .producer(2_000, 3, 17)
        .record(1_700_000_000_200, None, Some(b"z"))
        .build();
    let mut builder = ObjectBuilder::new(OBJECT_ID);
    builder.push([0xaa; 16], 0, &batch(a));
    builder.push([0xaa; 16], 1, &batch(b));
    builder.push([0xbb; 16], 7, &batch(c));
    builder.finish().0.concat()
}

#[test]
fn v1_fixture_is_stable() {
    let built = build();
    if std::env::var_os("SKIFF_BLESS").is_some() {
        std::fs::write(fixture(), &built).unwrap();
    }
    let pinned = std::fs::read(fixture()).unwrap();
    assert!(
        built == pinned,
        "the builder no longer writes the pinned v1 bytes"
    );

    let (header, entries) = decode_object(&pinned).unwrap();
    assert_eq!(
        (header.version, header.flags, header.object_id),
        (1, 0, OBJECT_ID)
    );
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.topic_id[0],
                e.partition,
                e.position,
                e.len,
                e.record_count,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0xaa, 0, 32, 91, 2),
            (0xaa, 1, 123, 70, 1),
            (0xbb, 7, 193, 69, 1)
        ]
    );
    assert_eq!(entries[0].max_timestamp, 1_700_000_000_007);
    assert_eq!(
        (entries[2].producer_id, entries[2].producer_epoch),
        (2_000, 3)
    );
    assert_eq!(entries[2].base_sequence, 17);
    let first = &pinned[32..32 + 91];
    let b = Batch::parse(Bytes::copy_from_slice(first), usize::MAX).unwrap();
    let values: Vec<_> = records(&b).unwrap().map(|r| r.unwrap().value).collect();
    assert_eq!(
        values,
        [Some(Bytes::from("hello")), Some(Bytes::from("world"))]
    );
}
