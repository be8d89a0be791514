//! `originRequest`: per-rule settings for reaching the origin.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_norway::{Mapping, Value};

use super::{key_text, kind, scalar_text, untag, ConfigError, Scope, Warnings};

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

    /// These settings with `overrides` applied key by key.
    pub(super) fn merged(&self, overrides: &Overrides) -> OriginRequest {
        fn pick<T: Clone>(over: &Option<T>, base: &T) -> T {
            over.as_ref().unwrap_or(base).clone()
        }
        OriginRequest {
            connect_timeout: pick(&overrides.connect_timeout, &self.connect_timeout),
            tls_timeout: pick(&overrides.tls_timeout, &self.tls_timeout),
            tcp_keep_alive: pick(&overrides.tcp_keep_alive, &self.tcp_keep_alive),
            no_tls_verify: pick(&overrides.no_tls_verify, &self.no_tls_verify),
            origin_server_name: pick(&overrides.origin_server_name, &self.origin_server_name),
            ca_pool: pick(&overrides.ca_pool, &self.ca_pool),
            http_host_header: pick(&overrides.http_host_header, &self.http_host_header),
            keep_alive_timeout: pick(&overrides.keep_alive_timeout, &self.keep_alive_timeout),
            keep_alive_connections: pick(
                &overrides.keep_alive_connections,
                &self.keep_alive_connections,
            ),
            http2_origin: pick(&overrides.http2_origin, &self.http2_origin),
            disable_chunked_encoding: pick(
                &overrides.disable_chunked_encoding,
                &self.disable_chunked_encoding,
            ),
            proxy_protocol: pick(&overrides.proxy_protocol, &self.proxy_protocol),
            no_happy_eyeballs: pick(&overrides.no_happy_eyeballs, &self.no_happy_eyeballs),
            sslmode: pick(&overrides.sslmode, &self.sslmode),
            access: pick(&overrides.access, &self.access),
        }
    }

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

/// The settings one `originRequest` block sets; `None` leaves the inherited
/// value. For the optional strings, `Some(None)` (written as `""`) clears an
/// inherited value.
#[derive(Debug, Clone, Default)]
pub(super) struct Overrides {
    connect_timeout: Option<Duration>,
    tls_timeout: Option<Duration>,
    tcp_keep_alive: Option<Duration>,
    no_tls_verify: Option<bool>,
    origin_server_name: Option<Option<String>>,
    ca_pool: Option<Option<PathBuf>>,
    http_host_header: Option<Option<String>>,
    keep_alive_timeout: Option<Duration>,
    keep_alive_connections: Option<usize>,
    http2_origin: Option<bool>,
    disable_chunked_encoding: Option<bool>,
    proxy_protocol: Option<Option<ProxyProtocol>>,
    no_happy_eyeballs: Option<bool>,
    sslmode: Option<SslMode>,
    access: Option<Option<OriginAccess>>,
}

/// Keys Warren reads.
const KNOWN_KEYS: &[&str] = &[
    "connectTimeout",
    "tlsTimeout",
    "tcpKeepAlive",
    "noTLSVerify",
    "originServerName",
    "caPool",
    "httpHostHeader",
    "keepAliveTimeout",
    "keepAliveConnections",
    "http2Origin",
    "disableChunkedEncoding",
    "proxyProtocol",
    "noHappyEyeballs",
    "sslmode",
    "access",
];

/// cloudflared keys Warren accepts but does not implement.
const UNSUPPORTED_KEYS: &[&str] = &[
    "bastionMode",
    "ipRules",
    "matchSNItoHost",
    "proxyAddress",
    "proxyPort",
    "proxyType",
];

