//! `originPool`: the origins behind a `service: pool` rule, how requests
//! are spread over them and how their health is checked. Parsing only;
//! the runtime side is [`crate::pool`].

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde_norway::{Mapping, Value};

use super::duration::duration_value;
use super::parse::{get, key_text, kind, scalar_text, untag, Warnings};
use super::{service, ConfigError, Service};

/// The origins of a `service: pool` rule and how to use them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginPool {
    /// The origins in config order: all [`Service::Http`] or all
    /// [`Service::Tcp`], never empty, no duplicates. The rule's
    /// `originRequest` applies to each.
    pub origins: Vec<Service>,
    /// Which healthy origin serves a request.
    pub steering: Steering,
    /// How origins are checked.
    pub health_check: HealthCheck,
}

/// `steering:`, which healthy origin serves a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Steering {
    /// `round_robin` (the default): each healthy origin in turn.
    RoundRobin,
    /// `least_outstanding`: the healthy origin with the fewest requests or
    /// connections in flight; ties in turn.
    LeastOutstanding,
    /// `hash`: the same key always goes to the same healthy origin
    /// (rendezvous hashing, so an origin leaving moves only its own keys).
    Hash(HashOn),
}

/// `hashOn:`, the key of `steering: hash`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashOn {
    /// `header:NAME`: the first value of this request header (the name is
    /// stored lower-case).
    Header(String),
    /// `cookie:NAME`: the value of this cookie (case-sensitive).
    Cookie(String),
    /// `client_ip` (the default): the client's IP address as the edge saw it.
    ClientIp,
}

/// `healthCheck:`, the active checks of every origin of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    /// HTTP pools: the path (and query) requested with `GET`, `/` by
    /// default; 2xx and 3xx answers pass. `None` for TCP pools, which are
    /// checked by connecting.
    pub path: Option<String>,
    /// Time between two checks of an origin (5s).
    pub interval: Duration,
    /// Time a check may take, connection included (2s).
    pub timeout: Duration,
    /// Consecutive failures that take a healthy origin out of the pool (2).
    pub unhealthy_after: u32,
    /// Consecutive successes that bring an unhealthy origin back (2).
    pub healthy_after: u32,
}

impl HealthCheck {
    /// The defaults: every 5s, 2s timeout, out after 2 failures, back after
    /// 2 successes; `GET /` for HTTP pools.
    pub fn defaults(tcp: bool) -> HealthCheck {
        HealthCheck {
            path: (!tcp).then(|| "/".to_string()),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            unhealthy_after: 2,
            healthy_after: 2,
        }
    }
}

impl OriginPool {
    /// Whether the origins are `tcp://` (else they are `http(s)://`).
    pub fn is_tcp(&self) -> bool {
        matches!(self.origins.first(), Some(Service::Tcp { .. }))
    }
}

impl fmt::Display for OriginPool {
    /// `pool [http://10.0.0.5:8000, http://10.0.0.6:8000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pool [")?;
        for (i, origin) in self.origins.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{origin}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for Steering {
    /// `round_robin`, `least_outstanding`, `hash on header:x-user`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Steering::RoundRobin => f.write_str("round_robin"),
            Steering::LeastOutstanding => f.write_str("least_outstanding"),
            Steering::Hash(on) => write!(f, "hash on {on}"),
        }
    }
}

impl fmt::Display for HashOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashOn::Header(name) => write!(f, "header:{name}"),
            HashOn::Cookie(name) => write!(f, "cookie:{name}"),
            HashOn::ClientIp => f.write_str("client_ip"),
        }
    }
}

impl fmt::Display for HealthCheck {
    /// `GET /healthz every 5s, timeout 2s, unhealthyAfter 2, healthyAfter 2`
    /// (`TCP connect every ...` for TCP pools).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "GET {path}")?,
            None => f.write_str("TCP connect")?,
        }
        write!(
            f,
            " every {:?}, timeout {:?}, unhealthyAfter {}, healthyAfter {}",
            self.interval, self.timeout, self.unhealthy_after, self.healthy_after
        )
    }
}

/// Keys of `originPool`.
const POOL_KEYS: &[&str] = &["origins", "steering", "hashOn", "healthCheck"];

/// Keys of `originPool.healthCheck`.
const CHECK_KEYS: &[&str] = &[
    "path",
    "interval",
    "timeout",
    "unhealthyAfter",
    "healthyAfter",
];

