//! Cross-site request forgery, refused twice over for every request that
//! changes something (every method but GET and HEAD):
//!
//! - **where it came from** ([`same_origin`]): a browser says so in
//!   `Sec-Fetch-Site` and `Origin`; anything but this origin is refused.
//!   A client that sends neither (curl, scripts) is not a browser acting
//!   for someone else, and still needs the token;
//! - **the token** ([`tokens_match`]): the session's CSRF token (or,
//!   before there is a session, the sign-in form's, which the form's
//!   cookie carries too) sent as the form field `_csrf` or, from htmx, as
//!   the `X-Warren-CSRF` header, compared in constant time.
//!
//! The session cookie is `SameSite=Strict` as well (`session.rs`), so a
//! browser does not send it on a request another site starts; the checks
//! here do not depend on that.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

/// The form field the token travels in.
pub(super) const FIELD: &str = "_csrf";
/// The header htmx sends it in (`hx-headers` on the page's body).
pub(super) const HEADER: &str = "x-warren-csrf";
/// The cookie carrying the sign-in form's token, before a session exists.
pub(super) const SIGN_IN_COOKIE: &str = "warren_admin_csrf";

/// Why a request that changes something was refused, as the sentence the
/// page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Forged {
    /// A browser says another site sent it.
    CrossSite(String),
    /// No token, or not this session's.
    BadToken,
}

impl Forged {
    pub(super) fn sentence(&self) -> String {
        match self {
            Forged::CrossSite(from) => format!(
                "This request came from {from}, not from the dashboard itself, so it was refused; open the dashboard at its own address and use its forms."
            ),
            Forged::BadToken => "This form's security token is missing or does not belong to this session (it may be from a page opened before you signed in again); reload the page and submit it again.".to_owned(),
        }
    }
}

/// Whether `presented` is `expected`, in time that does not depend on
/// where they differ. An empty expected token matches nothing.
pub(super) fn tokens_match(expected: &str, presented: Option<&str>) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    !expected.is_empty()
        && expected.len() == presented.len()
        && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Refuses a request a browser says another site sent: `Sec-Fetch-Site`
/// other than `same-origin` (or `none`, a request the user made
/// themselves), or an `Origin` other than this listener's as the request
/// addresses it (`scheme://Host`).
pub(super) fn same_origin(headers: &HeaderMap, scheme: &str) -> Result<(), Forged> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !matches!(site, "same-origin" | "none") {
            return Err(Forged::CrossSite(format!("a {site} page")));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let own = format!("{scheme}://{host}");
    if host.is_empty() || !origin.eq_ignore_ascii_case(&own) {
        let from = if origin.is_empty() || origin == "null" {
            "a page that hides its origin".to_owned()
        } else {
            origin.chars().take(100).collect()
        };
        return Err(Forged::CrossSite(from));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn tokens_match_only_exactly() {
        let t = "a".repeat(64);
        assert!(tokens_match(&t, Some(&t)));
        assert!(!tokens_match(&t, None));
        assert!(!tokens_match(&t, Some("")));
        assert!(!tokens_match(&t, Some(&"a".repeat(63))));
        assert!(!tokens_match(&t, Some(&format!("{}b", "a".repeat(63)))));
        assert!(!tokens_match(&t, Some(&"a".repeat(65))));
        assert!(!tokens_match("", Some("")));
    }

    #[test]
    fn a_browser_request_from_this_origin_passes() {
        let h = headers(&[
            ("host", "127.0.0.1:7800"),
            ("origin", "http://127.0.0.1:7800"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(same_origin(&h, "http"), Ok(()));
        // No browser headers at all: curl.
        assert_eq!(same_origin(&headers(&[("host", "x")]), "http"), Ok(()));
    }

    #[test]
    fn another_site_is_refused_however_it_says_so() {
        let cases: [&[(&'static str, &str)]; 6] = [
            &[
                ("host", "127.0.0.1:7800"),
                ("origin", "http://evil.example"),
            ],
            &[("host", "127.0.0.1:7800"), ("origin", "null")],
            // The same host over the other scheme, or on another port.
            &[
                ("host", "127.0.0.1:7800"),
                ("origin", "https://127.0.0.1:7800"),
            ],
            &[
                ("host", "127.0.0.1:7800"),
                ("origin", "http://127.0.0.1:7801"),
            ],
            &[("host", "127.0.0.1:7800"), ("sec-fetch-site", "cross-site")],
            &[("host", "127.0.0.1:7800"), ("sec-fetch-site", "same-site")],
        ];
        for h in cases {
            let err = same_origin(&headers(h), "http").unwrap_err();
            assert!(matches!(err, Forged::CrossSite(_)), "{h:?}");
            assert!(err.sentence().contains("refused"), "{}", err.sentence());
        }
        let h = headers(&[("origin", "http://127.0.0.1:7800")]);
        assert!(same_origin(&h, "http").is_err(), "no Host to compare with");
    }
}
