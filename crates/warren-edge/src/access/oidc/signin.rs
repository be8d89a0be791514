//! The sign-in handlers: [`begin`] (the redirect to the provider, with the
//! flow's state in a signed cookie), [`callback`] (session, cookie or the
//! CLI hand-off), [`logout`], and the cookies they set.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{header, Response, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use warren_policy::Identity;
use warren_store::{AppRow, AuditEntry, IdpRow, SessionRow};
use warren_transport::body::{empty, BoxBody};

use super::client::{authorization_url, exchange, SignedIn};
use super::device::{admit, paste_page, PASTE};
use super::{encode, query_param, CALLBACK_PATH};
use crate::access::{claims_for, tokens::cookie, Access, Snapshot, COOKIE};
use crate::audit::now;
use crate::pages::{page, EdgeFailure};

/// The cookie carrying the flow's state between begin and callback.
const FLOW_COOKIE: &str = "warren_login";

/// What the sign-in flow carries from begin to callback (signed by the
/// edge, in a cookie).
#[derive(Debug, Serialize, Deserialize)]
struct Flow {
    aud: String,
    exp: i64,
    state: String,
    nonce: String,
    verifier: String,
    /// Path to return to (browser) ...
    #[serde(default)]
    return_to: String,
    /// ... or the CLI's loopback URL, or `paste` (the page shows a
    /// one-time code to paste into the CLI).
    #[serde(default)]
    cli: Option<String>,
    app: String,
    /// `host[:port]` as the browser addressed the edge.
    authority: String,
}

pub(crate) fn random_b64(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    URL_SAFE_NO_PAD.encode(b)
}

fn flow_aud(authority: &str) -> String {
    format!("warren-login:{authority}")
}

/// A path to return to after sign-in: only a local path, never another
/// site (`//evil.example`, `/\evil.example`).
fn safe_return(path: &str) -> String {
    if path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\") {
        path.to_owned()
    } else {
        "/".to_owned()
    }
}

/// Only loopback `http://` URLs may receive a CLI token.
fn safe_cli_url(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let host = uri.host()?;
    (uri.scheme_str() == Some("http")
        && matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
        && uri.port_u16().is_some())
    .then(|| url.to_owned())
}

fn redirect(location: &str) -> Response<BoxBody> {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .body(empty())
        .expect("valid redirect")
}

fn flow_cookie(value: &str, max_age: i64) -> String {
    format!(
        "{FLOW_COOKIE}={value}; Path=/.warren/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age}"
    )
}

/// The `Set-Cookie` value of a session cookie (or of its removal).
pub fn session_cookie(value: &str, max_age: i64) -> String {
    format!("{COOKIE}={value}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age}")
}

/// Starts a sign-in for `app`: a redirect to the identity provider.
/// `authority` is `host[:port]` as the client addressed the edge;
/// `return_to` the path to come back to, or `cli` a loopback URL.
pub async fn begin(
    access: &Access,
    app: &AppRow,
    authority: &str,
    return_to: &str,
    cli: Option<&str>,
) -> Response<BoxBody> {
    let snap = access.snapshot();
    let Some(idp) = snap.idp() else {
        return EdgeFailure::NoIdentityProvider {
            app: app.name.clone(),
        }
        .response();
    };
    let cli =
        match cli {
            None => None,
            Some(PASTE) => Some(PASTE.to_owned()),
            Some(c) => match safe_cli_url(c) {
                Some(c) => Some(c),
                None => return EdgeFailure::BadRequest {
                    reason:
                        "the sign-in callback must be an http:// loopback URL with a port, or paste"
                            .into(),
                }
                .response(),
            },
        };
    let ttl = i64::try_from(access.settings().login_timeout.as_secs()).unwrap_or(600);
    let flow = Flow {
        aud: flow_aud(authority),
        exp: now() + ttl,
        state: random_b64(24),
        nonce: random_b64(24),
        verifier: random_b64(32),
        return_to: safe_return(return_to),
        cli,
        app: app.name.clone(),
        authority: authority.to_owned(),
    };
    let location = match authorization_url(
        access.idp_client(),
        idp,
        &format!("https://{authority}{CALLBACK_PATH}"),
        &flow.state,
        &flow.nonce,
        &flow.verifier,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(idp = %idp.name, "cannot reach the identity provider: {e}");
            return EdgeFailure::IdentityProvider {
                reason: e.to_string(),
            }
            .response();
        }
    };
    let Some(cookie) = snap.keys.sign_any(&flow) else {
        return EdgeFailure::BadRequest {
            reason: "the edge has no signing key yet; try again in a moment".into(),
        }
        .response();
    };
    let mut resp = redirect(&location);
    resp.headers_mut().append(
        header::SET_COOKIE,
        flow_cookie(&cookie, ttl)
            .parse()
            .expect("cookie is a header value"),
    );
    resp
}

