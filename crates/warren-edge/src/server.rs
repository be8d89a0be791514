//! Start-up and the listeners' accept loops: [`run`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http::{header, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::net::TcpListener;
use warren_store::Store;
use warren_transport::body::{empty, BoxBody};

use crate::access::Access;
use crate::admin::{self, AdminState};
use crate::audit::AuditSink;
use crate::ca::{Ca, CaError, SniResolver};
use crate::config::EdgeConfig;
use crate::proxy::{self, ProxyCtx};
use crate::registry::Registry;
use crate::routes::RouteTable;
use crate::secrets::{self, TunnelSecrets};
use crate::tunnel::{self, TunnelCtx};

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] warren_store::StoreError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Tls(#[from] warren_transport::tls::TlsError),
    #[error(
        "cannot listen on {addr} for {what}: {source}; pick another address with --listen-{what}"
    )]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up {0}")]
    Setup(String),
}

/// Where the edge's listeners ended up (they may be bound to port 0).
/// Written to `<data-dir>/edge.json` once everything is listening: its
/// appearance is the edge's readiness signal.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BoundAddrs {
    pub tunnel: SocketAddr,
    pub https: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    /// The native PostgreSQL listener, when on.
    #[serde(default)]
    pub postgres: Option<SocketAddr>,
    /// Path of the CA certificate clients can trust.
    pub ca: String,
}

/// Runs the edge until `shutdown` resolves.
pub async fn run(cfg: EdgeConfig, shutdown: impl Future<Output = ()>) -> Result<(), EdgeError> {
    warren_transport::tls::install_provider();
    let dir = &cfg.data_dir;
    create_private_dir(dir).map_err(|source| EdgeError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let _ = std::fs::remove_file(dir.join("edge.json"));

    let store = Store::open(dir).await?;
    if secrets::bootstrap_admin_token(&store, dir)
        .await
        .map_err(|e| EdgeError::Setup(format!("the admin API token: {e}")))?
        .is_some()
    {
        tracing::info!(path = %dir.join("admin-token").display(), "created the admin API token");
    }
    let secrets = Arc::new(TunnelSecrets::load_or_create(dir).map_err(|e| {
        EdgeError::Setup(format!("the tunnel secret key in {}: {e}", dir.display()))
    })?);
    let ca = Arc::new(Ca::load_or_create(dir)?);
    let routes = RouteTable::new();
    routes.reload(&store).await?;
    let registry = Registry::new();
    if crate::access::keys::ensure_current(&store, cfg.signing_key_rotation).await? {
        tracing::info!("made a new identity-token signing key");
    }
    let audit = AuditSink::start(store.clone(), cfg.audit_retention);
    let access = Access::start(
        store.clone(),
        audit.clone(),
        routes.clone(),
        cfg.access.clone(),
    )
    .await?;

    // Tunnel listener (QUIC).
    let mut tunnel_names = vec![warren_proto::EDGE_SERVER_NAME.to_owned()];
    if let Some(d) = &cfg.domain {
        tunnel_names.push(d.clone());
    }
    let (chain, key) = ca.issue(&tunnel_names)?;
    let mut tunnel_tls =
        rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| EdgeError::Setup(format!("tunnel TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| EdgeError::Setup(format!("tunnel TLS: {e}")))?;
    tunnel_tls.alpn_protocols = vec![warren_proto::ALPN.to_vec()];
    let quic_crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tunnel_tls)
        .map_err(|e| EdgeError::Setup(format!("tunnel QUIC: {e}")))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_crypto));
    server_config.transport_config(cfg.quic.transport());
    let endpoint = quinn::Endpoint::server(server_config, cfg.listen_tunnel).map_err(|source| {
        EdgeError::Bind {
            what: "tunnel",
            addr: cfg.listen_tunnel,
            source,
        }
    })?;
    let tunnel_addr = endpoint
        .local_addr()
        .map_err(|e| EdgeError::Setup(format!("tunnel listener: {e}")))?;

    // HTTPS listener.
    let mut https_tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => {
            rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| EdgeError::Setup(format!("HTTPS TLS: {e}")))?
                .with_no_client_auth()
                .with_single_cert(
                    warren_transport::tls::load_certs(cert)?,
                    warren_transport::tls::load_key(key)?,
                )
                .map_err(|e| {
                    EdgeError::Setup(format!("HTTPS TLS with --tls-cert/--tls-key: {e}"))
                })?
        }
        _ => rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| EdgeError::Setup(format!("HTTPS TLS: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver::new(
                ca.clone(),
                cfg.domain.clone(),
                routes.clone(),
            )?)),
    };
    https_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let https = bind(cfg.listen_https, "https").await?;
    let http = bind(cfg.listen_http, "http").await?;
    let admin_listener = bind(cfg.listen_admin, "admin").await?;
    let pg_listener = match cfg.listen_postgres {
        Some(a) => Some(bind(a, "postgres").await?),
        None => None,
    };
    let addr = |l: &TcpListener| l.local_addr().map_err(|e| EdgeError::Setup(e.to_string()));
    let bound = BoundAddrs {
        tunnel: tunnel_addr,
        https: addr(&https)?,
        http: addr(&http)?,
        admin: addr(&admin_listener)?,
        postgres: pg_listener.as_ref().map(addr).transpose()?,
        ca: dir.join("ca.pem").display().to_string(),
    };

    let advertise = if cfg.advertise.is_empty() {
        default_advertise(cfg.domain.as_deref(), tunnel_addr)
    } else {
        cfg.advertise.clone()
    };
    let admin_state = AdminState {
        store: store.clone(),
        secrets,
        routes: routes.clone(),
        registry: registry.clone(),
        token_edges: advertise,
        ca_pin: ca.pin(),
        access: access.clone(),
    };
    let proxy_ctx = Arc::new(ProxyCtx {
        routes: routes.clone(),
        registry: registry.clone(),
        audit,
        access: access.clone(),
        ca: ca.clone(),
        postgres_port: bound.postgres.map(|a| a.port()),
        stream_timeout: cfg.stream_timeout,
    });
    // The native PostgreSQL listener: certificates by SNI from the CA,
    // optional client certificates from it too.
    let pg_task = match pg_listener {
        Some(l) => {
            let verifier = crate::pg::OptionalClientCert::new(ca.cert_der())
                .map_err(|e| EdgeError::Setup(format!("PostgreSQL client certificates: {e}")))?;
            let mut tls =
                rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| EdgeError::Setup(format!("PostgreSQL TLS: {e}")))?
                    .with_client_cert_verifier(Arc::new(verifier))
                    .with_cert_resolver(Arc::new(SniResolver::new(
                        ca.clone(),
                        cfg.domain.clone(),
                        routes.clone(),
                    )?));
            tls.alpn_protocols = vec![warren_pg::ALPN.to_vec()];
            let ctx =
                crate::pg::PgListener::new(proxy_ctx.clone(), Arc::new(tls), cfg.handshake_timeout);
            Some(tokio::spawn(crate::pg::serve(l, ctx)))
        }
        None => None,
    };

    let tasks = [
        tokio::spawn(tunnel::serve(
            endpoint.clone(),
            TunnelCtx {
                store: store.clone(),
                registry,
                listen: tunnel_addr,
                ca: ca.clone(),
                routes: routes.clone(),
                access: access.clone(),
            },
        )),
        tokio::spawn(serve_https(
            https,
            tokio_rustls::TlsAcceptor::from(Arc::new(https_tls)),
            proxy_ctx,
            cfg.handshake_timeout,
        )),
        tokio::spawn(serve_redirect(http, bound.https.port())),
        tokio::spawn(async move {
            if let Err(e) = axum::serve(admin_listener, admin::router(admin_state)).await {
                tracing::error!(error = %e, "admin API stopped");
            }
        }),
    ];

    write_ready_file(dir, &bound)
        .map_err(|e| EdgeError::Setup(format!("the readiness file edge.json: {e}")))?;
    tracing::info!(tunnel = %bound.tunnel, https = %bound.https, http = %bound.http, admin = %bound.admin, "edge ready");

    shutdown.await;
    tracing::info!("edge shutting down");
    endpoint.close(
        quinn::VarInt::from_u32(tunnel::CLOSE_SHUTDOWN),
        b"edge shutting down",
    );
    for t in tasks.into_iter().chain(pg_task) {
        t.abort();
    }
    // Let the close frames leave before the process exits.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), endpoint.wait_idle()).await;
    store.close().await;
    let _ = std::fs::remove_file(dir.join("edge.json"));
    Ok(())
}

