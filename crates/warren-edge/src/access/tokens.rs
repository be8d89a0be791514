//! Credentials on a request: service-token headers or a session token,
//! and the per-address limit on bad service-token secrets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;
use warren_policy::Identity;
use warren_proto::token::verify_secret;

use super::{Snapshot, Who, COOKIE, TOKEN_HEADER};
use crate::audit::now;

/// A service token as the edge keeps it in memory.
pub(super) struct TokenCred {
    pub(super) name: String,
    pub(super) hash: [u8; 32],
    pub(super) expires_at: Option<i64>,
}

/// What a request carries.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Presented {
    ServiceToken { id: String, secret: String },
    Session(String),
    Nothing,
}

fn header<'a>(h: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| h.get(*n))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The credentials in `h`: service-token headers (Warren's, or
/// Cloudflare's names so existing tooling works) first, then a session
/// token header, then the session cookie.
pub(super) fn presented(h: &HeaderMap) -> Presented {
    let id = header(h, &["warren-access-client-id", "cf-access-client-id"]);
    let secret = header(
        h,
        &["warren-access-client-secret", "cf-access-client-secret"],
    );
    if id.is_some() || secret.is_some() {
        return Presented::ServiceToken {
            id: id.unwrap_or_default().to_owned(),
            secret: secret.unwrap_or_default().to_owned(),
        };
    }
    if let Some(t) = header(h, &[TOKEN_HEADER, "cf-access-token"]) {
        return Presented::Session(t.to_owned());
    }
    match cookie(h, COOKIE) {
        Some(c) => Presented::Session(c.to_owned()),
        None => Presented::Nothing,
    }
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The service token `id` if `secret` is its secret (compared in constant
/// time against the stored hash) and it has not expired.
pub(super) fn check(snap: &Snapshot, id: &str, secret: &str) -> Option<Who> {
    let t = snap.tokens.get(id)?;
    if !verify_secret(secret.as_bytes(), &t.hash) {
        return None;
    }
    if t.expires_at.is_some_and(|e| e <= now()) {
        return None;
    }
    Some(Who {
        identity: Some(Identity::ServiceToken {
            name: t.name.clone(),
        }),
        sub: id.to_owned(),
        session: None,
        token_id: Some(id.to_owned()),
        expires_at: t.expires_at,
    })
}

/// Most addresses tracked at once; beyond it, stale entries are dropped
/// first and then the table is cleared (a flood of addresses must not
/// grow memory without bound).
const MAX_TRACKED: usize = 65_536;

/// Counts bad service-token secrets per source address.
pub(super) struct Limiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Limiter {
    pub(super) fn new(max: u32, window: Duration) -> Limiter {
        Limiter {
            max: max.max(1),
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` has failed `max` times within the window (and is then
    /// refused until a window after its last failure).
    pub(super) fn blocked(&self, ip: IpAddr) -> bool {
        let seen = self.seen.lock().expect("limiter lock");
        seen.get(&ip.to_canonical())
            .is_some_and(|(n, last)| *n >= self.max && last.elapsed() < self.window)
    }

    /// Records a failure from `ip`.
    pub(super) fn fail(&self, ip: IpAddr) {
        let mut seen = self.seen.lock().expect("limiter lock");
        if seen.len() >= MAX_TRACKED {
            let window = self.window;
            seen.retain(|_, (_, last)| last.elapsed() < window);
            if seen.len() >= MAX_TRACKED {
                seen.clear();
            }
        }
        let e = seen.entry(ip.to_canonical()).or_insert((0, Instant::now()));
        if e.1.elapsed() >= self.window {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
        if e.0 == self.max {
            tracing::warn!(source = %ip, failures = e.0, "refusing service-token attempts from this address for a while");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_credentials_in_order() {
        assert_eq!(
            presented(&headers(&[
                ("cf-access-client-id", "a.access"),
                ("cf-access-client-secret", "s"),
                ("cookie", "warren_session=jwt"),
            ])),
            Presented::ServiceToken {
                id: "a.access".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            presented(&headers(&[("warren-access-client-id", "a.access")])),
            Presented::ServiceToken {
                id: "a.access".into(),
                secret: String::new()
            }
        );
        assert_eq!(
            presented(&headers(&[("cookie", "a=1; warren_session=tok; b=2")])),
            Presented::Session("tok".into())
        );
        assert_eq!(
            presented(&headers(&[
                ("warren-access-token", "t"),
                ("cookie", "warren_session=c")
            ])),
            Presented::Session("t".into())
        );
        assert_eq!(
            presented(&headers(&[(
                "cookie",
                "warren_sessionx=1; warren_session="
            )])),
            Presented::Nothing
        );
    }

    #[test]
    fn limiter_blocks_after_max_failures_per_address() {
        let l = Limiter::new(3, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..2 {
            l.fail(a);
        }
        assert!(!l.blocked(a));
        l.fail(a);
        assert!(l.blocked(a));
        assert!(!l.blocked(b));
        // The IPv4-mapped form is the same address.
        assert!(l.blocked("::ffff:10.0.0.1".parse().unwrap()));
        let short = Limiter::new(1, Duration::from_millis(0));
        short.fail(b);
        assert!(!short.blocked(b), "the window has passed");
    }
}
