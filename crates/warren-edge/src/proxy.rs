//! The HTTP request path, in phases:
//!
//! 1. **identify**: the hostname from `:authority` or `Host`;
//! 2. **route**: hostname → tunnel ([`RouteTable`]);
//! 3. **authorize**: the access application covering the request decides
//!    ([`Access::authorize`]); a browser that must sign in is sent to the
//!    identity provider; the decision is audited; credentials are removed
//!    and the signed identity added to what the origin receives;
//! 4. **pick**: a live connection of the tunnel, the less loaded of two
//!    random ones ([`Registry::pick_fresh`]);
//! 5. **open**: a QUIC stream on it, with a typed request header;
//! 6. **proxy**: request body up and response body down as body frames,
//!    concurrently, each awaiting the other side's flow control; or, for
//!    an upgrade answered 101, raw bytes both ways.
//!
//! Failures become pages through [`EdgeFailure`], never ad hoc responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use warren_proto::stream::{ClientInfo, ErrorCode, HttpHead, StreamRequest, StreamResponse};
use warren_transport::body::{headers_from_wire, recv_body, send_body, BoxBody};
use warren_transport::framed::expect_frame;
use warren_transport::splice::{splice, QuicStream};

use crate::access::{self, Access, Grant, Refusal};
use crate::pages::EdgeFailure;
use crate::registry::{Registry, StreamGuard, TunnelConn};
use crate::routes::{Route, RouteTable};

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
];

/// What the request path needs.
pub struct ProxyCtx {
    pub routes: RouteTable,
    pub registry: Registry,
    /// Where finished connections are recorded.
    pub audit: crate::audit::AuditSink,
    /// Access decisions.
    pub access: Access,
    /// Signs client certificates for the native PostgreSQL listener.
    pub ca: Arc<crate::ca::Ca>,
    /// The native PostgreSQL listener's port, told to `access pg-cert`.
    pub postgres_port: Option<u16>,
    /// How long the connector has to answer a stream header.
    pub stream_timeout: Duration,
}

/// Serves one HTTP request arriving at the edge.
pub async fn handle(
    ctx: Arc<ProxyCtx>,
    req: Request<Incoming>,
    client: SocketAddr,
    scheme: &'static str,
) -> Response<BoxBody> {
    match serve(&ctx, req, client, scheme).await {
        Ok(resp) => resp,
        Err(failure) => {
            tracing::debug!(code = failure.code(), "{}", failure.sentence());
            failure.response()
        }
    }
}

async fn serve(
    ctx: &ProxyCtx,
    req: Request<Incoming>,
    client: SocketAddr,
    scheme: &'static str,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let host = identify(&req)?;
    let route = route(ctx, &host)?;
    let path = req.uri().path().to_owned();
    if path == PG_CERT_PATH {
        return pg_cert(ctx, req, &host, route.public, client).await;
    }
    if path == WHOAMI_PATH {
        return whoami(ctx, &req, &host, route.public, client);
    }
    if let Some(resp) = edge_path(ctx, &req, &host, &path, client).await {
        return Ok(resp);
    }
    let tcp = path == crate::tcp::TCP_PATH && crate::tcp::is_websocket(&req);
    let grant = authorize(ctx, &req, &host, &path, route.public, client, !tcp).await?;
    let grant = match grant {
        Ok(g) => g,
        Err(redirect) => return Ok(redirect),
    };
    if tcp {
        return crate::tcp::handle(ctx, req, host, route, client, grant).await;
    }
    let assertion = grant.assertion(&ctx.access.snapshot().keys, &host);
    let client = ClientInfo {
        addr: client.to_string(),
        scheme: scheme.to_owned(),
    };
    if is_upgrade(&req) {
        proxy_upgrade(ctx, req, host, route, client, grant, assertion).await
    } else {
        proxy_http(ctx, req, host, route, client, assertion).await
    }
}

