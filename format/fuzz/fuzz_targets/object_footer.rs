//! Arbitrary bytes as a whole object, as an object's tail and as a footer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_format::object::{decode_footer, decode_object, decode_trailer, ObjectEntry};

fuzz_target!(|data: &[u8]| {
    if let Ok((_, entries)) = decode_object(data) {
        for ObjectEntry { position, len, .. } in entries {
            let end = position + u64::from(len);
            assert!(end <= data.len() as u64);
        }
    }
    if let Ok(location) = decode_trailer(data) {
        let _ = location.footer_range(data.len() as u64);
        if let Some(footer) = location.footer_in(data) {
            let _ = decode_footer(footer);
        }
    }
    let _ = decode_footer(data);
});
