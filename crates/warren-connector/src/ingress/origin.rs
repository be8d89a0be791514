//! `originRequest`: per-rule settings for reaching the origin, with their
//! defaults. Reading a block is `overrides`; durations are `duration`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Origin settings of one rule, with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRequest {
    /// `connectTimeout`: time to establish a connection to the origin (30s).
    pub connect_timeout: Duration,
    /// `tlsTimeout`: time to finish the TLS handshake with the origin (10s).
    pub tls_timeout: Duration,
    /// `tcpKeepAlive`: TCP keep-alive interval to the origin (30s).
    pub tcp_keep_alive: Duration,
    /// `noTLSVerify`: accept any origin certificate.
    pub no_tls_verify: bool,
    /// `originServerName`: the name expected in the origin's certificate
    /// (and sent as SNI) instead of the service's host.
    pub origin_server_name: Option<String>,
    /// `caPool`: PEM file of CAs trusted for the origin, as written (a
    /// relative path is not resolved here).
    pub ca_pool: Option<PathBuf>,
    /// `httpHostHeader`: Host header sent to the origin instead of the
    /// request's.
    pub http_host_header: Option<String>,
    /// `keepAliveTimeout`: how long idle origin connections stay pooled (90s).
    pub keep_alive_timeout: Duration,
    /// `keepAliveConnections`: most idle connections kept per origin (100).
    pub keep_alive_connections: usize,
    /// `http2Origin`: speak HTTP/2 to the origin.
    pub http2_origin: bool,
    /// `disableChunkedEncoding`: do not send chunked request bodies.
    pub disable_chunked_encoding: bool,
    /// `proxyProtocol`: send a PROXY protocol header to the origin.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// `noHappyEyeballs`: try origin addresses one by one, not in parallel.
    pub no_happy_eyeballs: bool,
    /// `sslmode`: how a `postgres://` origin's TLS is checked
    /// (verify-full).
    pub sslmode: SslMode,
    /// `access`: verify the edge's signed identity before reaching the
    /// origin (`None`: not set). A rule's block replaces the global one
    /// whole, as in cloudflared.
    pub access: Option<OriginAccess>,
}

/// `originRequest.access`: the connector checks the identity token the
/// edge signed for an access application (`Warren-Access-Jwt-Assertion`,
/// or a TCP stream's assertion) before it reaches the origin.
///
/// ```yaml
/// originRequest:
///   access:
///     required: true
///     audTag: [0123456789abcdef0123456789abcdef]  # `warren access app show APP`
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OriginAccess {
    /// `required`: refuse requests without a valid token.
    pub required: bool,
    /// `audTag`: the application tags a token may be issued for (never
    /// empty when `required`).
    pub aud_tags: Vec<String>,
}

/// TLS to a PostgreSQL origin, named as in libpq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// TLS; the certificate chains to `caPool` (or the public roots) and
    /// names the host (or `originServerName`).
    VerifyFull,
    /// TLS; the certificate chains to the trusted CAs, any name.
    VerifyCa,
    /// TLS, certificate not checked (logged as a warning at start).
    Require,
    /// No TLS to the database (logged loudly at start).
    Disable,
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::VerifyFull => "verify-full",
            SslMode::VerifyCa => "verify-ca",
            SslMode::Require => "require",
            SslMode::Disable => "disable",
        })
    }
}

impl OriginRequest {
    /// The defaults, usable in `const`/`static` contexts.
    pub const DEFAULT: OriginRequest = OriginRequest {
        connect_timeout: Duration::from_secs(30),
        tls_timeout: Duration::from_secs(10),
        tcp_keep_alive: Duration::from_secs(30),
        no_tls_verify: false,
        origin_server_name: None,
        ca_pool: None,
        http_host_header: None,
        keep_alive_timeout: Duration::from_secs(90),
        keep_alive_connections: 100,
        http2_origin: false,
        disable_chunked_encoding: false,
        proxy_protocol: None,
        no_happy_eyeballs: false,
        sslmode: SslMode::VerifyFull,
        access: None,
    };

    /// `(camelCaseKey, value)` for every setting that differs from the
    /// defaults, in declaration order.
    pub(super) fn non_default_settings(&self) -> Vec<(&'static str, String)> {
        let d = &Self::DEFAULT;
        let mut out = Vec::new();
        let mut add = |changed: bool, key: &'static str, value: String| {
            if changed {
                out.push((key, value));
            }
        };
        let dur = |d: Duration| format!("{d:?}");
        add(
            self.connect_timeout != d.connect_timeout,
            "connectTimeout",
            dur(self.connect_timeout),
        );
        add(
            self.tls_timeout != d.tls_timeout,
            "tlsTimeout",
            dur(self.tls_timeout),
        );
        add(
            self.tcp_keep_alive != d.tcp_keep_alive,
            "tcpKeepAlive",
            dur(self.tcp_keep_alive),
        );
        add(self.no_tls_verify, "noTLSVerify", "true".into());
        if let Some(name) = &self.origin_server_name {
            add(true, "originServerName", name.clone());
        }
        if let Some(path) = &self.ca_pool {
            add(true, "caPool", path.display().to_string());
        }
        if let Some(host) = &self.http_host_header {
            add(true, "httpHostHeader", host.clone());
        }
        add(
            self.keep_alive_timeout != d.keep_alive_timeout,
            "keepAliveTimeout",
            dur(self.keep_alive_timeout),
        );
        add(
            self.keep_alive_connections != d.keep_alive_connections,
            "keepAliveConnections",
            self.keep_alive_connections.to_string(),
        );
        add(self.http2_origin, "http2Origin", "true".into());
        add(
            self.disable_chunked_encoding,
            "disableChunkedEncoding",
            "true".into(),
        );
        if let Some(version) = self.proxy_protocol {
            add(true, "proxyProtocol", version.to_string());
        }
        add(self.no_happy_eyeballs, "noHappyEyeballs", "true".into());
        add(
            self.sslmode != d.sslmode,
            "sslmode",
            self.sslmode.to_string(),
        );
        if let Some(access) = &self.access {
            add(true, "access.required", access.required.to_string());
            if !access.aud_tags.is_empty() {
                add(true, "access.audTag", access.aud_tags.join(", "));
            }
        }
        out
    }
}

impl Default for OriginRequest {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// PROXY protocol version sent to the origin (`proxyProtocol: v1` / `v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyProtocol {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}

impl fmt::Display for ProxyProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        })
    }
}
