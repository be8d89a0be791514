//! The edge's own endpoints under `/.warren/` on every routed hostname:
//! the JWKS (`/.warren/certs`), sign-in, its callback and sign-out, the
//! decision without an origin (`/.warren/whoami`), the device sign-in
//! (`/.warren/device/start`, `/poll`, `/redeem`), and client certificates
//! for the native PostgreSQL listener (`/.warren/pg-cert`).

use std::net::SocketAddr;

use http::header;
use http::{Request, Response};
use hyper::body::Incoming;
use warren_transport::body::BoxBody;

use super::headers::authority;
use crate::access;
use crate::pages::EdgeFailure;
use crate::session::{EdgeCtx, Presented, Session};

/// The edge's own paths under `/.warren/` on any routed hostname: the
/// JWKS, and sign-in, its callback and sign-out.
pub(crate) async fn serve<B>(
    ctx: &EdgeCtx,
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

/// `POST /.warren/device/start` and `/.warren/device/poll`: the device
/// sign-in of `warren access login --device` for the application covering
/// `host` (no cookie, no credentials: the answers are JSON).
pub(crate) async fn device(
    ctx: &EdgeCtx,
    req: Request<Incoming>,
    host: &str,
    path: &str,
    client: SocketAddr,
) -> Response<BoxBody> {
    if req.method() != hyper::Method::POST {
        return EdgeFailure::BadRequest {
            reason: format!("{path} takes a POST"),
        }
        .json();
    }
    let snap = ctx.access.snapshot();
    let Some(app) = snap.app_for(host, "/").cloned() else {
        return EdgeFailure::NotProtected {
            host: host.to_owned(),
        }
        .json();
    };
    if path == access::oidc::DEVICE_START_PATH {
        return access::oidc::start(&ctx.access, &app, host, client).await;
    }
    let body = access::oidc::device_body(req.into_body());
    if path == access::oidc::DEVICE_REDEEM_PATH {
        return access::oidc::redeem(&ctx.access, body, host).await;
    }
    access::oidc::poll(&ctx.access, body, host, client).await
}

/// Answers whether the presented credentials would be allowed, without
/// reaching the origin (`warren access tcp` asks before it listens).
pub(crate) const WHOAMI_PATH: &str = "/.warren/whoami";

/// The decision for the presented credentials: 200 with who they are, or
/// the refusal page (401 sign-in-required, 403, ...). Not audited: nothing
/// reaches an origin.
pub(crate) fn whoami<B>(
    ctx: &EdgeCtx,
    req: &Request<B>,
    session: &Session,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let grant = ctx
        .access
        .authorize(&access::Request {
            headers: req.headers(),
            host: &session.host,
            path: "/",
            source: session.source,
            public_route: session.route.public,
        })
        .map_err(|r| EdgeFailure::from_refusal(&r, &session.host))?;
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
pub(crate) const PG_CERT_PATH: &str = "/.warren/pg-cert";
/// Largest CSR accepted.
const MAX_CSR: usize = 16 * 1024;

/// Issues a client certificate for the native PostgreSQL listener to an
/// identity the hostname's application allows (a signed-in user's token
/// or a service token): `POST` a PKCS#10 CSR (DER or PEM); the answer is
/// the PEM chain (leaf, CA) and `warren-postgres-port`.
pub(crate) async fn pg_cert(
    ctx: &EdgeCtx,
    req: Request<Incoming>,
    session: &mut Session,
) -> Result<Response<BoxBody>, EdgeFailure> {
    use http_body_util::BodyExt;
    if req.method() != hyper::Method::POST {
        return Err(EdgeFailure::BadRequest {
            reason: format!("{PG_CERT_PATH} takes a POST of a certificate signing request"),
        });
    }
    let presented = Presented::Headers {
        headers: req.headers(),
        path: PG_CERT_PATH,
    };
    if let Err(f) = session.authorize(&ctx.access, presented).await {
        return Err(EdgeFailure::from_failure(f, &session.host));
    }
    let (host, client, grant) = (&session.host, session.source, session.grant());
    let Some((cn, uris)) = access::pgcert::describe(&grant.who) else {
        return Err(EdgeFailure::SignInRequired {
            host: host.clone(),
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
            hostname: host.clone(),
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

/// `POST /.warren/quick-tunnel` (`--quick-tunnels`): a new quick tunnel's
/// name, URL and token as JSON, or `{"error": sentence}`.
pub(crate) async fn quick_tunnel<B>(
    ctx: &EdgeCtx,
    req: &Request<B>,
    client: SocketAddr,
) -> Response<BoxBody> {
    use http::StatusCode;
    let json = |status: StatusCode, body: serde_json::Value| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .body(warren_transport::body::full(body.to_string()))
            .expect("valid JSON response")
    };
    let error = |status, sentence: String| json(status, serde_json::json!({ "error": sentence }));
    let Some(quick) = &ctx.quick else {
        return error(
            StatusCode::NOT_FOUND,
            "this edge does not make quick tunnels (it was not started with --quick-tunnels); ask its operator for a tunnel and its token".into(),
        );
    };
    if req.method() != hyper::Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} takes a POST", crate::quick::QUICK_PATH),
        );
    }
    match quick.create(client.ip()).await {
        Ok(t) => json(
            StatusCode::CREATED,
            serde_json::to_value(t).expect("a quick tunnel serializes"),
        ),
        Err(e @ crate::quick::QuickError::RateLimited) => {
            error(StatusCode::TOO_MANY_REQUESTS, e.to_string())
        }
        Err(e) => {
            tracing::error!("{e}");
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}
