//! The edge's signing keys and the identity tokens it signs with them.
//!
//! Keys are ECDSA P-256 (JWT `ES256`), kept in the store so every edge
//! process signs with the same key; the newest signs, the previous one
//! stays published in the JWKS (`/.warren/certs`) so tokens signed just
//! before a rotation still verify. [`ensure_current`] adds a key at start
//! when there is none or the newest is older than the rotation period.
//!
//! One claim set, [`Claims`], serves three uses: the session cookie, the
//! CLI token (both carry `sid`), and the `Warren-Access-Jwt-Assertion`
//! header for origins.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use warren_store::{SigningKeyRow, Store, StoreError};

/// How many keys stay published (the signing one and its predecessor).
const KEEP: usize = 2;

/// What an identity token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `https://<hostname>`: the edge as the client reached it.
    pub iss: String,
    /// The application's tag.
    pub aud: Vec<String>,
    /// The user's subject at the identity provider, or the service token's
    /// client id.
    pub sub: String,
    /// The user's email; empty for a service token.
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `user` or `service_token`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The service token's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    pub iat: i64,
    pub exp: i64,
    /// The session (cookie and CLI tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Why a presented token was not accepted (for logs; the client is told
/// only that it must sign in again).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token was signed by a key this edge does not know")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// The keys of one snapshot: the signer and every published verifier.
pub struct Keys {
    signer: Option<(String, EncodingKey)>,
    verifiers: HashMap<String, DecodingKey>,
    /// `{"keys": [...]}` as served at `/.warren/certs`.
    jwks: String,
}

#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'static str,
    crv: &'static str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    kid: &'a str,
    x: String,
    y: String,
}

impl Keys {
    /// Builds the keys from the store's rows (newest first). Rows that do
    /// not parse are skipped with an error log.
    pub fn from_rows(rows: &[SigningKeyRow]) -> Keys {
        let mut signer = None;
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for row in rows {
            let pair = match EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &row.pkcs8,
                &SystemRandom::new(),
            ) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(kid = %row.kid, error = %e, "a stored signing key does not parse; skipping it");
                    continue;
                }
            };
            // Uncompressed point: 0x04 || x || y.
            let point = pair.public_key().as_ref();
            let (x, y) = (
                URL_SAFE_NO_PAD.encode(&point[1..33]),
                URL_SAFE_NO_PAD.encode(&point[33..65]),
            );
            match DecodingKey::from_ec_components(&x, &y) {
                Ok(d) => {
                    verifiers.insert(row.kid.clone(), d);
                }
                Err(e) => {
                    tracing::error!(kid = %row.kid, error = %e, "a stored signing key has an unusable public key; skipping it");
                    continue;
                }
            }
            if signer.is_none() {
                signer = Some((row.kid.clone(), EncodingKey::from_ec_der(&row.pkcs8)));
            }
            jwks.push(Jwk {
                kty: "EC",
                crv: "P-256",
                alg: "ES256",
                use_: "sig",
                kid: &row.kid,
                x,
                y,
            });
        }
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Keys {
            signer,
            verifiers,
            jwks,
        }
    }

    /// The JWK set document.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// Signs `claims` with the newest key; `None` if there is no key.
    pub fn sign(&self, claims: &Claims) -> Option<String> {
        self.sign_any(claims)
    }

    /// Signs any claim set (it must carry `aud` and `exp`).
    pub fn sign_any<T: Serialize>(&self, claims: &T) -> Option<String> {
        let (kid, key) = self.signer.as_ref()?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        match jsonwebtoken::encode(&header, claims, key) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign an identity token");
                None
            }
        }
    }

    /// Verifies a token signed by one of the published keys, not expired
    /// (no leeway), for audience `aud`.
    pub fn verify(&self, token: &str, aud: &str) -> Result<Claims, TokenError> {
        self.verify_any(token, aud)
    }

    /// Verifies any claim set signed by [`Keys::sign_any`].
    pub fn verify_any<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        aud: &str,
    ) -> Result<T, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|k| self.verifiers.get(k))
            .ok_or(TokenError::UnknownKey)?;
        let mut v = Validation::new(Algorithm::ES256);
        v.leeway = 0;
        v.set_audience(&[aud]);
        v.set_required_spec_claims(&["exp", "aud"]);
        Ok(jsonwebtoken::decode::<T>(token, key, &v)?.claims)
    }
}

