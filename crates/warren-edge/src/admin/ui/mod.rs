//! The dashboard: HTML pages under `/ui/` on the admin listener, for
//! people (the REST API beside it is for programs).
//!
//! Server-rendered with askama (`crates/warren-edge/ui/templates/`), made
//! live with htmx (polling, forms that swap the page's `<main>`), the
//! traffic plots drawn by uPlot; htmx and uPlot are vendored, and every
//! static file is embedded in the binary (`assets.rs`). No JavaScript is
//! built, and no page runs inline script: the Content-Security-Policy
//! ([`CSP`]) allows scripts and styles from `/ui/static/` only.
//!
//! **Who may see it**: the same people as the API, no one else. A
//! session starts with the admin token (the sign-in form) or, with
//! `--admin-group GROUP`, through the identity provider for a user whose
//! groups claim lists GROUP (`signin.rs`); every page and action checks
//! it again, and a token-signed session only lasts as long as its token
//! is one of the store's admin tokens. The session cookie holds a random
//! id, never the token (`session.rs`). Everything shown is what an API
//! read shows, with secrets left out as the API leaves them out; a
//! service token's secret is shown once, in the answer that created it.
//!
//! **Every request that changes something is checked for forgery**
//! ([`guard`], `csrf.rs`): its origin, and the session's CSRF token, for
//! every route here, before any handler runs.
//!
//! **The actions are the API's**: creating and revoking a service token
//! and deleting a route call the functions the API handlers call
//! (`admin/access.rs`, `admin/routes.rs`), so both do the same checks and
//! the same follow-up (the access snapshot refreshed, the route table
//! reloaded).
//!
//! **Not in the OpenAPI document, and only under `/ui`.** These are HTML
//! pages, not API operations. They are registered with axum's `route`
//! in one place ([`Pages::page`], which refuses a path outside `/ui`) and
//! merged into the admin router in [`mount`]: the two exceptions to
//! `clippy.toml`'s ban, each with its reason. The route walk
//! (`admin/tests/route_walk.rs`) treats `/ui` as the dashboard's: every
//! dashboard path is under it and none is documented, and every other
//! served path still has to be.

mod assets;
mod audit;
mod csrf;
mod pages;
mod session;
mod signin;
pub(crate) mod traffic;

use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use subtle::ConstantTimeEq;

use super::{AdminState, ApiError};
use session::{Principal, Sessions, Signed};

/// Where the dashboard lives.
pub(crate) const PREFIX: &str = "/ui";
/// The sign-in page.
const SIGN_IN: &str = "/ui/sign-in";
/// The first page after sign-in.
const HOME: &str = "/ui/tunnels";

/// What every dashboard answer is allowed to load: scripts, styles and
/// images from this origin only (`/ui/static/`), requests to it alone, no
/// inline script or style, no framing, forms posted back here only.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How the dashboard is set up.
#[derive(Debug, Clone, Default)]
pub(crate) struct UiSettings {
    /// `--admin-group`: the identity provider's group whose users may
    /// sign in; `None`: the admin token only.
    pub(crate) admin_group: Option<String>,
    /// Whether the admin listener is TLS: its cookies are then `Secure`,
    /// and its own origin is `https://`. The admin listener is plain
    /// HTTP today (on loopback by default), so the edge passes `false`.
    pub(crate) tls: bool,
}

/// The dashboard's own state: its settings, sessions and traffic rings.
pub(crate) struct Ui {
    settings: UiSettings,
    sessions: Sessions,
    traffic: Arc<traffic::Traffic>,
}

impl Ui {
    /// The dashboard, plotting the samples `traffic` is given (by
    /// [`traffic::sample_forever`]).
    pub(crate) fn new(settings: UiSettings, traffic: Arc<traffic::Traffic>) -> Arc<Ui> {
        Arc::new(Ui {
            settings,
            sessions: Sessions::new(),
            traffic,
        })
    }

    fn scheme(&self) -> &'static str {
        if self.settings.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// What the dashboard's handlers get: the API's state and the
/// dashboard's.
#[derive(Clone)]
pub(super) struct Ctx {
    admin: AdminState,
    ui: Arc<Ui>,
}

impl Ctx {
    pub(super) fn new(admin: AdminState, ui: Arc<Ui>) -> Self {
        Ctx { admin, ui }
    }
}

/// The dashboard's routes, each under `/ui` (see the module doc).
struct Pages {
    router: Router<Ctx>,
    paths: Vec<&'static str>,
}

impl Pages {
    fn new() -> Self {
        Pages {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    /// Adds the page `path`, which must be `/ui` or under `/ui/`.
    #[expect(
        clippy::disallowed_methods,
        reason = "dashboard pages are HTML, not API operations: registered here, only under /ui (checked), and exempt from the OpenAPI document by the route walk"
    )]
    fn page(mut self, path: &'static str, route: MethodRouter<Ctx>) -> Self {
        assert!(
            path == PREFIX || path.starts_with("/ui/"),
            "dashboard page {path} is outside {PREFIX}/; the route walk exempts only {PREFIX}/ from the OpenAPI document"
        );
        self.paths.push(path);
        self.router = self.router.route(path, route);
        self
    }

