use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use super::*;

const HOST: &str = "app.example.com";
const TAG: &str = "0123456789abcdef0123456789abcdef";

/// A P-256 key: its signer and its JWK.
struct TestKey {
    kid: String,
    signer: EncodingKey,
    jwk: Value,
}

fn test_key(kid: &str) -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    TestKey {
        kid: kid.into(),
        signer: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
    }
}

fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(aud: &str, iss_host: &str, exp: i64) -> Value {
    json!({
        "iss": format!("https://{iss_host}"),
        "aud": [aud],
        "sub": "client-id-1",
        "email": "",
        "groups": [],
        "type": "service_token",
        "iat": now(),
        "exp": exp,
    })
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.signer).unwrap()
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

/// Verifies `token` against a cache that serves `set`.
async fn check(token: &str, host: &str, aud: &[&str], set: &str) -> Result<Identity, String> {
    let set = set.to_owned();
    KeyCache::default()
        .verify_with(token.as_bytes(), host, &tags(aud), || async { Ok(set) })
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn accepts_a_good_token() {
    let k = test_key("k1");
    let set = jwks(&[&k]);
    let token = sign(&k, &claims(TAG, HOST, now() + 300));
    let who = check(&token, HOST, &["other", TAG], &set).await.unwrap();
    assert_eq!(who.sub, "client-id-1");
    assert_eq!(who.kind, "service_token");
    // A single-string audience is fine too.
    let mut c = claims(TAG, HOST, now() + 300);
    c["aud"] = json!(TAG);
    assert!(check(&sign(&k, &c), HOST, &[TAG], &set).await.is_ok());
    // Within the leeway.
    let token = sign(&k, &claims(TAG, HOST, now() - 10));
    assert!(check(&token, HOST, &[TAG], &set).await.is_ok());
}

#[tokio::test]
async fn refuses_bad_tokens() {
    let k = test_key("k1");
    let set = jwks(&[&k]);
    let good_exp = now() + 300;

    let e = check(
        &sign(&k, &claims("another", HOST, good_exp)),
        HOST,
        &[TAG],
        &set,
    )
    .await
    .unwrap_err();
    assert!(e.contains("another application"), "{e}");

    let e = check(
        &sign(&k, &claims(TAG, "evil.example.com", good_exp)),
        HOST,
        &[TAG],
        &set,
    )
    .await
    .unwrap_err();
    assert_eq!(e, "the token was issued for another hostname");

    let e = check(
        &sign(&k, &claims(TAG, HOST, now() - 120)),
        HOST,
        &[TAG],
        &set,
    )
    .await
    .unwrap_err();
    assert_eq!(e, "the token has expired");

    // No exp at all.
    let mut c = claims(TAG, HOST, good_exp);
    c.as_object_mut().unwrap().remove("exp");
    let e = check(&sign(&k, &c), HOST, &[TAG], &set).await.unwrap_err();
    assert_eq!(e, "the token has no exp claim");

    // Signed by a key the edge does not publish, under a known kid.
    let impostor = test_key("k1");
    let e = check(
        &sign(&impostor, &claims(TAG, HOST, good_exp)),
        HOST,
        &[TAG],
        &set,
    )
    .await
    .unwrap_err();
    assert_eq!(e, "the token's signature does not verify");

    // An unknown kid.
    let stranger = test_key("k9");
    let e = check(
        &sign(&stranger, &claims(TAG, HOST, good_exp)),
        HOST,
        &[TAG],
        &set,
    )
    .await
    .unwrap_err();
    assert_eq!(e, "the token was signed by a key the edge does not publish");

    // No kid.
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims(TAG, HOST, good_exp),
        &k.signer,
    )
    .unwrap();
    let e = check(&token, HOST, &[TAG], &set).await.unwrap_err();
    assert_eq!(e, "the token names no signing key (kid)");

    // HS256 with the kid of an EC key (algorithm confusion).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims(TAG, HOST, good_exp),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    let e = check(&token, HOST, &[TAG], &set).await.unwrap_err();
    assert!(e.contains("not ES256"), "{e}");

    // alg: none.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims(TAG, HOST, good_exp).to_string());
    let e = check(&format!("{header}.{body}."), HOST, &[TAG], &set)
        .await
        .unwrap_err();
    assert!(e.contains("malformed"), "{e}");

    // An empty audTag never means "any".
    let token = sign(&k, &claims(TAG, HOST, good_exp));
    assert!(check(&token, HOST, &[], &set).await.is_err());
}

