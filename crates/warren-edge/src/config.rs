//! Edge settings: defaults, the optional YAML file, and how they merge.
//!
//! Precedence, highest first: command-line flag, `WARREN_*` environment
//! variable (both handled by the binary's clap layer), `--config` file,
//! built-in default. [`PartialEdgeConfig`] is the shape both the file and
//! the flags produce; [`PartialEdgeConfig::resolve`] fills the gaps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use warren_transport::quic::QuicSettings;

/// Every edge setting, resolved.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub data_dir: PathBuf,
    /// Hostnames under this domain get a certificate on first use.
    pub domain: Option<String>,
    pub listen_tunnel: SocketAddr,
    pub listen_https: SocketAddr,
    pub listen_http: SocketAddr,
    pub listen_admin: SocketAddr,
    /// The native PostgreSQL listener; `None`: off.
    pub listen_postgres: Option<SocketAddr>,
    /// The QUIC listener for `warren access tcp` (UDP).
    pub listen_quic: QuicListen,
    /// A fixed certificate for the HTTPS listener instead of per-SNI ones.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Tunnel addresses written into tunnel tokens. Empty: derived from
    /// `--domain` and the tunnel listener's port.
    pub advertise: Vec<String>,
    /// How long a connector has to answer a new stream: it reaches the
    /// origin first and, for HTTP, waits for the response head (default
    /// 100 s, as long-polling origins expect).
    pub stream_timeout: Duration,
    /// How long a client's TLS handshake may take (HTTPS and PostgreSQL
    /// listeners; default 10 s).
    pub handshake_timeout: Duration,
    /// How long a client may take to send a whole HTTP/1 request head, and
    /// how long an idle keep-alive connection waits for the next one
    /// (HTTPS, HTTP redirect and admin listeners); on the admin listener
    /// the request body must arrive within it too (default 30 s).
    pub header_read_timeout: Duration,
    /// How long a PostgreSQL client may take from connecting to its
    /// StartupMessage, TLS handshake included (default 10 s).
    pub pg_startup_timeout: Duration,
    /// Whether the admin API may route names outside `domain` (default:
    /// no; see [`crate::routes::RoutePolicy`]).
    pub allow_routes_outside_domain: bool,
    /// How long a client connection may be idle before the kernel starts
    /// probing whether the client is still there (TCP keep-alive, every
    /// listener; a gone client is closed about a minute later; default
    /// 60 s).
    pub client_keepalive: Duration,
    /// A spliced connection (`access tcp`, PostgreSQL, an upgraded HTTP
    /// connection such as a WebSocket) that carries nothing either way
    /// this long is closed; `None` (the default): never, since idle SSH
    /// sessions and pooled database connections are normal and TCP
    /// keep-alive closes the dead ones.
    pub idle_timeout: Option<Duration>,
    /// `--quick-tunnels`: make a tunnel and a public route for anyone who
    /// asks (`warren tunnel --url`), without an admin token. Needs
    /// `--domain`.
    pub quick_tunnels: bool,
    /// A quick tunnel with no connection this long is removed.
    pub quick_tunnel_idle: Duration,
    /// Client connections the edge holds at most, across its TCP
    /// listeners; `None`: the file-descriptor limit less a reserve.
    pub max_connections: Option<usize>,
    /// Connections one address may hold on one listener before it has
    /// finished its TLS handshake and sent its first bytes (default 256).
    pub max_unauthenticated_per_source: usize,
    /// How long audit entries are kept (default 90 days).
    pub audit_retention: Duration,
    /// What a new connection gets while the audit log cannot be written
    /// (default: refused).
    pub audit_on_failure: crate::audit::OnAuditFailure,
    /// At shutdown, how long to wait for open sessions to record their
    /// entries and for the queue to be written (default 10 s).
    pub audit_drain_timeout: Duration,
    /// How old the newest identity-token signing key may get before a new
    /// one is made at start (default 30 days).
    pub signing_key_rotation: Duration,
    /// Users of the identity provider in this group (its groups claim)
    /// may sign in to the dashboard (`/ui/` on the admin listener); `None`:
    /// only the admin token opens it.
    pub admin_group: Option<String>,
    pub access: crate::access::AccessSettings,
    pub quic: QuicSettings,
}

/// Where the QUIC listener for `warren access tcp` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicListen {
    /// UDP on the HTTPS listener's address and port (as HTTP/3 is), so a
    /// client finds it at the address it already knows (the default).
    SameAsHttps,
    /// UDP on this address.
    At(SocketAddr),
    /// No QUIC listener: `access tcp` uses its WebSocket carrier.
    Off,
}

