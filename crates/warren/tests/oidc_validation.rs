//! ID-token validation, one case per rule of OpenID Connect Core 1.0
//! §3.1.3.7, against the real provider: its test control
//! (`tests/fixtures/oidc/tamper.js`) makes the token endpoint's next ID
//! token break one rule, a sign-in goes through the edge (curl, no
//! browser: protected page → the provider's login form → back to the
//! edge's callback), and the edge must refuse it on its page, saying why.
//! The same sign-in with the token untouched, and re-signed unchanged,
//! gets through, so that no case passes without its one change being
//! what the edge refused.

mod support;

use serde_json::Value;
use support::oidc::{self, sign_in, Provider, SignIn, ALICE};
use support::Stack;

const APP: &str = "app.example.com";

struct Rig {
    s: Stack,
    idp: Provider,
}

/// An edge serving APP (an HTTP echo origin; Alice may sign in) with the
/// controlled provider as its identity provider.
async fn rig() -> Rig {
    let (s, idp) = oidc::alice_app(APP, oidc::Kind::Controlled, "openid,email,profile").await;
    Rig { s, idp }
}

impl Rig {
    /// A sign-in as Alice with `tamper` armed (or none); checks that the
    /// provider altered exactly that token. Returns the sign-in and how
    /// many times the edge fetched the provider's key set meanwhile.
    async fn sign_in(&self, tamper: Option<&str>) -> (SignIn, u64) {
        let before = self.idp.state().await;
        if let Some(t) = tamper {
            self.idp.tamper_next(t).await;
        }
        let r = sign_in(&self.s.edge, APP, "/hello", ALICE, self.s.path()).await;
        let after = self.idp.state().await;
        assert!(
            after["pending"].is_null(),
            "{tamper:?} was not used: {after}"
        );
        let applied = |v: &Value| v["applied"].as_array().cloned().unwrap_or_default();
        let mut expect = applied(&before);
        expect.extend(tamper.map(Value::from));
        assert_eq!(applied(&after), expect, "the provider altered other tokens");
        let fetches = |v: &Value| v["jwks_fetches"].as_u64().unwrap();
        (r, fetches(&after) - fetches(&before))
    }
}

/// Signed in: back at the page asked for, answered by the origin.
fn assert_signed_in(what: &str, r: &SignIn) {
    assert_eq!(r.status, 200, "{what}: {r:?}");
    assert!(r.url.ends_with("/hello"), "{what}: {r:?}");
    let seen: Value = serde_json::from_str(&r.text)
        .unwrap_or_else(|e| panic!("{what}: not the echo origin's JSON ({e}): {r:?}"));
    assert_eq!(seen["path"], "/hello", "{what}: {seen}");
}

/// Why the edge refused `r`, if it did: the reason on its callback page.
fn refusal(r: &SignIn) -> Option<&str> {
    const LEAD: &str = "The sign-in could not be completed: ";
    (r.status == 400 && r.url.contains("/.warren/callback") && r.text.contains("Sign-in failed"))
        .then(|| r.text.split_once(LEAD))
        .flatten()
        .map(|(_, why)| why.split_once(".</p>").map_or(why, |(why, _)| why))
}