/// The edge's own paths under `/.warren/` on any routed hostname: the
/// JWKS, and sign-in, its callback and sign-out.
async fn edge_path<B>(
    ctx: &ProxyCtx,
    req: &Request<B>,
    host: &str,
    path: &str,
    client: SocketAddr,
) -> Option<Response<BoxBody>> {
    let authority = authority(req, host);
    match path {
        "/.warren/certs" => Some(
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CACHE_CONTROL, "public, max-age=300")
                .body(warren_transport::body::full(
                    ctx.access.snapshot().keys.jwks().to_owned(),
                ))
                .expect("valid JWKS response"),
        ),
        access::oidc::CALLBACK_PATH => Some(
            access::oidc::callback(&ctx.access, req.headers(), req.uri(), &authority, client).await,
        ),
        access::oidc::LOGOUT_PATH => {
            let snap = ctx.access.snapshot();
            let app = snap.app_for(host, "/").cloned();
            Some(access::oidc::logout(&ctx.access, req.headers(), app.as_deref()).await)
        }
        access::oidc::LOGIN_PATH => {
            let snap = ctx.access.snapshot();
            let Some(app) = snap.app_for(host, "/").cloned() else {
                return Some(
                    EdgeFailure::NotProtected {
                        host: host.to_owned(),
                    }
                    .response(),
                );
            };
            let cli = access::oidc::query_param(req.uri(), "cli");
            let back =
                access::oidc::query_param(req.uri(), "redirect").unwrap_or_else(|| "/".to_owned());
            Some(access::oidc::begin(&ctx.access, &app, &authority, &back, cli.as_deref()).await)
        }
        _ => None,
    }
}

/// Answers whether the presented credentials would be allowed, without
/// reaching the origin (`warren access tcp` asks before it listens).
pub const WHOAMI_PATH: &str = "/.warren/whoami";

/// The decision for the presented credentials: 200 with who they are, or
/// the refusal page (401 sign-in-required, 403, ...). Not audited: nothing
/// reaches an origin.
fn whoami<B>(
    ctx: &ProxyCtx,
    req: &Request<B>,
    host: &str,
    public_route: bool,
    client: SocketAddr,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let grant = ctx
        .access
        .authorize(&access::Request {
            headers: req.headers(),
            host,
            path: "/",
            source: client,
            public_route,
        })
        .map_err(|r| r.failure(host))?;
    let body = serde_json::json!({
        "allowed": true,
        "app": grant.app.as_ref().map(|a| a.name.clone()),
        "identity": grant.who.label(),
        "expires_at": grant.who.expires_at,
    });
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(warren_transport::body::full(body.to_string()))
        .expect("valid answer"))
}

/// Where `warren access pg-cert` sends its CSR.
pub const PG_CERT_PATH: &str = "/.warren/pg-cert";
/// Largest CSR accepted.
const MAX_CSR: usize = 16 * 1024;

