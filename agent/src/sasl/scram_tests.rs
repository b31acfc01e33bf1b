use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::*;

/// RFC 7677's example exchange.
const CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_credential() -> ScramCredential {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
    let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096);
    credential(ScramMechanism::Sha256, &salted, salt, 4096)
}

fn rfc_exchange(credential: ScramCredential) -> ServerFirst {
    let first = client_first(CLIENT_FIRST).expect("client first");
    assert_eq!(first.user, "user");
    ServerFirst::with_server_nonce(ScramMechanism::Sha256, first, credential, SERVER_NONCE)
}

#[test]
fn the_rfc_7677_exchange_succeeds() {
    let server = rfc_exchange(rfc_credential());
    assert_eq!(server.message(), SERVER_FIRST.as_bytes());
    let last = server.client_final(CLIENT_FINAL).expect("proof accepted");
    assert_eq!(last, SERVER_FINAL);
}

#[test]
fn a_wrong_password_a_wrong_nonce_and_a_decoy_all_fail() {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
    let wrong = salted_password(ScramMechanism::Sha256, b"pencils", &salt, 4096);
    let server = rfc_exchange(credential(ScramMechanism::Sha256, &wrong, salt, 4096));
    assert!(matches!(
        server.client_final(CLIENT_FINAL),
        Err(ScramError::Proof)
    ));

    let server = rfc_exchange(rfc_credential());
    let other_nonce = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    assert!(matches!(
        server.client_final(other_nonce),
        Err(ScramError::Nonce)
    ));

    // librdkafka before 2.6.1 repeats its own nonce in front: accepted. Anything else is not.
    let server = rfc_exchange(rfc_credential());
    let doubled = b"c=biws,r=rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    // The proof covers the message it came in, so this one's proof is wrong: the nonce passes.
    assert!(matches!(
        server.client_final(doubled),
        Err(ScramError::Proof)
    ));
    let tripled = b"c=biws,r=rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA";
    assert!(matches!(
        server.client_final(tripled),
        Err(ScramError::Nonce)
    ));

    let decoy = decoy(ScramMechanism::Sha256, "user", b"secret");
    assert_eq!(
        decoy,
        super::decoy(ScramMechanism::Sha256, "user", b"secret")
    );
    assert!(rfc_exchange(decoy).client_final(CLIENT_FINAL).is_err());
}

#[test]
fn plain_passwords_are_checked_against_the_credential() {
    for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        let salted = salted_password(mechanism, b"secret", b"salt", 4096);
        let cred = credential(mechanism, &salted, b"salt".to_vec(), 4096);
        assert!(password_matches(mechanism, &cred, b"secret"));
        assert!(!password_matches(mechanism, &cred, b"Secret"));
    }
}

#[test]
fn malformed_first_messages_are_refused() {
    for bad in [
        &b""[..],
        b"n,,",
        b"p=tls-unique,,n=user,r=abc",
        b"n,,r=abc,n=user",
        b"n,,n=user",
        b"n,,n=,r=abc",
        b"n,,n=us=er,r=abc",
        b"n,,n=user,r=abc,tokenauth=true",
        b"n,a=other,n=user,r=abc",
        b"\xff\xfe",
    ] {
        assert!(
            client_first(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let escaped = client_first(b"n,a=a=2Cb,n=a=2Cb,r=abc").expect("escaped name");
    assert_eq!(escaped.user, "a,b");
}

#[test]
fn malformed_final_messages_are_refused() {
    let server = rfc_exchange(rfc_credential());
    for bad in [
        &b""[..],
        b"c=biws",
        b"c=biws,r=x",
        b"c=!!!,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,p=AAAA",
    ] {
        assert!(
            server.client_final(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let huge = vec![b'a'; 10_000];
    assert!(server.client_final(&huge).is_err());
}
