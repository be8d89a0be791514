//! ID-token validation, rule by rule as OpenID Connect Core 1.0 §3.1.3.7
//! numbers them. [`Head::parse`] reads the header (algorithm, key id);
//! [`Head::key`] picks the provider's key; [`verify`] checks the
//! signature and then the claims. The signature and `exp`/`nbf` are
//! `jsonwebtoken`'s; the rules it does not have (several audiences,
//! `azp`, `iat`, `nonce`) and the exact `iss` and `aud` comparisons are
//! here, each with its own message.
//!
//! | §3.1.3.7 | rule | where |
//! |---|---|---|
//! | 1 | encrypted ID tokens | refused: Warren registers no encryption ([`Head::parse`]) |
//! | 2 | `iss` equals the discovered issuer exactly | [`verify`] |
//! | 3 | `aud` contains the client ID and no audience Warren does not trust (it trusts only its own) | [`verify`] |
//! | 4 | several audiences: `azp` is present | [`verify`] |
//! | 5 | `azp`, when present, is the client ID | [`verify`] |
//! | 6 | signature with the provider's JWKS key, chosen by `kid` | [`Head::key`], [`verify`] |
//! | 7 | `alg` on [`ALLOWED`] (asymmetric only, never `none`) and the key's own `alg` | [`Head::parse`], [`Head::key`] |
//! | 8 | MAC algorithms (HS*, keyed with the client secret): never accepted | [`Head::parse`] |
//! | 9 | `exp` not past, with [`CLOCK_SKEW`] leeway | [`verify`] (`jsonwebtoken`) |
//! | 10 | `iat` present, at most [`CLOCK_SKEW`] in the future and [`MAX_AGE`] in the past | [`verify`] |
//! | 11 | `nonce` equals the one this sign-in sent (the device grant sends none, and takes no token with one) | [`verify`] |
//! | 12, 13 | `acr`, `auth_time` | not requested (no `acr_values`, no `max_age`), so not checked |
//!
//! Key rotation (a `kid` not in the cached key set: one fetch of the set
//! again, rate-limited) is the caller's, in `client`.

use std::collections::HashMap;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::client::{failed, IdpError};

/// How far the edge's and the provider's clocks may differ: the leeway
/// on `exp` and `nbf`, and how far in the future `iat` may be.
pub(super) const CLOCK_SKEW: u64 = 60;
/// How old (by `iat`) an ID token may be when it arrives. It comes
/// straight from the token endpoint, so it was issued a moment ago; an
/// older one is a replay or a provider whose clock is wrong.
pub(super) const MAX_AGE: i64 = 300;

/// The signature algorithms Warren accepts. Asymmetric only: `none` is
/// never accepted, nor HS* (a MAC keyed with the client secret, which the
/// edge also holds, so it proves nothing about who issued the token).
pub(super) const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const FIX_ALG: &str = "configure the identity provider to sign this client's ID tokens with RS256 (or PS256, ES256, ES384, EdDSA)";
const FIX_CLOCK: &str =
    "check that the clocks of the edge and of the identity provider are right (NTP)";

