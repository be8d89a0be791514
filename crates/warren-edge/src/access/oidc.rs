//! Signing in through an OpenID Connect provider: authorization code flow
//! with PKCE (S256), `state` and `nonce`.
//!
//! 1. [`begin`]: a browser that must sign in is redirected to the
//!    provider's authorization endpoint. The flow's secrets (state, nonce,
//!    PKCE verifier, where to return) travel in a short-lived cookie the
//!    edge signs, so any edge process can finish the flow.
//! 2. [`callback`] on `https://HOST/.warren/callback`: the code is
//!    exchanged at the token endpoint (client secret + PKCE verifier), the
//!    ID token is verified against the provider's JWKS (signature, issuer,
//!    audience, expiry, nonce), a session is recorded in the store, and the
//!    browser gets the session cookie (HttpOnly, Secure, SameSite=Lax) and
//!    is sent back where it started — or, for `warren access login`, the
//!    token is handed to the CLI's loopback listener.
//! 3. [`logout`]: the session is revoked and the cookie cleared.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, Method, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warren_policy::Identity;
use warren_store::{AppRow, AuditEntry, IdpRow, SessionRow};
use warren_transport::body::{empty, BoxBody};

use super::{claims_for, tokens::cookie, Access, COOKIE};
use crate::audit::now;
use crate::pages::{page, EdgeFailure};

/// Path the provider redirects back to.
pub const CALLBACK_PATH: &str = "/.warren/callback";
/// Path that starts a sign-in (used by `warren access login`).
pub const LOGIN_PATH: &str = "/.warren/login";
/// Path that signs out.
pub const LOGOUT_PATH: &str = "/.warren/logout";
/// The cookie carrying the flow's state between begin and callback.
const FLOW_COOKIE: &str = "warren_login";
/// Largest document read from the identity provider.
const MAX_IDP_BODY: usize = 1024 * 1024;
/// How long discovery documents and key sets are cached.
const CACHE_TTL: Duration = Duration::from_secs(600);

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
    /// ... or the CLI's loopback URL.
    #[serde(default)]
    cli: Option<String>,
    app: String,
    /// `host[:port]` as the browser addressed the edge.
    authority: String,
}

/// The parts of the provider's discovery document the flow uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A provider's discovery document and key set, and when they were read.
type Cached = (Instant, Discovery, Option<JwkSet>);

/// Requests to identity providers, with discovery and JWKS caches.
pub struct IdpClient {
    timeout: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

/// Why talking to the identity provider failed.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("{0}")]
    Failed(String),
}

fn failed(what: impl std::fmt::Display) -> IdpError {
    IdpError::Failed(what.to_string())
}

