//! SASL messages as a client sends them, before it has authenticated: SCRAM's client-first and
//! client-final messages (the final one against a server-first made here from a valid first
//! message) and OAUTHBEARER's message and its token's header. None may panic, whatever the bytes.
//!
//! The first byte picks the parser; the rest is the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_agent::sasl::{oauthbearer, scram};
use skiff_metastore::security::ScramMechanism;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, message)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = scram::client_first(message);
        }
        1 => {
            let mechanism = if mode & 4 == 0 {
                ScramMechanism::Sha256
            } else {
                ScramMechanism::Sha512
            };
            let Ok(first) = scram::client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL") else {
                return;
            };
            // Any bytes do for the salted password: PBKDF2 would only slow each run.
            let credential = scram::credential(mechanism, &[7; 64], b"salt".to_vec(), 4096);
            let server = scram::ServerFirst::new(
                mechanism,
                first,
                credential,
                &ring::rand::SystemRandom::new(),
            );
            let _ = server.client_final(message);
        }
        _ => {
            if let Ok(m) = oauthbearer::client_message(message) {
                let _ = jsonwebtoken::decode_header(m.token);
            }
        }
    }
});