/// The ID token's header, as far as Warren reads it.
pub(super) struct Head {
    pub(super) alg: Algorithm,
    pub(super) kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHead {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl Head {
    /// The header of `token`, refused unless its algorithm is allowed (§3.1.3.7 1, 7, 8).
    pub(super) fn parse(token: &str) -> Result<Head, IdpError> {
        let parts = token.split('.').count();
        if parts == 5 {
            return Err(failed(
                "the ID token is encrypted, which Warren does not support; configure the identity provider not to encrypt this client's ID tokens",
            ));
        }
        let raw = (parts == 3)
            .then(|| token.split('.').next())
            .flatten()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<RawHead>(&h).ok())
            .ok_or_else(|| failed("the identity provider's ID token is not a signed JWT"))?;
        if raw.crit.is_some() {
            return Err(failed(
                "the ID token's header has critical extensions (crit), which Warren does not understand",
            ));
        }
        let alg = match Algorithm::from_str(&raw.alg) {
            Ok(a) if ALLOWED.contains(&a) => a,
            _ if raw.alg.eq_ignore_ascii_case("none") => {
                return Err(failed(format!(
                    "the ID token is not signed (alg none); {FIX_ALG}"
                )))
            }
            _ if raw.alg.starts_with("HS") => {
                return Err(failed(format!(
                    "the ID token is signed with {}, a shared-secret algorithm Warren does not accept; {FIX_ALG}",
                    raw.alg
                )))
            }
            _ => {
                return Err(failed(format!(
                    "the ID token is signed with {}, which Warren does not accept; {FIX_ALG}",
                    raw.alg
                )))
            }
        };
        Ok(Head { alg, kid: raw.kid })
    }

    /// The key in `set` this token names (§3.1.3.7 6, 7): by `kid`, or
    /// the one key for the algorithm when the token names none. `None`:
    /// not in this set (the caller may fetch the set again).
    pub(super) fn key(&self, set: &JwkSet) -> Result<Option<Jwk>, IdpError> {
        let Some(kid) = &self.kid else {
            let fits: Vec<&Jwk> = set.keys.iter().filter(|k| self.fits(k).is_ok()).collect();
            return match fits[..] {
                [] => Ok(None),
                [one] => Ok(Some(one.clone())),
                _ => Err(failed(format!(
                    "the ID token names no key (kid) and the provider publishes {} keys for {:?}; configure the identity provider to put the kid in its ID tokens",
                    fits.len(),
                    self.alg
                ))),
            };
        };
        let Some(jwk) = set.find(kid) else {
            return Ok(None);
        };
        self.fits(jwk)?;
        Ok(Some(jwk.clone()))
    }

    /// Whether `jwk` may verify this token: a signing key of the
    /// algorithm's kind, and of this very algorithm if the key names one.
    fn fits(&self, jwk: &Jwk) -> Result<(), IdpError> {
        let kid = jwk.common.key_id.as_deref().unwrap_or("without a kid");
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            return Err(failed(format!(
                "the provider's key {kid} is not a signing key (its use is not sig)"
            )));
        }
        if let Some(named) = jwk.common.key_algorithm {
            if named.to_string() != format!("{:?}", self.alg) {
                return Err(failed(format!(
                    "the ID token says it is signed with {:?}, but the provider's key {kid} is for {named}; {FIX_ALG}",
                    self.alg
                )));
            }
        }
        use Algorithm as A;
        let kind_fits = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => matches!(
                self.alg,
                A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
            ),
            AlgorithmParameters::EllipticCurve(_) => matches!(self.alg, A::ES256 | A::ES384),
            AlgorithmParameters::OctetKeyPair(_) => self.alg == A::EdDSA,
            AlgorithmParameters::OctetKey(_) => false,
        };
        if !kind_fits {
            return Err(failed(format!(
                "the ID token says it is signed with {:?}, which the provider's key {kid} cannot verify; {FIX_ALG}",
                self.alg
            )));
        }
        Ok(())
    }
}

/// `aud`: one audience or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The ID token's claims Warren reads.
#[derive(Deserialize)]
pub(super) struct IdClaims {
    iss: String,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    nonce: Option<String>,
    pub(super) sub: String,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) email_verified: Option<bool>,
    #[serde(flatten)]
    pub(super) rest: HashMap<String, serde_json::Value>,
}

/// What this sign-in expects of its ID token.
pub(super) struct Expect<'a> {
    /// The issuer of the provider's discovery document.
    pub(super) issuer: &'a str,
    pub(super) client_id: &'a str,
    /// The nonce this sign-in sent; `None` for the device authorization
    /// grant (RFC 8628), which sends none.
    pub(super) nonce: Option<&'a str>,
    /// The current time, in seconds since the epoch.
    pub(super) now: i64,
}