/// Tunnel addresses for tokens when `--advertise` is not given: a
/// listener bound to a specific address is reached there; one bound to
/// all addresses is reached by the domain's name (or loopback without one).
fn default_advertise(domain: Option<&str>, tunnel: SocketAddr) -> Vec<String> {
    if !tunnel.ip().is_unspecified() {
        return vec![tunnel.to_string()];
    }
    match domain {
        Some(d) if d != "localhost" => vec![format!("{d}:{}", tunnel.port())],
        _ => vec![format!("127.0.0.1:{}", tunnel.port())],
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_ready_file(dir: &Path, bound: &BoundAddrs) -> std::io::Result<()> {
    let tmp = dir.join("edge.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(bound).expect("addresses serialize"),
    )?;
    std::fs::rename(tmp, dir.join("edge.json"))
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, EdgeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EdgeError::Bind { what, addr, source })
}

async fn serve_https(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    ctx: Arc<ProxyCtx>,
    handshake_timeout: std::time::Duration,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed on the HTTPS listener");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |req| {
                let ctx = ctx.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(proxy::handle(ctx, req, peer, "https").await)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
}

async fn serve_redirect(listener: TcpListener, https_port: u16) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(
                move |req: http::Request<hyper::body::Incoming>| async move {
                    let path = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/");
                    let resp: Response<BoxBody> = match proxy::https_location(
                        req.headers().get(header::HOST),
                        path,
                        https_port,
                    ) {
                        Some(loc) => Response::builder()
                            .status(StatusCode::PERMANENT_REDIRECT)
                            .header(header::LOCATION, loc)
                            .body(empty())
                            .expect("valid redirect"),
                        None => crate::pages::EdgeFailure::NoHost.response(),
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
