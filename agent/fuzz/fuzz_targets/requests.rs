//! Request frames, through everything the agent does before a handler sees them: the api and
//! version lookup, the header decoder, the body guard, and then kafka-protocol's decoder for that
//! api and version, which must neither panic nor allocate past what the frame holds once the
//! guard has let the body through (libFuzzer's -malloc_limit_mb catches the latter).
//!
//! The first byte picks how the rest is read. Even: the rest is a whole frame as a client sends
//! it (after the size), header included. Odd: the next two bytes pick a supported api (an index
//! into the agent's version table) and one of its versions, a valid header for them is written
//! here, and the rest is the body, so the fuzzer spends its time in the body decoders.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;
use skiff_agent::handlers::{check, Checked, Parsed};
use skiff_agent::protocol::versions::SUPPORTED;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let frame = if mode & 1 == 0 {
        Bytes::copy_from_slice(rest)
    } else {
        let [api, version, body @ ..] = rest else {
            return;
        };
        let (key, min, max) = SUPPORTED[usize::from(*api) % SUPPORTED.len()];
        let span = u16::try_from(max - min + 1).unwrap_or(1);
        let version = min + i16::try_from(u16::from(*version) % span).unwrap_or(0);
        let mut frame = BytesMut::new();
        frame.put_i16(key as i16);
        frame.put_i16(version);
        frame.put_i32(7);
        frame.put_i16(4);
        frame.put_slice(b"fuzz");
        if key.request_header_version(version) >= 2 {
            frame.put_u8(0); // no tagged fields
        }
        frame.put_slice(body);
        frame.freeze()
    };
    if let Ok(Parsed::Checked(Checked {
        api,
        version,
        mut body,
        ..
    })) = check(frame)
    {
        let _ = RequestKind::decode(api, &mut body, version);
    }
});