/// The claims of `token`, once its signature (with `jwk`) and every
/// claim rule of §3.1.3.7 hold.
pub(super) fn verify(
    token: &str,
    head: &Head,
    jwk: &Jwk,
    want: &Expect<'_>,
) -> Result<IdClaims, IdpError> {
    let kid = head.kid.as_deref().unwrap_or("without a kid");
    let key = DecodingKey::from_jwk(jwk).map_err(|e| {
        failed(format!(
            "the provider's key {kid} is unusable ({e}); check the identity provider's key set"
        ))
    })?;
    // 6, 7, 9: signature, algorithm, expiry (and nbf) are jsonwebtoken's.
    let mut v = Validation::new(head.alg);
    v.leeway = CLOCK_SKEW;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false; // 3-5, below, with the rules jsonwebtoken does not have
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &v)
        .map_err(|e| failed(match e.kind() {
            ErrorKind::InvalidSignature => format!(
                "the ID token's signature does not verify with the provider's key {kid}; it was not issued by the identity provider, or the provider's key set is wrong"
            ),
            ErrorKind::InvalidAlgorithm => format!(
                "the ID token says it is signed with {:?}, which the provider's key {kid} cannot verify; {FIX_ALG}",
                head.alg
            ),
            ErrorKind::ExpiredSignature => format!(
                "the ID token had expired when it arrived (its exp is more than {CLOCK_SKEW} s in the past); {FIX_CLOCK}"
            ),
            ErrorKind::ImmatureSignature => format!(
                "the ID token is not valid yet (its nbf is more than {CLOCK_SKEW} s in the future); {FIX_CLOCK}"
            ),
            ErrorKind::MissingRequiredClaim(c) => format!(
                "the ID token has no {c} claim, which OpenID Connect requires"
            ),
            ErrorKind::Json(e) => format!(
                "the ID token's claims are not those of an OpenID Connect ID token ({e})"
            ),
            _ => format!("the ID token is not valid ({e})"),
        }))?
        .claims;
    // 2: the issuer, exactly.
    if claims.iss != want.issuer {
        return Err(failed(format!(
            "the ID token was issued by {}, not by {}, the identity provider's issuer; check the provider's issuer setting",
            claims.iss, want.issuer
        )));
    }
    // 3-5: audiences and the authorized party.
    let auds: Vec<&str> = match &claims.aud {
        Audience::One(a) => vec![a.as_str()],
        Audience::Many(v) => v.iter().map(String::as_str).collect(),
    };
    if !auds.contains(&want.client_id) {
        return Err(failed(format!(
            "the ID token is for {}, not for this edge's client {}; check the client ID configured for the identity provider",
            auds.join(", "),
            want.client_id
        )));
    }
    if auds.len() > 1 && claims.azp.is_none() {
        return Err(failed(format!(
            "the ID token has several audiences ({}) but no azp claim naming the client it was issued to; configure the identity provider to issue this client's ID tokens to it alone",
            auds.join(", ")
        )));
    }
    let untrusted: Vec<&str> = auds
        .iter()
        .copied()
        .filter(|a| *a != want.client_id)
        .collect();
    if !untrusted.is_empty() {
        return Err(failed(format!(
            "the ID token is also for {}, which this edge does not trust; configure the identity provider to issue this client's ID tokens to it alone",
            untrusted.join(", ")
        )));
    }
    if let Some(azp) = claims.azp.as_deref().filter(|a| *a != want.client_id) {
        return Err(failed(format!(
            "the ID token was issued to {azp} (its azp), not to this edge's client {}; check the client ID configured for the identity provider",
            want.client_id
        )));
    }
    // 10: issued a moment ago.
    let Some(iat) = claims.iat else {
        return Err(failed(
            "the ID token has no iat claim, which OpenID Connect requires",
        ));
    };
    // Whole seconds; a fraction cannot matter against these bounds.
    let iat = iat as i64;
    let skew = i64::try_from(CLOCK_SKEW).unwrap_or(i64::MAX);
    if iat > want.now.saturating_add(skew) {
        return Err(failed(format!(
            "the ID token was issued {} s in the future (more than the {CLOCK_SKEW} s the clocks may differ); {FIX_CLOCK}",
            iat - want.now
        )));
    }
    if iat < want.now.saturating_sub(MAX_AGE) {
        return Err(failed(format!(
            "the ID token was issued {} s ago, more than the {MAX_AGE} s Warren accepts for a token fresh from the token endpoint; {FIX_CLOCK}",
            want.now - iat
        )));
    }
    // 11: this sign-in's nonce. A sign-in that sent none (the device
    // grant) takes no token carrying one: that token was issued to
    // another sign-in.
    match (claims.nonce.as_deref(), want.nonce) {
        (None, None) => Ok(claims),
        (Some(_), None) => Err(failed(
            "the ID token carries a nonce, though this sign-in sent none; it was issued to another sign-in, so start over",
        )),
        (None, Some(_)) => Err(failed(
            "the ID token carries no nonce, though this sign-in sent one; the identity provider must return it in the ID token",
        )),
        (Some(n), Some(w)) if !nonce_eq(n, w) => Err(failed(
            "the ID token's nonce does not match this sign-in; open the page again to start over",
        )),
        (Some(_), Some(_)) => Ok(claims),
    }
}

