//! The dashboard's sign-in sessions: who signed in, and the session's CSRF
//! token, kept in this edge process's memory and named by a random id in
//! a cookie.
//!
//! The cookie carries only that id (256 random bits), never the admin
//! token: a session signed in with the token keeps the token's SHA-256,
//! which every request checks is still one of the store's admin tokens
//! (`mod.rs`), so a token removed from the store ends its sessions at
//! once. Sessions are looked up by the SHA-256 of the id, so the map's
//! timing says nothing about ids. A session ends when signed out, after
//! [`IDLE`] without a request, after [`LIFETIME`] in all, or when the
//! edge restarts; at most [`MAX_SESSIONS`] are kept (the least recently
//! used goes first). Time is an argument (`now`), so tests drive it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The session cookie.
pub(super) const COOKIE: &str = "warren_admin";
/// A session unused this long ends.
pub(super) const IDLE: Duration = Duration::from_secs(3600);
/// A session ends this long after its sign-in, used or not.
pub(super) const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most.
pub(super) const MAX_SESSIONS: usize = 256;

/// Who a session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Principal {
    /// Signed in with an admin token; its SHA-256.
    AdminToken { hash: [u8; 32] },
    /// Signed in through the identity provider `issuer`, as a member of
    /// the admin group.
    User { email: String, issuer: String },
}

impl Principal {
    /// How pages and audit entries name it.
    pub(super) fn label(&self) -> String {
        match self {
            Principal::AdminToken { .. } => "admin token".to_owned(),
            Principal::User { email, .. } => email.clone(),
        }
    }
}

/// What a request with a live session sees of it.
#[derive(Debug, Clone)]
pub(super) struct Signed {
    /// The cookie's value (to end the session with).
    pub(super) id: String,
    pub(super) principal: Principal,
    /// What every state-changing request of the session must carry.
    pub(super) csrf: String,
}

struct Entry {
    principal: Principal,
    csrf: String,
    created: Instant,
    seen: Instant,
}

/// The sessions of this edge process.
pub(super) struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Entry>>,
}

/// 32 random bytes, hex: session ids and CSRF tokens.
pub(super) fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    hex::encode(b)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) < LIFETIME
            && now.saturating_duration_since(self.seen) < IDLE
    }
}

impl Sessions {
    pub(super) fn new() -> Self {
        Sessions {
            by_hash: Mutex::new(HashMap::new()),
        }
    }

    /// A new session for `principal`, signed in at `now`.
    pub(super) fn create(&self, principal: Principal, now: Instant) -> Signed {
        let id = random_token();
        let csrf = random_token();
        let mut map = self.by_hash.lock().expect("dashboard sessions");
        map.retain(|_, e| e.live(now));
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map.iter().min_by_key(|(_, e)| e.seen).map(|(k, _)| *k) else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(
            key(&id),
            Entry {
                principal: principal.clone(),
                csrf: csrf.clone(),
                created: now,
                seen: now,
            },
        );
        Signed {
            id,
            principal,
            csrf,
        }
    }

    /// The live session named `id` at `now` (which counts as its use).
    pub(super) fn get(&self, id: &str, now: Instant) -> Option<Signed> {
        let k = key(id);
        let mut map = self.by_hash.lock().expect("dashboard sessions");
        let entry = map.get_mut(&k)?;
        if !entry.live(now) {
            map.remove(&k);
            return None;
        }
        entry.seen = now;
        Some(Signed {
            id: id.to_owned(),
            principal: entry.principal.clone(),
            csrf: entry.csrf.clone(),
        })
    }

    /// Ends the session named `id`, if there is one.
    pub(super) fn remove(&self, id: &str) {
        self.by_hash
            .lock()
            .expect("dashboard sessions")
            .remove(&key(id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_hash.lock().unwrap().len()
    }
}

/// A `Set-Cookie` value for a cookie of the dashboard's: HttpOnly,
/// SameSite as given, `Secure` when the admin listener is TLS, for
/// `max_age` seconds (0 removes it).
pub(super) fn cookie(
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: u64,
    secure: bool,
) -> String {
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session cookie for `id` (or its removal, with an empty `id`).
pub(super) fn session_cookie(id: &str, secure: bool) -> String {
    let max_age = if id.is_empty() { 0 } else { LIFETIME.as_secs() };
    cookie(COOKIE, id, "/ui", "Strict", max_age, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Principal {
        Principal::AdminToken { hash: [7; 32] }
    }

    #[test]
    fn a_session_is_found_by_its_id_only_and_ends_when_removed() {
        let s = Sessions::new();
        let t0 = Instant::now();
        let a = s.create(token(), t0);
        assert_eq!(a.id.len(), 64);
        assert_eq!(a.csrf.len(), 64);
        assert_ne!(a.id, a.csrf);
        let got = s.get(&a.id, t0).unwrap();
        assert_eq!(got.principal, token());
        assert_eq!(got.csrf, a.csrf);
        assert!(s.get(&a.csrf, t0).is_none());
        assert!(s.get("", t0).is_none());
        assert!(s.get(&a.id[..63], t0).is_none());
        let b = s.create(
            Principal::User {
                email: "alice@example.com".into(),
                issuer: "http://127.0.0.1:1".into(),
            },
            t0,
        );
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        s.remove(&a.id);
        assert!(s.get(&a.id, t0).is_none());
        assert!(s.get(&b.id, t0).is_some());
    }

    #[test]
    fn an_idle_session_ends_and_a_used_one_lasts_until_its_lifetime() {
        let s = Sessions::new();
        let t0 = Instant::now();
        let idle = s.create(token(), t0);
        let used = s.create(token(), t0);
        // Used every half idle period: it lives on ...
        let step = IDLE / 2;
        let mut t = t0;
        while t + step < t0 + LIFETIME {
            t += step;
            assert!(s.get(&used.id, t).is_some(), "at {:?}", t - t0);
        }
        // ... until the lifetime, however recently it was used.
        assert!(s.get(&used.id, t0 + LIFETIME).is_none());
        // The unused one went after IDLE, and is removed when found so.
        assert!(s.get(&idle.id, t0 + IDLE).is_none());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn sessions_are_bounded_and_the_least_recently_used_goes_first() {
        let s = Sessions::new();
        let t0 = Instant::now();
        let first = s.create(token(), t0);
        let second = s.create(token(), t0 + Duration::from_secs(1));
        // The first is used again: the second is now the least recent.
        assert!(s.get(&first.id, t0 + Duration::from_secs(2)).is_some());
        for i in 0..MAX_SESSIONS - 1 {
            s.create(token(), t0 + Duration::from_secs(3 + i as u64));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        let now = t0 + Duration::from_secs(1000);
        assert!(s.get(&second.id, now).is_none());
        assert!(s.get(&first.id, now).is_some());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_only_over_tls() {
        let plain = session_cookie("abc", false);
        assert_eq!(
            plain,
            format!(
                "warren_admin=abc; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
                LIFETIME.as_secs()
            )
        );
        let tls = session_cookie("abc", true);
        assert!(tls.ends_with("; Secure"), "{tls}");
        let gone = session_cookie("", false);
        assert!(gone.starts_with("warren_admin=; ") && gone.contains("Max-Age=0"));
    }
}
