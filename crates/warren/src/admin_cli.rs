//! `warren tunnel create|list|info|delete|token|rotate-secret|route ...`:
//! the command line over the edge's admin API.
//!
//! [`TunnelAdminCmd`] is flattened into `warren tunnel`; [`run`] performs
//! one command. Each command carries [`ApiArgs`] (`--api`/`WARREN_API`,
//! `--api-token`/`WARREN_API_TOKEN`). Talking to the API happens in
//! [`ApiClient`]; what it can go wrong with is [`ClientError`], whose
//! messages are the sentences the user sees — an `{"error": s}` answer
//! from the API is shown as exactly `s`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// Whole-request deadline.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer the CLI reads.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
const NO_TOKEN_HINT: &str = "set WARREN_API_TOKEN to the contents of <data-dir>/admin-token";

/// Where the admin API is and how to authenticate to it.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ApiArgs {
    /// Admin API of the edge (its --listen-admin address).
    #[arg(
        long = "api",
        env = "WARREN_API",
        default_value = "http://127.0.0.1:7800"
    )]
    pub(crate) api: String,
    /// Admin API token: the contents of <data-dir>/admin-token on the edge.
    #[arg(long, env = "WARREN_API_TOKEN", hide_env_values = true)]
    pub(crate) api_token: Option<String>,
}

/// How to print an answer.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// The API's JSON, pretty-printed.
    Json,
}

