//! The edge's JWK set: the ES256 keys it holds.

use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::{KeyFetchError, KeySet};

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
pub(crate) fn parse_jwks(doc: &str) -> Result<KeySet, KeyFetchError> {
    #[derive(Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_str(doc).map_err(|e| KeyFetchError::NotJwks(e.to_string()))?;
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
        return Err(KeyFetchError::NoEs256Key);
    }
    Ok(set)
}