impl Overrides {
    /// Reads one `originRequest` block.
    pub(super) fn parse(
        block: &Value,
        scope: Scope,
        warnings: &mut Warnings,
    ) -> Result<Self, ConfigError> {
        let map: &Mapping = match untag(block) {
            Value::Mapping(map) => map,
            other => {
                let subject = match scope {
                    Scope::Global => "the global originRequest is".to_string(),
                    Scope::Rule(n) => format!("ingress rule {n} has an originRequest that is"),
                };
                return Err(ConfigError::Shape(format!(
                    "{subject} {} instead of a mapping; write one setting per line below it, \
                     such as `connectTimeout: 10s`",
                    kind(other)
                )));
            }
        };
        let place = match scope {
            Scope::Global => "the global originRequest".to_string(),
            Scope::Rule(n) => format!("rule {n}"),
        };
        let mut o = Overrides::default();
        for (key, value) in map {
            let key = key_text(key);
            if matches!(untag(value), Value::Null) {
                continue;
            }
            let field = Field {
                scope,
                key: &key,
                value,
            };
            match key.as_str() {
                "connectTimeout" => o.connect_timeout = Some(field.duration()?),
                "tlsTimeout" => o.tls_timeout = Some(field.duration()?),
                "tcpKeepAlive" => o.tcp_keep_alive = Some(field.duration()?),
                "keepAliveTimeout" => o.keep_alive_timeout = Some(field.duration()?),
                "noTLSVerify" => o.no_tls_verify = Some(field.boolean()?),
                "http2Origin" => o.http2_origin = Some(field.boolean()?),
                "disableChunkedEncoding" => o.disable_chunked_encoding = Some(field.boolean()?),
                "noHappyEyeballs" => o.no_happy_eyeballs = Some(field.boolean()?),
                "originServerName" => o.origin_server_name = Some(field.text("a host name")?),
                "httpHostHeader" => o.http_host_header = Some(field.text("a host name")?),
                "caPool" => o.ca_pool = Some(field.text("a file path")?.map(PathBuf::from)),
                "keepAliveConnections" => o.keep_alive_connections = Some(field.count()?),
                "proxyProtocol" => o.proxy_protocol = Some(field.proxy_protocol()?),
                "sslmode" => o.sslmode = Some(field.sslmode()?),
                "access" => o.access = Some(Some(field.access(warnings, &place)?)),
                _ if UNSUPPORTED_KEYS.contains(&key.as_str()) => warnings.add(
                    format!("originRequest.{key} is not supported by warren and is ignored"),
                    place.clone(),
                ),
                _ => {
                    let hint = KNOWN_KEYS
                        .iter()
                        .chain(UNSUPPORTED_KEYS)
                        .find(|known| known.eq_ignore_ascii_case(&key))
                        .map(|known| format!(" (did you mean {known}?)"))
                        .unwrap_or_default();
                    warnings.add(
                        format!("originRequest.{key} is not a known setting and is ignored{hint}"),
                        place.clone(),
                    );
                }
            }
        }
        Ok(o)
    }
}

/// One `key: value` of an `originRequest` block being read.
struct Field<'a> {
    scope: Scope,
    key: &'a str,
    value: &'a Value,
}

impl Field<'_> {
    /// [`ConfigError::BadOriginValue`] for this field.
    fn bad(&self, expected: &str) -> ConfigError {
        let value = match scalar_text(self.value) {
            Some(text) => format!("\"{text}\""),
            None => format!("({})", kind(self.value)),
        };
        ConfigError::BadOriginValue {
            scope: self.scope,
            key: self.key.to_string(),
            value,
            expected: expected.to_string(),
        }
    }

    fn duration(&self) -> Result<Duration, ConfigError> {
        duration_value(self.value).map_err(|bad| match bad {
            Some((value, reason)) => ConfigError::BadDuration {
                scope: self.scope,
                key: self.key.to_string(),
                value,
                reason,
            },
            None => self.bad("a duration like 30s or 1m30s"),
        })
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        match untag(self.value) {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.bad("true or false")),
        }
    }

    /// A string setting; `""` means "unset".
    fn text(&self, expected: &str) -> Result<Option<String>, ConfigError> {
        match untag(self.value) {
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            _ => Err(self.bad(expected)),
        }
    }

    fn count(&self) -> Result<usize, ConfigError> {
        let n = match untag(self.value) {
            Value::Number(n) => n.as_u64(),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        };
        n.and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.bad("a whole number such as 100"))
    }

    fn sslmode(&self) -> Result<SslMode, ConfigError> {
        let text = match untag(self.value) {
            Value::String(s) => s.to_ascii_lowercase(),
            other => scalar_text(other).unwrap_or_else(|| format!("({})", kind(other))),
        };
        match text.as_str() {
            "verify-full" => Ok(SslMode::VerifyFull),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "require" => Ok(SslMode::Require),
            "disable" => Ok(SslMode::Disable),
            _ => Err(ConfigError::BadSslMode {
                scope: self.scope,
                value: scalar_text(untag(self.value)).unwrap_or(text),
            }),
        }
    }

    fn proxy_protocol(&self) -> Result<Option<ProxyProtocol>, ConfigError> {
        let bad = |value: String| ConfigError::BadProxyProtocol {
            scope: self.scope,
            value,
        };
        match untag(self.value) {
            Value::String(s) if s.eq_ignore_ascii_case("v1") => Ok(Some(ProxyProtocol::V1)),
            Value::String(s) if s.eq_ignore_ascii_case("v2") => Ok(Some(ProxyProtocol::V2)),
            Value::String(s) if s.is_empty() => Ok(None),
            other => Err(bad(
                scalar_text(other).unwrap_or_else(|| format!("({})", kind(other)))
            )),
        }
    }
}

