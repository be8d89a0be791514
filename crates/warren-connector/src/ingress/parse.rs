//! Reading the YAML: top-level keys, each rule's keys in order, and the
//! "setting is ignored" warnings; `originRequest` blocks are read by
//! `origin`, `originPool` by `pool`, services by `service`.

use std::collections::BTreeMap;

use regex::Regex;
use serde_norway::{Mapping, Value};

use super::hostname::{ascii_hostname, validate_hostname};
use super::overrides::Overrides;
use super::service::Unsupported;
use super::{pool, service, ConfigError, IngressConfig, OriginRequest, Rule, Scope, Service};

/// Top-level keys this module reads.
const TOP_LEVEL_KEYS: &[&str] = &["ingress", "originRequest", "metrics", "grace-period"];

/// cloudflared's other top-level keys, each with why Warren does not use
/// it; any key in neither list gets a generic warning. A file using them
/// still loads, with one warning per key.
const IGNORED_TOP_LEVEL: &[(&str, &str)] = &[
    ("tunnel", "a Warren connector is identified by its token (`warren tunnel token NAME`), which names the tunnel"),
    ("credentials-file", "a Warren connector authenticates with its token (`--token-file` or WARREN_TOKEN)"),
    ("origincert", "Warren needs no origin certificate"),
    ("warp-routing", "private network routing is not supported yet; only hostname routes reach this connector"),
    ("protocol", "connectors reach the edge over QUIC, the only transport so far"),
    ("loglevel", "set RUST_LOG (for example RUST_LOG=debug) instead"),
    ("transport-loglevel", "set RUST_LOG instead"),
    ("logfile", "logs go to stderr; redirect them or let systemd or Kubernetes collect them"),
    ("log-directory", "logs go to stderr; redirect them or let systemd or Kubernetes collect them"),
    ("no-autoupdate", "Warren never updates itself"),
    ("autoupdate-freq", "Warren never updates itself"),
    ("edge-ip-version", "the edge addresses come from the token or --edge"),
    ("edge-bind-address", "the connector dials from any local address"),
    ("region", "the edge addresses come from the token or --edge"),
    ("retries", "lost connections are re-dialled with backoff for as long as the connector runs"),
    ("ha-connections", "use the --ha-connections flag"),
    ("pidfile", "let systemd or Kubernetes track the process"),
    ("post-quantum", "TLS settings are the edge's"),
];

/// Keys of one ingress rule.
const RULE_KEYS: &[&str] = &["hostname", "path", "service", "originPool", "originRequest"];

/// Collects "setting is ignored" warnings, one per setting, listing where it
/// appears.
#[derive(Default)]
pub(super) struct Warnings {
    seen: BTreeMap<String, Vec<String>>,
}

impl Warnings {
    pub(super) fn add(&mut self, what: String, place: String) {
        let places = self.seen.entry(what).or_default();
        // Blocks are read in order, so a repeat can only be the last place.
        if places.last() != Some(&place) {
            places.push(place);
        }
    }

    pub(super) fn finish(self) -> Vec<String> {
        self.seen
            .into_iter()
            .map(|(what, places)| format!("{what} (in {})", places.join(", ")))
            .collect()
    }
}

/// `value` without YAML tags (`!foo x` is read as `x`).
pub(super) fn untag(mut value: &Value) -> &Value {
    while let Value::Tagged(tagged) = value {
        value = &tagged.value;
    }
    value
}

