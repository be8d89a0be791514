//! The tunnel token: everything `warren tunnel run` needs, in one string.
//!
//! A token is standard base64 of a small JSON document:
//!
//! ```json
//! {"v":1,"t":"<tunnel id>","s":"<base64 32-byte secret>",
//!  "e":["edge.example.com:7844"],"p":"<hex sha256 of the edge CA cert (DER)>"}
//! ```
//!
//! The CA pin lets the connector trust the edge's self-issued certificate
//! without any other file.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::control::SECRET_LEN;

/// Largest token we try to decode.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// A decoded tunnel token.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelToken {
    /// The tunnel's id (a UUID in text form).
    pub tunnel_id: String,
    /// The tunnel secret the connector registers with.
    pub secret: [u8; SECRET_LEN],
    /// Edge tunnel addresses (`host:port`), in preference order.
    pub edges: Vec<String>,
    /// Hex SHA-256 of the edge CA certificate in DER form.
    pub ca_pin: String,
}

impl std::fmt::Debug for TunnelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelToken")
            .field("tunnel_id", &self.tunnel_id)
            .field("secret", &"<redacted>")
            .field("edges", &self.edges)
            .field("ca_pin", &self.ca_pin)
            .finish()
    }
}

/// Why a token could not be read. Each message says what to do.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    /// Nothing was passed.
    #[error("the tunnel token is empty; pass the output of `warren tunnel token NAME`")]
    Empty,
    /// Longer than any token the edge prints.
    #[error("the tunnel token is too long to be a Warren token; pass the output of `warren tunnel token NAME`")]
    TooLong,
    /// Not standard base64.
    #[error("the tunnel token is not valid base64 (was it cut off when copied?); print it again with `warren tunnel token NAME`")]
    NotBase64,
    /// Base64, but not the token's JSON (the parser's reason).
    #[error("the tunnel token is corrupted or truncated ({0}); print it again with `warren tunnel token NAME`")]
    Malformed(String),
    /// A token format version this build does not know.
    #[error("the tunnel token has version {0}, which this connector does not understand; upgrade warren")]
    UnknownVersion(u32),
}

#[derive(Serialize, Deserialize)]
struct Doc {
    v: u32,
    t: String,
    s: String,
    e: Vec<String>,
    p: String,
}

impl TunnelToken {
    /// Encodes the token.
    pub fn encode(&self) -> String {
        let doc = Doc {
            v: 1,
            t: self.tunnel_id.clone(),
            s: STANDARD.encode(self.secret),
            e: self.edges.clone(),
            p: self.ca_pin.clone(),
        };
        let json = serde_json::to_vec(&doc).expect("token document serializes");
        STANDARD.encode(json)
    }

    /// Decodes and checks a token.
    pub fn decode(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        let json = STANDARD.decode(text).map_err(|_| TokenError::NotBase64)?;
        let doc: Doc =
            serde_json::from_slice(&json).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if doc.v != 1 {
            return Err(TokenError::UnknownVersion(doc.v));
        }
        let secret: [u8; SECRET_LEN] = STANDARD
            .decode(&doc.s)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| TokenError::Malformed("the secret is not 32 bytes".into()))?;
        if doc.t.is_empty() {
            return Err(TokenError::Malformed("the tunnel id is empty".into()));
        }
        if doc.p.len() != 64 || !doc.p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Malformed(
                "the CA pin is not a SHA-256 hex digest".into(),
            ));
        }
        Ok(Self {
            tunnel_id: doc.t,
            secret,
            edges: doc.e,
            ca_pin: doc.p.to_ascii_lowercase(),
        })
    }
}

/// Hex SHA-256 of a certificate's DER bytes, as used in the token pin.
pub fn ca_pin(cert_der: &[u8]) -> String {
    let digest = Sha256::digest(cert_der);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// SHA-256 of a secret, the form in which secrets are stored.
pub fn hash_secret(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Constant-time check of a presented secret against a stored hash.
pub fn verify_secret(presented: &[u8], stored_hash: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let h = hash_secret(presented);
    stored_hash.len() == 32 && bool::from(h.ct_eq(stored_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TunnelToken {
        TunnelToken {
            tunnel_id: "6f2c".into(),
            secret: [7; 32],
            edges: vec!["127.0.0.1:7844".into()],
            ca_pin: ca_pin(b"cert"),
        }
    }

    #[test]
    fn round_trips() {
        let t = sample();
        assert_eq!(TunnelToken::decode(&t.encode()).unwrap(), t);
        assert_eq!(
            TunnelToken::decode(&format!("  {}\n", t.encode())).unwrap(),
            t
        );
    }

    #[test]
    fn truncated_and_garbage_tokens_have_clear_errors() {
        let enc = sample().encode();
        assert_eq!(TunnelToken::decode(""), Err(TokenError::Empty));
        assert!(matches!(
            TunnelToken::decode(&enc[..enc.len() / 2]),
            Err(TokenError::NotBase64 | TokenError::Malformed(_))
        ));
        assert_eq!(
            TunnelToken::decode("not a token!"),
            Err(TokenError::NotBase64)
        );
        assert!(matches!(
            TunnelToken::decode(&STANDARD.encode(b"{}")),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn verifies_secret_in_constant_time_form() {
        let h = hash_secret(b"s3cret");
        assert!(verify_secret(b"s3cret", &h));
        assert!(!verify_secret(b"s3cre7", &h));
        assert!(!verify_secret(b"s3cret", &h[..31]));
    }

    #[test]
    fn debug_hides_secret() {
        assert!(format!("{:?}", sample()).contains("redacted"));
    }
}
