//! Signing in to the dashboard, and out.
//!
//! - **With the admin token**: `GET /ui/sign-in` is a form whose CSRF
//!   token is also in a cookie of its own (there is no session yet to
//!   hold it); `POST /ui/sign-in` checks the token as the API does
//!   (`secrets::try_check_admin_token`, constant time) and starts a
//!   session that keeps only the token's hash.
//! - **Through the identity provider**, with `--admin-group GROUP`:
//!   `GET /ui/sso` starts the authorization code flow the access sign-in
//!   uses (`access::oidc`: PKCE, `state`, `nonce`, the flow signed by the
//!   edge in a cookie), coming back to `GET /ui/callback` on the admin
//!   listener, where the code is exchanged and the ID token verified by
//!   the same client. A user whose groups claim lists GROUP gets a
//!   session; anyone else is told why not. Both are audited (kind
//!   `dashboard`).
//! - `POST /ui/sign-out` ends the session.
//!
//! A browser does not send a `SameSite=Strict` cookie, as the session
//! cookie is, along redirects that come back from a provider on another
//! site, so the callback does not redirect: it answers with a page that
//! goes on to the dashboard from here.

use std::time::Instant;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::{Extension, Form};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use warren_proto::token::hash_secret;
use warren_store::AuditEntry;

use super::session::{self, random_token, session_cookie, Principal, Signed};
use super::{csrf, html, message, see_other, Ctx, HOME};
use crate::access::oidc::{authorization_url, exchange, query_param, random_b64};
use crate::secrets::try_check_admin_token;

/// Where a sign-in through the identity provider starts.
pub(super) const SSO: &str = "/ui/sso";
/// Where the identity provider sends the browser back.
pub(super) const CALLBACK: &str = "/ui/callback";
/// The cookie carrying the flow between [`sso`] and [`callback`].
const FLOW_COOKIE: &str = "warren_admin_flow";
/// The audit entries' kind.
const KIND: &str = "dashboard";

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    /// The provider's name, when sign-in through it is on and it exists.
    sso: Option<String>,
    group: String,
    version: &'static str,
}

#[derive(Deserialize)]
pub(super) struct Why {
    why: Option<String>,
}

impl Ctx {
    /// The sign-in page's provider button and notice.
    fn sso_offer(&self) -> (Option<String>, Option<String>) {
        let Some(group) = &self.ui.settings.admin_group else {
            return (None, None);
        };
        match self.admin.access.snapshot().idp() {
            Some(idp) => (Some(idp.name.clone()), None),
            None => (
                None,
                Some(format!(
                    "Members of the group {group} could sign in here through the identity provider, but none is configured; add one with `warren access idp add`, or sign in with the admin token."
                )),
            ),
        }
    }