/// Issues a client certificate for the native PostgreSQL listener to an
/// identity the hostname's application allows (a signed-in user's token
/// or a service token): `POST` a PKCS#10 CSR (DER or PEM); the answer is
/// the PEM chain (leaf, CA) and `warren-postgres-port`.
async fn pg_cert(
    ctx: &ProxyCtx,
    req: Request<Incoming>,
    host: &str,
    public_route: bool,
    client: SocketAddr,
) -> Result<Response<BoxBody>, EdgeFailure> {
    use http_body_util::BodyExt;
    if req.method() != hyper::Method::POST {
        return Err(EdgeFailure::BadRequest {
            reason: format!("{PG_CERT_PATH} takes a POST of a certificate signing request"),
        });
    }
    let grant = match authorize(ctx, &req, host, PG_CERT_PATH, public_route, client, false).await? {
        Ok(g) => g,
        Err(resp) => return Ok(resp),
    };
    let Some((cn, uris)) = access::pgcert::describe(&grant.who) else {
        return Err(EdgeFailure::SignInRequired {
            host: host.to_owned(),
            app: grant.app_name(),
        });
    };
    let body = http_body_util::Limited::new(req.into_body(), MAX_CSR)
        .collect()
        .await
        .map_err(|_| EdgeFailure::BadRequest {
            reason: format!("the certificate signing request is larger than {MAX_CSR} bytes"),
        })?
        .to_bytes();
    let der = if body.starts_with(b"-----BEGIN") {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(&body)
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| EdgeFailure::BadRequest {
                reason: format!("the certificate signing request is not valid PEM ({e})"),
            })?
    } else {
        body.to_vec()
    };
    let now = crate::audit::now();
    let not_after = grant
        .who
        .expires_at
        .unwrap_or(i64::MAX)
        .min(now + access::pgcert::MAX_LIFETIME_SECS);
    let chain = ctx
        .ca
        .sign_client_csr(&der, &cn, &uris, not_after)
        .map_err(|e| EdgeFailure::BadRequest {
            reason: e.to_string(),
        })?;
    ctx.access
        .audit(warren_store::AuditEntry {
            kind: "pg_cert".into(),
            identity: grant.who.label(),
            source: client.to_string(),
            app: grant.app_name(),
            hostname: host.to_owned(),
            decision: "issued".into(),
            rule: grant.reason(),
            ..Default::default()
        })
        .await;
    let mut pem = String::new();
    for c in &chain {
        pem.push_str(&pem_block("CERTIFICATE", c));
    }
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, "application/x-pem-file")
        .header(header::CACHE_CONTROL, "no-store")
        .header("warren-certificate-expires", not_after.to_string());
    if let Some(p) = ctx.postgres_port {
        resp = resp.header("warren-postgres-port", p.to_string());
    }
    Ok(resp
        .body(warren_transport::body::full(pem))
        .expect("valid certificate response"))
}

/// One PEM block.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// `host[:port]` as the client addressed the edge.
fn authority<B>(req: &Request<B>, host: &str) -> String {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| host.to_owned());
    // Keep only a port after the host we routed on.
    match raw.rsplit_once(':') {
        Some((_, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}:{port}")
        }
        _ => host.to_owned(),
    }
}

/// Phase 3: the access decision, audited. `Ok(Err(response))` is a
/// redirect to sign in; `Err` a refusal page.
async fn authorize<B>(
    ctx: &ProxyCtx,
    req: &Request<B>,
    host: &str,
    path: &str,
    public_route: bool,
    client: SocketAddr,
    browser_ok: bool,
) -> Result<Result<Grant, Response<BoxBody>>, EdgeFailure> {
    let decided = ctx.access.authorize(&access::Request {
        headers: req.headers(),
        host,
        path,
        source: client,
        public_route,
    });
    let kind = if browser_ok { "request" } else { "decision" };
    match decided {
        Ok(grant) => {
            // A public route with no application is not an access decision.
            if grant.app.is_some() {
                ctx.access
                    .audit(warren_store::AuditEntry {
                        kind: kind.into(),
                        identity: grant.who.label(),
                        source: client.to_string(),
                        app: grant.app_name(),
                        hostname: host.to_owned(),
                        destination: path.to_owned(),
                        decision: "allow".into(),
                        rule: grant.reason(),
                        ..Default::default()
                    })
                    .await;
            }
            Ok(Ok(grant))
        }
        Err(refusal) => {
            let (decision, identity, rule) = refusal.audit_parts();
            ctx.access
                .audit(warren_store::AuditEntry {
                    kind: kind.into(),
                    identity,
                    source: client.to_string(),
                    app: refusal.app().map(|a| a.name.clone()).unwrap_or_default(),
                    hostname: host.to_owned(),
                    destination: path.to_owned(),
                    decision: decision.into(),
                    rule,
                    ..Default::default()
                })
                .await;
            match &refusal {
                Refusal::NeedsLogin { app, .. } if browser_ok && wants_html(req) => {
                    let back = req
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_owned();
                    let authority = authority(req, host);
                    Ok(Err(access::oidc::begin(
                        &ctx.access,
                        app,
                        &authority,
                        &back,
                        None,
                    )
                    .await))
                }
                _ => Err(refusal.failure(host)),
            }
        }
    }
}

