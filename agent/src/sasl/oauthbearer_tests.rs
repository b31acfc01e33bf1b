use std::io::Write;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An ES256 key: the encoder and its JWK.
fn es256(kid: &str) -> (EncodingKey, serde_json::Value) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("pair");
    let point = pair.public_key().as_ref();
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

fn ed25519(kid: &str) -> (EncodingKey, serde_json::Value) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
    let jwk = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "kid": kid,
        "x": B64.encode(pair.public_key().as_ref()),
    });
    (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
}

fn jwks_file(keys: &[&serde_json::Value]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    let set = serde_json::json!({ "keys": keys });
    file.write_all(set.to_string().as_bytes()).expect("write");
    file
}

fn token(
    alg: Algorithm,
    kid: Option<&str>,
    key: &EncodingKey,
    claims: serde_json::Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key).expect("sign")
}

fn message(token: &str) -> Vec<u8> {
    format!("n,,\x01host=localhost\x01auth=Bearer {token}\x01\x01").into_bytes()
}

fn verifier(file: &tempfile::NamedTempFile, tweak: impl FnOnce(&mut OAuthConfig)) -> Verifier {
    let mut config = OAuthConfig::new(file.path().to_path_buf());
    tweak(&mut config);
    Verifier::new(config).expect("verifier")
}