/// Tunnel management over the admin API.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TunnelAdminCmd {
    /// Create a named tunnel.
    Create {
        /// Tunnel name: letters, digits, '_', '.', '-'.
        name: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List tunnels and whether connectors are attached.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show a tunnel, its routes and its live connections.
    Info {
        /// Tunnel name or id.
        name: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a tunnel and its routes, and disconnect its connectors.
    Delete {
        /// Tunnel name or id.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print the token a connector needs (`warren tunnel run --token ...`).
    Token {
        /// Tunnel name or id.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Give a tunnel a new secret and print its new token; connected
    /// connectors stay up, new connections need the new token.
    RotateSecret {
        /// Tunnel name or id.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Manage hostname routes (hostname → tunnel).
    Route {
        #[command(subcommand)]
        cmd: RouteCmd,
    },
}

/// Hostname routes.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum RouteCmd {
    /// Route a hostname (or *.domain wildcard) to a tunnel.
    Dns {
        /// Tunnel name or id.
        tunnel: String,
        /// Hostname, e.g. app.example.com or *.example.com.
        hostname: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List hostname routes.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a hostname route.
    Delete {
        hostname: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Runs one admin command, printing its result on stdout.
pub(crate) async fn run(cmd: TunnelAdminCmd) -> anyhow::Result<()> {
    let text = match cmd {
        TunnelAdminCmd::Create { name, output, api } => {
            let v = ApiClient::new(&api)?
                .call(Method::POST, "/v1/tunnels", Some(json!({ "name": name })))
                .await?;
            render(output, &v, |t: TunnelView| created_text(&t))?
        }
        TunnelAdminCmd::List { output, api } => {
            let v = ApiClient::new(&api)?
                .call(Method::GET, "/v1/tunnels", None)
                .await?;
            render(output, &v, |t: Vec<TunnelView>| tunnels_text(&t, now()))?
        }
        TunnelAdminCmd::Info { name, output, api } => {
            let path = format!("/v1/tunnels/{}", encode_segment(&name));
            let v = ApiClient::new(&api)?.call(Method::GET, &path, None).await?;
            render(output, &v, |t: TunnelView| info_text(&t, now()))?
        }
        TunnelAdminCmd::Delete { name, api } => {
            let path = format!("/v1/tunnels/{}", encode_segment(&name));
            ApiClient::new(&api)?
                .call(Method::DELETE, &path, None)
                .await?;
            format!("Deleted tunnel {name}\n")
        }
        TunnelAdminCmd::Token { name, api } => {
            let path = format!("/v1/tunnels/{}/token", encode_segment(&name));
            let v = ApiClient::new(&api)?.call(Method::GET, &path, None).await?;
            format!("{}\n", parse::<TokenView>(&v)?.token)
        }
        TunnelAdminCmd::RotateSecret { name, api } => {
            let path = format!("/v1/tunnels/{}/rotate-secret", encode_segment(&name));
            let v = ApiClient::new(&api)?
                .call(Method::POST, &path, None)
                .await?;
            format!("{}\n", parse::<TokenView>(&v)?.token)
        }
        TunnelAdminCmd::Route { cmd } => run_route(cmd).await?,
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // `warren tunnel list | head` must not fail.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

async fn run_route(cmd: RouteCmd) -> anyhow::Result<String> {
    Ok(match cmd {
        RouteCmd::Dns {
            tunnel,
            hostname,
            output,
            api,
        } => {
            let body = json!({ "tunnel": tunnel, "hostname": hostname });
            let v = ApiClient::new(&api)?
                .call(Method::POST, "/v1/routes", Some(body))
                .await?;
            render(output, &v, |r: RouteView| {
                format!(
                    "Routed {} to tunnel {} (id {})\n",
                    r.hostname, r.tunnel_name, r.tunnel_id
                )
            })?
        }
        RouteCmd::List { output, api } => {
            let v = ApiClient::new(&api)?
                .call(Method::GET, "/v1/routes", None)
                .await?;
            render(output, &v, |r: Vec<RouteView>| routes_text(&r))?
        }
        RouteCmd::Delete { hostname, api } => {
            let path = format!("/v1/routes/{}", encode_segment(&hostname));
            ApiClient::new(&api)?
                .call(Method::DELETE, &path, None)
                .await?;
            format!("Deleted route {hostname}\n")
        }
    })
}

// ---- the HTTP client ----

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
fn interpret(base: &str, status: StatusCode, bytes: &[u8]) -> Result<Value, ClientError> {
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

fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned()
}

/// The deepest cause of an error: for a refused connection that is the OS
/// message, which says more than "client error (Connect)".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Normalizes `--api`: adds `http://` to a bare `host:port`, drops a
/// trailing slash, refuses https and anything that is not a URL.
fn base_url(api: &str) -> Result<String, ClientError> {
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

/// Percent-encodes one path segment (names, ids, hostnames).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'*') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ---- answers and their text form ----

#[derive(Deserialize)]
struct TunnelView {
    id: String,
    name: String,
    #[serde(default)]
    secret_generation: i64,
    created_at: i64,
    #[serde(default)]
    status: String,
    #[serde(default)]
    connections: Vec<ConnView>,
    #[serde(default)]
    routes: Vec<String>,
}

#[derive(Deserialize)]
struct ConnView {
    #[serde(default)]
    connector_id: String,
    #[serde(default)]
    connector_version: String,
    #[serde(default)]
    conn_index: u8,
    #[serde(default)]
    remote: String,
    #[serde(default)]
    connected_at: i64,
    #[serde(default)]
    draining: bool,
}

#[derive(Deserialize)]
struct RouteView {
    hostname: String,
    tunnel_id: String,
    tunnel_name: String,
    created_at: i64,
}

#[derive(Deserialize)]
struct TokenView {
    token: String,
}

fn parse<T: DeserializeOwned>(v: &Value) -> Result<T, ClientError> {
    T::deserialize(v).map_err(|e| ClientError::Unexpected {
        url: "the admin API".to_owned(),
        status: StatusCode::OK,
        detail: format!("unexpected JSON: {e}"),
    })
}

/// The API's JSON, pretty, or its text form.
fn render<T: DeserializeOwned>(
    output: Output,
    v: &Value,
    text: impl FnOnce(T) -> String,
) -> Result<String, ClientError> {
    match output {
        Output::Json => Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        )),
        Output::Text => Ok(text(parse(v)?)),
    }
}

fn created_text(t: &TunnelView) -> String {
    format!(
        "Created tunnel {} (id {})\nGet the token for its connector with `warren tunnel token {}`\n",
        t.name, t.id, t.name
    )
}

fn tunnels_text(tunnels: &[TunnelView], now: i64) -> String {
    if tunnels.is_empty() {
        return "No tunnels yet; create one with `warren tunnel create NAME`\n".to_owned();
    }
    let rows = tunnels
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.id.clone(),
                t.status.clone(),
                t.connections.len().to_string(),
                format!("{} ({})", timestamp(t.created_at), ago(now, t.created_at)),
            ]
        })
        .collect::<Vec<_>>();
    table(&["NAME", "ID", "STATUS", "CONNECTIONS", "CREATED"], &rows)
}

fn info_text(t: &TunnelView, now: i64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Name:               {}", t.name);
    let _ = writeln!(s, "ID:                 {}", t.id);
    let _ = writeln!(s, "Status:             {}", t.status);
    let _ = writeln!(
        s,
        "Created:            {} ({})",
        timestamp(t.created_at),
        ago(now, t.created_at)
    );
    let _ = writeln!(s, "Secret generation:  {}", t.secret_generation);
    if t.routes.is_empty() {
        let _ = writeln!(
            s,
            "Routes:             none; add one with `warren tunnel route dns {} HOSTNAME`",
            t.name
        );
    } else {
        let _ = writeln!(s, "Routes:             {}", t.routes.join(", "));
    }
    let _ = writeln!(s, "Connections:        {}", t.connections.len());
    if !t.connections.is_empty() {
        let mut conns: Vec<&ConnView> = t.connections.iter().collect();
        conns.sort_by(|a, b| (&a.connector_id, a.conn_index).cmp(&(&b.connector_id, b.conn_index)));
        let rows = conns
            .iter()
            .map(|c| {
                vec![
                    c.connector_id.clone(),
                    c.connector_version.clone(),
                    c.conn_index.to_string(),
                    c.remote.clone(),
                    format!(
                        "{} ({}){}",
                        timestamp(c.connected_at),
                        ago(now, c.connected_at),
                        if c.draining { ", draining" } else { "" }
                    ),
                ]
            })
            .collect::<Vec<_>>();
        s.push('\n');
        s.push_str(&table(
            &[
                "CONNECTOR ID",
                "VERSION",
                "CONN",
                "REMOTE",
                "CONNECTED SINCE",
            ],
            &rows,
        ));
    }
    s
}

fn routes_text(routes: &[RouteView]) -> String {
    if routes.is_empty() {
        return "No routes yet; add one with `warren tunnel route dns TUNNEL HOSTNAME`\n"
            .to_owned();
    }
    let rows = routes
        .iter()
        .map(|r| {
            vec![
                r.hostname.clone(),
                r.tunnel_name.clone(),
                r.tunnel_id.clone(),
                timestamp(r.created_at),
            ]
        })
        .collect::<Vec<_>>();
    table(&["HOSTNAME", "TUNNEL", "TUNNEL ID", "CREATED"], &rows)
}

/// Left-aligned columns separated by two spaces, no trailing blanks.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DD HH:MM:SS UTC` for unix seconds.
fn timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A rough age: `5s ago`, `3m ago`, `2h 5m ago`, `4d 1h ago`.
fn ago(now: i64, then: i64) -> String {
    let d = now.saturating_sub(then).max(0);
    match d {
        0..60 => format!("{d}s ago"),
        60..3600 => format!("{}m ago", d / 60),
        3600..86_400 => format!("{}h {}m ago", d / 3600, d % 3600 / 60),
        _ => format!("{}d {}h ago", d / 86_400, d % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: TunnelAdminCmd,
    }

    fn args(api: &str) -> ApiArgs {
        ApiArgs {
            api: api.to_owned(),
            api_token: Some("wat_test".to_owned()),
        }
    }

    #[test]
    fn command_line_shape() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "t",
            "route",
            "dns",
            "office",
            "app.example.com",
            "--api",
            "http://127.0.0.1:1",
            "--api-token",
            "x",
        ])
        .unwrap();
        match cli.cmd {
            TunnelAdminCmd::Route {
                cmd:
                    RouteCmd::Dns {
                        tunnel,
                        hostname,
                        api,
                        ..
                    },
            } => {
                assert_eq!(
                    (tunnel.as_str(), hostname.as_str()),
                    ("office", "app.example.com")
                );
                assert_eq!(api.api, "http://127.0.0.1:1");
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["t", "list", "--output", "json"]).unwrap();
        assert!(matches!(
            cli.cmd,
            TunnelAdminCmd::List {
                output: Output::Json,
                ..
            }
        ));
        let cli = Cli::try_parse_from(["t", "rotate-secret", "office"]).unwrap();
        assert!(matches!(cli.cmd, TunnelAdminCmd::RotateSecret { .. }));
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:7800/").unwrap(),
            "http://127.0.0.1:7800"
        );
        assert_eq!(base_url("127.0.0.1:7800").unwrap(), "http://127.0.0.1:7800");
        assert_eq!(base_url("HTTP://[::1]:7800").unwrap(), "HTTP://[::1]:7800");
        assert!(matches!(
            base_url("https://x:1"),
            Err(ClientError::Https(_))
        ));
        assert!(matches!(base_url("ftp://x"), Err(ClientError::BadUrl(_))));
        assert!(matches!(base_url("http://"), Err(ClientError::BadUrl(_))));
        assert!(matches!(base_url("not a url"), Err(ClientError::BadUrl(_))));
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("*.example.com"), "*.example.com");
        assert_eq!(encode_segment("a b/c?"), "a%20b%2Fc%3F");
    }

    #[test]
    fn timestamps_and_ages() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(timestamp(1_714_564_800), "2024-05-01 12:00:00 UTC");
        assert_eq!(ago(100, 95), "5s ago");
        assert_eq!(ago(10_000, 0), "2h 46m ago");
        assert_eq!(ago(0, 10), "0s ago");
    }

    #[test]
    fn list_is_an_aligned_table() {
        let t = |name: &str, conns: usize| TunnelView {
            id: format!("id-{name}"),
            name: name.to_owned(),
            secret_generation: 1,
            created_at: 0,
            status: if conns > 0 { "active" } else { "inactive" }.to_owned(),
            connections: (0..conns)
                .map(|i| ConnView {
                    connector_id: "c1".into(),
                    connector_version: "0.1.0".into(),
                    conn_index: i as u8,
                    remote: "127.0.0.1:5000".into(),
                    connected_at: 0,
                    draining: false,
                })
                .collect(),
            routes: vec![],
        };
        let text = tunnels_text(&[t("office", 2), t("a-much-longer-name", 0)], 60);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("ID").unwrap();
        assert_eq!(lines[1].find("id-office"), Some(col));
        assert_eq!(lines[2].find("id-a-much"), Some(col));
        let conns = lines[0].find("CONNECTIONS").unwrap();
        assert_eq!(&lines[1][conns..conns + 1], "2");
        assert_eq!(&lines[2][conns..conns + 1], "0");

        let info = info_text(&t("office", 2), 60);
        assert!(info.contains("CONNECTOR ID"), "{info}");
        assert!(info.contains("127.0.0.1:5000"), "{info}");
        assert!(info.contains("route dns office HOSTNAME"), "{info}");
        assert!(tunnels_text(&[], 0).contains("warren tunnel create"));
    }

    #[test]
    fn missing_token_is_a_sentence() {
        let mut a = args("http://127.0.0.1:7800");
        a.api_token = Some("  ".into());
        let e = ApiClient::new(&a).err().unwrap();
        assert_eq!(
            e.to_string(),
            "no admin API token; set WARREN_API_TOKEN to the contents of <data-dir>/admin-token"
        );
    }

    /// Serves one canned answer and returns the request it got.
    async fn one_shot_server(
        status: &str,
        body: &str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            sock.write_all(answer.as_bytes()).await.unwrap();
            sock.shutdown().await.unwrap();
            String::from_utf8_lossy(&req).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn api_errors_are_shown_verbatim() {
        let (url, server) = one_shot_server(
            "409 Conflict",
            r#"{"error": "a tunnel named x already exists"}"#,
        )
        .await;
        let e = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::POST, "/v1/tunnels", Some(json!({"name": "x"})))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "a tunnel named x already exists");
        let req = server.await.unwrap().to_ascii_lowercase();
        assert!(req.starts_with("post /v1/tunnels http/1.1"), "{req}");
        assert!(req.contains("authorization: bearer wat_test"), "{req}");
    }

    #[tokio::test]
    async fn success_and_no_content() {
        let (url, _server) = one_shot_server("200 OK", r#"{"token":"t"}"#).await;
        let v = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::GET, "/v1/tunnels/x/token", None)
            .await
            .unwrap();
        assert_eq!(parse::<TokenView>(&v).unwrap().token, "t");
        let (url, _server) = one_shot_server("204 No Content", "").await;
        let v = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::DELETE, "/v1/routes/x", None)
            .await
            .unwrap();
        assert_eq!(v, Value::Null);
    }

    #[tokio::test]
    async fn non_api_answers_are_explained() {
        let (url, _server) = one_shot_server("502 Bad Gateway", "oops!").await;
        let e = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::GET, "/v1/tunnels", None)
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Unexpected { .. }), "{e}");
        assert!(e.to_string().contains("502"), "{e}");
    }

    #[tokio::test]
    async fn refused_connection_names_the_url_and_the_fix() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::GET, "/v1/tunnels", None)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot reach the Warren admin API at {url} (")),
            "{msg}"
        );
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
        assert!(
            msg.ends_with(
                "is `warren edge` running, and is WARREN_API set to its --listen-admin address?"
            ),
            "{msg}"
        );
    }
}