/// Whether the client is a browser navigating (so a sign-in redirect
/// makes sense) rather than an API client.
fn wants_html<B>(req: &Request<B>) -> bool {
    matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD)
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// Phase 1: the hostname, lower-case, without port.
pub fn identify<B>(req: &Request<B>) -> Result<String, EdgeFailure> {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(strip_port)
        })
        .ok_or(EdgeFailure::NoHost)?;
    let host = raw.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err(EdgeFailure::NoHost);
    }
    Ok(host)
}

fn strip_port(h: &str) -> String {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_owned();
    }
    h.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(h)
        .to_owned()
}

/// Phase 2: the route for the hostname.
pub fn route(ctx: &ProxyCtx, host: &str) -> Result<Route, EdgeFailure> {
    ctx.routes
        .lookup(host)
        .ok_or_else(|| EdgeFailure::UnknownHost {
            host: host.to_owned(),
        })
}

/// Phases 3 and 4: a connection of the tunnel, a stream on it, and the
/// header written. The caller reads the answer with [`answer`] (after
/// starting the request body, which may flow before the answer comes).
///
/// If the stream cannot be opened on the chosen connection (it died
/// between the pick and the open), the next attempt goes to another
/// connection: nothing reached the connector, so this is safe for any
/// request.
pub async fn open_stream(
    ctx: &ProxyCtx,
    route: &Route,
    host: &str,
    header: &StreamRequest,
) -> Result<(quinn::SendStream, quinn::RecvStream, StreamGuard), EdgeFailure> {
    open_stream_excluding(ctx, route, host, header, &mut Vec::new()).await
}

