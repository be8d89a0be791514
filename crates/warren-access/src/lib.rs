//! Warren's client side: `warren access tcp`.
//!
//! Each local connection (or stdin/stdout, for an SSH `ProxyCommand`) is
//! carried to the edge by one of two carriers ([`Transport`]):
//!
//! - **QUIC** ([`quic`]): one warm connection to the edge's QUIC listener
//!   (UDP, by default on the HTTPS port), one stream per local connection.
//!   The fast path: no handshake per connection, one encryption, no
//!   framing on the bytes.
//! - **WebSocket**: an upgrade on `/.warren/tcp` of the target hostname,
//!   over TLS with SNI = that hostname, per local connection; works
//!   wherever HTTPS does. Binary messages carry bytes, an empty binary
//!   message is end-of-stream in that direction (TCP half-close), a Close
//!   ends both.
//!
//! `auto` (the default) uses QUIC and falls back to the WebSocket for a
//! while when the edge cannot be reached over UDP. Either way the edge
//! asks the tunnel's connector to dial the hostname's TCP origin before it
//! answers, so a refusal arrives as an answer whose sentence this client
//! prints.

#![forbid(unsafe_code)]

pub mod device;
pub mod edge_http;
pub mod login;
pub mod pgcert;
pub mod quic;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::WebSocketStream;
use warren_transport::tls::{client_config, Trust};

/// `EMFILE`: the process is out of file descriptors (Linux and the BSDs).
const EMFILE: i32 = 24;

/// Path the edge serves `access tcp` upgrades on.
pub const TCP_PATH: &str = "/.warren/tcp";

/// Why a connection through the edge failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot connect to the edge at {edge}: {source}; check --edge (default: the hostname on port 443)")]
    Connect {
        edge: String,
        source: std::io::Error,
    },
    #[error("TLS with the edge at {edge} failed: {source}; if the edge uses its own CA, pass it with --ca-cert (the edge's data-dir/ca.pem)")]
    Tls {
        edge: String,
        source: std::io::Error,
    },
    #[error("this process has as many files and sockets open as it may ({0}); raise `ulimit -n`, or carry fewer connections per `access tcp`")]
    OutOfDescriptors(std::io::Error),
    #[error("the edge refused the connection to {hostname} ({status}): {message}")]
    Refused {
        hostname: String,
        status: u16,
        message: String,
    },
    #[error("the WebSocket upgrade to the edge failed: {0}")]
    WebSocket(String),
    #[error("the connection through the edge broke: {0}")]
    Carrier(std::io::Error),
    #[error("QUIC to the edge failed: {0}; `--transport websocket` carries connections over HTTPS instead")]
    Quic(String),
    #[error("\"{0}\" is not a valid hostname")]
    BadHostname(String),
    #[error(transparent)]
    TlsConfig(#[from] warren_transport::tls::TlsError),
    #[error("cannot listen on {addr}: {source}; pick another --url address")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("local IO failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How the client proves who it is to the edge.
#[derive(Clone, Default)]
pub enum Credentials {
    /// Nothing (a public route or a `bypass` policy).
    #[default]
    None,
    /// A service token's client id and secret.
    ServiceToken { id: String, secret: String },
    /// An identity token from `warren access login`.
    Token(String),
}

impl Credentials {
    /// The credentials as header names and values (what an upgrade
    /// carries in its headers and a QUIC access request in its frame).
    pub fn pairs(&self) -> Vec<(String, Vec<u8>)> {
        let pair = |name: &str, value: &str| (name.to_owned(), value.as_bytes().to_vec());
        match self {
            Credentials::None => Vec::new(),
            Credentials::ServiceToken { id, secret } => vec![
                pair("warren-access-client-id", id),
                pair("warren-access-client-secret", secret),
            ],
            Credentials::Token(t) => vec![pair("warren-access-token", t)],
        }
    }

    /// Adds the credentials' headers to a request.
    pub fn apply(&self, h: &mut http::HeaderMap) -> Result<(), AccessError> {
        for (name, value) in self.pairs() {
            let value = http::HeaderValue::from_bytes(&value).map_err(|_| {
                AccessError::WebSocket(
                    "the credentials contain characters a header cannot carry".into(),
                )
            })?;
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .expect("credential header names are valid");
            h.insert(name, value);
        }
        Ok(())
    }
}

/// Which carrier takes local connections to the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// QUIC when the edge answers over UDP, else the WebSocket (tried
    /// again over QUIC after [`QUIC_RETRY_AFTER`]).
    #[default]
    Auto,
    /// QUIC only.
    Quic,
    /// The WebSocket over HTTPS only.
    WebSocket,
}

