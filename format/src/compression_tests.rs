use std::io::Write;

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

/// The codecs Kafka defines, snappy in both of its framings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Gzip,
    Snappy,
    /// Snappy in xerial framing, with blocks of at most this many input bytes.
    Xerial(usize),
    Lz4,
    Zstd,
}

impl Codec {
    pub(crate) const ALL: [Codec; 5] = [
        Codec::Gzip,
        Codec::Snappy,
        Codec::Xerial(32 * 1024),
        Codec::Lz4,
        Codec::Zstd,
    ];

    pub(crate) fn compression(self) -> Compression {
        match self {
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy | Codec::Xerial(_) => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }

    /// `data` compressed the way producers do, with the encoders of the decoding crates.
    pub(crate) fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Codec::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(data).unwrap();
                enc.finish().unwrap()
            }
            Codec::Snappy => snap::raw::Encoder::new().compress_vec(data).unwrap(),
            Codec::Xerial(block) => xerial(&[data.chunks(block.max(1)).collect()]),
            Codec::Lz4 => {
                // Kafka's Java client writes 64 KiB independent blocks, lz4_flex's default.
                let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
                enc.write_all(data).unwrap();
                enc.finish().unwrap()
            }
            Codec::Zstd => {
                ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
            }
        }
    }
}

/// Xerial framing of `streams` (concatenated, each with its header), each a list of blocks.
pub(crate) fn xerial(streams: &[Vec<&[u8]>]) -> Vec<u8> {
    let mut out = Vec::new();
    for blocks in streams {
        out.extend_from_slice(&XERIAL_MAGIC);
        out.extend_from_slice(&1i32.to_be_bytes()); // version
        out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
        for block in blocks {
            let raw = snap::raw::Encoder::new().compress_vec(block).unwrap();
            out.extend_from_slice(&i32::try_from(raw.len()).unwrap().to_be_bytes());
            out.extend_from_slice(&raw);
        }
    }
    out
}

/// Deterministic bytes with both runs and noise, so that every codec has literals and matches.
pub(crate) fn sample(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|i| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            if (i / 700) % 2 == 0 {
                b"kafka record "[i % 13]
            } else {
                (x >> 24) as u8
            }
        })
        .collect()
}

const MIB: usize = 1 << 20;

#[test]
fn every_codec_round_trips() {
    for len in [0, 1, 100, 70_000, 300_000] {
        let data = sample(len);
        for codec in Codec::ALL.into_iter().chain([Codec::Xerial(1_000)]) {
            let payload = codec.compress(&data);
            let got = decompress(codec.compression(), &payload, MIB).unwrap();
            assert!(got == data, "{codec:?}, {len} bytes");
        }
    }
}

#[test]
fn lz4_frame_options() {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    let data = sample(200_000);
    for info in [
        FrameInfo::new().block_mode(BlockMode::Linked),
        FrameInfo::new()
            .block_size(BlockSize::Max4MB)
            .content_checksum(true)
            .block_checksums(true)
            .content_size(Some(200_000)),
    ] {
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&data).unwrap();
        let payload = enc.finish().unwrap();
        assert!(decompress(Compression::Lz4, &payload, MIB).unwrap() == data);
    }
}

#[test]
fn concatenated_streams_are_one() {
    let (a, b) = (sample(5_000), b"second part".to_vec());
    let ab = [a.clone(), b.clone()].concat();
    for codec in [Codec::Gzip, Codec::Lz4, Codec::Zstd] {
        let payload = [codec.compress(&a), codec.compress(&b)].concat();
        let got = decompress(codec.compression(), &payload, MIB).unwrap();
        assert!(got == ab, "{codec:?}");
    }
    // Two xerial streams, the second with two blocks, as snappy-java reads them.
    let payload = xerial(&[vec![&a[..]], vec![&b[..4], &b[4..]]]);
    assert!(decompress(Compression::Snappy, &payload, MIB).unwrap() == ab);
    // A zstd skippable frame (magic 0x184D2A5?, little-endian length) before and after.
    let skippable = [
        &0x184D_2A53u32.to_le_bytes()[..],
        &3u32.to_le_bytes(),
        b"xyz",
    ]
    .concat();
    let payload = [&skippable[..], &Codec::Zstd.compress(&a), &skippable].concat();
    assert!(decompress(Compression::Zstd, &payload, MIB).unwrap() == a);
    // An lz4 skippable frame (same magic range) between two frames.
    let payload = [Codec::Lz4.compress(&a), skippable, Codec::Lz4.compress(&b)].concat();
    assert!(decompress(Compression::Lz4, &payload, MIB).unwrap() == ab);
}