/// [`open_stream`], avoiding the connections in `tried` and adding the
/// ones it uses to it.
async fn open_stream_excluding(
    ctx: &ProxyCtx,
    route: &Route,
    host: &str,
    header: &StreamRequest,
    tried: &mut Vec<String>,
) -> Result<(quinn::SendStream, quinn::RecvStream, StreamGuard), EdgeFailure> {
    let mut last_err = None;
    for _ in 0..OPEN_ATTEMPTS {
        let Some(conn) = pick(ctx, route, tried) else {
            break;
        };
        tried.push(conn.id.clone());
        let guard = conn.track();
        let tunnel_err = |reason: String| EdgeFailure::Tunnel {
            host: host.to_owned(),
            reason,
        };
        let open = async {
            let (mut send, recv) = conn
                .conn
                .open_bi()
                .await
                .map_err(|e| tunnel_err(e.to_string()))?;
            send.write_all(&header.encode())
                .await
                .map_err(|e| tunnel_err(e.to_string()))?;
            Ok((send, recv))
        };
        match tokio::time::timeout(ctx.stream_timeout, open).await {
            Err(_) => {
                return Err(EdgeFailure::Timeout {
                    host: host.to_owned(),
                })
            }
            Ok(Ok((send, recv))) => return Ok((send, recv, guard)),
            Ok(Err(e)) => {
                tracing::info!(%host, connection = %conn.id, error = ?e, "could not open a stream; trying another connection");
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| EdgeFailure::NoConnector {
        host: host.to_owned(),
    }))
}

/// A fresh connection of the route's first tunnel (in steering order)
/// that has one.
fn pick(ctx: &ProxyCtx, route: &Route, tried: &[String]) -> Option<Arc<TunnelConn>> {
    if let [only] = route.tunnels.as_slice() {
        return ctx.registry.pick_fresh(&only.id, tried);
    }
    route
        .candidates(|id| ctx.registry.status(id), &mut rand::rng())
        .into_iter()
        .find_map(|t| ctx.registry.pick_fresh(&t.id, tried))
}

/// How many connections a stream open is tried on.
const OPEN_ATTEMPTS: usize = 3;

/// Phases 3 and 4 plus the answer, for streams whose request carries no
/// body yet. Two kinds of failure are retried on another connection, so
/// losing a connector costs clients as little as possible:
/// - the connector answered `ShuttingDown` (it is draining; it did nothing
///   with the stream), for any request: the connection is marked draining;
/// - the stream broke before any answer came back, when `retry_safe` (an
///   idempotent request, or a TCP stream whose client has sent nothing
///   yet), once.
pub async fn exchange(
    ctx: &ProxyCtx,
    route: &Route,
    host: &str,
    header: &StreamRequest,
    retry_safe: bool,
) -> Result<
    (
        StreamResponse,
        quinn::SendStream,
        quinn::RecvStream,
        StreamGuard,
    ),
    EdgeFailure,
> {
    let mut tried = Vec::new();
    let mut drained = 0;
    let mut broken = 0;
    loop {
        let (send, mut recv, guard) =
            open_stream_excluding(ctx, route, host, header, &mut tried).await?;
        match answer(ctx, host, &mut recv).await {
            Err(EdgeFailure::Origin {
                code: ErrorCode::ShuttingDown,
                ..
            }) if drained < 2 => {
                drained += 1;
                guard.conn().set_draining();
            }
            Err(e @ EdgeFailure::Tunnel { .. }) if retry_safe && broken < 1 => {
                broken += 1;
                tracing::info!(%host, connection = %guard.conn().id, error = ?e, "stream broke before an answer; retrying on another connection");
            }
            Err(e) => return Err(e),
            Ok(resp) => return Ok((resp, send, recv, guard)),
        }
    }
}

/// Whether a request may be sent twice: safe methods, no body.
pub fn idempotent(method: &hyper::Method) -> bool {
    matches!(
        *method,
        hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS | hyper::Method::TRACE
    )
}

/// Reads the connector's answer to a stream header, within the timeout.
pub async fn answer(
    ctx: &ProxyCtx,
    host: &str,
    recv: &mut quinn::RecvStream,
) -> Result<StreamResponse, EdgeFailure> {
    let tunnel_err = |reason: String| EdgeFailure::Tunnel {
        host: host.to_owned(),
        reason,
    };
    let frame = tokio::time::timeout(ctx.stream_timeout, expect_frame(recv))
        .await
        .map_err(|_| EdgeFailure::Timeout {
            host: host.to_owned(),
        })?
        .map_err(|e| tunnel_err(e.to_string()))?;
    let resp = StreamResponse::decode(&frame).map_err(|e| tunnel_err(e.to_string()))?;
    if let StreamResponse::Error { code, message } = resp {
        return Err(EdgeFailure::Origin {
            host: host.to_owned(),
            code,
            message,
        });
    }
    Ok(resp)
}

fn head(
    req: &Request<Incoming>,
    host: &str,
    client: ClientInfo,
    has_body: bool,
    keep_upgrade: bool,
    assertion: Option<String>,
) -> HttpHead {
    let mut headers = Vec::with_capacity(req.headers().len() + 3);
    let named_in_connection = connection_tokens(req.headers());
    for (name, value) in req.headers() {
        let n = name.as_str();
        let hop = HOP_BY_HOP.contains(&n) || named_in_connection.iter().any(|t| t == n);
        let keep = keep_upgrade && (n == "upgrade" || n == "connection");
        let trailers_te = n == "te" && value.as_bytes().eq_ignore_ascii_case(b"trailers");
        if (hop && !keep && !trailers_te) || n == "x-forwarded-proto" || n == "x-forwarded-host" {
            continue;
        }
        if n == "x-forwarded-for" || access::CREDENTIAL_HEADERS.contains(&n) {
            continue;
        }
        if n == "cookie" {
            // The edge's own cookies stay at the edge.
            if let Some(v) = without_edge_cookies(value) {
                headers.push((n.to_owned(), v));
            }
            continue;
        }
        headers.push((n.to_owned(), value.as_bytes().to_vec()));
    }
    if let Some(jwt) = assertion {
        headers.push((access::ASSERTION_HEADER.into(), jwt.into_bytes()));
    }
    // X-Forwarded-*: append the client to any chain the client sent.
    let client_ip = client
        .addr
        .parse::<SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| client.addr.clone());
    let prior: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = if prior.is_empty() {
        client_ip
    } else {
        format!("{}, {client_ip}", prior.join(", "))
    };
    headers.push(("x-forwarded-for".into(), xff.into_bytes()));
    headers.push((
        "x-forwarded-proto".into(),
        client.scheme.clone().into_bytes(),
    ));
    let fwd_host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.as_bytes().to_vec())
        .or_else(|| {
            req.uri()
                .authority()
                .map(|a| a.as_str().as_bytes().to_vec())
        })
        .unwrap_or_else(|| host.as_bytes().to_vec());
    headers.push(("x-forwarded-host".into(), fwd_host));
    HttpHead {
        method: req.method().as_str().to_owned(),
        host: host.to_owned(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into()),
        headers,
        client,
        has_body,
    }
}