/// How long `auto` keeps to the WebSocket after QUIC failed.
pub const QUIC_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A local connection's way to the edge, once the edge said yes.
pub enum EdgeLink {
    /// A stream of the QUIC connection.
    Quic(
        warren_transport::conn::SendStream,
        warren_transport::conn::RecvStream,
    ),
    /// A WebSocket of its own.
    WebSocket(Box<WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::ServiceToken { .. } => "ServiceToken(<redacted>)",
            Credentials::Token(_) => "Token(<redacted>)",
        })
    }
}

/// Where and how to reach the edge for one hostname.
#[derive(Clone)]
pub struct AccessTcp {
    hostname: String,
    edge: String,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    credentials: Credentials,
    transport: Transport,
    quic: Option<Arc<quic::QuicCarrier>>,
    /// Until when `auto` uses the WebSocket (QUIC failed before then).
    quic_down_until: Arc<Mutex<Option<Instant>>>,
}

impl AccessTcp {
    /// `edge` is `host:port` of the edge's HTTPS listener.
    pub fn new(hostname: &str, edge: &str, trust: &Trust) -> Result<Self, AccessError> {
        warren_transport::tls::install_provider();
        let server_name = ServerName::try_from(hostname.to_owned())
            .map_err(|_| AccessError::BadHostname(hostname.to_owned()))?;
        let tls = client_config(trust, &[b"http/1.1"])?;
        Ok(Self {
            hostname: hostname.to_owned(),
            edge: edge.to_owned(),
            server_name,
            tls: Arc::new(tls),
            credentials: Credentials::None,
            transport: Transport::WebSocket,
            quic: None,
            quic_down_until: Arc::default(),
        })
    }

    /// Carries connections as `transport` says, over `quic` where it
    /// says QUIC (`None`: the WebSocket only).
    pub fn with_transport(
        mut self,
        transport: Transport,
        quic: Option<Arc<quic::QuicCarrier>>,
    ) -> Self {
        self.transport = transport;
        self.quic = quic;
        self
    }

    /// Whether `auto` should try QUIC now.
    fn quic_up(&self) -> bool {
        let down = self.quic_down_until.lock().expect("quic state lock");
        down.is_none_or(|until| Instant::now() >= until)
    }

    fn quic_failed(&self, why: &AccessError) {
        let mut down = self.quic_down_until.lock().expect("quic state lock");
        if down.is_none_or(|until| Instant::now() >= until) {
            tracing::warn!(
                "{why}; carrying connections over the WebSocket for the next {} s",
                QUIC_RETRY_AFTER.as_secs()
            );
        }
        *down = Some(Instant::now() + QUIC_RETRY_AFTER);
    }

    /// Opens one way to the hostname's TCP service, by the carrier
    /// `transport` picks.
    pub async fn open(&self) -> Result<EdgeLink, AccessError> {
        let quic = match (self.transport, &self.quic) {
            (Transport::WebSocket, _) | (Transport::Auto, None) => None,
            (Transport::Quic, None) => {
                return Err(AccessError::Quic(
                    "no QUIC address for the edge is known".into(),
                ))
            }
            (Transport::Quic, Some(q)) => Some((q, false)),
            (Transport::Auto, Some(q)) => self.quic_up().then_some((q, true)),
        };
        if let Some((q, fall_back)) = quic {
            match q.open(&self.hostname, &self.credentials).await {
                Ok((send, recv)) => return Ok(EdgeLink::Quic(send, recv)),
                Err(e @ AccessError::Refused { .. }) => return Err(e),
                Err(e) if fall_back => self.quic_failed(&e),
                Err(e) => return Err(e),
            }
        }
        Ok(EdgeLink::WebSocket(Box::new(self.connect().await?)))
    }

