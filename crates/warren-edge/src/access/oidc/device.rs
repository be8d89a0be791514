//! Sign-in on a host without a browser: the OAuth device authorization
//! grant (RFC 8628), run by the edge on behalf of `warren access login
//! --device`.
//!
//! 1. [`start`] (`POST /.warren/device/start`): the edge asks the
//!    provider's device authorization endpoint for a device code and a
//!    user code, keeps the device code in [`Pending`] under a fresh
//!    unguessable handle, and answers the CLI the handle, the user code
//!    and where to enter it. The device code never leaves the edge.
//! 2. [`poll`] (`POST /.warren/device/poll {"handle"}`): [`Pending`]
//!    says whether the provider may be asked now (its `interval`, raised
//!    by `slow_down`); if so the edge polls the token endpoint once and
//!    answers `pending` / `slow_down`, or a sentence (declined, expired),
//!    or — tokens issued — verifies the ID token as the browser flow does
//!    (no nonce in this grant), decides the application's policy for the
//!    user, and finishes through the browser flow's own `establish`
//!    (session, token, audit entry).
//!
//! 3. Without the grant at the provider, the CLI sends the user to
//!    `/.warren/login?cli=paste`: the browser flow ends in
//!    [`paste_page`], which keeps the token under a one-time code
//!    ([`Codes`]: short-lived, single use, bound to the hostname) and
//!    shows the code; [`redeem`] (`POST /.warren/device/redeem {"code"}`)
//!    hands the token to the CLI the code is pasted into.
//!
//! [`Pending`] is the protocol core: bounded (in all and per source
//! address), expiring, each login taken out once it ends; it reads no
//! clock (every call takes `now`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{header, Response, StatusCode};
use serde::Deserialize;
use warren_store::AuditEntry;
use warren_transport::body::BoxBody;

use std::sync::Arc;

use warren_store::AppRow;

use super::client::{device_authorize, device_token, DeviceToken, SignedIn};
use super::signin::{establish, random_b64, Issued};
use crate::access::{decide_for, Access, Who};
use crate::pages::EdgeFailure;

/// Where the CLI starts a device sign-in.
pub const DEVICE_START_PATH: &str = "/.warren/device/start";
/// Where the CLI polls it.
pub const DEVICE_POLL_PATH: &str = "/.warren/device/poll";
/// Where the CLI exchanges a pasted one-time code for its token.
pub const DEVICE_REDEEM_PATH: &str = "/.warren/device/redeem";
/// The `cli` value of `/.warren/login` that ends the sign-in on a page
/// showing a one-time code to paste, for a provider without the device
/// grant.
pub(super) const PASTE: &str = "paste";
/// How long a one-time code may wait to be pasted.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Device sign-ins waiting at once, on this edge process.
pub(crate) const MAX_PENDING: usize = 1000;
/// ... and from one source address.
pub(crate) const MAX_PER_SOURCE: usize = 5;
/// The longest a device sign-in is kept, whatever the provider says.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The polling interval when the provider names none (RFC 8628 §3.2).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub(crate) const SLOW_DOWN: Duration = Duration::from_secs(5);
/// Largest poll body read.
const MAX_POLL_BODY: usize = 4096;
/// How long the poll body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// One device sign-in waiting for its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login {
    /// The application it is for.
    pub(crate) app: String,
    /// The hostname the CLI addressed: polls must come to the same.
    pub(crate) host: String,
    pub(crate) source: IpAddr,
    /// The provider's device code (never sent to the CLI).
    pub(crate) device_code: String,
    pub(crate) expires: Instant,
    pub(crate) interval: Duration,
    /// The provider may be asked again from then.
    pub(crate) next_poll: Instant,
    /// A poll is asking the provider now.
    pub(crate) asking: bool,
}

/// What a poll should do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Ask the provider's token endpoint with this device code.
    Ask { app: String, device_code: String },
    /// Too early (or another poll is asking): answer `pending`.
    Wait { interval: Duration },
    /// No such sign-in: never started, used, or expired.
    Gone,
}