/// A `Cookie` value without the edge's session and sign-in cookies;
/// `None` if nothing is left.
fn without_edge_cookies(v: &HeaderValue) -> Option<Vec<u8>> {
    let Ok(text) = v.to_str() else {
        return Some(v.as_bytes().to_vec());
    };
    let kept: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|c| {
            let name = c.split('=').next().unwrap_or("");
            !c.is_empty() && name != access::COOKIE && name != "warren_login"
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; ").into_bytes())
}

fn connection_tokens(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() <= http::Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_tokens(req.headers())
            .iter()
            .any(|t| t == "upgrade")
}

/// Phase 5 for plain requests.
async fn proxy_http(
    ctx: &ProxyCtx,
    req: Request<Incoming>,
    host: String,
    route: Route,
    client: ClientInfo,
    assertion: Option<String>,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let has_body = !req.body().is_end_stream();
    let header = StreamRequest::Http(head(&req, &host, client, has_body, false, assertion));
    let (resp, recv, guard) = if has_body {
        let (mut send, mut recv, guard) = open_stream(ctx, &route, &host, &header).await?;
        // Request body goes up while the response comes down (gRPC
        // streams both ways at once).
        let body = req.into_body();
        tokio::spawn(async move {
            if let Err(e) = send_body(body, &mut send).await {
                tracing::debug!(error = %e, "request body not fully sent");
                let _ = send.reset(quinn::VarInt::from_u32(1));
                return;
            }
            let _ = send.finish();
        });
        (answer(ctx, &host, &mut recv).await?, recv, guard)
    } else {
        let retry_safe = idempotent(req.method());
        let (resp, mut send, recv, guard) =
            exchange(ctx, &route, &host, &header, retry_safe).await?;
        let _ = send.finish();
        (resp, recv, guard)
    };
    let StreamResponse::Http(h) = resp else {
        return Err(EdgeFailure::Tunnel {
            host,
            reason: "the connector answered an HTTP request with a non-HTTP response".into(),
        });
    };
    let body = recv_body(Guarded {
        inner: recv,
        _guard: guard,
    });
    response(h.status, h.headers, body, false)
}

fn response(
    status: u16,
    headers: warren_proto::stream::Headers,
    body: BoxBody,
    upgrade: bool,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let status = StatusCode::from_u16(status).map_err(|_| EdgeFailure::Tunnel {
        host: String::new(),
        reason: "invalid status".into(),
    })?;
    let mut map = headers_from_wire(headers);
    let named = connection_tokens(&map);
    for h in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        if upgrade && (h == "upgrade" || h == "connection") {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(h.as_bytes()) {
            map.remove(name);
        }
    }
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = map;
    Ok(resp)
}

/// Phase 5 for upgrades (WebSocket to an HTTP origin): the connector
/// makes the upgrade request to the origin; on 101 both sides switch to
/// raw bytes.
async fn proxy_upgrade(
    ctx: &ProxyCtx,
    mut req: Request<Incoming>,
    host: String,
    route: Route,
    client: ClientInfo,
    grant: Grant,
    assertion: Option<String>,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let source = client.addr.parse().unwrap_or(([0, 0, 0, 0], 0).into());
    let path = req.uri().path().to_owned();
    let header = StreamRequest::WebSocket(head(&req, &host, client, false, true, assertion));
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (resp, send, recv, guard) = exchange(ctx, &route, &host, &header, true).await?;
    let StreamResponse::Http(h) = resp else {
        return Err(EdgeFailure::Tunnel {
            host,
            reason: "the connector answered an upgrade with a non-HTTP response".into(),
        });
    };
    if h.status != 101 {
        // The origin declined the upgrade; its answer has a body.
        let mut send = send;
        let _ = send.finish();
        let body = recv_body(Guarded {
            inner: recv,
            _guard: guard,
        });
        return response(h.status, h.headers, body, false);
    }
    // A WebSocket lives as long as its grant does.
    let live = ctx.access.watch(access::Watched {
        who: grant.who,
        host,
        path,
        source,
    });
    tokio::spawn(async move {
        let _guard = guard;
        match on_upgrade.await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let mut tunnel = QuicStream::new(send, recv);
                tokio::select! {
                    r = splice(&mut client, &mut tunnel) => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "upgraded connection ended with an error");
                        }
                    }
                    () = live.revoked() => {}
                }
            }
            Err(e) => tracing::debug!(error = %e, "client upgrade failed"),
        }
    });
    response(101, h.headers, warren_transport::body::empty(), true)
}