#[test]
fn client_messages_as_rfc_7628_writes_them() {
    let m = client_message(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").expect("plain");
    assert_eq!(
        m,
        ClientMessage {
            authzid: None,
            token: "abc.def.ghi"
        }
    );
    let m = client_message(b"n,a=alice,\x01auth=Bearer t\x01scope=x\x01\x01").expect("authzid");
    assert_eq!(m.authzid, Some("alice"));
    for bad in [
        &b""[..],
        b"n,,",
        b"y,,\x01auth=Bearer t\x01\x01",
        b"n,,\x01auth=Bearer t\x01",
        b"n,,\x01auth=Basic dTpw\x01\x01",
        b"n,,\x01scope=x\x01\x01",
        b"n,,\x01novalue\x01\x01",
        b"n,b=x,\x01auth=Bearer t\x01\x01",
        b"\xff\xfe",
    ] {
        assert!(client_message(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn a_signed_token_names_its_principal_and_expiry() {
    let (key, jwk) = es256("k1");
    let file = jwks_file(&[&jwk]);
    let v = verifier(&file, |_| {});
    let exp = now() + 600;
    let t = token(
        Algorithm::ES256,
        Some("k1"),
        &key,
        serde_json::json!({"sub": "alice", "exp": exp}),
    );
    let verified = v.verify(&message(&t)).expect("accepted");
    assert_eq!(verified.principal, "alice");
    assert_eq!(verified.expires, UNIX_EPOCH + Duration::from_secs(exp));
}

#[test]
fn expired_forged_and_misaddressed_tokens_are_refused() {
    let (key, jwk) = es256("k1");
    let (other, _) = es256("k1");
    let file = jwks_file(&[&jwk]);
    let v = verifier(&file, |c| {
        c.expected_issuer = Some("https://idp".into());
        c.expected_audience = vec!["skiff".into()];
        c.clock_skew = Duration::from_secs(5);
    });
    let good = serde_json::json!({"sub": "alice", "exp": now() + 600, "iss": "https://idp", "aud": "skiff"});
    let t = token(Algorithm::ES256, Some("k1"), &key, good.clone());
    assert!(v.verify(&message(&t)).is_ok());

    let mut cases = Vec::new();
    let with = |k: &str, val: serde_json::Value| {
        let mut c = good.clone();
        c[k] = val;
        c
    };
    cases.push((
        "expired",
        token(
            Algorithm::ES256,
            Some("k1"),
            &key,
            with("exp", (now() - 60).into()),
        ),
    ));
    cases.push((
        "not yet valid",
        token(
            Algorithm::ES256,
            Some("k1"),
            &key,
            with("nbf", (now() + 600).into()),
        ),
    ));
    cases.push((
        "wrong issuer",
        token(
            Algorithm::ES256,
            Some("k1"),
            &key,
            with("iss", "https://evil".into()),
        ),
    ));
    cases.push((
        "wrong audience",
        token(
            Algorithm::ES256,
            Some("k1"),
            &key,
            with("aud", "kafka".into()),
        ),
    ));
    cases.push((
        "no principal",
        token(
            Algorithm::ES256,
            Some("k1"),
            &key,
            with("sub", serde_json::Value::Null),
        ),
    ));
    cases.push((
        "another key",
        token(Algorithm::ES256, Some("k1"), &other, good.clone()),
    ));
    cases.push((
        "unknown kid",
        token(Algorithm::ES256, Some("k9"), &key, good.clone()),
    ));
    let hmac = EncodingKey::from_secret(b"secret");
    cases.push((
        "HMAC",
        token(Algorithm::HS256, Some("k1"), &hmac, good.clone()),
    ));
    let mut tampered = t.clone();
    tampered.insert_str(t.find('.').expect("dot") + 1, "eyJzdWIiOiJib2IifQ");
    cases.push(("tampered", tampered));
    for (what, t) in cases {
        assert!(v.verify(&message(&t)).is_err(), "{what}: should be refused");
    }
    let authz = format!("n,a=bob,\x01auth=Bearer {t}\x01\x01");
    assert!(matches!(
        v.verify(authz.as_bytes()),
        Err(OAuthError::AuthzId(_))
    ));
}

#[test]
fn the_principal_claim_and_keys_without_kid() {
    let (key, jwk) = ed25519("ed");
    let file = jwks_file(&[&jwk]);
    let v = verifier(&file, |c| c.sub_claim = "client_id".into());
    let t = token(
        Algorithm::EdDSA,
        None,
        &key,
        serde_json::json!({"sub": "x", "client_id": "svc-1", "exp": now() + 60}),
    );
    assert_eq!(v.verify(&message(&t)).expect("accepted").principal, "svc-1");
}

#[test]
fn a_rotated_key_is_read_from_the_rewritten_file() {
    let (old, old_jwk) = es256("old");
    let (new, new_jwk) = es256("new");
    let file = jwks_file(&[&old_jwk]);
    let v = verifier(&file, |_| {});
    let claims = serde_json::json!({"sub": "alice", "exp": now() + 600});
    assert!(v
        .verify(&message(&token(
            Algorithm::ES256,
            Some("old"),
            &old,
            claims.clone()
        )))
        .is_ok());
    std::fs::write(
        file.path(),
        serde_json::json!({"keys": [new_jwk]}).to_string(),
    )
    .expect("rewrite");
    // Read again at most once a second for an unknown key.
    v.keys.lock().expect("lock").read_at -= UNKNOWN_KEY_REREAD;
    assert!(v
        .verify(&message(&token(
            Algorithm::ES256,
            Some("new"),
            &new,
            claims
        )))
        .is_ok());
}

#[test]
fn a_broken_jwks_file_fails_at_start_and_is_not_taken_later() {
    let mut bad = tempfile::NamedTempFile::new().expect("temp");
    bad.write_all(b"{not json").expect("write");
    assert!(Verifier::new(OAuthConfig::new(bad.path().to_path_buf())).is_err());
    assert!(Verifier::new(OAuthConfig::new("/nonexistent/jwks.json".into())).is_err());

    let (key, jwk) = es256("k1");
    let file = jwks_file(&[&jwk]);
    let v = verifier(&file, |c| c.refresh = Duration::from_secs(1));
    std::fs::write(file.path(), b"{truncated").expect("rewrite");
    v.keys.lock().expect("lock").read_at -= Duration::from_secs(2);
    let claims = serde_json::json!({"sub": "alice", "exp": now() + 600});
    assert!(v
        .verify(&message(&token(Algorithm::ES256, Some("k1"), &key, claims)))
        .is_ok());
}

#[test]
fn jwks_endpoint_urls() {
    assert_eq!(
        jwks_path("file:///etc/jwks.json").expect("file"),
        PathBuf::from("/etc/jwks.json")
    );
    assert_eq!(
        jwks_path("/etc/jwks.json").expect("path"),
        PathBuf::from("/etc/jwks.json")
    );
    assert!(jwks_path("https://idp/.well-known/jwks.json").is_err());
}