/// Reads the `originPool` block of rule `rule` (1-based, for errors).
pub(super) fn parse(
    block: &Value,
    rule: usize,
    warnings: &mut Warnings,
) -> Result<OriginPool, ConfigError> {
    let map = mapping(
        block,
        format!("ingress rule {rule} has an originPool that is"),
        "`origins: [http://10.0.0.5:8000, http://10.0.0.6:8000]`",
    )?;
    warn_unknown_keys(map, POOL_KEYS, "originPool", rule, warnings);

    let origins = parse_origins(map, rule)?;
    let tcp = matches!(origins.first(), Some((_, Service::Tcp { .. })));

    let steering = match text(map, "steering", rule)?.as_deref() {
        None | Some("round_robin") => Steering::RoundRobin,
        Some("least_outstanding") => Steering::LeastOutstanding,
        Some("hash") => Steering::Hash(HashOn::ClientIp),
        Some(other) => {
            return Err(bad(
                rule,
                "steering",
                other,
                "use round_robin, least_outstanding or hash".into(),
            ))
        }
    };
    let steering = match (steering, text(map, "hashOn", rule)?) {
        (Steering::Hash(_), Some(written)) => Steering::Hash(
            parse_hash_on(&written, tcp).map_err(|fix| bad(rule, "hashOn", &written, fix))?,
        ),
        (Steering::Hash(on), None) => Steering::Hash(on),
        (other, Some(written)) => {
            return Err(bad(
                rule,
                "hashOn",
                &written,
                format!(
                    "it only applies with `steering: hash` and the steering is {other}, so set \
                     `steering: hash` or remove hashOn"
                ),
            ))
        }
        (other, None) => other,
    };

    let health_check = match get(map, "healthCheck") {
        None => HealthCheck::defaults(tcp),
        Some(block) => parse_health_check(block, rule, tcp, warnings)?,
    };

    Ok(OriginPool {
        origins: origins.into_iter().map(|(_, service)| service).collect(),
        steering,
        health_check,
    })
}

/// `origins:` as (text as written, service), checked: not empty, all HTTP
/// or all TCP, no duplicates.
fn parse_origins(map: &Mapping, rule: usize) -> Result<Vec<(String, Service)>, ConfigError> {
    let list = match get(map, "origins").map(untag) {
        None => return Err(ConfigError::EmptyPool { rule }),
        Some(Value::Sequence(list)) => list,
        Some(other) => {
            return Err(ConfigError::Shape(format!(
                "ingress rule {rule} has an originPool.origins that is {} instead of a list; \
                 write it as `origins: [http://10.0.0.5:8000, http://10.0.0.6:8000]`",
                kind(other)
            )))
        }
    };
    if list.is_empty() {
        return Err(ConfigError::EmptyPool { rule });
    }
    let mut origins: Vec<(String, Service)> = Vec::with_capacity(list.len());
    // Where each origin is first listed: duplicates are found in one pass,
    // so a pool of tens of thousands of origins (a config at the size
    // bound) loads in linear time, not by comparing every pair.
    let mut first_at: HashMap<Service, usize> = HashMap::with_capacity(list.len());
    for item in list {
        let Some(written) = scalar_text(item) else {
            return Err(ConfigError::Shape(format!(
                "ingress rule {rule} has an originPool origin that is {} instead of text; write \
                 each origin as a URL, such as http://10.0.0.5:8000",
                kind(item)
            )));
        };
        let kind_error = || ConfigError::PoolOriginKind {
            rule,
            origin: written.clone(),
        };
        if written.is_empty() {
            return Err(kind_error());
        }
        let service = match service::parse(&written, rule) {
            Ok(service @ (Service::Http { .. } | Service::Tcp { .. })) => service,
            Ok(_) | Err(ConfigError::UnknownScheme { .. }) => return Err(kind_error()),
            Err(e) => return Err(e),
        };
        if let Some((first, _)) = first_at.get(&service).map(|&at| &origins[at]) {
            return Err(bad(
                rule,
                "origins",
                &written,
                format!("it is the same origin as \"{first}\", so list it once"),
            ));
        }
        if let Some((first, first_service)) = origins.first() {
            let tcp = matches!(service, Service::Tcp { .. });
            if tcp != matches!(first_service, Service::Tcp { .. }) {
                let (http, tcp) = if tcp {
                    (first.clone(), written)
                } else {
                    (written, first.clone())
                };
                return Err(ConfigError::MixedPool { rule, http, tcp });
            }
        }
        first_at.insert(service.clone(), origins.len());
        origins.push((written, service));
    }
    Ok(origins)
}

/// `header:NAME`, `cookie:NAME` or `client_ip`; the error is what to write
/// instead.
fn parse_hash_on(written: &str, tcp: bool) -> Result<HashOn, String> {
    const USE: &str = "use header:NAME, cookie:NAME or client_ip";
    let hash_on = if written == "client_ip" {
        HashOn::ClientIp
    } else if let Some(name) = written.strip_prefix("header:") {
        if name.is_empty() {
            return Err("add the header's name, as in header:X-User".into());
        }
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("\"{name}\" is not a header name; {USE}"))?;
        HashOn::Header(name.as_str().to_string())
    } else if let Some(name) = written.strip_prefix("cookie:") {
        if name.is_empty() {
            return Err("add the cookie's name, as in cookie:session".into());
        }
        if !name.bytes().all(is_cookie_name_byte) {
            return Err(format!("\"{name}\" is not a cookie name; {USE}"));
        }
        HashOn::Cookie(name.to_string())
    } else {
        return Err(USE.into());
    };
    if tcp && hash_on != HashOn::ClientIp {
        return Err("a pool of TCP origins sees no headers or cookies, so use client_ip".into());
    }
    Ok(hash_on)
}