/// The same settings, each optional; what a file or the flags provide.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PartialEdgeConfig {
    pub data_dir: Option<PathBuf>,
    pub domain: Option<String>,
    pub listen_tunnel: Option<SocketAddr>,
    pub listen_https: Option<SocketAddr>,
    pub listen_http: Option<SocketAddr>,
    pub listen_admin: Option<SocketAddr>,
    /// An address, or `off`.
    pub listen_postgres: Option<String>,
    /// An address, `https` (UDP on the HTTPS listener's address), or `off`.
    pub listen_quic: Option<String>,
    /// Bytes (1200-65527).
    pub quic_max_udp_payload: Option<u16>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub advertise: Vec<String>,
    /// Seconds.
    pub stream_timeout: Option<u64>,
    /// Seconds.
    pub handshake_timeout: Option<u64>,
    /// Seconds.
    pub header_read_timeout: Option<u64>,
    /// Seconds.
    pub pg_startup_timeout: Option<u64>,
    pub allow_routes_outside_domain: Option<bool>,
    pub max_connections: Option<usize>,
    pub max_unauthenticated_per_source: Option<usize>,
    /// Seconds.
    pub client_keepalive: Option<u64>,
    /// Seconds; 0: never.
    pub idle_timeout: Option<u64>,
    pub quick_tunnels: Option<bool>,
    /// Seconds.
    pub quick_tunnel_idle: Option<u64>,
    pub audit_on_failure: Option<crate::audit::OnAuditFailure>,
    /// Seconds.
    pub audit_drain_timeout: Option<u64>,
    /// Days.
    pub audit_retention_days: Option<u64>,
    /// Days.
    pub signing_key_rotation_days: Option<u64>,
    pub admin_group: Option<String>,
}