/// What the provider's answer to a poll means for the sign-in.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Pending,
    SlowDown,
    /// Declined, expired, failed or signed in: the sign-in is over.
    Over,
}

/// The pending device sign-ins: the core, with an explicit clock.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    logins: HashMap<String, Login>,
}

/// Why a device sign-in could not be kept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

impl Pending {
    /// Forgets the sign-ins that have expired.
    fn sweep(&mut self, now: Instant) {
        self.logins.retain(|_, l| l.expires > now);
    }

    /// Keeps `login` under `handle`, unless the edge or its source has
    /// too many waiting already.
    pub(crate) fn insert(
        &mut self,
        now: Instant,
        handle: String,
        login: Login,
    ) -> Result<(), Full> {
        if !self.has_room(now, login.source) {
            return Err(Full);
        }
        self.logins.insert(handle, login);
        Ok(())
    }

    /// Whether a sign-in from `source` may be kept now.
    pub(crate) fn has_room(&mut self, now: Instant, source: IpAddr) -> bool {
        self.sweep(now);
        let from_source = self.logins.values().filter(|l| l.source == source).count();
        self.logins.len() < MAX_PENDING && from_source < MAX_PER_SOURCE
    }

    /// A poll of `handle` arriving for `host`.
    pub(crate) fn begin_poll(&mut self, now: Instant, handle: &str, host: &str) -> Step {
        self.sweep(now);
        match self.logins.get_mut(handle) {
            Some(l) if l.host == host => {
                if l.asking || now < l.next_poll {
                    Step::Wait {
                        interval: l.interval,
                    }
                } else {
                    l.asking = true;
                    Step::Ask {
                        app: l.app.clone(),
                        device_code: l.device_code.clone(),
                    }
                }
            }
            _ => Step::Gone,
        }
    }

    /// The provider answered the poll of `handle`; returns the interval
    /// the CLI should poll at, if the sign-in goes on.
    pub(crate) fn finish_poll(
        &mut self,
        now: Instant,
        handle: &str,
        answer: Answer,
    ) -> Option<Duration> {
        if answer == Answer::Over {
            self.logins.remove(handle);
            return None;
        }
        let l = self.logins.get_mut(handle)?;
        if answer == Answer::SlowDown {
            l.interval += SLOW_DOWN;
        }
        l.asking = false;
        l.next_poll = now + l.interval;
        Some(l.interval)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.logins.len()
    }
}

/// A token waiting for its one-time code to be pasted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) token: String,
    /// Seconds the token is valid for, from its issue.
    pub(crate) max_age: i64,
    /// The hostname the sign-in was for: redeems must come to the same.
    pub(crate) host: String,
    pub(crate) expires: Instant,
}

/// The one-time codes of the paste fallback: bounded, expiring, each
/// taken once.
#[derive(Debug, Default)]
pub(crate) struct Codes {
    held: HashMap<String, Held>,
}

impl Codes {
    fn sweep(&mut self, now: Instant) {
        self.held.retain(|_, h| h.expires > now);
    }

    /// Keeps `held` under `code`, unless too many are waiting.
    pub(crate) fn insert(&mut self, now: Instant, code: String, held: Held) -> Result<(), Full> {
        self.sweep(now);
        if self.held.len() >= MAX_PENDING {
            return Err(Full);
        }
        self.held.insert(code, held);
        Ok(())
    }

    /// Takes the token of `code`, pasted for `host`: once only, and
    /// only before it expires. A code presented for another hostname is
    /// used up too (it was shown to someone who pasted it elsewhere).
    pub(crate) fn take(&mut self, now: Instant, code: &str, host: &str) -> Option<Held> {
        self.sweep(now);
        self.held.remove(code).filter(|h| h.host == host)
    }
}

