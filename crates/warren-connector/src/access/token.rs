//! Checking one ES256 identity token against a key of the edge's.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::{Identity, TokenError, LEEWAY_SECS, MAX_TOKEN_LEN};

/// The token as text, or why not.
pub(super) fn token_text(token: &[u8]) -> Result<&str, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    let token = std::str::from_utf8(token)
        .map_err(|_| TokenError::NotText)?
        .trim();
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    Ok(token)
}

/// The `kid` of an ES256 token's header.
pub(crate) fn key_id(token: &str) -> Result<String, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| reason(&e))?;
    if header.alg != Algorithm::ES256 {
        return Err(TokenError::WrongAlgorithm(format!("{:?}", header.alg)));
    }
    match header.kid {
        Some(kid) if !kid.is_empty() => Ok(kid),
        _ => Err(TokenError::NoKeyId),
    }
}

/// Verifies an ES256 `token` with `key`: `aud` one of `aud_tags`, `iss`
/// `https://{host}`, `exp` present and not past (30 s leeway).
pub(crate) fn verify(
    token: &str,
    host: &str,
    aud_tags: &[String],
    key: &DecodingKey,
) -> Result<Identity, TokenError> {
    if aud_tags.is_empty() {
        // Never "any audience": the config requires audTag, but be sure.
        return Err(TokenError::NoAudience);
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

/// Why jsonwebtoken rejected a token.
fn reason(e: &jsonwebtoken::errors::Error) -> TokenError {
    match e.kind() {
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenError::WrongAlgorithm("another algorithm".into())
        }
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidKeyFormat => TokenError::UnusableKey,
        _ => TokenError::Malformed(e.to_string()),
    }
}