    /// Every page, those that need a session behind [`require_session`].
    #[expect(
        clippy::disallowed_methods,
        reason = "merges two sets of dashboard pages, each registered by Pages::page"
    )]
    fn all() -> Pages {
        let open = Pages::new()
            .page(PREFIX, get(to_home))
            .page("/ui/", get(to_home))
            .page(SIGN_IN, get(signin::form).post(signin::with_token))
            .page(signin::SSO, get(signin::sso))
            .page(signin::CALLBACK, get(signin::callback))
            .page("/ui/static/{file}", get(assets::serve))
            .page("/ui/{*rest}", get(not_found));
        let signed_in = Pages::new()
            .page("/ui/sign-out", post(signin::sign_out))
            .page(HOME, get(pages::tunnels))
            .page("/ui/tunnels/{name}", get(pages::tunnel))
            .page("/ui/traffic", get(pages::traffic))
            .page("/ui/traffic.json", get(pages::traffic_json))
            .page("/ui/routes", get(pages::routes))
            .page("/ui/routes/delete", post(pages::delete_route))
            .page("/ui/apps", get(pages::apps))
            .page(
                "/ui/service-tokens",
                get(pages::tokens).post(pages::create_token),
            )
            .page("/ui/service-tokens/revoke", post(pages::revoke_token))
            .page("/ui/audit", get(audit::page));
        let mut paths = open.paths;
        paths.extend(signed_in.paths);
        Pages {
            router: open.router.merge(
                signed_in
                    .router
                    .route_layer(middleware::from_fn(require_session_layer)),
            ),
            paths,
        }
    }
}

/// Every path the dashboard serves (for the route walk).
#[cfg(test)]
pub(super) fn paths() -> Vec<&'static str> {
    Pages::all().paths
}

/// The admin router `api` with the dashboard beside it. The dashboard's
/// requests have the API's body bound and timer (`body_within`), then the
/// forgery check, then (pages that need one) the session check; every
/// answer gets the security headers ([`secure_headers`]).
#[expect(
    clippy::disallowed_methods,
    reason = "the one merge of the dashboard's pages (all under /ui, see Pages::page) into the admin router"
)]
pub(super) fn mount(api: Router, ctx: Ctx, body_timeout: Duration) -> Router {
    let pages = Pages::all()
        .router
        .layer(axum::Extension(ctx.clone()))
        .layer(middleware::from_fn_with_state(ctx.clone(), guard))
        .layer(middleware::from_fn(move |req, next| {
            super::body_within(body_timeout, req, next)
        }))
        .layer(middleware::map_response(secure_headers))
        .with_state(ctx);
    api.merge(pages)
}

/// The headers of every dashboard answer: the [`CSP`], no sniffing, no
/// framing, the referrer only to this origin (so that forms posted here
/// still carry `Origin`), and nothing cached unless it is a static file.
async fn secure_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// Why a request has no usable session.
#[derive(Debug)]
enum Ended {
    /// No cookie, or a session this process does not have (signed out,
    /// expired, the edge restarted).
    None,
    /// The admin token it signed in with is no longer one of the store's.
    TokenGone,
    /// Sign-in through the identity provider is off, or the provider it
    /// signed in at is no longer the configured one.
    ProviderGone,
    /// The store could not be read.
    Store(ApiError),
}

impl Ended {
    /// The `why` of the sign-in page's address.
    fn why(&self) -> &'static str {
        match self {
            Ended::None => "expired",
            Ended::TokenGone => "token",
            Ended::ProviderGone => "provider",
            Ended::Store(_) => "store",
        }
    }
}

impl Ctx {
    /// The request's live session, if it still may use the dashboard:
    /// see the module doc.
    async fn session(&self, headers: &HeaderMap) -> Result<Signed, Ended> {
        let id = crate::access::cookie(headers, session::COOKIE).ok_or(Ended::None)?;
        let signed = self
            .ui
            .sessions
            .get(id, Instant::now())
            .ok_or(Ended::None)?;
        let still = match &signed.principal {
            Principal::AdminToken { hash } => {
                let hashes = self
                    .admin
                    .store
                    .admin_token_hashes()
                    .await
                    .map_err(|e| Ended::Store(e.into()))?;
                let found = hashes.iter().fold(false, |found, h| {
                    found | bool::from(h.as_slice().ct_eq(hash))
                });
                found.then_some(()).ok_or(Ended::TokenGone)
            }
            Principal::User { issuer, .. } => {
                let snap = self.admin.access.snapshot();
                let same = snap.idp().is_some_and(|idp| &idp.issuer == issuer);
                (self.ui.settings.admin_group.is_some() && same)
                    .then_some(())
                    .ok_or(Ended::ProviderGone)
            }
        };
        if let Err(e) = still {
            self.ui.sessions.remove(&signed.id);
            return Err(e);
        }
        Ok(signed)
    }
}

/// Whether the request came from htmx (which then follows `HX-Redirect`
/// instead of a redirect status) or a script that wants JSON.
fn from_script(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.starts_with("application/json"))
}

