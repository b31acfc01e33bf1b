use super::*;
use crate::batch::{batches, Batch};
use crate::encode::BatchBuilder;

fn batch(records: usize, producer_id: i64) -> Batch {
    let mut b = BatchBuilder::new(500).producer(producer_id, 3, 10);
    for i in 0..records {
        b = b.record(500 + i as i64, Some(b"key"), Some(&[7; 20]));
    }
    batches(b.build(), usize::MAX).next().unwrap().unwrap()
}

const T1: [u8; 16] = [1; 16];
const T2: [u8; 16] = [2; 16];

fn sample() -> (Vec<Batch>, Vec<u8>, Vec<ObjectEntry>) {
    let input = vec![batch(1, 1), batch(3, 2), batch(2, -1)];
    let mut builder = ObjectBuilder::new(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    assert!(builder.is_empty());
    let p0 = builder.push(T1, 0, &input[0]);
    let p1 = builder.push(T1, 1, &input[1]);
    let p2 = builder.push(T2, 0, &input[2]);
    assert_eq!(p0, HEADER_LEN as u64);
    assert_eq!(p1, p0 + input[0].bytes.len() as u64);
    assert_eq!(p2, p1 + input[1].bytes.len() as u64);
    let len = builder.len();
    let (parts, entries) = builder.finish();
    assert_eq!(parts.len(), input.len() + 2);
    for (part, b) in parts[1..].iter().zip(&input) {
        assert_eq!(
            part.as_ptr(),
            b.bytes.as_ptr(),
            "batch bytes must not be copied"
        );
    }
    let object = parts.concat();
    assert_eq!(object.len() as u64, len);
    (input, object, entries)
}

#[test]
fn round_trip() {
    let (input, object, entries) = sample();
    let (header, decoded) = decode_object(&object).unwrap();
    assert_eq!(header.object_id, 0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    assert_eq!((header.version, header.flags), (1, 0));
    assert_eq!(decoded, entries);
    for (e, b) in decoded.iter().zip(&input) {
        let range = e.position as usize..e.position as usize + e.len as usize;
        assert_eq!(&object[range], &b.bytes[..]);
        assert_eq!(e.last_offset_delta, b.header.last_offset_delta);
        assert_eq!(e.record_count, b.header.record_count);
        assert_eq!(e.first_timestamp, b.header.base_timestamp);
        assert_eq!(e.max_timestamp, b.header.max_timestamp);
        assert_eq!(e.producer_id, b.header.producer_id);
        assert_eq!((e.producer_epoch, e.base_sequence), (3, 10));
    }
    assert_eq!((decoded[1].topic_id, decoded[1].partition), (T1, 1));
    assert_eq!((decoded[2].topic_id, decoded[2].partition), (T2, 0));
}

#[test]
fn a_batch_pushed_with_a_base_offset_carries_it_and_stays_valid() {
    let input = batch(3, 2);
    assert_eq!(input.header.base_offset, 0);
    let mut builder = ObjectBuilder::new(7);
    let p0 = builder.push_with_base_offset(T1, 0, &input, 1_000);
    let p1 = builder.push_with_base_offset(T1, 0, &input, 0);
    let len = builder.len();
    let (parts, entries) = builder.finish();
    // Header, 8 new bytes and the rest of the first batch, the second batch whole, footer.
    assert_eq!(parts.len(), 5);
    assert_eq!(
        parts[2].as_ptr(),
        input.bytes[8..].as_ptr(),
        "the rest is not copied"
    );
    assert_eq!(parts[3].as_ptr(), input.bytes.as_ptr());
    let object = parts.concat();
    assert_eq!(object.len() as u64, len);
    assert_eq!(decode_object(&object).unwrap().1, entries);
    let at = |p: u64| Bytes::copy_from_slice(&object[p as usize..p as usize + input.bytes.len()]);
    let moved = Batch::parse_stored(at(p0)).unwrap();
    assert_eq!(moved.header.base_offset, 1_000);
    assert_eq!(moved.bytes[8..], input.bytes[8..]);
    assert_eq!(Batch::parse_stored(at(p1)).unwrap(), input);
}

#[test]
fn a_stamped_header_replaces_the_batchs_own_and_the_records_are_not_copied() {
    let input = batch(3, 2);
    let (header, parsed) = crate::validate::log_append_time_header(&input, 99).unwrap();
    let stamped = Batch {
        header: parsed,
        bytes: input.bytes.clone(),
    };
    let mut builder = ObjectBuilder::new(7);
    let p0 = builder.push_with_header(T1, 0, &stamped, header);
    let len = builder.len();
    let (parts, entries) = builder.finish();
    assert_eq!(parts.len(), 4);
    assert_eq!(
        parts[2].as_ptr(),
        input.bytes[61..].as_ptr(),
        "the records are not copied"
    );
    let object = parts.concat();
    assert_eq!(object.len() as u64, len);
    assert_eq!(decode_object(&object).unwrap().1, entries);
    assert_eq!(
        (entries[0].first_timestamp, entries[0].max_timestamp),
        (99, 99)
    );
    let at = Bytes::copy_from_slice(&object[p0 as usize..p0 as usize + input.bytes.len()]);
    let read = Batch::parse_stored(at).unwrap();
    assert_eq!(read.header, parsed);
    assert!(read.header.is_log_append_time());
}

#[test]
fn footer_found_from_the_tail() {
    let (_, object, entries) = sample();
    // One suffix read that is large enough holds trailer and footer.
    let tail = &object[object.len() - 400..];
    let loc = decode_trailer(tail).unwrap();
    assert_eq!(loc.footer_len as usize, 3 * ENTRY_LEN + 8);
    let range = loc.footer_range(object.len() as u64).unwrap();
    assert_eq!(range.end as usize, object.len() - TRAILER_LEN);
    let footer = loc.footer_in(tail).unwrap();
    assert_eq!(footer, &object[range.start as usize..range.end as usize]);
    assert_eq!(decode_footer(footer).unwrap(), entries);
    // A suffix too short for the footer says so instead of panicking.
    assert_eq!(loc.footer_in(&tail[tail.len() - 20..]), None);
    assert!(loc.footer_range(10).is_err());
}

#[test]
fn empty_object() {
    let builder = ObjectBuilder::new(9);
    let len = builder.len();
    let (parts, entries) = builder.finish();
    let object = parts.concat();
    assert_eq!(object.len() as u64, len);
    assert_eq!(len as usize, HEADER_LEN + 8 + TRAILER_LEN);
    assert!(entries.is_empty());
    assert_eq!(decode_object(&object).unwrap().1, vec![]);
}

/// Any flipped bit is caught: by the object's checksums outside the batch area, by the batch's
/// own CRC inside it (except the base offset and leader epoch, which the CRC leaves out).
#[test]
fn flipped_bytes_are_caught() {
    let (_, object, entries) = sample();
    let batch_area = HEADER_LEN
        ..entries
            .last()
            .map_or(0, |e| (e.position + e.len as u64) as usize);
    for i in 0..object.len() {
        let mut o = object.clone();
        o[i] ^= 0x10;
        let result = decode_object(&o);
        if !batch_area.contains(&i) {
            assert!(result.is_err(), "byte {i} flipped unnoticed");
            continue;
        }
        let (_, decoded) = result.unwrap();
        let e = decoded
            .iter()
            .rev()
            .find(|e| (e.position as usize) <= i)
            .unwrap();
        let at = i - e.position as usize;
        let bytes = Bytes::copy_from_slice(&o[e.position as usize..][..e.len as usize]);
        let ok = Batch::parse(bytes, usize::MAX).is_ok();
        assert_eq!(ok, matches!(at, 0..=7 | 12..=15), "byte {at} of a batch");
    }
}

#[test]
fn unknown_versions_and_flags_are_refused() {
    let (_, object, _) = sample();
    let mut o = object.clone();
    let n = o.len();
    o[n - 12..n - 10].copy_from_slice(&2u16.to_be_bytes());
    assert_eq!(decode_trailer(&o), Err(ObjectError::UnsupportedVersion(2)));
    let mut o = object.clone();
    o[n - 10..n - 8].copy_from_slice(&1u16.to_be_bytes());
    assert_eq!(decode_trailer(&o), Err(ObjectError::UnsupportedFlags(1)));
    let mut o = object;
    o[8..10].copy_from_slice(&2u16.to_be_bytes());
    let crc = crc32c::crc32c(&o[..28]);
    o[28..32].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(decode_header(&o), Err(ObjectError::UnsupportedVersion(2)));
    assert_eq!(decode_header(b"NOTSKIFF"), Err(truncated("header", 32, 8)));
}

fn footer_with(entries: &[ObjectEntry]) -> Vec<u8> {
    let bytes = encode_footer(entries);
    bytes[..bytes.len() - TRAILER_LEN].to_vec()
}

#[test]
fn footer_count_must_match_its_length() {
    let (_, _, entries) = sample();
    let mut f = footer_with(&entries);
    let n = f.len();
    f[n - 8..n - 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = decode_footer(&f).unwrap_err();
    assert_eq!(
        e,
        ObjectError::FooterLength {
            footer_len: n as u64,
            count: u32::MAX
        }
    );
    assert!(matches!(
        decode_footer(&f[..7]),
        Err(ObjectError::Truncated { .. })
    ));
    let mut f = footer_with(&entries);
    f[0] ^= 1;
    assert!(matches!(
        decode_footer(&f),
        Err(ObjectError::ChecksumMismatch { .. })
    ));
}

#[test]
fn entries_must_lie_in_the_batch_area() {
    let (_, object, entries) = sample();
    let footer_start = object.len() - TRAILER_LEN - footer_with(&entries).len();
    for (position, len) in [
        (0, 10),
        (31, 10),
        (footer_start as u64 - 5, 6),
        (u64::MAX, 1),
    ] {
        let mut bad = entries.clone();
        bad[1].position = position;
        bad[1].len = len;
        let mut o = object[..footer_start].to_vec();
        o.extend_from_slice(&encode_footer(&bad));
        assert!(
            matches!(
                decode_object(&o),
                Err(ObjectError::EntryOutOfBounds { index: 1, .. })
            ),
            "{position}+{len}"
        );
    }
}