    fn sign_in_page(
        &self,
        csrf: String,
        error: Option<String>,
        notice: Option<String>,
    ) -> SignInPage {
        let (sso, sso_notice) = self.sso_offer();
        SignInPage {
            csrf,
            notice: notice.or(sso_notice),
            error,
            sso,
            group: self.ui.settings.admin_group.clone().unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn set_cookie(&self, resp: &mut Response, value: &str) {
        resp.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(value).expect("cookies are header values"),
        );
    }

    /// A session for `principal`, audited; the answer is `resp` with its
    /// cookie.
    async fn start_session(
        &self,
        principal: Principal,
        rule: String,
        host: &str,
        mut resp: Response,
    ) -> Response {
        let who = principal.label();
        let signed = self.ui.sessions.create(principal, Instant::now());
        self.admin
            .access
            .audit(AuditEntry {
                kind: KIND.into(),
                identity: who.clone(),
                hostname: host.to_owned(),
                decision: "signed_in".into(),
                rule,
                ..Default::default()
            })
            .await;
        tracing::info!(who = %who, "signed in to the dashboard");
        self.set_cookie(&mut resp, &session_cookie(&signed.id, self.ui.settings.tls));
        resp
    }

    /// The sign-in form's CSRF cookie.
    fn form_cookie(&self, token: &str, max_age: u64) -> String {
        session::cookie(
            csrf::SIGN_IN_COOKIE,
            token,
            super::SIGN_IN,
            "Strict",
            max_age,
            self.ui.settings.tls,
        )
    }
}

/// The host the request addressed, without the port.
fn host_of(headers: &HeaderMap) -> String {
    authority(headers)
        .map(|a| a.host().to_owned())
        .unwrap_or_default()
}

/// `Host` as an authority (`host[:port]`), if it is one.
fn authority(headers: &HeaderMap) -> Option<http::uri::Authority> {
    headers
        .get(header::HOST)?
        .to_str()
        .ok()?
        .parse::<http::uri::Authority>()
        .ok()
        .filter(|a| !a.as_str().contains('@'))
}

/// `GET /ui/sign-in`.
pub(super) async fn form(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(why): Query<Why>,
) -> Response {
    if ctx.session(&headers).await.is_ok() {
        return see_other(HOME);
    }
    // Keep the form's token across tabs; make one where there is none.
    let token = crate::access::cookie(&headers, csrf::SIGN_IN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(random_token, str::to_owned);
    let notice = match why.why.as_deref() {
        Some("expired") => Some("Your dashboard session has ended; sign in again.".to_owned()),
        Some("token") => Some("The admin token this session signed in with is no longer valid on this edge; sign in with a current one.".to_owned()),
        Some("provider") => Some("Signing in through the identity provider is no longer set up as it was when this session started; sign in again.".to_owned()),
        Some("signed-out") => Some("You are signed out.".to_owned()),
        _ => None,
    };
    let mut resp = html(
        StatusCode::OK,
        &ctx.sign_in_page(token.clone(), None, notice),
    );
    ctx.set_cookie(&mut resp, &ctx.form_cookie(&token, 3600));
    resp
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    token: String,
}

/// `POST /ui/sign-in`: the forgery check has passed (`guard`).
pub(super) async fn with_token(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let again = |status: StatusCode, error: String| {
        let token = crate::access::cookie(&headers, csrf::SIGN_IN_COOKIE)
            .unwrap_or_default()
            .to_owned();
        html(status, &ctx.sign_in_page(token, Some(error), None))
    };
    let Ok(Form(form)) = body else {
        return again(
            StatusCode::BAD_REQUEST,
            "The sign-in form did not arrive as a form; sign in from the page.".into(),
        );
    };
    let presented = form.token.trim();
    if presented.is_empty() {
        return again(
            StatusCode::BAD_REQUEST,
            "Paste the admin token: the contents of <data-dir>/admin-token on the edge.".into(),
        );
    }
    match try_check_admin_token(&ctx.admin.store, presented).await {
        Ok(true) => {
            let mut resp = see_other(HOME);
            ctx.set_cookie(&mut resp, &ctx.form_cookie("", 0));
            ctx.start_session(
                Principal::AdminToken {
                    hash: hash_secret(presented.as_bytes()),
                },
                "admin token".into(),
                &host_of(&headers),
                resp,
            )
            .await
        }
        Ok(false) => {
            tracing::warn!("a dashboard sign-in with a token that is not this edge's admin token");
            again(
                StatusCode::UNAUTHORIZED,
                "That is not this edge's admin token; paste the contents of <data-dir>/admin-token on the edge (the file the edge wrote when it first started).".into(),
            )
        }
        Err(e) => {
            let e = super::ApiError::from(e);
            again(
                e.status(),
                format!("{} Try again in a moment.", e.message()),
            )
        }
    }
}

/// `POST /ui/sign-out`.
pub(super) async fn sign_out(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
) -> Response {
    ctx.ui.sessions.remove(&signed.id);
    tracing::info!(who = %signed.principal.label(), "signed out of the dashboard");
    let mut resp = see_other("/ui/sign-in?why=signed-out");
    ctx.set_cookie(&mut resp, &session_cookie("", ctx.ui.settings.tls));
    resp
}

/// What travels from [`sso`] to [`callback`] in the signed cookie.
#[derive(Serialize, Deserialize)]
struct Flow {
    aud: String,
    exp: i64,
    state: String,
    nonce: String,
    verifier: String,
    /// The provider it started at.
    issuer: String,
}

fn flow_aud(authority: &str) -> String {
    format!("warren-dashboard:{authority}")
}

/// `GET /ui/sso`: to the identity provider.
pub(super) async fn sso(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let Some(group) = ctx.ui.settings.admin_group.clone() else {
        return message(
            StatusCode::NOT_FOUND,
            "Sign-in through the identity provider is off",
            "This edge lets no identity-provider group into the dashboard; sign in with the admin token, or start the edge with --admin-group GROUP.",
        );
    };
    let snap = ctx.admin.access.snapshot();
    let Some(idp) = snap.idp() else {
        return message(
            StatusCode::CONFLICT,
            "No identity provider",
            &format!("Members of {group} may sign in through the identity provider, but none is configured; add one with `warren access idp add`, or sign in with the admin token."),
        );
    };
    let Some(authority) = authority(&headers) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The request names no host the identity provider could send the browser back to; open the dashboard by its address (such as http://127.0.0.1:7800/ui/).",
        );
    };
    let ttl = i64::try_from(ctx.admin.access.settings().login_timeout.as_secs()).unwrap_or(600);
    let flow = Flow {
        aud: flow_aud(authority.as_str()),
        exp: crate::audit::now() + ttl,
        state: random_b64(24),
        nonce: random_b64(24),
        verifier: random_b64(32),
        issuer: idp.issuer.clone(),
    };
    let redirect_uri = format!("{}://{authority}{CALLBACK}", ctx.ui.scheme());
    let location = match authorization_url(
        ctx.admin.access.idp_client(),
        idp,
        &redirect_uri,
        &flow.state,
        &flow.nonce,
        &flow.verifier,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(idp = %idp.name, "the dashboard cannot reach the identity provider: {e}");
            return message(
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                &format!("The identity provider {} could not be used ({e}); check that it is up, or sign in with the admin token.", idp.name),
            );
        }
    };
    let Some(signed_flow) = snap.keys.sign_any(&flow) else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            "The edge has no signing key yet; try again in a moment.",
        );
    };
    let mut resp = see_other(&location);
    let max_age = u64::try_from(ttl).unwrap_or(600);
    ctx.set_cookie(
        &mut resp,
        // Lax: the provider's redirect back is a navigation from another
        // site, which must carry it.
        &session::cookie(
            FLOW_COOKIE,
            &signed_flow,
            CALLBACK,
            "Lax",
            max_age,
            ctx.ui.settings.tls,
        ),
    );
    resp
}