/// The answer to a request without a usable session: to the sign-in page
/// (for htmx and scripts, 401 saying where it is).
fn sign_in_again(headers: &HeaderMap, ended: &Ended) -> Response {
    if let Ended::Store(e) = ended {
        return message(
            e.status(),
            "The dashboard cannot check your session",
            &format!("{} Try again in a moment.", e.message()),
        );
    }
    let to = format!("{SIGN_IN}?why={}", ended.why());
    if from_script(headers) {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "the dashboard session ended; sign in again at /ui/sign-in",
        )
            .into_response();
        r.headers_mut().insert(
            "hx-redirect",
            HeaderValue::from_str(&to).expect("a path is a header value"),
        );
        return r;
    }
    see_other(&to)
}

/// `303 See Other` to `to`.
fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, to.to_owned())],
        Body::empty(),
    )
        .into_response()
}

async fn require_session_layer(
    axum::Extension(ctx): axum::Extension<Ctx>,
    mut req: Request,
    next: Next,
) -> Response {
    match ctx.session(req.headers()).await {
        Ok(signed) => {
            req.extensions_mut().insert(signed);
            next.run(req).await
        }
        Err(ended) => sign_in_again(req.headers(), &ended),
    }
}

/// The forgery check of every request that changes something (see
/// `csrf.rs`): from this origin, and with the token of the session — or,
/// for the sign-in form, the token its cookie carries.
async fn guard(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    if let Err(forged) = csrf::same_origin(req.headers(), ctx.ui.scheme()) {
        return refused(&forged);
    }
    let expected = if req.uri().path() == SIGN_IN {
        crate::access::cookie(req.headers(), csrf::SIGN_IN_COOKIE)
            .unwrap_or_default()
            .to_owned()
    } else {
        match ctx.session(req.headers()).await {
            Ok(signed) => signed.csrf,
            Err(ended) => return sign_in_again(req.headers(), &ended),
        }
    };
    let (parts, body) = req.into_parts();
    // The body is bounded and read already (`body_within` runs first).
    let Ok(bytes) = axum::body::to_bytes(body, super::BODY_LIMIT).await else {
        return refused(&csrf::Forged::BadToken);
    };
    let presented = match parts.headers.get(csrf::HEADER) {
        Some(v) => v.to_str().ok().map(str::to_owned),
        None => form_field(&bytes, csrf::FIELD),
    };
    if !csrf::tokens_match(&expected, presented.as_deref()) {
        return refused(&csrf::Forged::BadToken);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The value of field `name` of a form body
/// (`application/x-www-form-urlencoded`).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (crate::access::oidc::decode(k) == name).then(|| crate::access::oidc::decode(v))
    })
}

fn refused(forged: &csrf::Forged) -> Response {
    message(StatusCode::FORBIDDEN, "Request refused", &forged.sentence())
}

/// A page's HTML as the answer, with `status`.
fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(text) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the dashboard could not render this page; the edge's log says why",
            )
                .into_response()
        }
    }
}

/// A page that says one thing: a refusal, an error, or where to go next.
#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
    version: &'static str,
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    html(
        status,
        &Message {
            title,
            text,
            version: env!("CARGO_PKG_VERSION"),
        },
    )
}

async fn to_home() -> Response {
    see_other(HOME)
}

async fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such page",
        "The dashboard has no page at this address; start again from its tunnels page at /ui/tunnels.",
    )
}

/// What every signed-in page's frame shows: who is signed in, the CSRF
/// token its forms and htmx carry, and which tab is open.
pub(super) struct Chrome {
    pub(super) who: String,
    pub(super) csrf: String,
    pub(super) tab: &'static str,
    pub(super) version: &'static str,
}

impl Chrome {
    fn new(signed: &Signed, tab: &'static str) -> Chrome {
        Chrome {
            who: signed.principal.label(),
            csrf: signed.csrf.clone(),
            tab,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Unix seconds as `2026-01-31 23:59:59 UTC`.
pub(super) fn utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}

/// A duration in seconds as `3 d 4 h`, `2 h 5 min`, `4 min 10 s`, `7 s`.
pub(super) fn span(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_spans_read_well() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
        assert_eq!(span(7), "7 s");
        assert_eq!(span(250), "4 min 10 s");
        assert_eq!(span(7500), "2 h 5 min");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
    }

    #[test]
    fn form_fields_are_decoded() {
        let body = b"name=ci+bot&_csrf=ab%63d&empty=";
        assert_eq!(form_field(body, "_csrf").as_deref(), Some("abcd"));
        assert_eq!(form_field(body, "name").as_deref(), Some("ci bot"));
        assert_eq!(form_field(body, "empty").as_deref(), Some(""));
        assert_eq!(form_field(body, "nope"), None);
    }

    #[test]
    fn every_page_is_under_ui() {
        let paths = paths();
        assert!(paths.len() >= 15, "{paths:?}");
        for p in paths {
            assert!(p == PREFIX || p.starts_with("/ui/"), "{p}");
        }
    }
}