/// The text of a scalar (strings, numbers, booleans), like Go's YAML
/// decoder does for string fields; `None` for null, lists and mappings.
pub(super) fn scalar_text(value: &Value) -> Option<String> {
    match untag(value) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A boolean, also in YAML 1.1's spellings (`yes`, `on`, `y` and their
/// opposites), which cloudflared's YAML decoder accepts.
pub(super) fn yaml_bool(value: &Value) -> Option<bool> {
    match untag(value) {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "on" | "true" | "y" => Some(true),
            "no" | "off" | "false" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// What kind of YAML value this is, for messages ("a list").
pub(super) fn kind(value: &Value) -> &'static str {
    match untag(value) {
        Value::Null => "empty",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The text of a mapping key, if it is a scalar.
pub(super) fn key_text(key: &Value) -> String {
    scalar_text(key).unwrap_or_else(|| format!("({})", kind(key)))
}

/// Looks `key` up, treating an explicit null (`key:` with no value) as
/// absent.
pub(super) fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !matches!(untag(v), Value::Null))
}

pub(super) fn parse_config(
    text: &str,
    warnings: &mut Warnings,
) -> Result<IngressConfig, ConfigError> {
    let mut doc: Value =
        serde_norway::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    doc.apply_merge()
        .map_err(|e| ConfigError::Yaml(e.to_string()))?;
    let top = match untag(&doc) {
        Value::Null => return Err(ConfigError::NoRules),
        Value::Mapping(map) => map,
        other => {
            return Err(ConfigError::Shape(format!(
                "the config file is {} instead of a mapping; write it as `ingress:` followed by \
                 a list of rules, such as `- service: http_status:404`",
                kind(other)
            )))
        }
    };
    for key in top.keys() {
        let key = key_text(key);
        if TOP_LEVEL_KEYS.contains(&key.as_str()) {
            continue;
        }
        let why = IGNORED_TOP_LEVEL
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("it is not a Warren setting", |(_, why)| why);
        warnings.add(format!("`{key}` is ignored: {why}"), "the top level".into());
    }

    let global = match get(top, "originRequest") {
        Some(block) => Overrides::parse(block, Scope::Global, warnings)?,
        None => Overrides::default(),
    };

    let list = match get(top, "ingress").map(untag) {
        None => return Err(ConfigError::NoRules),
        Some(Value::Sequence(list)) => list,
        Some(other) => {
            return Err(ConfigError::Shape(format!(
                "the config's `ingress:` is {} instead of a list of rules; write each rule on \
                 its own line starting with `- `, ending with a catch-all such as \
                 `- service: http_status:404`",
                kind(other)
            )))
        }
    };
    if list.is_empty() {
        return Err(ConfigError::NoRules);
    }

    let defaults = OriginRequest::default().merged(&global);
    // Every rule is read, so that one run reports every wrong one.
    let mut rules = Vec::with_capacity(list.len());
    let mut problems = Vec::new();
    for (index, raw) in list.iter().enumerate() {
        let number = index + 1;
        match parse_rule(raw, number, &defaults, warnings) {
            Ok(rule) => {
                if rule.is_catch_all() && number < list.len() {
                    problems.push(ConfigError::CatchAllNotLast { rule: number });
                }
                if number == list.len() && !rule.is_catch_all() {
                    problems.push(ConfigError::LastRuleNotCatchAll { rule: number });
                }
                rules.push(rule);
            }
            Err(e) => problems.push(e),
        }
    }
    match problems.len() {
        0 => {}
        1 => return Err(problems.remove(0)),
        _ => return Err(ConfigError::Several(problems)),
    }
    let metrics = get(top, "metrics").map(metrics_addr).transpose()?;
    let grace_period = get(top, "grace-period")
        .map(|v| {
            super::duration::duration_value(v).map_err(|bad| {
                let (value, reason) = bad.unwrap_or_else(|| (kind(v).to_owned(), "it is not text".into()));
                ConfigError::Shape(format!(
                    "the config's `grace-period: {value}` is not a duration ({reason}); write it like 30s or 1m30s"
                ))
            })
        })
        .transpose()?;
    Ok(IngressConfig {
        rules,
        metrics,
        grace_period,
    })
}

/// cloudflared's `metrics: HOST:PORT`, where HOST is an IP address or
/// `localhost` (loopback).
fn metrics_addr(value: &Value) -> Result<std::net::SocketAddr, ConfigError> {
    let text = scalar_text(value).unwrap_or_default();
    let bad = |reason: &str| ConfigError::Metrics {
        value: text.clone(),
        reason: reason.to_owned(),
    };
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("it has no port"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host.eq_ignore_ascii_case("localhost") {
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| bad("the host must be an IP address or localhost"))?
    };
    Ok(std::net::SocketAddr::new(ip, port))
}

fn parse_rule(
    raw: &Value,
    number: usize,
    defaults: &OriginRequest,
    warnings: &mut Warnings,
) -> Result<Rule, ConfigError> {
    let map = match untag(raw) {
        Value::Mapping(map) => map,
        other => {
            return Err(ConfigError::Shape(format!(
                "ingress rule {number} is {} instead of a mapping; write it as \
                 `- hostname: app.example.com` with `service: http://localhost:8000` on the next \
                 line",
                kind(other)
            )))
        }
    };
    for key in map.keys() {
        let key = key_text(key);
        if !RULE_KEYS.contains(&key.as_str()) {
            warnings.add(
                format!("the ingress rule key \"{key}\" is not a known setting and is ignored"),
                format!("rule {number}"),
            );
        }
    }

    let text_field = |key: &str, example: &str| -> Result<Option<String>, ConfigError> {
        match get(map, key) {
            None => Ok(None),
            Some(value) => scalar_text(value).map(Some).ok_or_else(|| {
                ConfigError::Shape(format!(
                    "ingress rule {number} has a {key} that is {} instead of text; write it as \
                     `{key}: {example}`",
                    kind(value)
                ))
            }),
        }
    };

    let hostname = match text_field("hostname", "app.example.com")? {
        None => None,
        Some(written) => {
            let bad = |reason| ConfigError::BadHostname {
                rule: number,
                hostname: written.clone(),
                reason,
            };
            let ascii = ascii_hostname(&written).map_err(bad)?;
            validate_hostname(&ascii).map_err(bad)?;
            Some(ascii)
        }
    };

    let path = match text_field("path", "^/api/")? {
        None => None,
        Some(pattern) if pattern.is_empty() => None,
        Some(pattern) => Some(Regex::new(&pattern).map_err(|e| ConfigError::BadPathRegex {
            rule: number,
            reason: regex_reason(&e),
            pattern,
        })?),
    };

    let pool_block = get(map, "originPool");
    let service = match text_field("service", "http://localhost:8000")? {
        // cloudflared's bastion rule may name no service at all.
        None if bastion_mode(map) => Service::Unsupported(Unsupported::Bastion),
        None => return Err(ConfigError::MissingService { rule: number }),
        Some(s) if s.is_empty() => return Err(ConfigError::MissingService { rule: number }),
        Some(s) if s == "pool" => match pool_block {
            None => return Err(ConfigError::PoolWithoutOriginPool { rule: number }),
            Some(block) => Service::Pool(pool::parse(block, number, warnings)?),
        },
        Some(s) => {
            let service = service::parse(&s, number)?;
            if pool_block.is_some() {
                return Err(ConfigError::OriginPoolWithoutPool {
                    rule: number,
                    service: s,
                });
            }
            if let (Some(scheme), Service::Tcp { .. }) = (service::tcp_by_scheme(&s), &service) {
                warnings.add(
                    format!(
                        "the service \"{s}\" has a scheme Warren does not know (\"{scheme}\"), \
                         so it is proxied as raw TCP, as cloudflared does; write it as {service} \
                         to say so"
                    ),
                    format!("rule {number}"),
                );
            }
            service
        }
    };
    if let Service::Unsupported(mode) = service {
        warnings.add(
            format!(
                "the `{}` service is not supported and every request it matches is answered \
                 with an error: {}",
                mode.spelling(),
                mode.instead()
            ),
            format!("rule {number}"),
        );
    }

    let origin_request = match get(map, "originRequest") {
        None => defaults.clone(),
        Some(block) => defaults.merged(&Overrides::parse(block, Scope::Rule(number), warnings)?),
    };

    Ok(Rule {
        hostname,
        path,
        service,
        origin_request,
    })
}

/// Whether the rule's own `originRequest` says `bastionMode: true`
/// (cloudflared's bastion rule, which needs no `service`).
fn bastion_mode(rule: &Mapping) -> bool {
    let Some(Value::Mapping(block)) = get(rule, "originRequest").map(untag) else {
        return false;
    };
    get(block, "bastionMode").and_then(yaml_bool) == Some(true)
}

/// The useful line of a regex error: the regex crate's syntax errors span
/// several lines (the pattern, a caret, then `error: ...`); keep the
/// `error:` line's text, or else the first non-empty line.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let line = text
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .or_else(|| text.lines().map(str::trim).find(|line| !line.is_empty()))
        .unwrap_or("invalid regular expression");
    line.trim_end_matches('.').to_string()
}
