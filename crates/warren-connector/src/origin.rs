//! Reaching origins: dialling TCP or Unix sockets with the rule's
//! timeouts, TLS with the rule's trust settings, and one pooled HTTP client
//! per rule.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use warren_transport::body::BoxBody;
use warren_transport::tls::{client_config, roots_from_file, Trust};

use crate::ingress::{OriginRequest, Rule, Service, SslMode};

/// Why an origin could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("connecting to {target} timed out after {timeout:?}")]
    ConnectTimeout { target: String, timeout: Duration },
    #[error("connecting to {target} failed: {source}")]
    Connect { target: String, source: io::Error },
    #[error("TLS handshake with {target} timed out")]
    TlsTimeout { target: String },
    #[error("TLS with {target} failed: {source}")]
    Tls { target: String, source: io::Error },
    #[error("origin TLS settings are unusable: {0}")]
    TlsConfig(String),
}

/// Where a rule's connections go.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A byte stream to an origin.
pub(crate) enum OriginStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    TlsTcp(Box<TlsStream<TcpStream>>),
    TlsUnix(Box<TlsStream<UnixStream>>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            OriginStream::Tcp($s) => {
                let $s = Pin::new($s);
                $e
            }
            OriginStream::Unix($s) => {
                let $s = Pin::new($s);
                $e
            }
            OriginStream::TlsTcp($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            OriginStream::TlsUnix($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for OriginStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for OriginStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

impl OriginStream {
    fn negotiated_h2(&self) -> bool {
        let alpn = match self {
            OriginStream::TlsTcp(s) => s.get_ref().1.alpn_protocol(),
            OriginStream::TlsUnix(s) => s.get_ref().1.alpn_protocol(),
            _ => None,
        };
        alpn == Some(b"h2")
    }

    /// The origin's address, for PROXY protocol headers.
    pub(crate) fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            OriginStream::Tcp(s) => s.peer_addr().ok(),
            OriginStream::TlsTcp(s) => s.get_ref().0.peer_addr().ok(),
            _ => None,
        }
    }
}

/// Dials one rule's origin; also the hyper connector of its HTTP client.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub target: Target,
    connect_timeout: Duration,
    tls_timeout: Duration,
    keep_alive: Duration,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// For `postgres://`: how TLS to the database is set up after the
    /// SSLRequest.
    pub postgres: Option<PgTls>,
}

/// TLS to a PostgreSQL origin.
#[derive(Clone)]
pub(crate) struct PgTls {
    pub mode: SslMode,
    /// `None` for `sslmode: disable`.
    pub config: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub tls_timeout: Duration,
}

impl Dialer {
    /// The dialer for a rule, or `None` for services that are answered by
    /// the connector itself.
    pub(crate) fn for_rule(
        rule: &Rule,
        base_dir: &std::path::Path,
    ) -> Result<Option<Dialer>, OriginError> {
        Self::for_service(&rule.service, &rule.origin_request, base_dir)
    }

    /// The dialer for one service with the given origin settings, or `None`
    /// for services that are answered by the connector itself or that have
    /// several origins (`pool`: see [`crate::pool`]).
    pub(crate) fn for_service(
        service: &Service,
        o: &OriginRequest,
        base_dir: &std::path::Path,
    ) -> Result<Option<Dialer>, OriginError> {
        let (target, tls_host) = match service {
            Service::Http {
                scheme_https,
                host,
                port,
                ..
            } => (
                Target::Tcp {
                    host: host.clone(),
                    port: *port,
                },
                scheme_https.then(|| host.clone()),
            ),
            Service::Tcp { host, port } | Service::Postgres { host, port } => (
                Target::Tcp {
                    host: host.clone(),
                    port: *port,
                },
                None,
            ),
            Service::Unix { path, tls } => (
                Target::Unix(path.clone()),
                tls.then(|| "localhost".to_owned()),
            ),
            Service::HttpStatus(_)
            | Service::HelloWorld
            | Service::Pool(_)
            | Service::Unsupported(_) => return Ok(None),
        };
        let tls = match tls_host {
            Some(host) => Some(tls_for(o, &host, base_dir)?),
            None => None,
        };
        let postgres = match service {
            Service::Postgres { host, .. } => Some(pg_tls_for(o, host, base_dir)?),
            _ => None,
        };
        Ok(Some(Dialer {
            target,
            connect_timeout: o.connect_timeout,
            tls_timeout: o.tls_timeout,
            keep_alive: o.tcp_keep_alive,
            tls,
            postgres,
        }))
    }

