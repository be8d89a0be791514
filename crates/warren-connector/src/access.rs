//! `originRequest.access`: the connector checks the identity token the
//! edge signed for an access application before it reaches the origin,
//! as cloudflared does with `access.required`.
//!
//! The edge signs an ES256 token for every request an application allows
//! (the `Warren-Access-Jwt-Assertion` header of HTTP and WebSocket
//! requests, the `assertion` of a TCP stream). The connector gets the
//! edge's JWK set over the tunnel (`KeysRequest` → `KeysIssued` on a
//! stream it opens, like `certs.rs` does for certificates), caches it in a
//! [`KeyCache`] — fetched on first need, kept 10 minutes, fetched again at
//! most once a minute when a token names a key it does not know — and
//! [`verify`]s: ES256 only, the `kid` in the set, `aud` one of the rule's
//! `audTag`, `iss` `https://<hostname>`, not expired (30 s leeway).
//!
//! Nothing here panics on what a client or the edge sends; every failure
//! is a short reason for the refusal sentence and the log.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use warren_proto::control::ControlMessage;
use warren_proto::stream::Headers;

/// The header the edge puts the signed identity in (lower-case, as on the
/// wire).
pub const ASSERTION_HEADER: &str = "warren-access-jwt-assertion";

/// How long a fetched key set is used.
const CACHE_FOR: Duration = Duration::from_secs(10 * 60);
/// Least time between two fetches caused by unknown `kid`s.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);
/// Least time between two fetches after one failed.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);
/// How long the edge has to answer a key request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 30;
/// Longest token looked at; the edge's are well under 1 KiB.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Who a verified token names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Identity {
    /// The user's subject, or the service token's client id.
    #[serde(default)]
    pub sub: String,
    /// The user's email; empty for a service token.
    #[serde(default)]
    pub email: String,
    /// `user` or `service_token`.
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// Verification keys by `kid`.
pub type KeySet = HashMap<String, DecodingKey>;

/// The edge's keys for one [`crate::serve::Runtime`]: fetched on first
/// need through a tunnel connection, then cached.
#[derive(Default)]
pub struct KeyCache {
    state: tokio::sync::Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// The last key set fetched, and when.
    keys: Option<(Arc<KeySet>, Instant)>,
    /// When a fetch was last started.
    last_attempt: Option<Instant>,
    /// Why the last fetch failed (`None` after a success).
    last_error: Option<String>,
}

impl KeyCache {
    /// Verifies `token` (as received; empty when none came) for `host`
    /// and one of `aud_tags`, fetching the edge's keys through `conn` when
    /// needed. The error is the reason, for a refusal sentence.
    pub async fn verify(
        &self,
        token: &[u8],
        host: &str,
        aud_tags: &[String],
        conn: &quinn::Connection,
    ) -> Result<Identity, String> {
        self.verify_with(token, host, aud_tags, || fetch_jwks(conn))
            .await
    }

    /// [`KeyCache::verify`] with the key fetch given as a function (the JWK
    /// set document, or why it could not be had).
    pub async fn verify_with<F, Fut>(
        &self,
        token: &[u8],
        host: &str,
        aud_tags: &[String],
        fetch: F,
    ) -> Result<Identity, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, String>>,
    {
        self.verify_at(token, host, aud_tags, fetch, Instant::now())
            .await
    }

    /// [`KeyCache::verify_with`] as if it were `now` (for the cache's
    /// timing).
    async fn verify_at<F, Fut>(
        &self,
        token: &[u8],
        host: &str,
        aud_tags: &[String],
        fetch: F,
        now: Instant,
    ) -> Result<Identity, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, String>>,
    {
        let token = token_text(token)?;
        let kid = key_id(token)?;
        let key = self.key(&kid, fetch, now).await?;
        verify(token, host, aud_tags, &key)
    }

    /// The key named `kid`, from the cache or a fresh fetch.
    async fn key<F, Fut>(&self, kid: &str, fetch: F, now: Instant) -> Result<DecodingKey, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, String>>,
    {
        let mut st = self.state.lock().await;
        let within = |t: Option<Instant>, d: Duration| {
            t.is_some_and(|t| now.saturating_duration_since(t) < d)
        };
        let fetch_now = match st.fresh(now) {
            None => !(st.last_error.is_some() && within(st.last_attempt, RETRY_FAILED_AFTER)),
            Some(set) => !set.contains_key(kid) && !within(st.last_attempt, REFRESH_AT_MOST_EVERY),
        };
        if fetch_now {
            st.last_attempt = Some(now);
            match fetch().await.and_then(|doc| parse_jwks(&doc)) {
                Ok(set) => {
                    tracing::debug!(keys = set.len(), "fetched the edge's identity-token keys");
                    st.keys = Some((Arc::new(set), now));
                    st.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot get the identity-token keys from the edge");
                    st.last_error = Some(e);
                }
            }
        }
        match st.fresh(now) {
            Some(set) => set
                .get(kid)
                .cloned()
                .ok_or_else(|| "the token was signed by a key the edge does not publish".into()),
            None => Err(format!(
                "the connector cannot get the edge's keys to check the token ({})",
                st.last_error.as_deref().unwrap_or("no answer yet")
            )),
        }
    }
}