/// Why the edge configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the edge config file {path}: {reason}")]
    Read {
        path: String,
        reason: warren_transport::file::BoundedReadError,
    },
    #[error("the edge config file {path} is invalid: {reason}")]
    Parse { path: String, reason: String },
    #[error("--tls-cert and --tls-key must be given together")]
    HalfTls,
    #[error("--listen-postgres {0:?} is neither an address such as 0.0.0.0:5433 nor off")]
    BadPostgresListen(String),
    #[error("--listen-quic {0:?} is neither an address such as 0.0.0.0:8443, nor https (UDP on the HTTPS listener's address), nor off")]
    BadQuicListen(String),
    #[error("--quic-max-udp-payload {0} is outside 1200-65527 bytes (QUIC needs 1200; UDP carries at most 65527)")]
    BadUdpPayload(u16),
    #[error("{0} is 0 seconds, which would close every connection at once; give at least 1")]
    ZeroTimeout(&'static str),
    #[error("{0} is 0, which would refuse every connection; give at least 1")]
    ZeroCount(&'static str),
    #[error("--admin-group is empty; give the name of the identity provider's group whose users may open the dashboard, or leave it out (then only the admin token opens it)")]
    EmptyAdminGroup,
    #[error("--domain {0} is a public suffix (a top-level domain, or one like co.uk that no one organisation owns), and the edge would serve certificates for every name under it; give a domain you own, such as example.com")]
    PublicSuffixDomain(String),
}

/// The largest edge config file read (its settings fit in a few hundred
/// bytes).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

impl PartialEdgeConfig {
    /// Reads a YAML edge config file (at most 1 MiB).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            warren_transport::file::read_bounded(path, MAX_FILE_BYTES).map_err(|reason| {
                ConfigError::Read {
                    path: path.display().to_string(),
                    reason,
                }
            })?;
        serde_norway::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Values set here win over `lower`'s.
    pub fn over(self, lower: PartialEdgeConfig) -> PartialEdgeConfig {
        PartialEdgeConfig {
            data_dir: self.data_dir.or(lower.data_dir),
            domain: self.domain.or(lower.domain),
            listen_tunnel: self.listen_tunnel.or(lower.listen_tunnel),
            listen_https: self.listen_https.or(lower.listen_https),
            listen_http: self.listen_http.or(lower.listen_http),
            listen_admin: self.listen_admin.or(lower.listen_admin),
            listen_postgres: self.listen_postgres.or(lower.listen_postgres),
            listen_quic: self.listen_quic.or(lower.listen_quic),
            quic_max_udp_payload: self.quic_max_udp_payload.or(lower.quic_max_udp_payload),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            advertise: if self.advertise.is_empty() {
                lower.advertise
            } else {
                self.advertise
            },
            stream_timeout: self.stream_timeout.or(lower.stream_timeout),
            handshake_timeout: self.handshake_timeout.or(lower.handshake_timeout),
            header_read_timeout: self.header_read_timeout.or(lower.header_read_timeout),
            pg_startup_timeout: self.pg_startup_timeout.or(lower.pg_startup_timeout),
            allow_routes_outside_domain: self
                .allow_routes_outside_domain
                .or(lower.allow_routes_outside_domain),
            audit_retention_days: self.audit_retention_days.or(lower.audit_retention_days),
            audit_on_failure: self.audit_on_failure.or(lower.audit_on_failure),
            max_connections: self.max_connections.or(lower.max_connections),
            client_keepalive: self.client_keepalive.or(lower.client_keepalive),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            quick_tunnels: self.quick_tunnels.or(lower.quick_tunnels),
            quick_tunnel_idle: self.quick_tunnel_idle.or(lower.quick_tunnel_idle),
            max_unauthenticated_per_source: self
                .max_unauthenticated_per_source
                .or(lower.max_unauthenticated_per_source),
            audit_drain_timeout: self.audit_drain_timeout.or(lower.audit_drain_timeout),
            signing_key_rotation_days: self
                .signing_key_rotation_days
                .or(lower.signing_key_rotation_days),
            admin_group: self.admin_group.or(lower.admin_group),
        }
    }

    /// Fills unset values with the defaults.
    pub fn resolve(self) -> Result<EdgeConfig, ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::HalfTls);
        }
        let secs = |v: Option<u64>, default: u64, name: &'static str| match v.unwrap_or(default) {
            0 => Err(ConfigError::ZeroTimeout(name)),
            n => Ok(Duration::from_secs(n)),
        };
        let handshake_timeout = secs(self.handshake_timeout, 10, "handshake-timeout")?;
        let header_read_timeout = secs(self.header_read_timeout, 30, "header-read-timeout")?;
        let pg_startup_timeout = secs(self.pg_startup_timeout, 10, "pg-startup-timeout")?;
        let audit_drain_timeout = secs(self.audit_drain_timeout, 10, "audit-drain-timeout")?;
        let client_keepalive = secs(self.client_keepalive, 60, "client-keepalive")?;
        let domain = self
            .domain
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase());
        if let Some(d) = &domain {
            if d != "localhost" && crate::routes::is_public_suffix(d) {
                return Err(ConfigError::PublicSuffixDomain(d.clone()));
            }
        }
        let count = |v: Option<usize>, name: &'static str| match v {
            Some(0) => Err(ConfigError::ZeroCount(name)),
            v => Ok(v),
        };
        let max_connections = count(self.max_connections, "max-connections")?;
        let admin_group = match self.admin_group.map(|g| g.trim().to_owned()) {
            Some(g) if g.is_empty() => return Err(ConfigError::EmptyAdminGroup),
            g => g,
        };
        let max_unauthenticated_per_source = count(
            self.max_unauthenticated_per_source,
            "max-unauthenticated-per-source",
        )?
        .unwrap_or(256);
        let mut quic = QuicSettings::default();
        if let Some(bytes) = self.quic_max_udp_payload {
            if !(1200..=65_527).contains(&bytes) {
                return Err(ConfigError::BadUdpPayload(bytes));
            }
            quic.max_udp_payload = bytes;
        }
        let addr = |a: Option<SocketAddr>, d: &str| {
            a.unwrap_or_else(|| d.parse().expect("default address"))
        };
        Ok(EdgeConfig {
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from("./warren-data")),
            domain,
            listen_tunnel: addr(self.listen_tunnel, "0.0.0.0:7844"),
            listen_https: addr(self.listen_https, "0.0.0.0:8443"),
            listen_http: addr(self.listen_http, "0.0.0.0:8080"),
            listen_admin: addr(self.listen_admin, "127.0.0.1:7800"),
            listen_postgres: match self.listen_postgres.as_deref() {
                None => Some("0.0.0.0:5433".parse().expect("default address")),
                Some("off") => None,
                Some(a) => Some(
                    a.parse()
                        .map_err(|_| ConfigError::BadPostgresListen(a.to_owned()))?,
                ),
            },
            listen_quic: match self.listen_quic.as_deref() {
                None | Some("https") => QuicListen::SameAsHttps,
                Some("off") => QuicListen::Off,
                Some(a) => QuicListen::At(
                    a.parse()
                        .map_err(|_| ConfigError::BadQuicListen(a.to_owned()))?,
                ),
            },
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            advertise: self.advertise,
            stream_timeout: Duration::from_secs(self.stream_timeout.unwrap_or(100)),
            handshake_timeout,
            header_read_timeout,
            pg_startup_timeout,
            allow_routes_outside_domain: self.allow_routes_outside_domain.unwrap_or(false),
            quick_tunnels: self.quick_tunnels.unwrap_or(false),
            quick_tunnel_idle: Duration::from_secs(self.quick_tunnel_idle.unwrap_or(300).max(1)),
            audit_on_failure: self.audit_on_failure.unwrap_or_default(),
            max_connections,
            max_unauthenticated_per_source,
            client_keepalive,
            idle_timeout: self
                .idle_timeout
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
            audit_drain_timeout,
            audit_retention: Duration::from_secs(
                self.audit_retention_days
                    .unwrap_or(90)
                    .saturating_mul(86_400),
            ),
            signing_key_rotation: Duration::from_secs(
                self.signing_key_rotation_days
                    .unwrap_or(30)
                    .saturating_mul(86_400),
            ),
            admin_group,
            access: crate::access::AccessSettings::default(),
            quic,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let file: PartialEdgeConfig =
            serde_norway::from_str("domain: example.com\nlisten-https: 127.0.0.1:9443\n").unwrap();
        let flags = PartialEdgeConfig {
            listen_https: Some("127.0.0.1:1443".parse().unwrap()),
            ..Default::default()
        };
        let cfg = flags.over(file).resolve().unwrap();
        assert_eq!(cfg.listen_https.port(), 1443);
        assert_eq!(cfg.domain.as_deref(), Some("example.com"));
        assert_eq!(cfg.listen_admin.to_string(), "127.0.0.1:7800");
        assert_eq!(cfg.data_dir, PathBuf::from("./warren-data"));
    }

    #[test]
    fn timeouts_default_merge_and_refuse_zero() {
        let cfg = PartialEdgeConfig::default().resolve().unwrap();
        assert_eq!(cfg.handshake_timeout, Duration::from_secs(10));
        assert_eq!(cfg.header_read_timeout, Duration::from_secs(30));
        assert_eq!(cfg.pg_startup_timeout, Duration::from_secs(10));
        let file: PartialEdgeConfig =
            serde_norway::from_str("header-read-timeout: 5\npg-startup-timeout: 3\n").unwrap();
        let flags = PartialEdgeConfig {
            header_read_timeout: Some(2),
            ..Default::default()
        };
        let cfg = flags.over(file).resolve().unwrap();
        assert_eq!(cfg.header_read_timeout, Duration::from_secs(2));
        assert_eq!(cfg.pg_startup_timeout, Duration::from_secs(3));
        let zero = PartialEdgeConfig {
            handshake_timeout: Some(0),
            ..Default::default()
        };
        let err = zero.resolve().unwrap_err().to_string();
        assert!(err.contains("handshake-timeout"), "{err}");
    }

    #[test]
    fn a_public_suffix_is_not_a_domain() {
        for d in ["com", "co.uk", "test."] {
            let cfg = PartialEdgeConfig {
                domain: Some(d.into()),
                ..Default::default()
            };
            let err = cfg.resolve().unwrap_err().to_string();
            assert!(err.contains("is a public suffix"), "{err}");
        }
        for d in ["example.com", "localhost"] {
            let cfg = PartialEdgeConfig {
                domain: Some(d.into()),
                ..Default::default()
            };
            assert!(cfg.resolve().is_ok(), "{d}");
        }
    }

    #[test]
    fn the_admin_group_is_read_from_the_file_and_never_empty() {
        let file: PartialEdgeConfig = serde_norway::from_str("admin-group: admins\n").unwrap();
        let cfg = file.resolve().unwrap();
        assert_eq!(cfg.admin_group.as_deref(), Some("admins"));
        assert_eq!(
            PartialEdgeConfig::default().resolve().unwrap().admin_group,
            None
        );
        let empty = PartialEdgeConfig {
            admin_group: Some(" ".into()),
            ..Default::default()
        };
        let err = empty.resolve().unwrap_err().to_string();
        assert!(err.contains("--admin-group is empty"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        assert!(serde_norway::from_str::<PartialEdgeConfig>("listen-htps: x\n").is_err());
    }
}