    /// Opens a connection (and TLS, if the service is https).
    pub(crate) async fn dial(&self) -> Result<OriginStream, OriginError> {
        let target = self.target.to_string();
        let raw = tokio::time::timeout(self.connect_timeout, async {
            match &self.target {
                Target::Tcp { host, port } => {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    let _ = s.set_nodelay(true);
                    let sock = socket2::SockRef::from(&s);
                    let _ = sock.set_tcp_keepalive(
                        &socket2::TcpKeepalive::new().with_time(self.keep_alive),
                    );
                    Ok(OriginStream::Tcp(s))
                }
                Target::Unix(p) => UnixStream::connect(p).await.map(OriginStream::Unix),
            }
        })
        .await
        .map_err(|_| OriginError::ConnectTimeout {
            target: target.clone(),
            timeout: self.connect_timeout,
        })?
        .map_err(|source| OriginError::Connect {
            target: target.clone(),
            source,
        })?;
        let Some((cfg, name)) = &self.tls else {
            return Ok(raw);
        };
        let connector = tokio_rustls::TlsConnector::from(cfg.clone());
        let tls = async {
            Ok(match raw {
                OriginStream::Tcp(s) => {
                    OriginStream::TlsTcp(Box::new(connector.connect(name.clone(), s).await?))
                }
                OriginStream::Unix(s) => {
                    OriginStream::TlsUnix(Box::new(connector.connect(name.clone(), s).await?))
                }
                other => other,
            })
        };
        tokio::time::timeout(self.tls_timeout, tls)
            .await
            .map_err(|_| OriginError::TlsTimeout {
                target: target.clone(),
            })?
            .map_err(|source: io::Error| OriginError::Tls { target, source })
    }
}

/// The TLS settings of a `postgres://` origin from its `sslmode`.
fn pg_tls_for(
    o: &OriginRequest,
    host: &str,
    base_dir: &std::path::Path,
) -> Result<PgTls, OriginError> {
    let roots = || -> Result<Arc<rustls::RootCertStore>, OriginError> {
        Ok(Arc::new(match &o.ca_pool {
            Some(pool) => {
                let path = if pool.is_relative() {
                    base_dir.join(pool)
                } else {
                    pool.clone()
                };
                roots_from_file(&path).map_err(|e| OriginError::TlsConfig(e.to_string()))?
            }
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        }))
    };
    let trust = match o.sslmode {
        SslMode::Disable => {
            return Ok(PgTls {
                mode: o.sslmode,
                config: None,
                tls_timeout: o.tls_timeout,
            })
        }
        SslMode::Require => Trust::Insecure,
        SslMode::VerifyCa => Trust::RootsAnyName(roots()?),
        SslMode::VerifyFull => Trust::Roots(roots()?),
    };
    let cfg = client_config(&trust, &[b"postgresql"])
        .map_err(|e| OriginError::TlsConfig(e.to_string()))?;
    let name = o.origin_server_name.as_deref().unwrap_or(host);
    let name = ServerName::try_from(name.to_owned()).map_err(|_| {
        OriginError::TlsConfig(format!("\"{name}\" is not a valid TLS server name"))
    })?;
    Ok(PgTls {
        mode: o.sslmode,
        config: Some((Arc::new(cfg), name)),
        tls_timeout: o.tls_timeout,
    })
}

fn tls_for(
    o: &OriginRequest,
    host: &str,
    base_dir: &std::path::Path,
) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), OriginError> {
    let trust = if o.no_tls_verify {
        Trust::Insecure
    } else if let Some(pool) = &o.ca_pool {
        let path = if pool.is_relative() {
            base_dir.join(pool)
        } else {
            pool.clone()
        };
        Trust::Roots(Arc::new(
            roots_from_file(&path).map_err(|e| OriginError::TlsConfig(e.to_string()))?,
        ))
    } else {
        Trust::WebPki
    };
    let alpn: &[&[u8]] = if o.http2_origin {
        &[b"h2"]
    } else {
        &[b"http/1.1"]
    };
    let cfg = client_config(&trust, alpn).map_err(|e| OriginError::TlsConfig(e.to_string()))?;
    let name = o.origin_server_name.as_deref().unwrap_or(host);
    let name = ServerName::try_from(name.to_owned()).map_err(|_| {
        OriginError::TlsConfig(format!("\"{name}\" is not a valid TLS server name"))
    })?;
    Ok((Arc::new(cfg), name))
}

impl Connection for OriginStream {
    fn connected(&self) -> Connected {
        let c = Connected::new();
        if self.negotiated_h2() {
            c.negotiated_h2()
        } else {
            c
        }
    }
}

impl tower_service::Service<http::Uri> for Dialer {
    type Response = TokioIo<OriginStream>;
    type Error = OriginError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, OriginError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), OriginError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let d = self.clone();
        Box::pin(async move { d.dial().await.map(TokioIo::new) })
    }
}

/// The [`OriginError`] behind a failed HTTP client request, if the failure
/// was in reaching the origin (dialling or TLS).
pub(crate) fn origin_error(e: &hyper_util::client::legacy::Error) -> Option<&OriginError> {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(oe) = s.downcast_ref::<OriginError>() {
            return Some(oe);
        }
        src = s.source();
    }
    None
}

impl OriginError {
    /// Whether this is a failure to connect (refused, unreachable, timed
    /// out, or a TLS handshake that timed out): nothing of the request
    /// reached the origin, so another origin may be tried.
    pub fn is_connect_failure(&self) -> bool {
        matches!(
            self,
            OriginError::ConnectTimeout { .. }
                | OriginError::Connect { .. }
                | OriginError::TlsTimeout { .. }
        )
    }
}

/// The pooled HTTP client of one rule.
pub(crate) type HttpClient = Client<Dialer, BoxBody>;

/// Builds the rule's HTTP client.
pub(crate) fn http_client(dialer: Dialer, o: &OriginRequest) -> HttpClient {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(o.keep_alive_timeout)
        .pool_max_idle_per_host(o.keep_alive_connections)
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .http2_only(o.http2_origin);
    b.build(dialer)
}