/// (tamper in tamper.js, §3.1.3.7 rule, what the refusal must say).
const CASES: &[(&str, &str, &str)] = &[
    (
        "iss",
        "2: iss is the issuer",
        "/elsewhere, not by http://127.0.0.1:",
    ),
    (
        "aud-other",
        "3: aud has the client ID",
        "the ID token is for another-client, not for this edge's client warren-test; check the client ID",
    ),
    (
        "aud-extra",
        "3: no untrusted audience",
        "the ID token is also for another-client, which this edge does not trust; configure",
    ),
    (
        "azp-missing",
        "4: several audiences need azp",
        "several audiences (warren-test, another-client) but no azp claim",
    ),
    (
        "azp-other",
        "5: azp is the client ID",
        "the ID token was issued to another-client (its azp), not to this edge's client warren-test",
    ),
    (
        "bad-signature",
        "6: signature by the provider's key",
        "the ID token's signature does not verify with the provider's key warren-test-rs256",
    ),
    (
        "unlisted-kid",
        "6: a kid not in the key set, even fetched again",
        "the ID token's key warren-test-unlisted is not in the provider's key set, even fetched again",
    ),
    (
        "alg-none",
        "7: never alg none",
        "the ID token is not signed (alg none); configure the identity provider to sign",
    ),
    (
        "hs256-secret",
        "8: never HS256 with the client secret",
        "the ID token is signed with HS256, a shared-secret algorithm Warren does not accept",
    ),
    (
        "alg-mismatch",
        "7: the alg the key is for",
        "says it is signed with PS256, but the provider's key warren-test-rs256 is for RS256",
    ),
    (
        "expired",
        "9: exp not past",
        "the ID token had expired when it arrived (its exp is more than 60 s in the past); check that the clocks",
    ),
    (
        "iat-future",
        "10: iat not in the future",
        "s in the future (more than the 60 s the clocks may differ); check that the clocks",
    ),
    (
        "iat-old",
        "10: iat not too old",
        "s ago, more than the 300 s Warren accepts",
    ),
    (
        "nonce",
        "11: nonce is this sign-in's",
        "the ID token's nonce does not match this sign-in; open the page again",
    ),
    (
        "nonce-missing",
        "11: nonce is present",
        "the ID token carries no nonce",
    ),
];

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_id_token_rules_each_refuse_the_sign_in() {
    let rig = rig().await;
    // The controls: untouched, and decoded and signed again unchanged.
    let (r, _) = rig.sign_in(None).await;
    assert_signed_in("untouched", &r);
    let (r, fetches) = rig.sign_in(Some("genuine")).await;
    assert_signed_in("re-signed unchanged", &r);
    assert_eq!(fetches, 0, "the cached key set sufficed");

    let mut wrong = Vec::new();
    for (tamper, rule, says) in CASES {
        let (r, fetches) = rig.sign_in(Some(tamper)).await;
        match refusal(&r) {
            Some(why) if why.contains(says) => {
                eprintln!("{rule} ({tamper}): refused: {why}");
            }
            Some(why) => wrong.push(format!(
                "{rule} ({tamper}): refused saying {why:?}, not {says:?}"
            )),
            None => wrong.push(format!("{rule} ({tamper}): not refused: {r:?}")),
        }
        // Only a kid missing from the cached set has it fetched again.
        let refetches = u64::from(*tamper == "unlisted-kid");
        if fetches != refetches {
            wrong.push(format!(
                "{rule} ({tamper}): {fetches} key-set fetches, not {refetches}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The refused sign-ins left no session; the two controls did.
    let sessions = rig
        .s
        .edge
        .ok(&["access", "session", "list", "--output", "json"])
        .await;
    let sessions: Vec<Value> = serde_json::from_str(&sessions).unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_key_rotation_fetches_the_key_set_once() {
    let rig = rig().await;
    let (r, _) = rig.sign_in(None).await;
    assert_signed_in("before the rotation", &r);

    // Signed with the provider's next key, which its key set publishes
    // only now: one fetch of the set, and the sign-in gets through.
    let (r, fetches) = rig.sign_in(Some("rotated")).await;
    assert_signed_in("with the rotated key", &r);
    assert_eq!(fetches, 1, "the key set is fetched again once");
    assert_eq!(rig.idp.state().await["rotated_published"], true);
    // The new key is cached now.
    let (r, fetches) = rig.sign_in(Some("rotated")).await;
    assert_signed_in("with the rotated key, again", &r);
    assert_eq!(fetches, 0, "the fetched key set is cached");

    // Another unknown kid right after: the set is not fetched again
    // (at most once a minute), and the sign-in is refused, saying so.
    let (r, fetches) = rig.sign_in(Some("unlisted-kid")).await;
    let why = refusal(&r).unwrap_or_else(|| panic!("not refused: {r:?}"));
    assert!(
        why.contains("the ID token's key warren-test-unlisted is not in the provider's key set, which was fetched again less than 60 s ago"),
        "{why}"
    );
    assert_eq!(fetches, 0, "the refetch is rate-limited");
}