#[test]
fn xerial_framing_edge_cases() {
    let header_only = xerial(&[vec![]]);
    assert_eq!(
        decompress(Compression::Snappy, &header_only, MIB).unwrap(),
        b"".as_slice()
    );
    let block = |len: i32, body: &[u8]| [&header_only[..], &len.to_be_bytes(), body].concat();
    let raw = snap::raw::Encoder::new().compress_vec(b"hello").unwrap();
    let n = i32::try_from(raw.len()).unwrap();
    assert_eq!(
        decompress(Compression::Snappy, &block(n, &raw), MIB).unwrap(),
        b"hello".as_slice()
    );
    for bad in [
        block(0, b""),
        block(-1, &raw),
        block(n + 1, &raw),
        block(n - 1, &raw),
        header_only[..12].to_vec(),
        [&header_only[..], &[0, 0]].concat(),
    ] {
        let got = decompress(Compression::Snappy, &bad, MIB);
        assert!(
            matches!(got, Err(DecompressError::Snappy(_))),
            "{bad:?}: {got:?}"
        );
    }
}

#[test]
fn truncated_and_garbage_payloads_are_errors() {
    let data = sample(100_000);
    for codec in Codec::ALL {
        let payload = codec.compress(&data);
        let c = codec.compression();
        // Cut anywhere: never the original data; an error, except where the cut falls exactly on
        // a block boundary of a framing that can end there (xerial), which yields a shorter prefix.
        for cut in [
            0,
            1,
            4,
            10,
            17,
            payload.len() / 3,
            payload.len() / 2,
            payload.len() - 1,
        ] {
            match decompress(c, &payload[..cut], MIB) {
                Err(e) => assert!(!matches!(e, DecompressError::TooLarge { .. }), "{codec:?}"),
                Ok(got) => {
                    assert!(
                        matches!(codec, Codec::Xerial(_)),
                        "{codec:?} cut at {cut} decoded"
                    );
                    assert!(
                        got.len() < data.len() && data.starts_with(&got),
                        "{codec:?}"
                    );
                }
            }
        }
        // Trailing garbage after a complete stream is an error.
        let trailing = [&payload[..], b"garbage!"].concat();
        assert!(decompress(c, &trailing, MIB).is_err(), "{codec:?} trailing");
        // A flipped byte in the middle: an error or, if it only changes literals, other data.
        let mut flipped = payload.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        if let Ok(got) = decompress(c, &flipped, MIB) {
            assert_ne!(got, data, "{codec:?}: flipped byte went unnoticed");
        }
        // Garbage.
        let garbage = sample(1_000).iter().map(|b| b ^ 0xa5).collect::<Vec<_>>();
        assert!(decompress(c, &garbage, MIB).is_err(), "{codec:?} garbage");
    }
}