/// Finishes a sign-in: see the module documentation.
pub async fn callback(
    access: &Access,
    headers: &http::HeaderMap,
    uri: &Uri,
    authority: &str,
    source: std::net::SocketAddr,
) -> Response<BoxBody> {
    let host = authority.split(':').next().unwrap_or(authority).to_owned();
    let fail = |text: String| {
        let mut r = page(StatusCode::BAD_REQUEST, "Sign-in failed", &text);
        r.headers_mut().append(
            header::SET_COOKIE,
            flow_cookie("", 0)
                .parse()
                .expect("cookie is a header value"),
        );
        r
    };
    let snap = access.snapshot();
    let Some(flow) = cookie(headers, FLOW_COOKIE)
        .and_then(|c| snap.keys.verify_any::<Flow>(c, &flow_aud(authority)).ok())
    else {
        return fail("The sign-in took too long or was started in another browser; open the page again to start over.".into());
    };
    if let Some(err) = query_param(uri, "error") {
        let desc = query_param(uri, "error_description").unwrap_or_default();
        return fail(format!("The identity provider refused the sign-in ({err} {desc}); try again or ask an administrator."));
    }
    let state_ok = query_param(uri, "state").is_some_and(|s| {
        use subtle::ConstantTimeEq;
        s.len() == flow.state.len() && bool::from(s.as_bytes().ct_eq(flow.state.as_bytes()))
    });
    let Some(code) = query_param(uri, "code").filter(|_| state_ok) else {
        return fail("The sign-in answer does not match the sign-in this browser started; open the page again to start over.".into());
    };
    let Some(app) = snap.apps.iter().find(|a| a.name == flow.app).cloned() else {
        return fail("The application this sign-in was for no longer exists.".into());
    };
    let Some(idp) = snap.idp().cloned() else {
        return EdgeFailure::NoIdentityProvider {
            app: app.name.clone(),
        }
        .response();
    };
    let redirect_uri = format!("https://{}{CALLBACK_PATH}", flow.authority);
    let exchanged = exchange(
        access.idp_client(),
        &idp,
        &code,
        &redirect_uri,
        &flow.verifier,
        &flow.nonce,
    )
    .await;
    let signed = match exchanged {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(idp = %idp.name, app = %app.name, "sign-in failed: {e}");
            return fail(format!("The sign-in could not be completed: {e}."));
        }
    };
    let paste = flow.cli.as_deref() == Some(PASTE);
    if paste {
        if let Err(refused) = admit(access, &app, &signed, &host, source).await {
            let mut r = refused.response();
            r.headers_mut().append(
                header::SET_COOKIE,
                flow_cookie("", 0)
                    .parse()
                    .expect("cookie is a header value"),
            );
            return r;
        }
    }
    let issued = match establish(access, &snap, &app, &idp, signed, &host, source).await {
        Ok(i) => i,
        Err(sentence) => return page(StatusCode::SERVICE_UNAVAILABLE, "Sign-in failed", sentence),
    };
    if paste {
        let mut r = paste_page(access, &host, issued);
        r.headers_mut().append(
            header::SET_COOKIE,
            flow_cookie("", 0)
                .parse()
                .expect("cookie is a header value"),
        );
        return r;
    }
    let Issued { token, max_age } = issued;
    let mut resp = match &flow.cli {
        Some(cli) => {
            let sep = if cli.contains('?') { '&' } else { '?' };
            redirect(&format!("{cli}{sep}token={}", encode(&token)))
        }
        None => {
            let mut r = redirect(&flow.return_to);
            r.headers_mut().append(
                header::SET_COOKIE,
                session_cookie(&token, max_age)
                    .parse()
                    .expect("cookie is a header value"),
            );
            r
        }
    };
    resp.headers_mut().append(
        header::SET_COOKIE,
        flow_cookie("", 0)
            .parse()
            .expect("cookie is a header value"),
    );
    resp
}

