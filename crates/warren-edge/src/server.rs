//! Start-up and the listeners' accept loops: [`run`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tokio::net::TcpListener;
use warren_store::Store;

use crate::accept::{Acceptor, ConnLimits};
use crate::access::Access;
use crate::admin::{self, AdminState};
use crate::audit::AuditSink;
use crate::ca::{Ca, CaError, SniResolver};
use crate::config::{EdgeConfig, QuicListen};
use crate::databases::Databases;
use crate::registry::Registry;
use crate::routes::{RoutePolicy, RouteTable, ServedNames};
use crate::secrets::{self, TunnelSecrets};
use crate::session::EdgeCtx;
use crate::tunnel::{self, TunnelCtx};
use crate::upstream::Upstream;
use warren_transport::quic::QuicListener;

/// Why the edge could not start. Each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// `--quick-tunnels` without `--domain`: names cannot be made.
    #[error("--quick-tunnels makes names under --domain, and none is set; pass --domain DOMAIN (a domain whose names point at this edge)")]
    QuickTunnelsNeedDomain,
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] warren_store::StoreError),
    /// The local CA could not be loaded or made.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// `--tls-cert`/`--tls-key` could not be loaded.
    #[error(transparent)]
    Tls(#[from] warren_transport::tls::TlsError),
    /// A listener could not be bound.
    #[error(
        "cannot listen on {addr} for {what}: {source}; pick another address with --listen-{what}"
    )]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The first admin API token could not be made.
    #[error("cannot create the admin API token: {0}")]
    AdminToken(#[from] secrets::BootstrapError),
    /// The key tunnel secrets are derived with could not be read or made.
    #[error("cannot read or create the tunnel secret key in {dir}: {source}; check that the data directory is readable and writable by warren's user")]
    SecretKey { dir: String, source: std::io::Error },
    /// The key database credentials are sealed with could not be read or
    /// made.
    #[error("cannot read or create the PostgreSQL credential key in {dir}: {source}; check that the data directory is readable and writable by warren's user")]
    CredentialKey { dir: String, source: std::io::Error },
    /// A listener's TLS configuration was refused by rustls.
    #[error("cannot set up TLS for the {what} listener: {source}")]
    TlsSetup {
        what: &'static str,
        source: rustls::Error,
    },
    /// The client-certificate verifier of the PostgreSQL listener could
    /// not be built from the CA.
    #[error("cannot verify PostgreSQL client certificates with the edge CA: {0}")]
    ClientCertVerifier(#[from] crate::pg::verifier::VerifierError),
    /// The QUIC tunnel listener could not be set up.
    #[error("cannot set up the QUIC tunnel listener: {0}")]
    Quic(#[from] warren_transport::quic::SetupError),
    /// A bound listener's address could not be read.
    #[error("cannot read the address of the {what} listener: {source}")]
    LocalAddr {
        what: &'static str,
        source: std::io::Error,
    },
    /// The readiness file could not be written.
    #[error("cannot write the readiness file {path}: {source}")]
    ReadyFile {
        path: String,
        source: std::io::Error,
    },
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
    /// The QUIC listener for `warren access tcp` (UDP), when on.
    #[serde(default)]
    pub quic: Option<SocketAddr>,
    /// Path of the CA certificate clients can trust.
    pub ca: String,
}

/// The edge's sockets, bound before [`run`] starts (so a caller, or a
/// test, can bind port 0 and hand them over).
pub struct Listeners {
    /// UDP, for the QUIC tunnel listener.
    pub tunnel: std::net::UdpSocket,
    pub https: TcpListener,
    pub http: TcpListener,
    pub admin: TcpListener,
    /// The native PostgreSQL listener; `None`: off.
    pub postgres: Option<TcpListener>,
    /// UDP, for `warren access tcp` over QUIC; `None`: off.
    pub quic: Option<std::net::UdpSocket>,
}

impl Listeners {
    /// Binds the addresses in `cfg`.
    pub async fn bind(cfg: &EdgeConfig) -> Result<Listeners, EdgeError> {
        let tunnel = bind_udp(cfg.listen_tunnel, "tunnel")?;
        let https = bind(cfg.listen_https, "https").await?;
        let quic = match cfg.listen_quic {
            QuicListen::Off => None,
            QuicListen::At(addr) => Some(bind_udp(addr, "quic")?),
            QuicListen::SameAsHttps => {
                let at = https.local_addr().map_err(|source| EdgeError::LocalAddr {
                    what: "https",
                    source,
                })?;
                match std::net::UdpSocket::bind(at) {
                    Ok(s) => Some(s),
                    // An HTTPS listener on port 0 got a port whose UDP
                    // twin is taken: any free port will do, edge.json
                    // says which.
                    Err(e) if cfg.listen_https.port() == 0 => {
                        tracing::debug!(%at, error = %e, "UDP twin of the HTTPS port is taken; QUIC listens on another port");
                        Some(bind_udp(SocketAddr::new(at.ip(), 0), "quic")?)
                    }
                    Err(source) => {
                        return Err(EdgeError::Bind {
                            what: "quic (UDP on the HTTPS address; choose another with --listen-quic, or --listen-quic off)",
                            addr: at,
                            source,
                        })
                    }
                }
            }
        };
        Ok(Listeners {
            tunnel,
            https,
            quic,
            http: bind(cfg.listen_http, "http").await?,
            admin: bind(cfg.listen_admin, "admin").await?,
            postgres: match cfg.listen_postgres {
                Some(a) => Some(bind(a, "postgres").await?),
                None => None,
            },
        })
    }

    fn addrs(&self, ca: String) -> Result<BoundAddrs, EdgeError> {
        let tcp = |l: &TcpListener, what| {
            l.local_addr()
                .map_err(|source| EdgeError::LocalAddr { what, source })
        };
        Ok(BoundAddrs {
            tunnel: self
                .tunnel
                .local_addr()
                .map_err(|source| EdgeError::LocalAddr {
                    what: "tunnel",
                    source,
                })?,
            https: tcp(&self.https, "https")?,
            http: tcp(&self.http, "http")?,
            admin: tcp(&self.admin, "admin")?,
            postgres: self
                .postgres
                .as_ref()
                .map(|l| tcp(l, "postgres"))
                .transpose()?,
            quic: self
                .quic
                .as_ref()
                .map(|s| {
                    s.local_addr().map_err(|source| EdgeError::LocalAddr {
                        what: "quic",
                        source,
                    })
                })
                .transpose()?,
            ca,
        })
    }
}

/// Connections the admin API holds at most (its own cap: the public
/// listeners being full does not lock the operator out).
const ADMIN_CONNECTIONS: usize = 64;

/// Runs the edge on `listeners` until `shutdown` resolves.
pub async fn run(
    cfg: EdgeConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EdgeError> {
    warren_transport::tls::install_provider();
    let dir = &cfg.data_dir;
    create_private_dir(dir).map_err(|source| EdgeError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let _ = std::fs::remove_file(dir.join("edge.json"));
    let bound = listeners.addrs(dir.join("ca.pem").display().to_string())?;

    let store = Store::open(dir).await?;
    if secrets::bootstrap_admin_token(&store, dir).await?.is_some() {
        tracing::info!(path = %dir.join("admin-token").display(), "created the admin API token");
    }
    let secrets =
        Arc::new(
            TunnelSecrets::load_or_create(dir).map_err(|source| EdgeError::SecretKey {
                dir: dir.display().to_string(),
                source,
            })?,
        );
    let ca = Arc::new(Ca::load_or_create(dir)?);
    let routes = RouteTable::new();
    routes.reload(&store).await?;
    let databases = Databases::load(dir).map_err(|source| EdgeError::CredentialKey {
        dir: dir.display().to_string(),
        source,
    })?;
    databases.reload(&store).await?;
    let registry = Registry::new();
    if crate::access::keys::ensure_current(&store, cfg.signing_key_rotation).await? {
        tracing::info!("made a new identity-token signing key");
    }
    let metrics = Arc::new(crate::metrics::EdgeMetrics::default());
    let audit = AuditSink::start(
        store.clone(),
        cfg.audit_retention,
        cfg.audit_on_failure,
        metrics.clone(),
    );
    let access = Access::start_with(
        store.clone(),
        audit.clone(),
        routes.clone(),
        Some(databases.clone()),
        cfg.access.clone(),
    )
    .await?;

    // Tunnel listener (QUIC).
    let mut tunnel_names = vec![warren_proto::EDGE_SERVER_NAME.to_owned()];
    if let Some(d) = &cfg.domain {
        tunnel_names.push(d.clone());
    }
    let (chain, key) = ca.issue(&tunnel_names)?;
    let tls_err = |what| move |source| EdgeError::TlsSetup { what, source };
    let mut tunnel_tls =
        rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err("tunnel"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(tls_err("tunnel"))?;
    tunnel_tls.alpn_protocols = vec![warren_proto::ALPN.to_vec()];
    let tunnel_listener = Arc::new(QuicListener::new(listeners.tunnel, tunnel_tls, &cfg.quic)?);

    // HTTPS listener.
    let mut https_tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => {
            rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(tls_err("https"))?
                .with_no_client_auth()
                .with_single_cert(
                    warren_transport::tls::load_certs(cert)?,
                    warren_transport::tls::load_key(key)?,
                )
                .map_err(tls_err("https (--tls-cert/--tls-key)"))?
        }
        _ => rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err("https"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver::new(
                ca.clone(),
                cfg.domain.clone(),
                routes.clone(),
            )?)),
    };
    // The QUIC access listener presents the same certificates, in TLS 1.3
    // with its own ALPN.
    let mut access_tls = https_tls.clone();
    access_tls.alpn_protocols = vec![warren_proto::access::ALPN.to_vec()];
    https_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    let advertise = if cfg.advertise.is_empty() {
        default_advertise(cfg.domain.as_deref(), bound.tunnel)
    } else {
        cfg.advertise.clone()
    };
    // Shared by the native listener, which fills them, and the admin API,
    // which shows them.
    let pg_pools: Arc<crate::pg::pool::Pools> = Arc::default();
    let admin_state = AdminState {
        store: store.clone(),
        secrets,
        routes: routes.clone(),
        registry: registry.clone(),
        token_edges: advertise,
        ca_pin: ca.pin(),
        access: access.clone(),
        route_policy: RoutePolicy {
            domain: cfg.domain.clone(),
            outside_domain: cfg.allow_routes_outside_domain,
        },
        metrics: metrics.clone(),
        databases: databases.clone(),
        pg_pools: pg_pools.clone(),
    };
    let quick = match (&cfg.domain, cfg.quick_tunnels) {
        (Some(domain), true) => {
            let quick = Arc::new(crate::quick::QuickTunnels::new(
                store.clone(),
                admin_state.secrets.clone(),
                routes.clone(),
                registry.clone(),
                domain.clone(),
                bound.https.port(),
                admin_state.token_edges.clone(),
                admin_state.ca_pin.clone(),
                cfg.quick_tunnel_idle,
            ));
            tracing::info!(idle = ?cfg.quick_tunnel_idle, "quick tunnels are on: anyone can make a public tunnel under --domain");
            Some(quick)
        }
        (None, true) => return Err(EdgeError::QuickTunnelsNeedDomain),
        (_, false) => None,
    };
    let quick_sweep = quick.clone().map(|q| tokio::spawn(q.sweep_forever()));
    // The dashboard, and the sampler that fills its traffic plots.
    let traffic = Arc::new(admin::ui::traffic::Traffic::default());
    let traffic_sampler = tokio::spawn(admin::ui::traffic::sample_forever(
        traffic.clone(),
        store.clone(),
        metrics.clone(),
    ));
    let dashboard = admin::ui::Ui::new(
        admin::ui::UiSettings {
            admin_group: cfg.admin_group.clone(),
            // The admin listener is plain HTTP (loopback by default).
            tls: false,
        },
        traffic,
    );
    if let Some(group) = &cfg.admin_group {
        tracing::info!(%group, "members of this identity-provider group may sign in to the dashboard");
    }
    let proxy_ctx = Arc::new(EdgeCtx {
        routes: routes.clone(),
        upstream: Upstream {
            registry: registry.clone(),
            stream_timeout: cfg.stream_timeout,
        },
        audit: audit.clone(),
        access: access.clone(),
        ca: ca.clone(),
        postgres_port: bound.postgres.map(|a| a.port()),
        idle_timeout: cfg.idle_timeout,
        metrics: metrics.clone(),
        quick,
        databases,
    });
    // The native PostgreSQL listener: certificates by SNI from the CA,
    // optional client certificates from it too.
    // One cap over the public listeners, below the descriptor limit; the
    // admin API has its own, so a full edge can still be managed.
    let fd_limit = crate::accept::fd_limit();
    let max_connections = cfg
        .max_connections
        .unwrap_or_else(|| crate::accept::default_max_connections(fd_limit));
    let limits = ConnLimits::new(
        max_connections,
        cfg.max_unauthenticated_per_source,
        cfg.client_keepalive,
    );
    tracing::info!(
        max_connections,
        fd_limit = fd_limit.map_or_else(|| "unknown".to_owned(), |l| l.to_string()),
        max_unauthenticated_per_source = cfg.max_unauthenticated_per_source,
        "connection limits"
    );
    if let Some(fds) = fd_limit {
        if u64::try_from(max_connections).unwrap_or(u64::MAX) > fds {
            tracing::warn!(max_connections, fd_limit = fds, "--max-connections is above the file-descriptor limit, so accept() can fail before the cap is reached; lower it or raise `ulimit -n`");
        }
    }
    let pg_task = match listeners.postgres {
        Some(l) => {
            let verifier = crate::pg::OptionalClientCert::new(ca.cert_der())?;
            let mut tls =
                rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(tls_err("postgres"))?
                    .with_client_cert_verifier(Arc::new(verifier))
                    .with_cert_resolver(Arc::new(SniResolver::new(
                        ca.clone(),
                        cfg.domain.clone(),
                        routes.clone(),
                    )?));
            tls.alpn_protocols = vec![warren_pg::ALPN.to_vec()];
            let ctx = crate::pg::PgListener::new(
                proxy_ctx.clone(),
                Arc::new(tls),
                cfg.pg_startup_timeout,
                pg_pools.clone(),
            );
            Some(tokio::spawn(crate::pg::serve(
                Acceptor::new(l, "postgres", limits.clone()),
                ctx,
            )))
        }
        None => None,
    };

    let quic_listener = match listeners.quic {
        Some(socket) => Some(Arc::new(QuicListener::new(
            socket,
            access_tls,
            &cfg.quic.access(),
        )?)),
        None => None,
    };
    let quic_task = quic_listener.clone().map(|l| {
        tokio::spawn(crate::tcp_quic::serve(
            l,
            Arc::new(crate::tcp_quic::QuicAccess {
                ctx: proxy_ctx.clone(),
                limits: limits.clone(),
                request_timeout: cfg.handshake_timeout,
            }),
        ))
    });
    let tasks = [
        tokio::spawn(tunnel::serve(
            tunnel_listener.clone(),
            TunnelCtx {
                store: store.clone(),
                registry,
                listen: bound.tunnel,
                ca: ca.clone(),
                routes: routes.clone(),
                access: access.clone(),
                quic: cfg.quic.clone(),
                metrics,
            },
        )),
        tokio::spawn(crate::listen::serve_https(
            Acceptor::new(listeners.https, "https", limits.clone()),
            tokio_rustls::TlsAcceptor::from(Arc::new(https_tls)),
            proxy_ctx,
            cfg.handshake_timeout,
            cfg.header_read_timeout,
        )),
        tokio::spawn(crate::listen::serve_redirect(
            Acceptor::new(listeners.http, "http", limits.clone()),
            bound.https.port(),
            ServedNames::new(cfg.domain.clone(), routes.clone()),
            cfg.header_read_timeout,
        )),
        tokio::spawn(crate::listen::serve_admin(
            Acceptor::new(
                listeners.admin,
                "admin",
                ConnLimits::new(ADMIN_CONNECTIONS, ADMIN_CONNECTIONS, cfg.client_keepalive),
            ),
            admin::router_with_ui(admin_state, cfg.header_read_timeout, dashboard),
            cfg.header_read_timeout,
        )),
    ];

    write_ready_file(dir, &bound).map_err(|source| EdgeError::ReadyFile {
        path: dir.join("edge.json").display().to_string(),
        source,
    })?;
    tracing::info!(tunnel = %bound.tunnel, https = %bound.https, quic = ?bound.quic, http = %bound.http, admin = %bound.admin, "edge ready");

    shutdown.await;
    tracing::info!("edge shutting down");
    tunnel_listener.close(
        warren_proto::close::CloseCode::EdgeShutdown,
        b"edge shutting down",
    );
    if let Some(l) = &quic_listener {
        l.close(
            warren_proto::close::CloseCode::EdgeShutdown,
            b"edge shutting down",
        );
    }
    for t in tasks
        .into_iter()
        .chain([traffic_sampler])
        .chain(pg_task)
        .chain(quic_task)
        .chain(quick_sweep)
    {
        t.abort();
    }
    // Let the close frames leave before the process exits.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        tunnel_listener.wait_idle(),
    )
    .await;
    // Sessions cut by the close record why they ended; every entry
    // queued is written before the store closes.
    match audit.drain(cfg.audit_drain_timeout).await {
        Ok(()) => tracing::info!("the audit log is written up to date"),
        Err(e) => tracing::error!(
            "shutting down before the audit log was complete: {e}; raise --audit-drain-timeout"
        ),
    }
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

fn bind_udp(addr: SocketAddr, what: &'static str) -> Result<std::net::UdpSocket, EdgeError> {
    std::net::UdpSocket::bind(addr).map_err(|source| EdgeError::Bind { what, addr, source })
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, EdgeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EdgeError::Bind { what, addr, source })
}