/// A stream reader that keeps its connection's outstanding-stream count
/// up until the body is done.
struct Guarded<R> {
    inner: R,
    _guard: StreamGuard,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Guarded<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// The value for an HTTP → HTTPS redirect's `Location`.
pub fn https_location(
    host_header: Option<&HeaderValue>,
    path: &str,
    https_port: u16,
) -> Option<String> {
    let host = strip_port(host_header?.to_str().ok()?);
    if host.is_empty() {
        return None;
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Some(if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports_and_brackets() {
        assert_eq!(strip_port("app.example.com:8443"), "app.example.com");
        assert_eq!(strip_port("app.example.com"), "app.example.com");
        assert_eq!(strip_port("[::1]:8443"), "::1");
    }

    #[test]
    fn identifies_host_from_header_or_authority() {
        let r = Request::builder()
            .uri("/x")
            .header("host", "App.Example.com:8443")
            .body(())
            .unwrap();
        assert_eq!(identify(&r).unwrap(), "app.example.com");
        let r = Request::builder()
            .uri("https://h2.example.com/x")
            .body(())
            .unwrap();
        assert_eq!(identify(&r).unwrap(), "h2.example.com");
        let r = Request::builder().uri("/x").body(()).unwrap();
        assert_eq!(identify(&r), Err(EdgeFailure::NoHost));
    }

    #[test]
    fn redirect_location() {
        let h = HeaderValue::from_static("app.example.com:8080");
        assert_eq!(
            https_location(Some(&h), "/a?b", 8443).unwrap(),
            "https://app.example.com:8443/a?b"
        );
        assert_eq!(
            https_location(Some(&h), "/", 443).unwrap(),
            "https://app.example.com/"
        );
    }
}
