//! One `originRequest` block as written: the settings it sets
//! ([`Overrides`]), read key by key with one sentence per bad value, and
//! merged over the inherited settings.

use std::path::PathBuf;
use std::time::Duration;

use serde_norway::{Mapping, Value};

use super::duration::duration_value;
use super::parse::{key_text, kind, scalar_text, untag, yaml_bool, Warnings};
use super::{ConfigError, OriginAccess, OriginRequest, ProxyProtocol, Scope, SslMode};

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
                "disableChunkedEncoding" => {
                    let on = field.boolean()?;
                    if on {
                        warnings.add(
                            "originRequest.disableChunkedEncoding is not supported: a request body without a length reaches the origin chunked".into(),
                            place.clone(),
                        );
                    }
                    o.disable_chunked_encoding = Some(on);
                }
                // Warren always tries an origin's addresses one at a time,
                // which is what `true` asks for.
                "noHappyEyeballs" => {
                    let on = field.boolean()?;
                    if !on {
                        warnings.add(
                            "originRequest.noHappyEyeballs: false is ignored: warren tries an origin's addresses one at a time".into(),
                            place.clone(),
                        );
                    }
                    o.no_happy_eyeballs = Some(on);
                }
                "originServerName" => o.origin_server_name = Some(field.host_name()?),
                "httpHostHeader" => o.http_host_header = Some(field.host_name()?),
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
            Some(text) => format!("{text:?}"),
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

    /// `true`/`false`, or YAML 1.1's `yes`/`no`/`on`/`off` (what
    /// cloudflared's YAML decoder reads as booleans), in any case.
    fn boolean(&self) -> Result<bool, ConfigError> {
        yaml_bool(self.value).ok_or_else(|| self.bad("true or false"))
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

    /// A host name (optionally with a port) as `text` reads it, refusing
    /// what cannot be one: spaces, control characters (a CR/LF in a Host
    /// header would otherwise be dropped by the HTTP client without a
    /// word), `/`, `?`, `#`, `@`.
    fn host_name(&self) -> Result<Option<String>, ConfigError> {
        let text = self.text("a host name")?;
        let bad = |c: char| c.is_whitespace() || c.is_control() || "/?#@\\".contains(c);
        match &text {
            Some(t) if t.contains(bad) => Err(self.bad(
                "a host name such as app.internal or app.internal:8080, without spaces, \
                 line breaks or / ? # @",
            )),
            _ => Ok(text),
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

/// The shape of a Warren application's tag (a UUID's 32 lower-case hex
/// digits), which is what `audTag` must hold.
fn is_warren_tag(tag: &str) -> bool {
    tag.len() == 32 && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
        for tag in access.aud_tags.iter().filter(|t| !is_warren_tag(t)) {
            warnings.add(
                format!(
                    "originRequest.access.audTag \"{tag}\" is not a Warren application tag (32 \
                     lower-case hex digits, shown by `warren access app show APP`); the edge signs \
                     tokens for Warren applications only, so a Cloudflare Access tag never matches"
                ),
                place.to_string(),
            );
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

impl OriginRequest {
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
}