    /// In `auto` and `quic`, makes the QUIC connection ahead of the first
    /// local connection (and, in `auto`, learns early whether UDP works).
    pub async fn warm(&self) {
        let Some(q) = &self.quic else { return };
        if self.transport == Transport::WebSocket {
            return;
        }
        match q.warm().await {
            Ok(()) => tracing::debug!(edge = %q.addr(), "QUIC connection to the edge is up"),
            Err(e) if self.transport == Transport::Auto => self.quic_failed(&e),
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// The TLS settings for the edge.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// Sends these credentials on every upgrade.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Opens one byte stream to the hostname's TCP service.
    pub async fn connect(
        &self,
    ) -> Result<WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>, AccessError> {
        let tcp = TcpStream::connect(&self.edge).await.map_err(|source| {
            if source.raw_os_error() == Some(EMFILE) {
                AccessError::OutOfDescriptors(source)
            } else {
                AccessError::Connect {
                    edge: self.edge.clone(),
                    source,
                }
            }
        })?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| AccessError::Tls {
                edge: self.edge.clone(),
                source,
            })?;
        let mut request = format!("wss://{}{TCP_PATH}", self.hostname)
            .into_client_request()
            .map_err(|e| AccessError::WebSocket(e.to_string()))?;
        self.credentials.apply(request.headers_mut())?;
        let cfg = warren_transport::ws::config();
        match tokio_tungstenite::client_async_with_config(request, tls, Some(cfg)).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                Err(AccessError::Refused {
                    hostname: self.hostname.clone(),
                    status: resp.status().as_u16(),
                    message: page_sentence(&body),
                })
            }
            Err(e) => Err(AccessError::WebSocket(e.to_string())),
        }
    }

    /// Accepts local connections on `listener` and carries each through
    /// the edge, until the future is dropped.
    pub async fn serve(&self, listener: TcpListener) -> Result<(), AccessError> {
        {
            let this = self.clone();
            tokio::spawn(async move { this.warm().await });
        }
        let mut backoff = warren_transport::accept::AcceptBackoff::new();
        loop {
            let (local, peer) =
                warren_transport::accept::accept(&listener, &mut backoff, "access tcp").await;
            let _ = local.set_nodelay(true);
            let this = self.clone();
            tokio::spawn(async move {
                match this.open().await {
                    Ok(link) => {
                        let (r, w) = local.into_split();
                        if let Err(e) = pump_link(link, r, w).await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                    Err(e) => tracing::error!(%peer, "{e}"),
                }
            });
        }
    }

    /// Carries stdin/stdout through the edge (for SSH `ProxyCommand`).
    pub async fn stdio(&self) -> Result<(), AccessError> {
        let link = self.open().await?;
        pump_link(link, tokio::io::stdin(), tokio::io::stdout()).await
    }
}

/// Moves bytes between the edge and a local reader/writer until both
/// directions have ended.
pub async fn pump_link<R, W>(link: EdgeLink, local_r: R, local_w: W) -> Result<(), AccessError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    match link {
        EdgeLink::Quic(send, recv) => {
            pump_side(
                warren_transport::copy::stream_side(send, recv),
                local_r,
                local_w,
            )
            .await
        }
        EdgeLink::WebSocket(ws) => pump(*ws, local_r, local_w).await,
    }
}

/// Binds the local listener for [`AccessTcp::serve`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, AccessError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AccessError::Listen { addr, source })
}

/// Moves bytes between a WebSocket and a local reader/writer until both
/// directions have ended.
pub async fn pump<S, R, W>(
    ws: WebSocketStream<S>,
    local_r: R,
    local_w: W,
) -> Result<(), AccessError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    pump_side(warren_transport::ws::side(ws), local_r, local_w).await
}

/// Moves bytes between one side of the edge and a local reader/writer.
async fn pump_side<ER, EW, R, W>(
    edge: warren_transport::copy::Side<ER, EW>,
    local_r: R,
    local_w: W,
) -> Result<(), AccessError>
where
    ER: warren_transport::copy::ChunkRead,
    EW: warren_transport::copy::ChunkWrite,
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    use warren_transport::copy::{self, Ended, IoRead, IoWrite, Side, Spliced, Traffic};
    let local = Side::new(IoRead::new(local_r), IoWrite::new(local_w));
    let traffic = Traffic::default();
    match copy::splice(local, edge, &traffic, std::future::pending()).await {
        Spliced::Done { up, down } => match (up, down) {
            (Ended::Clean, Ended::Clean) => Ok(()),
            (Ended::ReadFailed(e), _) | (_, Ended::WriteFailed(e)) => Err(AccessError::Io(e)),
            (Ended::WriteFailed(e), _) | (_, Ended::ReadFailed(e)) => Err(AccessError::Carrier(e)),
        },
        Spliced::Stopped => Ok(()),
    }
}

/// The sentence of an edge error page (its first `<p>`), or the text.
pub(crate) fn page_sentence(body: &str) -> String {
    let text = body
        .split_once("<p>")
        .and_then(|(_, rest)| rest.split_once("</p>"))
        .map(|(p, _)| p)
        .unwrap_or(body);
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_sentence_of_an_error_page() {
        let page = "<html><body><h1>502</h1>\n<p>The tunnel for db has no connected connector; start one with `warren tunnel run`.</p><hr><p>warren</p>";
        assert_eq!(
            page_sentence(page),
            "The tunnel for db has no connected connector; start one with `warren tunnel run`."
        );
        assert_eq!(page_sentence("plain"), "plain");
    }
}