/// Keys of `originRequest.access` Warren reads.
const ACCESS_KEYS: &[&str] = &["required", "audTag"];

/// cloudflared keys of `originRequest.access` that Warren accepts and
/// ignores: the verification keys come from the edge over the tunnel.
const ACCESS_IGNORED_KEYS: &[&str] = &["teamName", "environment"];

impl Field<'_> {
    /// `originRequest.access`: a mapping of `required`, `audTag` (and the
    /// ignored `teamName`); unknown keys are errors, since a misspelt
    /// `required` would silently turn the check off.
    fn access(&self, warnings: &mut Warnings, place: &str) -> Result<OriginAccess, ConfigError> {
        let subject = match self.scope {
            Scope::Global => "the global originRequest.access".to_string(),
            Scope::Rule(n) => format!("ingress rule {n}'s originRequest.access"),
        };
        let map = match untag(self.value) {
            Value::Mapping(map) => map,
            other => {
                return Err(ConfigError::Shape(format!(
                    "{subject} is {} instead of a mapping; write it as \
                     `access: {{ required: true, audTag: [TAG] }}` with the application's tag \
                     from `warren access app show APP`",
                    kind(other)
                )))
            }
        };
        let mut access = OriginAccess::default();
        for (key, value) in map {
            let key = key_text(key);
            if matches!(untag(value), Value::Null) {
                continue;
            }
            let dotted = format!("access.{key}");
            let field = Field {
                scope: self.scope,
                key: &dotted,
                value,
            };
            match key.as_str() {
                "required" => access.required = field.boolean()?,
                "audTag" => access.aud_tags = field.aud_tags()?,
                _ if ACCESS_IGNORED_KEYS.contains(&key.as_str()) => {
                    // Still checked to be text, as cloudflared would.
                    field.text("text")?;
                    warnings.add(
                        format!(
                            "originRequest.access.{key} is not used by warren (the connector gets \
                             the keys from its edge) and is ignored"
                        ),
                        place.to_string(),
                    );
                }
                _ => {
                    let hint = ACCESS_KEYS
                        .iter()
                        .chain(ACCESS_IGNORED_KEYS)
                        .find(|known| known.eq_ignore_ascii_case(&key))
                        .map(|known| format!(" (did you mean {known}?)"))
                        .unwrap_or_default();
                    return Err(ConfigError::Shape(format!(
                        "{subject} has an unknown setting \"{key}\"{hint}; use required, audTag \
                         or teamName"
                    )));
                }
            }
        }
        if access.required && access.aud_tags.is_empty() {
            return Err(ConfigError::Shape(format!(
                "{subject}.required needs audTag: the application's tag from \
                 `warren access app show APP`"
            )));
        }
        Ok(access)
    }

    /// `audTag`: a list of non-empty tags (one tag alone is accepted as
    /// a list of one).
    fn aud_tags(&self) -> Result<Vec<String>, ConfigError> {
        const EXPECTED: &str = "a list of application tags from `warren access app show APP`, \
                                such as `audTag: [TAG]`";
        let items: Vec<&Value> = match untag(self.value) {
            Value::Sequence(list) => list.iter().collect(),
            Value::String(_) | Value::Number(_) => vec![self.value],
            _ => return Err(self.bad(EXPECTED)),
        };
        let mut tags = Vec::with_capacity(items.len());
        for item in items {
            match untag(item) {
                Value::String(s) if !s.trim().is_empty() => tags.push(s.trim().to_string()),
                Value::Number(n) => tags.push(n.to_string()),
                _ => {
                    return Err(Field {
                        scope: self.scope,
                        key: self.key,
                        value: item,
                    }
                    .bad(EXPECTED))
                }
            }
        }
        Ok(tags)
    }
}