#[derive(Template)]
#[template(path = "signed_in.html")]
struct SignedInPage {
    who: String,
    version: &'static str,
}

/// `GET /ui/callback`: back from the identity provider.
pub(super) async fn callback(State(ctx): State<Ctx>, headers: HeaderMap, uri: Uri) -> Response {
    let tls = ctx.ui.settings.tls;
    let clear = session::cookie(FLOW_COOKIE, "", CALLBACK, "Lax", 0, tls);
    let fail = |status: StatusCode, text: &str| {
        let mut r = message(status, "Sign-in failed", text);
        ctx.set_cookie(&mut r, &clear);
        r
    };
    let Some(group) = ctx.ui.settings.admin_group.clone() else {
        return fail(StatusCode::NOT_FOUND, "This edge lets no identity-provider group into the dashboard; sign in with the admin token.");
    };
    let Some(authority) = authority(&headers) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "The request names no host; start again from the sign-in page.",
        );
    };
    let snap = ctx.admin.access.snapshot();
    let Some(flow) = crate::access::cookie(&headers, FLOW_COOKIE).and_then(|c| {
        snap.keys
            .verify_any::<Flow>(c, &flow_aud(authority.as_str()))
            .ok()
    }) else {
        return fail(StatusCode::BAD_REQUEST, "The sign-in took too long or was started in another browser; start again from the sign-in page.");
    };
    if let Some(err) = query_param(&uri, "error") {
        let desc = query_param(&uri, "error_description").unwrap_or_default();
        let text = format!("The identity provider refused the sign-in ({err} {desc}); try again, or sign in with the admin token.");
        return fail(
            StatusCode::BAD_REQUEST,
            text.chars().take(400).collect::<String>().as_str(),
        );
    }
    let state_ok = query_param(&uri, "state").is_some_and(|s| {
        s.len() == flow.state.len() && bool::from(s.as_bytes().ct_eq(flow.state.as_bytes()))
    });
    let Some(code) = query_param(&uri, "code").filter(|_| state_ok) else {
        return fail(StatusCode::BAD_REQUEST, "The sign-in answer does not match the sign-in this browser started; start again from the sign-in page.");
    };
    let Some(idp) = snap.idp().filter(|i| i.issuer == flow.issuer).cloned() else {
        return fail(StatusCode::CONFLICT, "The identity provider changed while you were signing in; start again from the sign-in page.");
    };
    let redirect_uri = format!("{}://{authority}{CALLBACK}", ctx.ui.scheme());
    let signed = match exchange(
        ctx.admin.access.idp_client(),
        &idp,
        &code,
        &redirect_uri,
        &flow.verifier,
        &flow.nonce,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(idp = %idp.name, "dashboard sign-in failed: {e}");
            return fail(
                StatusCode::BAD_GATEWAY,
                &format!("The sign-in could not be completed: {e}."),
            );
        }
    };
    let host = authority.host().to_owned();
    let rule = format!("identity provider {}, group {group}", idp.name);
    if !signed.groups.iter().any(|g| g == &group) {
        ctx.admin
            .access
            .audit(AuditEntry {
                kind: KIND.into(),
                identity: signed.email.clone(),
                hostname: host,
                decision: "deny".into(),
                rule: format!("not in group {group}"),
                ..Default::default()
            })
            .await;
        tracing::info!(email = %signed.email, %group, "dashboard sign-in refused: not in the admin group");
        return fail(
            StatusCode::FORBIDDEN,
            &format!(
                "{} is signed in at the identity provider but is not a member of the group {group}, which is the group allowed into this dashboard; ask an administrator to add the account to {group}, or sign in with the admin token.",
                signed.email
            ),
        );
    }
    let mut page = html(
        StatusCode::OK,
        &SignedInPage {
            who: signed.email.clone(),
            version: env!("CARGO_PKG_VERSION"),
        },
    );
    ctx.set_cookie(&mut page, &clear);
    ctx.start_session(
        Principal::User {
            email: signed.email,
            issuer: idp.issuer,
        },
        rule,
        &host,
        page,
    )
    .await
}