/// A Warren identity token issued at the end of a sign-in.
pub(super) struct Issued {
    pub(super) token: String,
    /// Seconds until it expires.
    pub(super) max_age: i64,
}

/// The end of every sign-in, browser or device: records the session in
/// the store, signs the Warren identity token for `app` on `host`, and
/// writes the `login` audit entry. The error is the sentence to show
/// (the edge cannot go on right now).
pub(super) async fn establish(
    access: &Access,
    snap: &Snapshot,
    app: &AppRow,
    idp: &IdpRow,
    signed: SignedIn,
    host: &str,
    source: std::net::SocketAddr,
) -> Result<Issued, &'static str> {
    let SignedIn { email, groups, sub } = signed;
    let now = now();
    let exp = now.saturating_add(i64::try_from(app.app.session_duration_secs).unwrap_or(i64::MAX));
    let sid = uuid::Uuid::new_v4().to_string();
    let identity = Identity::User {
        email: email.clone(),
        groups,
    };
    let session = SessionRow {
        id: sid.clone(),
        identity: identity.clone(),
        email: email.clone(),
        app: app.name.clone(),
        source: source.to_string(),
        created_at: now,
        expires_at: exp,
        revoked_at: None,
    };
    if let Err(e) = access.store().create_session(&session).await {
        tracing::error!("cannot record a session: {e}");
        return Err("The edge cannot record the session right now; try again in a moment.");
    }
    let Some(token) = snap.keys.sign(&claims_for(
        &identity,
        &sub,
        host,
        &app.tag,
        now,
        exp,
        Some(sid),
    )) else {
        return Err("The edge has no signing key yet; try again in a moment.");
    };
    access
        .audit(AuditEntry {
            kind: "login".into(),
            identity: email.clone(),
            source: source.to_string(),
            app: app.name.clone(),
            hostname: host.to_owned(),
            decision: "signed_in".into(),
            rule: format!("identity provider {}", idp.name),
            ..Default::default()
        })
        .await;
    tracing::info!(%email, app = %app.name, "signed in");
    Ok(Issued {
        token,
        max_age: exp - now,
    })
}

/// Signs out: revokes the session in the cookie and clears it.
pub async fn logout(
    access: &Access,
    headers: &http::HeaderMap,
    app: Option<&AppRow>,
) -> Response<BoxBody> {
    if let (Some(token), Some(app)) = (cookie(headers, COOKIE), app) {
        if let Ok(c) = access.snapshot().keys.verify(token, &app.tag) {
            if let Some(sid) = c.sid {
                if let Err(e) = access.store().revoke_sessions(&sid).await {
                    tracing::error!("cannot revoke a session at logout: {e}");
                }
            }
        }
    }
    let name = app.map_or("this site", |a| a.name.as_str());
    let mut r = page(
        StatusCode::OK,
        "Signed out",
        &format!("You are signed out of {name}."),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        session_cookie("", 0)
            .parse()
            .expect("cookie is a header value"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_the_site() {
        assert_eq!(safe_return("/a?b=1"), "/a?b=1");
        assert_eq!(safe_return("//evil.example/x"), "/");
        assert_eq!(safe_return("/\\evil.example"), "/");
        assert_eq!(safe_return("https://evil.example/"), "/");
        assert!(safe_cli_url("http://127.0.0.1:4711/cb").is_some());
        assert!(safe_cli_url("http://evil.example:4711/cb").is_none());
        assert!(safe_cli_url("https://127.0.0.1:4711/cb").is_none());
        assert!(safe_cli_url("http://127.0.0.1/cb").is_none());
    }
}