/// Reads a duration setting: Go-style text (`1m30s`) or a number of
/// seconds. `Err(Some((value as written, reason)))` for a bad duration,
/// `Err(None)` for a value that is not a duration at all (a list, ...).
pub(super) fn duration_value(value: &Value) -> Result<Duration, Option<(String, String)>> {
    let bad = |value: String, reason: &str| Some((value, reason.to_string()));
    match untag(value) {
        Value::String(text) => parse_duration(text).map_err(|reason| Some((text.clone(), reason))),
        Value::Number(n) => {
            let shown = n.to_string();
            if let Some(secs) = n.as_u64() {
                if secs > MAX_SECS {
                    return Err(bad(shown, TOO_LARGE));
                }
                Ok(Duration::from_secs(secs))
            } else if n.as_i64().is_some() {
                Err(bad(shown, "it is negative"))
            } else {
                match n.as_f64() {
                    Some(secs) if secs.is_nan() => Err(bad(shown, "it is not a number")),
                    Some(secs) if secs < 0.0 => Err(bad(shown, "it is negative")),
                    Some(secs) if secs <= MAX_SECS as f64 => {
                        Duration::try_from_secs_f64(secs).map_err(|_| bad(shown, TOO_LARGE))
                    }
                    _ => Err(bad(shown, TOO_LARGE)),
                }
            }
        }
        Value::Bool(b) => Err(bad(b.to_string(), "it is not a duration")),
        _ => Err(None),
    }
}

/// Longest accepted duration: what fits in `u64` nanoseconds (about 584
/// years), so callers can convert without overflow surprises.
const MAX_SECS: u64 = u64::MAX / 1_000_000_000;
const MAX_NANOS: u128 = u64::MAX as u128;
const TOO_LARGE: &str = "it is too large";
const UNITS: &str = "use ns, us, ms, s, m or h";

/// Parses a Go-style duration (`30s`, `1m30s`, `1.5h`, `500ms`, `250us`,
/// `10ns`), or a plain whole number of seconds (`30`).
///
/// Negative durations and those over about 584 years are rejected. The
/// error is a short reason such as `unknown unit "x" (use ns, us, ms, s, m
/// or h)`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(secs) if secs <= MAX_SECS => Ok(Duration::from_secs(secs)),
            _ => Err(TOO_LARGE.into()),
        };
    }
    if s.starts_with('-') {
        return Err("it is negative".into());
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err("it has no number".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_number) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        let number = &rest[..rest.len() - after_number.len()];
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!("expected a number at \"{rest}\""));
        }
        let unit_len: usize = after_number
            .chars()
            .take_while(|c| !c.is_ascii_digit() && *c != '.')
            .map(char::len_utf8)
            .sum();
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("\"{number}\" has no unit ({UNITS})")),
            _ => return Err(format!("unknown unit \"{unit}\" ({UNITS})")),
        };
        // At most 39 digits fit in u128; anything longer is too large anyway.
        let int_value: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| TOO_LARGE.to_string())?
        };
        // Fractions finer than a nanosecond of an hour are irrelevant: keep
        // 18 digits, enough for any unit, and never overflow.
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        let frac_value: u128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| TOO_LARGE.to_string())?
        };
        let frac_nanos = frac_value * unit_nanos / 10u128.pow(frac_digits.len() as u32);
        total = int_value
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(frac_nanos))
            .and_then(|n| n.checked_add(total))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or_else(|| TOO_LARGE.to_string())?;
        rest = after_unit;
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| TOO_LARGE.into())
}