/// The edge's pending device sign-ins and one-time codes.
#[derive(Debug, Default)]
pub struct DeviceLogins {
    pending: Mutex<Pending>,
    codes: Mutex<Codes>,
}

impl DeviceLogins {
    fn with<T>(&self, f: impl FnOnce(&mut Pending) -> T) -> T {
        f(&mut self.pending.lock().expect("device logins"))
    }

    fn codes<T>(&self, f: impl FnOnce(&mut Codes) -> T) -> T {
        f(&mut self.codes.lock().expect("device codes"))
    }
}

fn ok_json(body: serde_json::Value) -> Response<BoxBody> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(warren_transport::body::full(body.to_string()))
        .expect("valid JSON answer")
}

/// `POST /.warren/device/start` for the application covering `host`.
pub async fn start(
    access: &Access,
    app: &AppRow,
    host: &str,
    source: SocketAddr,
) -> Response<BoxBody> {
    let snap = access.snapshot();
    let Some(idp) = snap.idp().cloned() else {
        return EdgeFailure::NoIdentityProvider {
            app: app.name.clone(),
        }
        .json();
    };
    // Refuse before asking the provider when this source is at its cap.
    let room = access
        .device_logins()
        .with(|p| p.has_room(Instant::now(), source.ip()));
    if !room {
        return EdgeFailure::TooManySignIns.json();
    }
    let auth = match device_authorize(access.idp_client(), &idp).await {
        Ok(Some(a)) => a,
        Ok(None) => return EdgeFailure::DeviceUnavailable { idp: idp.name }.json(),
        Err(e) => {
            tracing::warn!(idp = %idp.name, "cannot start a device sign-in: {e}");
            return EdgeFailure::IdentityProvider {
                reason: e.to_string(),
            }
            .json();
        }
    };
    let now = Instant::now();
    let lifetime = Duration::from_secs(auth.expires_in).min(MAX_LIFETIME);
    let interval = auth
        .interval
        .map_or(DEFAULT_INTERVAL, Duration::from_secs)
        .clamp(Duration::from_secs(1), Duration::from_secs(60));
    let handle = random_b64(32);
    let login = Login {
        app: app.name.clone(),
        host: host.to_owned(),
        source: source.ip(),
        device_code: auth.device_code,
        expires: now + lifetime,
        interval,
        next_poll: now,
        asking: false,
    };
    if access
        .device_logins()
        .with(|p| p.insert(now, handle.clone(), login))
        .is_err()
    {
        return EdgeFailure::TooManySignIns.json();
    }
    let mut body = serde_json::json!({
        "handle": handle,
        "user_code": auth.user_code,
        "verification_uri": auth.verification_uri,
        "interval": interval.as_secs(),
        "expires_in": lifetime.as_secs(),
    });
    if let Some(c) = auth.verification_uri_complete {
        body["verification_uri_complete"] = c.into();
    }
    ok_json(body)
}

#[derive(Deserialize)]
struct PollBody {
    handle: String,
}

#[derive(Deserialize)]
struct RedeemBody {
    code: String,
}

