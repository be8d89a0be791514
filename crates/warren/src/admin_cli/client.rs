//! The admin API's HTTP client and the sentences its failures become.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::*;

/// Why an admin API call failed; each message is what the user sees.
#[derive(Debug)]
pub(crate) enum ClientError {
    /// No token was given.
    NoToken,
    /// The token cannot be sent in a header.
    BadToken,
    /// `--api` is not usable.
    BadUrl(String),
    /// `--api` is https.
    Https(String),
    /// Nothing answered.
    Unreachable { url: String, detail: String },
    /// The API took too long.
    Timeout { url: String },
    /// The API answered with `{"error": s}`.
    Api(String),
    /// Something answered, but not like the admin API.
    Unexpected {
        url: String,
        status: StatusCode,
        detail: String,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoToken => write!(f, "no admin API token; {NO_TOKEN_HINT}"),
            Self::BadToken => write!(
                f,
                "the admin API token contains characters that cannot be sent in an HTTP header; {NO_TOKEN_HINT}"
            ),
            Self::BadUrl(api) => write!(
                f,
                "the admin API address {api:?} is not a valid http:// URL; set WARREN_API (or --api) to the edge's --listen-admin address, e.g. http://127.0.0.1:7800"
            ),
            Self::Https(api) => write!(
                f,
                "the admin API address {api} uses https, which this CLI does not speak; the admin API serves plain HTTP on the edge's --listen-admin address, so use http://HOST:PORT (over an SSH tunnel if it is remote)"
            ),
            Self::Unreachable { url, detail } => write!(
                f,
                "cannot reach the Warren admin API at {url} ({detail}); is `warren edge` running, and is WARREN_API set to its --listen-admin address?"
            ),
            Self::Timeout { url } => write!(
                f,
                "the Warren admin API at {url} did not answer within {} seconds; check that WARREN_API points at the edge's --listen-admin address and that the edge is healthy",
                TIMEOUT.as_secs()
            ),
            Self::Api(message) => f.write_str(message),
            Self::Unexpected {
                url,
                status,
                detail,
            } => write!(
                f,
                "the server at {url} answered {status} with something other than the Warren admin API's JSON ({detail}); check that WARREN_API points at the edge's --listen-admin address"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

/// One admin API endpoint plus credentials.
pub(crate) struct ApiClient {
    base: String,
    token: HeaderValue,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl ApiClient {
    pub(crate) fn new(args: &ApiArgs) -> Result<Self, ClientError> {
        let token = args
            .api_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ClientError::NoToken)?;
        let mut token =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::BadToken)?;
        token.set_sensitive(true);
        let base = base_url(&args.api)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            base,
            token,
            client,
        })
    }

    /// Sends one request; an empty success (204) is `Value::Null`.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url.parse().map_err(|_| ClientError::BadUrl(url.clone()))?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, self.token.clone())
            .header(header::ACCEPT, "application/json");
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(v.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|_| ClientError::BadUrl(url.clone()))?;

        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                let detail = innermost(&e);
                ClientError::Unreachable {
                    url: self.base.clone(),
                    detail,
                }
            })?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| ClientError::Unexpected {
                    url: self.base.clone(),
                    status,
                    detail: format!("the answer could not be read: {e}"),
                })?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                url: self.base.clone(),
            })??;
        interpret(&self.base, status, &bytes)
    }
}

/// Turns an answer into JSON or the error the API stated.
pub(super) fn interpret(
    base: &str,
    status: StatusCode,
    bytes: &[u8],
) -> Result<Value, ClientError> {
    let json: Option<Value> = serde_json::from_slice(bytes).ok();
    if status.is_success() {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        return json.ok_or_else(|| ClientError::Unexpected {
            url: base.to_owned(),
            status,
            detail: format!("the body starts with {:?}", snippet(bytes)),
        });
    }
    match json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
    {
        Some(message) => Err(ClientError::Api(message.to_owned())),
        None => Err(ClientError::Unexpected {
            url: base.to_owned(),
            status,
            detail: format!("the body starts with {:?}", snippet(bytes)),
        }),
    }
}

pub(super) fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned()
}

/// The deepest cause of an error: for a refused connection that is the OS
/// message, which says more than "client error (Connect)".
pub(super) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Normalizes `--api`: adds `http://` to a bare `host:port`, drops a
/// trailing slash, refuses https and anything that is not a URL.
pub(super) fn base_url(api: &str) -> Result<String, ClientError> {
    let api = api.trim();
    if api.len() >= 8 && api[..8].eq_ignore_ascii_case("https://") {
        return Err(ClientError::Https(api.to_owned()));
    }
    let base = if api.contains("://") {
        api.to_owned()
    } else {
        format!("http://{api}")
    };
    let base = base.trim_end_matches('/').to_owned();
    let uri: Uri = base
        .parse()
        .map_err(|_| ClientError::BadUrl(api.to_owned()))?;
    let http = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http"));
    if !http || uri.host().is_none() || uri.query().is_some() {
        return Err(ClientError::BadUrl(api.to_owned()));
    }
    Ok(base)
}

/// What stays as it is in a path segment: unreserved characters, and `*`
/// of wildcard hostnames.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'*');

/// Percent-encodes one path segment (names, ids, hostnames).
pub(crate) fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}