#[tokio::test]
async fn garbage_never_panics() {
    let k = test_key("k1");
    let set = jwks(&[&k]);
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"   ".to_vec(),
        b"not a token".to_vec(),
        b"a.b.c".to_vec(),
        b"....".to_vec(),
        b"eyJhbGciOiJFUzI1NiJ9..".to_vec(),
        vec![0xff, 0xfe, 0x00],
        long.into_bytes(),
        "é.é.é".as_bytes().to_vec(),
    ];
    for token in cases {
        let set = set.clone();
        let r = KeyCache::default()
            .verify_with(&token, HOST, &tags(&[TAG]), || async { Ok(set) })
            .await;
        assert!(r.is_err(), "{token:?}");
    }
    let e = check("", HOST, &[TAG], &set).await.unwrap_err();
    assert!(e.starts_with("no identity token came with it"), "{e}");
    // A bad key set is an error, not a panic.
    for doc in [
        "",
        "{}",
        "[]",
        r#"{"keys": 1}"#,
        r#"{"keys": [{"kty": "EC"}]}"#,
        r#"{"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]}"#,
    ] {
        assert!(parse_jwks(doc).is_err(), "{doc}");
    }
    let token = sign(&k, &claims(TAG, HOST, now() + 300));
    let e = check(&token, HOST, &[TAG], "{}").await.unwrap_err();
    assert!(e.contains("cannot get the edge's keys"), "{e}");
}

#[test]
fn takes_the_assertion_header_only_when_there_is_one() {
    let h = |pairs: &[(&str, &str)]| -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    };
    assert_eq!(http_assertion(&h(&[])), b"");
    assert_eq!(
        http_assertion(&h(&[("accept", "*/*"), (ASSERTION_HEADER, "t1")])),
        b"t1"
    );
    assert_eq!(
        http_assertion(&h(&[(ASSERTION_HEADER, "t1"), (ASSERTION_HEADER, "t2")])),
        b""
    );
}

#[tokio::test]
async fn caches_and_refreshes_keys() {
    let k1 = test_key("k1");
    let k2 = test_key("k2");
    let cache = KeyCache::default();
    let fetches = AtomicUsize::new(0);
    let serve = |doc: String| {
        let fetches = &fetches;
        move || async move {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(doc)
        }
    };
    let aud = tags(&[TAG]);
    let t1 = sign(&k1, &claims(TAG, HOST, now() + 300));
    let t2 = sign(&k2, &claims(TAG, HOST, now() + 300));
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);

    // Fetched on first need, then cached.
    for s in 0..3 {
        cache
            .verify_at(t1.as_bytes(), HOST, &aud, serve(jwks(&[&k1])), at(s))
            .await
            .unwrap();
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // An unknown kid within a minute of a fetch does not fetch again.
    let e = cache
        .verify_at(t2.as_bytes(), HOST, &aud, serve(jwks(&[&k2, &k1])), at(59))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not publish"), "{e}");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // A minute after it, it does, and the new key is then known.
    cache
        .verify_at(t2.as_bytes(), HOST, &aud, serve(jwks(&[&k2, &k1])), at(60))
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    cache
        .verify_at(t1.as_bytes(), HOST, &aud, serve(jwks(&[&k2, &k1])), at(61))
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // Ten minutes after a fetch the set is fetched again even for a
    // known kid; a key the edge no longer publishes stops verifying.
    cache
        .verify_at(t1.as_bytes(), HOST, &aud, serve(jwks(&[&k2])), at(60 + 599))
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    let e = cache
        .verify_at(t1.as_bytes(), HOST, &aud, serve(jwks(&[&k2])), at(60 + 600))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not publish"), "{e}");
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_failed_fetch_is_retried_but_not_at_once() {
    let k1 = test_key("k1");
    let cache = KeyCache::default();
    let fetches = AtomicUsize::new(0);
    let aud = tags(&[TAG]);
    let t1 = sign(&k1, &claims(TAG, HOST, now() + 300));
    let failing = || async {
        fetches.fetch_add(1, Ordering::SeqCst);
        Err::<String, _>(KeyFetchError::Ask(crate::ask::AskError::Refused {
            what: "key request",
            message: "no".into(),
        }))
    };
    let t0 = Instant::now();
    let e = cache
        .verify_at(t1.as_bytes(), HOST, &aud, failing, t0)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("the edge refused the key request"),
        "{e}"
    );
    // Right away: the same answer, no new fetch.
    let e = cache
        .verify_at(
            t1.as_bytes(),
            HOST,
            &aud,
            failing,
            t0 + Duration::from_secs(4),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("the edge refused the key request"),
        "{e}"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Later: fetched again.
    let doc = jwks(&[&k1]);
    cache
        .verify_at(
            t1.as_bytes(),
            HOST,
            &aud,
            || async { Ok(doc) },
            t0 + RETRY_FAILED_AFTER,
        )
        .await
        .unwrap();
}