fn nonce_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    fn set(keys: &str) -> JwkSet {
        serde_json::from_str(&format!(r#"{{"keys":[{keys}]}}"#)).unwrap()
    }

    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"eA","y":"eQ","use":"sig","kid":"ec1"}"#;
    const EC2: &str = r#"{"kty":"EC","crv":"P-256","x":"eA","y":"eQ","kid":"ec2"}"#;
    const RSA_ENC: &str = r#"{"kty":"RSA","n":"bg","e":"AQAB","use":"enc","kid":"rsa-enc"}"#;

    fn refused(r: Result<Head, IdpError>) -> String {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn headers_outside_the_allow_list_are_refused() {
        assert!(refused(Head::parse(&token(r#"{"alg":"none"}"#))).contains("not signed"));
        assert!(refused(Head::parse(&token(r#"{"alg":"HS512"}"#))).contains("shared-secret"));
        assert!(refused(Head::parse(&token(r#"{"alg":"PS512"}"#))).contains("does not accept"));
        assert!(refused(Head::parse(&token(r#"{"alg":"ES256","crit":["b64"]}"#))).contains("crit"));
        assert!(refused(Head::parse("a.b.c.d.e")).contains("encrypted"));
        assert!(refused(Head::parse("not a jwt")).contains("not a signed JWT"));
        let h = Head::parse(&token(r#"{"alg":"ES256","kid":"ec1"}"#)).unwrap();
        assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::ES256, Some("ec1")));
    }

    #[test]
    fn keys_are_chosen_by_kid_or_as_the_only_one_that_fits() {
        let es = |kid: Option<&str>| Head {
            alg: Algorithm::ES256,
            kid: kid.map(str::to_owned),
        };
        let one = set(&format!("{EC},{RSA_ENC}"));
        let got = es(None).key(&one).unwrap().unwrap();
        assert_eq!(got.common.key_id.as_deref(), Some("ec1"));
        assert!(es(Some("other")).key(&one).unwrap().is_none());
        let two = set(&format!("{EC},{EC2}"));
        assert!(es(None)
            .key(&two)
            .unwrap_err()
            .to_string()
            .contains("names no key"));
        assert_eq!(
            es(Some("ec2"))
                .key(&two)
                .unwrap()
                .unwrap()
                .common
                .key_id
                .as_deref(),
            Some("ec2")
        );
        // A key of another kind, or not for signing, is refused by kid.
        let rs = Head {
            alg: Algorithm::RS256,
            kid: Some("ec1".into()),
        };
        assert!(rs
            .key(&one)
            .unwrap_err()
            .to_string()
            .contains("cannot verify"));
        let enc = Head {
            alg: Algorithm::RS256,
            kid: Some("rsa-enc".into()),
        };
        assert!(enc
            .key(&one)
            .unwrap_err()
            .to_string()
            .contains("not a signing key"));
    }
}