/// Makes sure the store has a signing key younger than `rotate_after`;
/// adds one (keeping the previous) otherwise. Returns whether it added.
pub async fn ensure_current(
    store: &Store,
    rotate_after: std::time::Duration,
) -> Result<bool, StoreError> {
    let keys = store.signing_keys().await?;
    let now = crate::audit::now();
    let fresh = keys.first().is_some_and(|k| {
        now.saturating_sub(k.created_at) < i64::try_from(rotate_after.as_secs()).unwrap_or(i64::MAX)
    });
    if fresh {
        return Ok(false);
    }
    rotate(store).await?;
    Ok(true)
}

/// Adds a new signing key; the previous one stays published.
pub async fn rotate(store: &Store) -> Result<String, StoreError> {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| StoreError::InvalidInput("cannot generate a signing key".into()))?;
    let kid = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    store
        .add_signing_key(
            &SigningKeyRow {
                kid: kid.clone(),
                pkcs8: pkcs8.as_ref().to_vec(),
                created_at: crate::audit::now(),
            },
            KEEP,
        )
        .await?;
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(created_at: i64) -> SigningKeyRow {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        SigningKeyRow {
            kid: format!("k{created_at}"),
            pkcs8: pkcs8.as_ref().to_vec(),
            created_at,
        }
    }

    fn claims(aud: &str, exp: i64) -> Claims {
        Claims {
            iss: "https://app.example.com".into(),
            aud: vec![aud.into()],
            sub: "alice".into(),
            email: "alice@example.com".into(),
            groups: vec!["admins".into()],
            kind: "user".into(),
            common_name: None,
            iat: crate::audit::now(),
            exp,
            sid: Some("s1".into()),
        }
    }

    #[test]
    fn signs_with_newest_and_verifies_with_any_published_key() {
        let (old, new) = (key(1), key(2));
        let before = Keys::from_rows(std::slice::from_ref(&old));
        let after = Keys::from_rows(&[new.clone(), old]);
        let exp = crate::audit::now() + 60;
        let t_old = before.sign(&claims("tag", exp)).unwrap();
        let t_new = after.sign(&claims("tag", exp)).unwrap();
        assert_eq!(
            after.verify(&t_old, "tag").unwrap().email,
            "alice@example.com"
        );
        assert_eq!(
            after.verify(&t_new, "tag").unwrap().sid.as_deref(),
            Some("s1")
        );
        assert!(matches!(
            before.verify(&t_new, "tag"),
            Err(TokenError::UnknownKey)
        ));
        let jwks: serde_json::Value = serde_json::from_str(after.jwks()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(jwks["keys"][0]["kid"], new.kid);
        assert_eq!(jwks["keys"][0]["alg"], "ES256");
    }

    #[test]
    fn refuses_forgeries() {
        let keys = Keys::from_rows(&[key(1)]);
        let other = Keys::from_rows(&[SigningKeyRow {
            kid: "k1".into(),
            ..key(5)
        }]);
        let now = crate::audit::now();
        let good = keys.sign(&claims("tag", now + 60)).unwrap();
        // Another application's audience.
        assert!(keys.verify(&good, "other-tag").is_err());
        // Expired.
        let old = keys.sign(&claims("tag", now - 1)).unwrap();
        assert!(keys.verify(&old, "tag").is_err());
        // Same kid, different key: a bad signature.
        let forged = other.sign(&claims("tag", now + 60)).unwrap();
        assert!(keys.verify(&forged, "tag").is_err());
        // A changed payload.
        let mut parts: Vec<&str> = good.split('.').collect();
        let mut c = claims("tag", now + 60);
        c.email = "mallory@example.com".into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        parts[1] = &body;
        assert!(keys.verify(&parts.join("."), "tag").is_err());
        // alg none.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#),
            body
        );
        assert!(keys.verify(&none, "tag").is_err());
        assert!(keys.verify("garbage", "tag").is_err());
    }
}