impl IdpClient {
    pub(super) fn new(timeout: Duration) -> IdpClient {
        IdpClient {
            timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// One request; the body of a 2xx answer, or an error naming the URL.
    async fn call(
        &self,
        idp: &IdpRow,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<String>,
    ) -> Result<Bytes, IdpError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| failed(format!("{url} is not a valid URL ({e})")))?;
        let fut = self.call_uri(idp, method, &uri, headers, body);
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(|e| failed(format!("{url}: {e}"))),
            Err(_) => Err(failed(format!(
                "{url} did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn call_uri(
        &self,
        idp: &IdpRow,
        method: Method,
        uri: &Uri,
        headers: &[(&str, String)],
        body: Option<String>,
    ) -> Result<Bytes, IdpError> {
        let host = uri.host().ok_or_else(|| failed("the URL has no host"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(failed("only http and https URLs are supported")),
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(failed)?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, uri.authority().map_or(host, |a| a.as_str()))
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("warren/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(failed)?;
        let resp = if https {
            let trust = match &idp.ca_file {
                Some(f) => warren_transport::tls::Trust::Roots(std::sync::Arc::new(
                    warren_transport::tls::roots_from_file(std::path::Path::new(f))
                        .map_err(failed)?,
                )),
                None => warren_transport::tls::Trust::WebPki,
            };
            let cfg =
                warren_transport::tls::client_config(&trust, &[b"http/1.1"]).map_err(failed)?;
            let name =
                rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                    .map_err(failed)?;
            let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
                .connect(name, tcp)
                .await
                .map_err(failed)?;
            send(TokioIo::new(tls), req).await?
        } else {
            send(TokioIo::new(tcp), req).await?
        };
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_IDP_BODY)
            .collect()
            .await
            .map_err(|e| failed(format!("reading the answer: {e}")))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(failed(format!("answered {status}: {text}")));
        }
        Ok(body)
    }

    /// The provider's discovery document (and cached JWKS), from cache.
    async fn discover(
        &self,
        idp: &IdpRow,
        refresh_keys: bool,
    ) -> Result<(Discovery, JwkSet), IdpError> {
        let cached = self
            .cache
            .lock()
            .expect("idp cache")
            .get(&idp.issuer)
            .cloned();
        let disc = match cached {
            Some((at, d, Some(k))) if at.elapsed() < CACHE_TTL && !refresh_keys => {
                return Ok((d, k))
            }
            Some((at, d, _)) if at.elapsed() < CACHE_TTL => d,
            _ => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    idp.issuer.trim_end_matches('/')
                );
                let body = self.call(idp, Method::GET, &url, &[], None).await?;
                let d: Discovery = serde_json::from_slice(&body).map_err(|e| {
                    failed(format!(
                        "the discovery document at {url} does not parse ({e})"
                    ))
                })?;
                if d.issuer.trim_end_matches('/') != idp.issuer.trim_end_matches('/') {
                    return Err(failed(format!(
                        "the discovery document names issuer {} but the provider is configured as {}",
                        d.issuer, idp.issuer
                    )));
                }
                d
            }
        };
        let body = self
            .call(idp, Method::GET, &disc.jwks_uri, &[], None)
            .await?;
        let keys: JwkSet = serde_json::from_slice(&body).map_err(|e| {
            failed(format!(
                "the key set at {} does not parse ({e})",
                disc.jwks_uri
            ))
        })?;
        self.cache.lock().expect("idp cache").insert(
            idp.issuer.clone(),
            (Instant::now(), disc.clone(), Some(keys.clone())),
        );
        Ok((disc, keys))
    }
}

async fn send<IO>(
    io: TokioIo<IO>,
    req: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, IdpError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(failed)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(failed)
}

fn random_b64(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    URL_SAFE_NO_PAD.encode(b)
}

fn flow_aud(authority: &str) -> String {
    format!("warren-login:{authority}")
}

/// The decoded value of query parameter `name`.
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| decode(v))
    })
}

/// What stays as it is in a query value: RFC 3986's unreserved characters.
pub(crate) const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Decodes a percent-encoded query value (`+` is a space).
pub fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
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
    let cli = match cli {
        None => None,
        Some(c) => match safe_cli_url(c) {
            Some(c) => Some(c),
            None => {
                return EdgeFailure::BadRequest {
                    reason: "the sign-in callback must be an http:// loopback URL with a port"
                        .into(),
                }
                .response()
            }
        },
    };
    let disc = match access.idp_client().discover(idp, false).await {
        Ok((d, _)) => d,
        Err(e) => {
            tracing::warn!(idp = %idp.name, "cannot reach the identity provider: {e}");
            return EdgeFailure::IdentityProvider {
                reason: e.to_string(),
            }
            .response();
        }
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
    let Some(cookie) = snap.keys.sign_any(&flow) else {
        return EdgeFailure::BadRequest {
            reason: "the edge has no signing key yet; try again in a moment".into(),
        }
        .response();
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(flow.verifier.as_bytes()));
    let scopes = if idp.scopes.is_empty() {
        "openid email profile".to_owned()
    } else {
        idp.scopes.join(" ")
    };
    let sep = if disc.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!(
        "{}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        disc.authorization_endpoint,
        encode(&idp.client_id),
        encode(&format!("https://{authority}{CALLBACK_PATH}")),
        encode(&scopes),
        flow.state,
        flow.nonce,
        challenge,
    );
    let mut resp = redirect(&location);
    resp.headers_mut().append(
        header::SET_COOKIE,
        flow_cookie(&cookie, ttl)
            .parse()
            .expect("cookie is a header value"),
    );
    resp
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

/// The ID token's claims Warren reads.
#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(flatten)]
    rest: HashMap<String, serde_json::Value>,
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
    let (email, groups, sub) = match exchange(access, &idp, &code, &flow).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(idp = %idp.name, app = %app.name, "sign-in failed: {e}");
            return fail(format!("The sign-in could not be completed: {e}."));
        }
    };
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
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            "The edge cannot record the session right now; try again in a moment.",
        );
    }
    let Some(token) = snap.keys.sign(&claims_for(
        &identity,
        &sub,
        &host,
        &app.tag,
        now,
        exp,
        Some(sid),
    )) else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            "The edge has no signing key yet; try again in a moment.",
        );
    };
    access
        .audit(AuditEntry {
            kind: "login".into(),
            identity: email.clone(),
            source: source.to_string(),
            app: app.name.clone(),
            hostname: host.clone(),
            decision: "signed_in".into(),
            rule: format!("identity provider {}", idp.name),
            ..Default::default()
        })
        .await;
    tracing::info!(%email, app = %app.name, "signed in");
    let max_age = exp - now;
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

