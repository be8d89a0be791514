//! `warren edge`: its flags, merged over the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub(crate) struct EdgeArgs {
    /// YAML file with any of these settings (kebab-case keys); flags and
    /// environment variables win over it.
    #[arg(long, env = "WARREN_CONFIG")]
    config: Option<PathBuf>,
    /// Where the store, CA and admin token live [default: ./warren-data].
    #[arg(long, env = "WARREN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Serve certificates for this domain and every name under it.
    #[arg(long, env = "WARREN_DOMAIN")]
    domain: Option<String>,
    /// QUIC listener for connectors (UDP) [default: 0.0.0.0:7844].
    #[arg(long, env = "WARREN_LISTEN_TUNNEL")]
    listen_tunnel: Option<SocketAddr>,
    /// Public HTTPS listener [default: 0.0.0.0:8443].
    #[arg(long, env = "WARREN_LISTEN_HTTPS")]
    listen_https: Option<SocketAddr>,
    /// Public HTTP listener; redirects to HTTPS [default: 0.0.0.0:8080].
    #[arg(long, env = "WARREN_LISTEN_HTTP")]
    listen_http: Option<SocketAddr>,
    /// Admin API listener [default: 127.0.0.1:7800].
    #[arg(long, env = "WARREN_LISTEN_ADMIN")]
    listen_admin: Option<SocketAddr>,
    /// Native PostgreSQL listener (TLS + client certificates), or `off`
    /// [default: 0.0.0.0:5433].
    #[arg(long, env = "WARREN_LISTEN_POSTGRES")]
    listen_postgres: Option<String>,
    /// QUIC listener for `warren access tcp` (UDP): an address, `https`
    /// (UDP on --listen-https's address and port), or `off` [default: https].
    #[arg(long, env = "WARREN_LISTEN_QUIC")]
    listen_quic: Option<String>,
    /// Largest UDP payload QUIC accepts and path MTU discovery probes up
    /// to, in bytes (tunnel and access listeners; 1200-65527; larger means
    /// fewer packets per byte where the path carries them; above 6500 each
    /// packet is sent on its own, without segmentation offload) [default: 6500].
    #[arg(long, env = "WARREN_QUIC_MAX_UDP_PAYLOAD")]
    quic_max_udp_payload: Option<u16>,
    /// PEM certificate chain for the HTTPS listener (instead of the local CA).
    #[arg(long, env = "WARREN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "WARREN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Tunnel address to put in tokens (repeatable) [default: DOMAIN:PORT].
    #[arg(long, env = "WARREN_ADVERTISE", value_delimiter = ',')]
    advertise: Vec<String>,
    /// Seconds a connector has to answer a new stream (reach the origin
    /// and, for HTTP, return the response head) [default: 100].
    #[arg(long, env = "WARREN_STREAM_TIMEOUT")]
    stream_timeout: Option<u64>,
    /// Seconds a client's TLS handshake may take [default: 10].
    #[arg(long, env = "WARREN_HANDSHAKE_TIMEOUT")]
    handshake_timeout: Option<u64>,
    /// Seconds a client may take to send a whole HTTP/1 request head, and
    /// that an idle keep-alive connection is kept (HTTPS, HTTP and admin
    /// listeners; admin request bodies too) [default: 30].
    #[arg(long, env = "WARREN_HEADER_READ_TIMEOUT")]
    header_read_timeout: Option<u64>,
    /// Seconds a PostgreSQL client may take from connecting to its
    /// StartupMessage, TLS handshake included [default: 10].
    #[arg(long, env = "WARREN_PG_STARTUP_TIMEOUT")]
    pg_startup_timeout: Option<u64>,
    /// Let the admin API route names outside --domain (an edge serving
    /// several domains). Wildcards over a public suffix such as *.com stay
    /// refused.
    #[arg(long, env = "WARREN_ALLOW_ROUTES_OUTSIDE_DOMAIN")]
    allow_routes_outside_domain: bool,
    /// While the audit log cannot be written: `refuse` new connections
    /// that need an entry, or `serve` them and queue their entries
    /// [default: refuse].
    #[arg(long, env = "WARREN_AUDIT_ON_FAILURE", value_parser = ["refuse", "serve"])]
    audit_on_failure: Option<String>,
    /// Seconds to wait at shutdown for open sessions' audit entries to be
    /// written [default: 10].
    #[arg(long, env = "WARREN_AUDIT_DRAIN_TIMEOUT")]
    audit_drain_timeout: Option<u64>,
    /// Seconds a client connection may be idle before TCP keep-alive
    /// probes check that the client is still there (a gone one is closed
    /// about a minute later) [default: 60].
    #[arg(long, env = "WARREN_CLIENT_KEEPALIVE")]
    client_keepalive: Option<u64>,
    /// Seconds a spliced connection (access tcp, PostgreSQL, WebSocket)
    /// may carry nothing either way before it is closed; 0: never
    /// [default: 0].
    #[arg(long, env = "WARREN_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Make a tunnel and a public route under --domain for anyone who runs
    /// `warren tunnel --url URL --edge THIS-EDGE`, without an admin token
    /// (10 a minute per address); removed once disconnected for
    /// --quick-tunnel-idle.
    #[arg(long, env = "WARREN_QUICK_TUNNELS")]
    quick_tunnels: bool,
    /// Seconds a quick tunnel may go without a connection before it and
    /// its route are removed [default: 300].
    #[arg(long, env = "WARREN_QUICK_TUNNEL_IDLE", value_name = "SECONDS")]
    quick_tunnel_idle: Option<u64>,
    /// Client connections held at most across the TCP listeners; at the
    /// cap new ones wait [default: the file-descriptor limit less 256].
    #[arg(long, env = "WARREN_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections one address may hold on one listener before it has
    /// sent its first bytes (after TLS); more are closed [default: 256].
    #[arg(long, env = "WARREN_MAX_UNAUTHENTICATED_PER_SOURCE")]
    max_unauthenticated_per_source: Option<usize>,
    /// Days audit entries are kept [default: 90].
    #[arg(long, env = "WARREN_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u64>,
    /// Days before the identity-token signing key is replaced at start;
    /// the previous key stays published [default: 30].
    #[arg(long, env = "WARREN_SIGNING_KEY_ROTATION_DAYS")]
    signing_key_rotation_days: Option<u64>,
    /// Let users of the identity provider in this group (its groups
    /// claim) sign in to the dashboard (`/ui/` on --listen-admin); without
    /// it only the admin token opens the dashboard.
    #[arg(long, env = "WARREN_ADMIN_GROUP", value_name = "GROUP")]
    admin_group: Option<String>,
}

