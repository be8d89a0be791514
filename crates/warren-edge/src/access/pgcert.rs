//! Client certificates for the native PostgreSQL listener: the edge's CA
//! signs a short-lived certificate whose SAN URIs carry who the holder is
//! (`warren access pg-cert`), and reads it back when psql connects.
//!
//! URIs: `warren:user:EMAIL` or `warren:service-token:NAME`, one
//! `warren:group:NAME` per group, and `warren:session:ID` or
//! `warren:token-id:CLIENT_ID`, so that revoking the session or the token
//! also ends what the certificate opens.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet};
use warren_policy::Identity;

use crate::access::oidc::QUERY_VALUE;

use super::Who;

/// Longest a client certificate is valid, whatever the session allows.
pub const MAX_LIFETIME_SECS: i64 = 12 * 3600;

const USER: &str = "warren:user:";
const TOKEN: &str = "warren:service-token:";
const GROUP: &str = "warren:group:";
const SESSION: &str = "warren:session:";
const TOKEN_ID: &str = "warren:token-id:";
const SUB: &str = "warren:sub:";

/// What stays as it is in an identity URI (emails keep `@` and `+`).
const URI_PART: &AsciiSet = &QUERY_VALUE.remove(b'@').remove(b'+');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, URI_PART).to_string()
}

fn dec(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The SAN URIs and common name for a certificate of `who`; `None` if
/// `who` has no identity.
pub fn describe(who: &Who) -> Option<(String, Vec<String>)> {
    let mut uris = Vec::new();
    let cn = match who.identity.as_ref()? {
        Identity::User { email, groups } => {
            uris.push(format!("{USER}{}", enc(email)));
            uris.extend(groups.iter().map(|g| format!("{GROUP}{}", enc(g))));
            email.clone()
        }
        Identity::ServiceToken { name } => {
            uris.push(format!("{TOKEN}{}", enc(name)));
            name.clone()
        }
    };
    if let Some(s) = &who.session {
        uris.push(format!("{SESSION}{}", enc(s)));
    }
    if let Some(t) = &who.token_id {
        uris.push(format!("{TOKEN_ID}{}", enc(t)));
    }
    uris.push(format!("{SUB}{}", enc(&who.sub)));
    Some((cn, uris))
}

/// A presented client certificate, read.
#[derive(Debug)]
pub struct Presented {
    pub who: Who,
    /// Unix seconds.
    pub not_after: i64,
}

/// Why a client certificate carries no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// It is not an X.509 certificate Warren can parse.
    #[error("the client certificate cannot be read: {0}")]
    Unreadable(String),
    /// It names no Warren identity.
    #[error("the client certificate names no Warren identity; get one with `warren access pg-cert HOST`")]
    NoIdentity,
}

/// Reads the identity out of a client certificate the edge issued (the
/// TLS layer has checked the chain).
pub fn read(der: &[u8]) -> Result<Presented, CertificateError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CertificateError::Unreadable(e.to_string()))?;
    let not_after = cert.validity().not_after.timestamp();
    let mut who = Who::default();
    let mut groups = Vec::new();
    let mut user = None;
    let mut token = None;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            let x509_parser::extensions::GeneralName::URI(uri) = name else {
                continue;
            };
            if let Some(v) = uri.strip_prefix(USER) {
                user = Some(dec(v));
            } else if let Some(v) = uri.strip_prefix(TOKEN) {
                token = Some(dec(v));
            } else if let Some(v) = uri.strip_prefix(GROUP) {
                groups.push(dec(v));
            } else if let Some(v) = uri.strip_prefix(SESSION) {
                who.session = Some(dec(v));
            } else if let Some(v) = uri.strip_prefix(TOKEN_ID) {
                who.token_id = Some(dec(v));
            } else if let Some(v) = uri.strip_prefix(SUB) {
                who.sub = dec(v);
            }
        }
    }
    who.identity = match (user, token) {
        (Some(email), None) => Some(Identity::User { email, groups }),
        (None, Some(name)) => Some(Identity::ServiceToken { name }),
        _ => return Err(CertificateError::NoIdentity),
    };
    who.expires_at = Some(not_after);
    Ok(Presented { who, not_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_through_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::ca::Ca::load_or_create(dir.path()).unwrap();
        let who = Who {
            identity: Some(Identity::User {
                email: "alice+db@example.com".into(),
                groups: vec!["Domain Admins".into(), "staff".into()],
            }),
            sub: "user-alice".into(),
            session: Some("s-1".into()),
            token_id: None,
            expires_at: None,
        };
        let (cn, uris) = describe(&who).unwrap();
        assert_eq!(cn, "alice+db@example.com");
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let exp = crate::audit::now() + 3600;
        let chain = ca.sign_client_csr(csr.der(), &cn, &uris, exp).unwrap();
        let got = read(&chain[0]).unwrap();
        assert_eq!(got.who.identity, who.identity);
        assert_eq!(got.who.session.as_deref(), Some("s-1"));
        assert_eq!(got.who.sub, "user-alice");
        assert_eq!(got.not_after, exp);
        assert!(describe(&Who::default()).is_none());
        assert!(read(b"junk").is_err());
    }
}