/// Code → verified ID token → (email, groups, subject).
async fn exchange(
    access: &Access,
    idp: &IdpRow,
    code: &str,
    flow: &Flow,
) -> Result<(String, Vec<String>, String), IdpError> {
    let client = access.idp_client();
    let (disc, keys) = client.discover(idp, false).await?;
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        encode(code),
        encode(&format!("https://{}{CALLBACK_PATH}", flow.authority)),
        encode(&flow.verifier),
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(&idp.client_id),
        encode(&idp.client_secret)
    ));
    let answer = client
        .call(
            idp,
            Method::POST,
            &disc.token_endpoint,
            &[
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("authorization", format!("Basic {basic}")),
            ],
            Some(body),
        )
        .await?;
    let answer: TokenAnswer = serde_json::from_slice(&answer)
        .map_err(|e| failed(format!("the token endpoint's answer has no ID token ({e})")))?;
    let header = jsonwebtoken::decode_header(&answer.id_token)
        .map_err(|e| failed(format!("the ID token does not parse ({e})")))?;
    const ALLOWED: &[Algorithm] = &[
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    if !ALLOWED.contains(&header.alg) {
        return Err(failed(format!(
            "the ID token is signed with {:?}, which Warren does not accept",
            header.alg
        )));
    }
    let find = |set: &JwkSet| match &header.kid {
        Some(kid) => set.find(kid).cloned(),
        None => set.keys.first().cloned(),
    };
    let jwk = match find(&keys) {
        Some(k) => k,
        None => {
            let (_, fresh) = client.discover(idp, true).await?;
            find(&fresh)
                .ok_or_else(|| failed("the ID token's key is not in the provider's key set"))?
        }
    };
    let key = DecodingKey::from_jwk(&jwk)
        .map_err(|e| failed(format!("the provider's key is unusable ({e})")))?;
    let mut v = Validation::new(header.alg);
    v.set_audience(&[&idp.client_id]);
    v.set_issuer(&[&disc.issuer]);
    v.leeway = 60;
    let claims = jsonwebtoken::decode::<IdClaims>(&answer.id_token, &key, &v)
        .map_err(|e| failed(format!("the ID token is not valid ({e})")))?
        .claims;
    if claims.nonce.as_deref() != Some(flow.nonce.as_str()) {
        return Err(failed("the ID token's nonce does not match this sign-in"));
    }
    let email = claims.email.filter(|e| e.contains('@')).ok_or_else(|| {
        failed("the identity provider did not give an email address; add the email scope")
    })?;
    if claims.email_verified == Some(false) {
        return Err(failed(
            "the identity provider says this email address is not verified",
        ));
    }
    let groups = match claims.rest.get(&idp.groups_claim) {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    Ok((email, groups, claims.sub))
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

    #[test]
    fn query_values_round_trip() {
        let uri: Uri = format!("/cb?code={}&state=x%2By", encode("a b/c&d="))
            .parse()
            .unwrap();
        assert_eq!(query_param(&uri, "code").unwrap(), "a b/c&d=");
        assert_eq!(query_param(&uri, "state").unwrap(), "x+y");
        assert_eq!(query_param(&uri, "nope"), None);
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