/// Reads a small JSON body within [`BODY_TIMEOUT`].
async fn read_body<T: serde::de::DeserializeOwned>(
    body: http_body_util::Limited<hyper::body::Incoming>,
    shape: &str,
) -> Result<T, Response<BoxBody>> {
    use http_body_util::BodyExt;
    let bad = |reason: String| EdgeFailure::BadRequest { reason }.json();
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return Err(bad(format!(
                "the body is larger than {MAX_POLL_BODY} bytes or broke off"
            )))
        }
        Err(_) => {
            return Err(bad(format!(
                "the body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            )))
        }
    };
    serde_json::from_slice(&bytes).map_err(|_| bad(format!("the body must be {shape}")))
}

/// The end of a `cli=paste` sign-in (the callback's): the token is kept
/// under a fresh one-time code, and the page shows the code to paste.
pub(super) fn paste_page(access: &Access, host: &str, issued: Issued) -> Response<BoxBody> {
    let code = random_b64(18);
    let now = Instant::now();
    let held = Held {
        token: issued.token,
        max_age: issued.max_age,
        host: host.to_owned(),
        expires: now + CODE_LIFETIME,
    };
    if access
        .device_logins()
        .codes(|c| c.insert(now, code.clone(), held))
        .is_err()
    {
        return crate::pages::page(
            StatusCode::TOO_MANY_REQUESTS,
            "Sign-in failed",
            &EdgeFailure::TooManySignIns.sentence(),
        );
    }
    let mut r = crate::pages::page(
        StatusCode::OK,
        "Sign-in code",
        &format!(
            "Paste this code into the terminal where `warren access login` waits, within {} minutes: {code}",
            CODE_LIFETIME.as_secs() / 60
        ),
    );
    r.headers_mut().insert(
        "referrer-policy",
        http::HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `POST /.warren/device/redeem {"code"}`: the token held for a pasted
/// one-time code, once.
pub async fn redeem(
    access: &Access,
    body: http_body_util::Limited<hyper::body::Incoming>,
    host: &str,
) -> Response<BoxBody> {
    let RedeemBody { code } = match read_body(body, r#"{"code": "..."}"#).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match access
        .device_logins()
        .codes(|c| c.take(Instant::now(), code.trim(), host))
    {
        Some(h) => ok_json(serde_json::json!({
            "status": "signed_in",
            "token": h.token,
            "expires_in": h.max_age,
        })),
        None => EdgeFailure::CodeNotValid.json(),
    }
}

/// `POST /.warren/device/poll {"handle"}`.
pub async fn poll(
    access: &Access,
    body: http_body_util::Limited<hyper::body::Incoming>,
    host: &str,
    source: SocketAddr,
) -> Response<BoxBody> {
    let PollBody { handle } = match read_body(body, r#"{"handle": "..."}"#).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let logins = access.device_logins();
    let (app_name, device_code) = match logins.with(|p| p.begin_poll(Instant::now(), &handle, host))
    {
        Step::Gone => return EdgeFailure::SignInExpired.json(),
        Step::Wait { interval } => {
            return ok_json(
                serde_json::json!({"status": "pending", "interval": interval.as_secs()}),
            )
        }
        Step::Ask { app, device_code } => (app, device_code),
    };
    let over = |failure: EdgeFailure| {
        logins.with(|p| p.finish_poll(Instant::now(), &handle, Answer::Over));
        failure.json()
    };
    let snap = access.snapshot();
    let Some(app) = snap.apps.iter().find(|a| a.name == app_name).cloned() else {
        return over(EdgeFailure::NotProtected {
            host: host.to_owned(),
        });
    };
    let Some(idp) = snap.idp().cloned() else {
        return over(EdgeFailure::NoIdentityProvider { app: app_name });
    };
    let signed = match device_token(access.idp_client(), &idp, &device_code).await {
        Ok(DeviceToken::Pending) => {
            let i = logins.with(|p| p.finish_poll(Instant::now(), &handle, Answer::Pending));
            return match i {
                Some(i) => {
                    ok_json(serde_json::json!({"status": "pending", "interval": i.as_secs()}))
                }
                None => EdgeFailure::SignInExpired.json(),
            };
        }
        Ok(DeviceToken::SlowDown) => {
            let i = logins.with(|p| p.finish_poll(Instant::now(), &handle, Answer::SlowDown));
            return match i {
                Some(i) => {
                    ok_json(serde_json::json!({"status": "slow_down", "interval": i.as_secs()}))
                }
                None => EdgeFailure::SignInExpired.json(),
            };
        }
        Ok(DeviceToken::Denied) => return over(EdgeFailure::SignInDeclined),
        Ok(DeviceToken::Expired) => return over(EdgeFailure::SignInExpired),
        Err(e) => {
            tracing::warn!(idp = %idp.name, app = %app.name, "device sign-in failed: {e}");
            return over(EdgeFailure::IdentityProvider {
                reason: e.to_string(),
            });
        }
        Ok(DeviceToken::SignedIn(s)) => s,
    };
    // Taken out before anything is issued: a device code signs in once.
    logins.with(|p| p.finish_poll(Instant::now(), &handle, Answer::Over));
    if let Err(refused) = admit(access, &app, &signed, host, source).await {
        return refused.json();
    }
    match establish(access, &snap, &app, &idp, signed, host, source).await {
        Ok(Issued { token, max_age }) => ok_json(serde_json::json!({
            "status": "signed_in",
            "token": token,
            "expires_in": max_age,
        })),
        Err(sentence) => {
            let mut r = ok_json(serde_json::json!({"error": "unavailable", "message": sentence}));
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r
        }
    }
}

/// Whether `app`'s policies let the user who just signed in through the
/// CLI's flows (device grant, pasted code) in: such a sign-in is for one
/// application, so a user it refuses gets no token, only the refusal's
/// sentence; the refusal is audited as a `login` entry.
pub(super) async fn admit(
    access: &Access,
    app: &Arc<AppRow>,
    signed: &SignedIn,
    host: &str,
    source: SocketAddr,
) -> Result<(), EdgeFailure> {
    let who = Who {
        identity: Some(warren_policy::Identity::User {
            email: signed.email.clone(),
            groups: signed.groups.clone(),
        }),
        sub: signed.sub.clone(),
        ..Who::default()
    };
    let Err(refusal) = decide_for(app.clone(), who, source.ip()) else {
        return Ok(());
    };
    let (decision, identity, rule) = refusal.audit_parts();
    access
        .audit(AuditEntry {
            kind: "login".into(),
            identity,
            source: source.to_string(),
            app: app.name.clone(),
            hostname: host.to_owned(),
            decision: decision.into(),
            rule,
            ..Default::default()
        })
        .await;
    tracing::info!(email = %signed.email, app = %app.name, "a sign-in from the CLI was refused by the policy");
    Err(EdgeFailure::from_refusal(&refusal, host))
}

/// The poll body, bounded.
pub(crate) fn limit(body: hyper::body::Incoming) -> http_body_util::Limited<hyper::body::Incoming> {
    http_body_util::Limited::new(body, MAX_POLL_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(source: [u8; 4], now: Instant) -> Login {
        Login {
            app: "app".into(),
            host: "app.example.com".into(),
            source: IpAddr::from(source),
            device_code: "dc".into(),
            expires: now + Duration::from_secs(600),
            interval: Duration::from_secs(5),
            next_poll: now,
            asking: false,
        }
    }

    #[test]
    fn bounded_per_source_and_in_all() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        for i in 0..MAX_PER_SOURCE {
            p.insert(t0, format!("a{i}"), login([10, 0, 0, 1], t0))
                .unwrap();
        }
        assert_eq!(
            p.insert(t0, "one-more".into(), login([10, 0, 0, 1], t0)),
            Err(Full)
        );
        assert!(!p.has_room(t0, IpAddr::from([10, 0, 0, 1])));
        assert!(p.has_room(t0, IpAddr::from([10, 0, 0, 2])));
        // Another address still may, up to the edge's cap.
        let mut n = MAX_PER_SOURCE;
        'fill: for a in 0..=255u8 {
            for b in 0..MAX_PER_SOURCE {
                if n == MAX_PENDING {
                    break 'fill;
                }
                p.insert(t0, format!("b{a}-{b}"), login([10, 1, a, 1], t0))
                    .unwrap();
                n += 1;
            }
        }
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(
            p.insert(t0, "x".into(), login([10, 2, 0, 1], t0)),
            Err(Full)
        );
        // Once they expire, there is room again.
        let later = t0 + Duration::from_secs(601);
        p.insert(later, "x".into(), login([10, 0, 0, 1], later))
            .unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn expired_logins_are_gone() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.insert(t0, "h".into(), login([10, 0, 0, 1], t0)).unwrap();
        assert_eq!(
            p.begin_poll(t0 + Duration::from_secs(600), "h", "app.example.com"),
            Step::Gone
        );
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn unknown_handles_and_other_hosts_are_gone() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.insert(t0, "h".into(), login([10, 0, 0, 1], t0)).unwrap();
        assert_eq!(p.begin_poll(t0, "nope", "app.example.com"), Step::Gone);
        assert_eq!(p.begin_poll(t0, "h", "other.example.com"), Step::Gone);
    }

    #[test]
    fn polls_respect_the_interval_and_slow_down() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = Pending::default();
        p.insert(t0, "h".into(), login([10, 0, 0, 1], t0)).unwrap();
        let ask = Step::Ask {
            app: "app".into(),
            device_code: "dc".into(),
        };
        assert_eq!(p.begin_poll(t0, "h", "app.example.com"), ask);
        // While one poll asks, another waits rather than asking twice.
        assert_eq!(
            p.begin_poll(t0, "h", "app.example.com"),
            Step::Wait { interval: s(5) }
        );
        assert_eq!(p.finish_poll(t0, "h", Answer::Pending), Some(s(5)));
        assert_eq!(
            p.begin_poll(t0 + s(4), "h", "app.example.com"),
            Step::Wait { interval: s(5) }
        );
        assert_eq!(p.begin_poll(t0 + s(5), "h", "app.example.com"), ask);
        assert_eq!(p.finish_poll(t0 + s(5), "h", Answer::SlowDown), Some(s(10)));
        assert_eq!(
            p.begin_poll(t0 + s(14), "h", "app.example.com"),
            Step::Wait { interval: s(10) }
        );
        assert_eq!(p.begin_poll(t0 + s(15), "h", "app.example.com"), ask);
    }

    fn held(now: Instant) -> Held {
        Held {
            token: "t".into(),
            max_age: 60,
            host: "app.example.com".into(),
            expires: now + CODE_LIFETIME,
        }
    }

    #[test]
    fn codes_are_single_use_bound_and_expire() {
        let t0 = Instant::now();
        let mut c = Codes::default();
        c.insert(t0, "c1".into(), held(t0)).unwrap();
        assert_eq!(c.take(t0, "c1", "app.example.com"), Some(held(t0)));
        assert_eq!(c.take(t0, "c1", "app.example.com"), None);
        // Bound to the hostname it was for; a wrong one uses it up.
        c.insert(t0, "c2".into(), held(t0)).unwrap();
        assert_eq!(c.take(t0, "c2", "other.example.com"), None);
        assert_eq!(c.take(t0, "c2", "app.example.com"), None);
        // Expired.
        c.insert(t0, "c3".into(), held(t0)).unwrap();
        assert_eq!(c.take(t0 + CODE_LIFETIME, "c3", "app.example.com"), None);
        // Bounded.
        for i in 0..MAX_PENDING {
            c.insert(t0, format!("k{i}"), held(t0)).unwrap();
        }
        assert_eq!(c.insert(t0, "one-more".into(), held(t0)), Err(Full));
        c.insert(t0 + CODE_LIFETIME, "later".into(), held(t0 + CODE_LIFETIME))
            .unwrap();
    }

    #[test]
    fn a_login_ends_once() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.insert(t0, "h".into(), login([10, 0, 0, 1], t0)).unwrap();
        assert!(matches!(
            p.begin_poll(t0, "h", "app.example.com"),
            Step::Ask { .. }
        ));
        assert_eq!(p.finish_poll(t0, "h", Answer::Over), None);
        assert_eq!(p.begin_poll(t0, "h", "app.example.com"), Step::Gone);
        // A late answer for it changes nothing.
        assert_eq!(p.finish_poll(t0, "h", Answer::Pending), None);
        assert_eq!(p.len(), 0);
    }
}