#[test]
fn output_is_capped() {
    let data = sample(100_000);
    for codec in Codec::ALL {
        let payload = codec.compress(&data);
        let c = codec.compression();
        assert!(
            decompress(c, &payload, data.len()).unwrap() == data,
            "{codec:?}"
        );
        assert_eq!(
            decompress(c, &payload, data.len() - 1),
            Err(DecompressError::TooLarge {
                max: data.len() - 1
            }),
            "{codec:?}"
        );
        assert_eq!(
            decompress(c, &payload, 0),
            Err(DecompressError::TooLarge { max: 0 })
        );
    }
    assert_eq!(
        decompress(Compression::None, b"abc", 3).unwrap(),
        b"abc".as_slice()
    );
    assert_eq!(
        decompress(Compression::None, b"abc", 2),
        Err(DecompressError::TooLarge { max: 2 })
    );
    assert_eq!(
        decompress(Compression::Unknown(6), b"abc", 10),
        Err(DecompressError::UnknownCodec(6))
    );
}

#[test]
fn bombs_are_refused_within_the_cap() {
    // 32 MiB of zeros: a few KiB compressed (less for zstd, whose RLE blocks cost 4 bytes each).
    let zeros = vec![0u8; 32 * MIB];
    for codec in Codec::ALL {
        let payload = codec.compress(&zeros);
        assert!(
            payload.len() < 2 * MIB,
            "{codec:?}: {} bytes",
            payload.len()
        );
        assert_eq!(
            decompress(codec.compression(), &payload, MIB),
            Err(DecompressError::TooLarge { max: MIB }),
            "{codec:?}"
        );
    }
    // A raw snappy block announcing 4 GiB - 1 is refused from its header, before any allocation.
    let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert_eq!(
        decompress(Compression::Snappy, &claim, MIB),
        Err(DecompressError::TooLarge { max: MIB })
    );
}

#[test]
fn zstd_window_is_bounded_by_the_cap() {
    // Frame headers declaring a 2 TiB window (window descriptor 0xF8: 2^(10+31)) and a 128 MiB
    // one (0x88: 2^(10+17)) are refused with a 1 MiB cap, before ruzstd reserves the window.
    for descriptor in [0xF8u8, 0x88] {
        let frame = [
            &0xFD2F_B528u32.to_le_bytes()[..],
            &[0x00, descriptor],
            &[1, 0, 0],
        ]
        .concat();
        match decompress(Compression::Zstd, &frame, MIB) {
            Err(DecompressError::Zstd(e)) => assert!(e.to_lowercase().contains("window"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}

fn codec_payload() -> impl Strategy<Value = (Compression, Vec<u8>)> {
    let codec = prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
        (5u8..8).prop_map(Compression::Unknown),
    ];
    // Half the time the payload starts with the codec's magic, so the decoders get past it.
    (codec, any::<bool>(), vec(any::<u8>(), 0..600)).prop_map(|(c, magic, mut bytes)| {
        let prefix: &[u8] = match (magic, c) {
            (true, Compression::Gzip) => &[0x1f, 0x8b, 8, 0],
            (true, Compression::Snappy) => &XERIAL_MAGIC,
            (true, Compression::Lz4) => &[0x04, 0x22, 0x4d, 0x18],
            (true, Compression::Zstd) => &[0x28, 0xb5, 0x2f, 0xfd],
            _ => &[],
        };
        bytes.splice(0..0, prefix.iter().copied());
        (c, bytes)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic((codec, bytes) in codec_payload(), max_out in 0usize..100_000) {
        if let Ok(out) = decompress(codec, &bytes, max_out) {
            prop_assert!(out.len() <= max_out);
        }
    }

    #[test]
    fn damaged_streams_never_panic(
        codec in 0usize..5,
        data in vec(any::<u8>(), 0..3_000),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        max_out in 0usize..5_000,
    ) {
        let codec = Codec::ALL[codec];
        let mut payload = codec.compress(&data);
        prop_assert_eq!(
            &decompress(codec.compression(), &payload, data.len()).unwrap()[..],
            &data[..]
        );
        for (at, x) in flips {
            if !payload.is_empty() {
                let i = at.index(payload.len());
                payload[i] ^= x;
            }
        }
        let end = cut.index(payload.len() + 1);
        if let Ok(out) = decompress(codec.compression(), &payload[..end], max_out) {
            prop_assert!(out.len() <= max_out);
        }
    }
}