impl CacheState {
    /// The key set, if it was fetched less than [`CACHE_FOR`] ago.
    fn fresh(&self, now: Instant) -> Option<Arc<KeySet>> {
        self.keys
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < CACHE_FOR)
            .map(|(set, _)| set.clone())
    }
}

/// The value of the assertion header when exactly one came; empty
/// otherwise (the edge sends one and removes any the client sent).
pub fn http_assertion(headers: &Headers) -> &[u8] {
    let mut found = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(ASSERTION_HEADER));
    match (found.next(), found.next()) {
        (Some((_, value)), None) => value,
        _ => &[],
    }
}

/// The token as text, or why not.
fn token_text(token: &[u8]) -> Result<&str, String> {
    if token.len() > MAX_TOKEN_LEN {
        return Err("the token is too long".into());
    }
    let token = std::str::from_utf8(token)
        .map_err(|_| "the token is not text".to_string())?
        .trim();
    if token.is_empty() {
        return Err(
            "no identity token came with it; the hostname needs an access application that \
             allows the request (`warren access app create`)"
                .into(),
        );
    }
    Ok(token)
}

/// The `kid` of an ES256 token's header.
pub fn key_id(token: &str) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| reason(&e))?;
    if header.alg != Algorithm::ES256 {
        return Err(format!(
            "the token is signed with {:?}, not ES256",
            header.alg
        ));
    }
    match header.kid {
        Some(kid) if !kid.is_empty() => Ok(kid),
        _ => Err("the token names no signing key (kid)".into()),
    }
}

/// Verifies an ES256 `token` with `key`: `aud` one of `aud_tags`, `iss`
/// `https://{host}`, `exp` present and not past (30 s leeway).
pub fn verify(
    token: &str,
    host: &str,
    aud_tags: &[String],
    key: &DecodingKey,
) -> Result<Identity, String> {
    if aud_tags.is_empty() {
        // Never "any audience": the config requires audTag, but be sure.
        return Err("the rule lists no audTag to accept".into());
    }
    let mut v = Validation::new(Algorithm::ES256);
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.set_audience(aud_tags);
    v.set_issuer(&[format!("https://{host}")]);
    v.set_required_spec_claims(&["exp", "aud", "iss"]);
    jsonwebtoken::decode::<Identity>(token, key, &v)
        .map(|data| data.claims)
        .map_err(|e| reason(&e))
}

/// The reason for a rejected token, completing "...: <reason>".
fn reason(e: &jsonwebtoken::errors::Error) -> String {
    match e.kind() {
        ErrorKind::InvalidAudience => "the token is for another application (its audience is \
                                       not in the rule's audTag)"
            .into(),
        ErrorKind::InvalidIssuer => "the token was issued for another hostname".into(),
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token is not signed with ES256".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidKeyFormat => {
            "the edge's key for the token is unusable".into()
        }
        _ => format!("the token is malformed ({e})"),
    }
}

/// One key of a JWK set; only EC P-256 signing keys are used.
#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    crv: String,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    kid: String,
    #[serde(default)]
    x: String,
    #[serde(default)]
    y: String,
}

/// Reads a JWK set document (`{"keys": [...]}`) into the ES256 keys it
/// holds; other keys are skipped. An error when none is usable.
pub fn parse_jwks(doc: &str) -> Result<KeySet, String> {
    #[derive(Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_str(doc)
        .map_err(|e| format!("the edge's key set is not a JWK set: {e}"))?;
    let mut set = KeySet::new();
    for value in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let usable = jwk.kty == "EC"
            && jwk.crv == "P-256"
            && jwk.alg.as_deref().is_none_or(|a| a == "ES256")
            && jwk.use_.as_deref().is_none_or(|u| u == "sig")
            && !jwk.kid.is_empty();
        if !usable {
            continue;
        }
        if let Ok(key) = DecodingKey::from_ec_components(&jwk.x, &jwk.y) {
            set.insert(jwk.kid, key);
        }
    }
    if set.is_empty() {
        return Err("the edge's key set has no ES256 key".into());
    }
    Ok(set)
}

/// Asks the edge for its JWK set on a new stream of `conn`.
async fn fetch_jwks(conn: &quinn::Connection) -> Result<String, String> {
    let answer = crate::ask::ask(
        conn,
        &ControlMessage::KeysRequest,
        "key request",
        REQUEST_TIMEOUT,
    )
    .await?;
    match answer {
        ControlMessage::KeysIssued(k) => Ok(k.jwks),
        other => Err(format!("unexpected answer to a key request: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header};
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
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
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
        assert!(e.contains("does not publish"), "{e}");
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
        assert!(e.contains("does not publish"), "{e}");
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
            Err::<String, _>("the edge refused the key request: no".to_string())
        };
        let t0 = Instant::now();
        let e = cache
            .verify_at(t1.as_bytes(), HOST, &aud, failing, t0)
            .await
            .unwrap_err();
        assert!(e.contains("the edge refused the key request"), "{e}");
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
        assert!(e.contains("the edge refused the key request"), "{e}");
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
}