/// RFC 6265 cookie-name characters (an HTTP token).
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_health_check(
    block: &Value,
    rule: usize,
    tcp: bool,
    warnings: &mut Warnings,
) -> Result<HealthCheck, ConfigError> {
    let map = mapping(
        block,
        format!("ingress rule {rule} has an originPool.healthCheck that is"),
        "`interval: 5s`",
    )?;
    warn_unknown_keys(map, CHECK_KEYS, "originPool.healthCheck", rule, warnings);
    let mut check = HealthCheck::defaults(tcp);
    if let Some(path) = text(map, "path", rule)? {
        let key = "healthCheck.path";
        if tcp {
            return Err(bad(
                rule,
                key,
                &path,
                "remove it: TCP origins are checked by connecting".into(),
            ));
        }
        if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                rule,
                key,
                &path,
                "use a path starting with /, such as /healthz".into(),
            ));
        }
        check.path = Some(path);
    }
    for (key, slot) in [
        ("interval", &mut check.interval),
        ("timeout", &mut check.timeout),
    ] {
        let Some(value) = get(map, key) else { continue };
        let key = format!("healthCheck.{key}");
        let duration = duration_value(value).map_err(|e| match e {
            Some((value, reason)) => ConfigError::BadPoolDuration {
                rule,
                key: key.clone(),
                value,
                reason,
            },
            None => bad_value(rule, &key, value, "use a duration like 5s or 500ms"),
        })?;
        if duration.is_zero() {
            return Err(ConfigError::BadPoolDuration {
                rule,
                key,
                value: scalar_text(value).unwrap_or_default(),
                reason: "it is zero".into(),
            });
        }
        *slot = duration;
    }
    for (key, slot) in [
        ("unhealthyAfter", &mut check.unhealthy_after),
        ("healthyAfter", &mut check.healthy_after),
    ] {
        let Some(value) = get(map, key) else { continue };
        let n = match untag(value) {
            Value::Number(n) => n.as_u64(),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        };
        *slot = n
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                bad_value(
                    rule,
                    &format!("healthCheck.{key}"),
                    value,
                    "use a whole number of at least 1, such as 2",
                )
            })?;
    }
    Ok(check)
}

/// `value` as a mapping, or a shape error "`subject` a list instead of a
/// mapping; write ... such as `example`".
fn mapping<'a>(
    value: &'a Value,
    subject: String,
    example: &str,
) -> Result<&'a Mapping, ConfigError> {
    match untag(value) {
        Value::Mapping(map) => Ok(map),
        other => Err(ConfigError::Shape(format!(
            "{subject} {} instead of a mapping; write one setting per line below it, such as \
             {example}",
            kind(other)
        ))),
    }
}

/// A text setting of `map` (`None` when absent).
fn text(map: &Mapping, key: &str, rule: usize) -> Result<Option<String>, ConfigError> {
    match get(map, key) {
        None => Ok(None),
        Some(value) => match untag(value) {
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad_value(rule, key, value, "write it as text")),
        },
    }
}

/// [`ConfigError::BadPoolSetting`] for a value written as text.
fn bad(rule: usize, key: &str, written: &str, fix: String) -> ConfigError {
    ConfigError::BadPoolSetting {
        rule,
        key: key.to_string(),
        value: format!("\"{written}\""),
        fix,
    }
}

/// [`ConfigError::BadPoolSetting`] for any YAML value.
fn bad_value(rule: usize, key: &str, value: &Value, fix: &str) -> ConfigError {
    let value = match scalar_text(value) {
        Some(text) => format!("\"{text}\""),
        None => format!("({})", kind(value)),
    };
    ConfigError::BadPoolSetting {
        rule,
        key: key.to_string(),
        value,
        fix: fix.to_string(),
    }
}

/// One warning per unknown key, with a "did you mean" for a near miss in
/// case.
fn warn_unknown_keys(
    map: &Mapping,
    known: &[&str],
    prefix: &str,
    rule: usize,
    warnings: &mut Warnings,
) {
    for key in map.keys() {
        let key = key_text(key);
        if known.contains(&key.as_str()) {
            continue;
        }
        let hint = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&key))
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        warnings.add(
            format!("{prefix}.{key} is not a known setting and is ignored{hint}"),
            format!("rule {rule}"),
        );
    }
}