impl EdgeArgs {
    pub(crate) fn into_config(self) -> anyhow::Result<warren_edge::EdgeConfig> {
        let file = match &self.config {
            Some(p) => warren_edge::PartialEdgeConfig::from_file(p)?,
            None => Default::default(),
        };
        let flags = warren_edge::PartialEdgeConfig {
            data_dir: self.data_dir,
            domain: self.domain,
            listen_tunnel: self.listen_tunnel,
            listen_https: self.listen_https,
            listen_http: self.listen_http,
            listen_admin: self.listen_admin,
            listen_postgres: self.listen_postgres,
            listen_quic: self.listen_quic,
            quic_max_udp_payload: self.quic_max_udp_payload,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            advertise: self.advertise,
            stream_timeout: self.stream_timeout,
            handshake_timeout: self.handshake_timeout,
            header_read_timeout: self.header_read_timeout,
            pg_startup_timeout: self.pg_startup_timeout,
            allow_routes_outside_domain: self.allow_routes_outside_domain.then_some(true),
            audit_on_failure: self.audit_on_failure.as_deref().map(|v| match v {
                "serve" => warren_edge::OnAuditFailure::Serve,
                _ => warren_edge::OnAuditFailure::Refuse,
            }),
            audit_drain_timeout: self.audit_drain_timeout,
            max_connections: self.max_connections,
            client_keepalive: self.client_keepalive,
            idle_timeout: self.idle_timeout,
            quick_tunnels: self.quick_tunnels.then_some(true),
            quick_tunnel_idle: self.quick_tunnel_idle,
            max_unauthenticated_per_source: self.max_unauthenticated_per_source,
            audit_retention_days: self.audit_retention_days,
            signing_key_rotation_days: self.signing_key_rotation_days,
            admin_group: self.admin_group,
        };
        Ok(flags.over(file).resolve()?)
    }
}
