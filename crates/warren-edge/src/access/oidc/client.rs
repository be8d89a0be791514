//! The identity-provider client: discovery, the JWKS fetch (both cached
//! for a while), the token exchange and ID-token verification. Knows
//! nothing of cookies, pages or sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{header, Method, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use sha2::Digest as _;
use warren_store::IdpRow;

use super::encode;
use super::idtoken::{self, Expect, Head};

/// Largest document read from the identity provider.
const MAX_IDP_BODY: usize = 1024 * 1024;
/// How long discovery documents and key sets are cached.
const CACHE_TTL: Duration = Duration::from_secs(600);
/// How often an unknown key id may have a provider's key set fetched
/// again before the cache expires (a token naming keys that do not exist
/// must not have the edge hammer the provider).
const KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The parts of the provider's discovery document the flow uses.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Discovery {
    pub(super) issuer: String,
    pub(super) authorization_endpoint: String,
    pub(super) token_endpoint: String,
    pub(super) jwks_uri: String,
    /// RFC 8628's endpoint, where the provider offers the device grant.
    #[serde(default)]
    pub(super) device_authorization_endpoint: Option<String>,
}

/// A provider's discovery document and key set, and when they were read.
type Cached = (Instant, Discovery, Option<JwkSet>);

/// Requests to identity providers, with discovery and JWKS caches.
pub struct IdpClient {
    timeout: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    /// When each provider's key set was last fetched again for an
    /// unknown key id.
    refetched: Mutex<HashMap<String, Instant>>,
}

/// Why talking to the identity provider failed.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("{0}")]
    Failed(String),
}

pub(super) fn failed(what: impl std::fmt::Display) -> IdpError {
    IdpError::Failed(what.to_string())
}

impl IdpClient {
    pub(crate) fn new(timeout: Duration) -> IdpClient {
        IdpClient {
            timeout,
            cache: Mutex::new(HashMap::new()),
            refetched: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `issuer`'s key set may be fetched again for an unknown key
    /// id now (at most once per [`KEY_REFETCH_INTERVAL`]); if so, the
    /// time is taken, so concurrent sign-ins fetch it once.
    fn may_refetch_keys(&self, issuer: &str) -> bool {
        let mut last = self.refetched.lock().expect("idp refetch times");
        match last.get(issuer) {
            Some(at) if at.elapsed() < KEY_REFETCH_INTERVAL => false,
            _ => {
                last.insert(issuer.to_owned(), Instant::now());
                true
            }
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
        let (status, body) = self.call_status(idp, method, url, headers, body).await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(failed(format!("{url}: answered {status}: {text}")));
        }
        Ok(body)
    }

    /// One request; the status and (bounded) body of whatever answer came.
    async fn call_status(
        &self,
        idp: &IdpRow,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<String>,
    ) -> Result<(http::StatusCode, Bytes), IdpError> {
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
    ) -> Result<(http::StatusCode, Bytes), IdpError> {
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
        Ok((status, body))
    }

    /// The provider's discovery document (and cached JWKS), from cache.
    pub(super) async fn discover(
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

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

/// Who a verified ID token says signed in.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub(crate) email: String,
    pub(crate) groups: Vec<String>,
    /// The provider's subject.
    pub(crate) sub: String,
}

/// The `Authorization` header of the edge's client at the provider.
fn basic_auth(idp: &IdpRow) -> (&'static str, String) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(&idp.client_id),
        encode(&idp.client_secret)
    ));
    ("authorization", format!("Basic {basic}"))
}

fn form() -> (&'static str, String) {
    ("content-type", "application/x-www-form-urlencoded".into())
}

/// The scopes a sign-in asks for.
pub(super) fn scopes(idp: &IdpRow) -> String {
    if idp.scopes.is_empty() {
        "openid email profile".to_owned()
    } else {
        idp.scopes.join(" ")
    }
}

/// Where to send a browser to sign in at `idp` (its authorization
/// endpoint, from discovery): the authorization code flow with PKCE (S256
/// of `verifier`), `state` and `nonce`, coming back to `redirect_uri`.
/// The access sign-in (`signin.rs`) and the dashboard's both start here.
pub(crate) async fn authorization_url(
    client: &IdpClient,
    idp: &IdpRow,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    verifier: &str,
) -> Result<String, IdpError> {
    let (disc, _) = client.discover(idp, false).await?;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let sep = if disc.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(format!(
        "{}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        disc.authorization_endpoint,
        encode(&idp.client_id),
        encode(redirect_uri),
        encode(&scopes(idp)),
        encode(state),
        encode(nonce),
        challenge,
    ))
}

/// Code → verified ID token → who signed in: the code is exchanged at
/// the token endpoint (client secret + PKCE `verifier`), and the ID token
/// is verified by [`verified`].
pub(crate) async fn exchange(
    client: &IdpClient,
    idp: &IdpRow,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    nonce: &str,
) -> Result<SignedIn, IdpError> {
    let (disc, keys) = client.discover(idp, false).await?;
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        encode(code),
        encode(redirect_uri),
        encode(verifier),
    );
    let answer = client
        .call(
            idp,
            Method::POST,
            &disc.token_endpoint,
            &[form(), basic_auth(idp)],
            Some(body),
        )
        .await?;
    let answer: TokenAnswer = serde_json::from_slice(&answer)
        .map_err(|e| failed(format!("the token endpoint's answer has no ID token ({e})")))?;
    verified(client, idp, &disc, &keys, &answer.id_token, Some(nonce)).await
}

/// What the provider's device authorization endpoint answered (RFC 8628
/// §3.2).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct DeviceAuthorization {
    pub(super) device_code: String,
    pub(super) user_code: String,
    pub(super) verification_uri: String,
    #[serde(default)]
    pub(super) verification_uri_complete: Option<String>,
    pub(super) expires_in: u64,
    #[serde(default)]
    pub(super) interval: Option<u64>,
}

/// Starts a device authorization grant at the provider; `None` when its
/// discovery document has no device authorization endpoint.
pub(super) async fn device_authorize(
    client: &IdpClient,
    idp: &IdpRow,
) -> Result<Option<DeviceAuthorization>, IdpError> {
    let (disc, _) = client.discover(idp, false).await?;
    let Some(endpoint) = disc.device_authorization_endpoint else {
        return Ok(None);
    };
    let body = format!(
        "client_id={}&scope={}",
        encode(&idp.client_id),
        encode(&scopes(idp))
    );
    let answer = client
        .call(
            idp,
            Method::POST,
            &endpoint,
            &[form(), basic_auth(idp)],
            Some(body),
        )
        .await?;
    serde_json::from_slice(&answer).map(Some).map_err(|e| {
        failed(format!(
            "the device authorization endpoint's answer does not parse ({e})"
        ))
    })
}

/// What one poll of the token endpoint with a device code gave (RFC 8628
/// §3.5).
#[derive(Debug)]
pub(super) enum DeviceToken {
    /// `authorization_pending`: the user has not finished yet.
    Pending,
    /// `slow_down`: poll 5 s less often from now on.
    SlowDown,
    /// `access_denied`: the user refused.
    Denied,
    /// `expired_token`: the device code expired.
    Expired,
    /// Tokens were issued and the ID token verified.
    SignedIn(SignedIn),
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// One poll of the token endpoint with `device_code`; an ID token it
/// issues is verified like the browser flow's, without a nonce.
pub(super) async fn device_token(
    client: &IdpClient,
    idp: &IdpRow,
    device_code: &str,
) -> Result<DeviceToken, IdpError> {
    let (disc, keys) = client.discover(idp, false).await?;
    let body = format!(
        "grant_type={}&device_code={}&client_id={}",
        encode("urn:ietf:params:oauth:grant-type:device_code"),
        encode(device_code),
        encode(&idp.client_id),
    );
    let (status, answer) = client
        .call_status(
            idp,
            Method::POST,
            &disc.token_endpoint,
            &[form(), basic_auth(idp)],
            Some(body),
        )
        .await?;
    if !status.is_success() {
        let err: OAuthError = serde_json::from_slice(&answer).map_err(|_| {
            failed(format!(
                "the token endpoint answered {status} without an OAuth error"
            ))
        })?;
        return match err.error.as_str() {
            "authorization_pending" => Ok(DeviceToken::Pending),
            "slow_down" => Ok(DeviceToken::SlowDown),
            "access_denied" => Ok(DeviceToken::Denied),
            "expired_token" => Ok(DeviceToken::Expired),
            other => Err(failed(format!(
                "the token endpoint refused the device code ({other}{})",
                err.error_description
                    .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            ))),
        };
    }
    let answer: TokenAnswer = serde_json::from_slice(&answer)
        .map_err(|e| failed(format!("the token endpoint's answer has no ID token ({e})")))?;
    verified(client, idp, &disc, &keys, &answer.id_token, None)
        .await
        .map(DeviceToken::SignedIn)
}

/// Verifies an ID token from the token endpoint against the provider's
/// JWKS by the rules of OpenID Connect Core §3.1.3.7 (see `idtoken`),
/// with `nonce` the one the sign-in sent. A key id not in the cached key
/// set has the set fetched again, at most once per
/// [`KEY_REFETCH_INTERVAL`], so that a provider's key rotation needs no
/// restart.
async fn verified(
    client: &IdpClient,
    idp: &IdpRow,
    disc: &Discovery,
    keys: &JwkSet,
    id_token: &str,
    nonce: Option<&str>,
) -> Result<SignedIn, IdpError> {
    let head = Head::parse(id_token)?;
    let jwk = match head.key(keys)? {
        Some(k) => k,
        None => {
            let kid = head.kid.as_deref().unwrap_or("for its algorithm");
            if !client.may_refetch_keys(&idp.issuer) {
                return Err(failed(format!(
                    "the ID token's key {kid} is not in the provider's key set, which was fetched again less than {} s ago; if the identity provider has just rotated its keys, sign in again in a minute",
                    KEY_REFETCH_INTERVAL.as_secs()
                )));
            }
            tracing::info!(idp = %idp.name, %kid, "a key not in the cached key set; fetching it again");
            let (_, fresh) = client.discover(idp, true).await?;
            head.key(&fresh)?.ok_or_else(|| {
                failed(format!(
                    "the ID token's key {kid} is not in the provider's key set, even fetched again; it was not issued by the identity provider, or the provider does not publish its signing key"
                ))
            })?
        }
    };
    let claims = idtoken::verify(
        id_token,
        &head,
        &jwk,
        &Expect {
            issuer: &disc.issuer,
            client_id: &idp.client_id,
            nonce,
            now: crate::audit::now(),
        },
    )?;
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
    Ok(SignedIn {
        email,
        groups,
        sub: claims.sub,
    })
}
