//! Ingress rules: which origin serves a request, in cloudflared's
//! `config.yml` shape.
//!
//! ```yaml
//! tunnel: 6ff42ae2-...          # accepted and ignored (the token carries it)
//! credentials-file: /x.json     # accepted and ignored
//! originRequest:                # global defaults, overridden per rule
//!   connectTimeout: 10s
//! ingress:
//!   - hostname: app.example.com
//!     path: ^/api/.*$
//!     service: http://localhost:8000
//!     originRequest:
//!       noTLSVerify: true
//!   - hostname: "*.example.com"
//!     service: https://localhost:8443
//!   - service: http_status:404  # the last rule must be a catch-all
//! ```
//!
//! # Matching
//!
//! Rules are tried in order and the first one whose `hostname` and `path`
//! both match wins ([`IngressConfig::find`]):
//!
//! - `hostname` is compared case-insensitively with the request's host
//!   (without port). `*.example.com` matches any name that ends in
//!   `.example.com` with one or more labels before it (`a.example.com`,
//!   `a.b.example.com`, but not `example.com`); `*` alone, or no hostname,
//!   matches every host. See [`match_hostname`].
//! - `path` is a regular expression searched (unanchored, like cloudflared's
//!   `MatchString`) in the request path without the query string; write
//!   `^...$` to anchor it. No path, or an empty one, matches every path.
//!
//! A rule without hostname (or with `*`) and without path is a *catch-all*.
//! The last rule must be a catch-all, so every request matches some rule,
//! and no other rule may be one, since the rules after it could never match.
//!
//! # Services
//!
//! `http://` and `https://` origins (without a path), `tcp://host:port`
//! (plus cloudflared's TCP aliases `ssh://`, `rdp://` and `smb://`, whose
//! ports default to 22, 3389 and 445), `unix:/path/to.sock`,
//! `unix+tls:/path/to.sock`, `http_status:NNN` and `hello_world`. See
//! [`Service`].
//!
//! `service: pool` spreads a rule over several `http(s)://` or `tcp://`
//! origins listed in the rule's `originPool`, with steering and active
//! health checks; the rule's `originRequest` applies to every origin. See
//! [`OriginPool`] and [`crate::pool`].
//!
//! # Origin request settings
//!
//! `originRequest` at the top level sets defaults for every rule; a rule's
//! own `originRequest` overrides them key by key. Keys are cloudflared's
//! camelCase names; settings that cloudflared knows but Warren does not
//! implement (`bastionMode`, `proxyAddress`, ...) are accepted and reported
//! as ignored, so existing cloudflared configs load unchanged. See
//! [`OriginRequest`]. `access` ([`OriginAccess`]) makes the connector
//! verify the edge's signed identity itself (`crate::access`).
//!
//! # Errors
//!
//! Loading stops at the first problem, in rule order (the global
//! `originRequest` first), with a [`ConfigError`] whose message is one
//! sentence naming the 1-based rule number and what to change.

mod error;
mod origin;
mod pool;
mod service;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde_norway::{Mapping, Value};

pub use error::{ConfigError, Scope};
pub use origin::{parse_duration, OriginAccess, OriginRequest, ProxyProtocol, SslMode};
pub use pool::{HashOn, HealthCheck, OriginPool, Steering};
pub use service::Service;

use origin::Overrides;

/// Parsed and validated ingress rules.
///
/// Built by [`IngressConfig::from_yaml`], [`IngressConfig::load`] or
/// [`IngressConfig::single`], the last rule is always a catch-all.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// The rules, in matching order.
    pub rules: Vec<Rule>,
}

/// One ingress rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Hostname pattern as written (`app.example.com`, `*.example.com` or
    /// `*`); `None` matches every host. Compared case-insensitively.
    pub hostname: Option<String>,
    /// Regular expression searched in the request path; `None` matches every
    /// path.
    pub path: Option<Regex>,
    /// Where matching requests go.
    pub service: Service,
    /// Origin settings: defaults, then the global `originRequest`, then the
    /// rule's own `originRequest`.
    pub origin_request: OriginRequest,
}

/// Top-level keys this module reads; every other one is accepted silently
/// (cloudflared has many: `tunnel`, `credentials-file`, `warp-routing`,
/// `loglevel`, `metrics`, `protocol`, ...).
const TOP_LEVEL_KEYS: &[&str] = &["ingress", "originRequest"];

/// Keys of one ingress rule.
const RULE_KEYS: &[&str] = &["hostname", "path", "service", "originPool", "originRequest"];

impl IngressConfig {
    /// Parses and validates a cloudflared-style `config.yml`.
    ///
    /// Settings that are accepted but ignored are logged with
    /// `tracing::warn!`, once per setting.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let (config, warnings) = Self::from_yaml_with_warnings(text)?;
        for warning in &warnings {
            tracing::warn!("ingress config: {warning}");
        }
        Ok(config)
    }

    /// Like [`IngressConfig::from_yaml`], but returns the "ignored setting"
    /// warnings (one sentence each) instead of logging them, for
    /// `ingress validate`.
    pub fn from_yaml_with_warnings(text: &str) -> Result<(Self, Vec<String>), ConfigError> {
        let mut warnings = Warnings::default();
        let config = parse_config(text, &mut warnings)?;
        Ok((config, warnings.finish()))
    }

    /// Reads and parses the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            error: e.to_string(),
        })?;
        Self::from_yaml(&text)
    }

    /// The `--url` shortcut: one catch-all rule sending everything to
    /// `url` with default origin settings. Errors name it "ingress rule 1".
    pub fn single(url: &str) -> Result<Self, ConfigError> {
        if url.is_empty() {
            return Err(ConfigError::MissingService { rule: 1 });
        }
        let service = service::parse(url, 1)?;
        Ok(IngressConfig {
            rules: vec![Rule {
                hostname: None,
                path: None,
                service,
                origin_request: OriginRequest::default(),
            }],
        })
    }

    /// The first rule matching `host` (lower-case, without port) and `path`
    /// (without query), with its 0-based index.
    ///
    /// A validated config always ends with a catch-all, so this always finds
    /// a rule. For a hand-built config where nothing matches (an empty one,
    /// say), it returns `(self.rules.len(), rule)` where `rule` answers
    /// `http_status:404`.
    pub fn find(&self, host: &str, path: &str) -> (usize, &Rule) {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.matches(host, path))
            .unwrap_or((self.rules.len(), &NO_MATCH))
    }
}

/// What [`IngressConfig::find`] returns when no rule matches.
static NO_MATCH: Rule = Rule {
    hostname: None,
    path: None,
    service: Service::HttpStatus(404),
    origin_request: OriginRequest::DEFAULT,
};

impl Rule {
    /// Whether this rule matches `host` (lower-case, without port) and `path`.
    pub fn matches(&self, host: &str, path: &str) -> bool {
        self.hostname
            .as_deref()
            .is_none_or(|pattern| match_hostname(pattern, host))
            && self.path.as_ref().is_none_or(|re| re.is_match(path))
    }

    /// Whether this rule matches every request (no hostname or `*`, and no
    /// path).
    pub fn is_catch_all(&self) -> bool {
        matches!(self.hostname.as_deref(), None | Some("*")) && self.path.is_none()
    }

    /// A multi-line description for `warren tunnel ingress rule URL`.
    ///
    /// `index` is the 0-based index returned by [`IngressConfig::find`]; the
    /// text shows the 1-based rule number used everywhere else, followed by
    /// the hostname and path (when set), the service, and the origin
    /// settings that differ from the defaults:
    ///
    /// ```text
    /// rule 2
    ///   hostname: *.example.com
    ///   path: ^/api
    ///   service: https://localhost:8443
    ///   originRequest.noTLSVerify: true
    /// ```
    pub fn describe(&self, index: usize) -> String {
        let mut out = format!("rule {}", index.saturating_add(1));
        if self.is_catch_all() {
            out.push_str(" (catch-all)");
        }
        if let Some(hostname) = &self.hostname {
            out.push_str(&format!("\n  hostname: {hostname}"));
        }
        if let Some(path) = &self.path {
            out.push_str(&format!("\n  path: {}", path.as_str()));
        }
        out.push_str(&format!("\n  service: {}", self.service));
        if let Service::Pool(pool) = &self.service {
            out.push_str(&format!("\n  originPool.steering: {}", pool.steering));
            out.push_str(&format!(
                "\n  originPool.healthCheck: {}",
                pool.health_check
            ));
        }
        for (key, value) in self.origin_request.non_default_settings() {
            out.push_str(&format!("\n  originRequest.{key}: {value}"));
        }
        out
    }
}

/// Whether the hostname `pattern` matches `host` (without port).
///
/// Case-insensitive. `*` matches everything; `*.example.com` matches names
/// ending in `.example.com` with at least one label before it; any other
/// pattern must equal the host.
pub fn match_hostname(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        // `suffix` is ".example.com": the host must be longer than it, so at
        // least one non-empty label comes first.
        Some(suffix) if suffix.starts_with('.') => {
            host.len() > suffix.len()
                && host.is_char_boundary(host.len() - suffix.len())
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && !host[..host.len() - suffix.len()].ends_with('.')
        }
        _ => pattern.eq_ignore_ascii_case(host),
    }
}

/// Splits a URL such as `https://App.example.com:8443/api/x?y=1` into the
/// host and path that [`IngressConfig::find`] expects: the host lower-cased
/// and without port (an IPv6 address loses its brackets), the path without
/// query or fragment, `/` when absent.
pub fn ingress_for_url_check(url: &str) -> Result<(String, String), ConfigError> {
    let not_a_url = || ConfigError::NotAUrl(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(not_a_url)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(not_a_url());
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // Drop any `user:password@`.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = split_host_port(authority).ok_or_else(not_a_url)?;
    let host_ok = if authority.starts_with('[') {
        host.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty() && host.chars().all(is_host_char)
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !host_ok || !port_ok {
        return Err(not_a_url());
    }
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let path = match &tail[..path_end] {
        "" => "/",
        p => p,
    };
    if path.chars().any(char::is_whitespace) {
        return Err(not_a_url());
    }
    Ok((host.to_ascii_lowercase(), path.to_string()))
}

/// Characters allowed in a host name (not IP literals).
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
}

/// Splits `host:port`, `host`, `[v6]:port` or `[v6]` (brackets removed).
/// `None` for an unbalanced bracket, junk after `]`, or several colons
/// outside brackets.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        }
    } else {
        match authority.split_once(':') {
            None => Some((authority, None)),
            Some((_, port)) if port.contains(':') => None,
            Some((host, port)) => Some((host, Some(port))),
        }
    }
}

/// Checks a `hostname` pattern; the error is the reason, for
/// [`ConfigError::BadHostname`].
fn validate_hostname(hostname: &str) -> Result<(), String> {
    if hostname.is_empty() {
        return Err("it is empty".into());
    }
    if hostname == "*" {
        return Ok(());
    }
    if let Some((scheme, _)) = hostname.split_once("://") {
        return Err(format!(
            "a hostname has no scheme or path, remove \"{scheme}://\" and anything after the name"
        ));
    }
    if let Some(slash) = hostname.find('/') {
        return Err(format!(
            "a hostname has no path, remove \"{}\" (use `path:` to match paths)",
            &hostname[slash..]
        ));
    }
    if let Some((_, port)) = hostname.rsplit_once(':') {
        return Err(format!("a hostname cannot have a port, remove \":{port}\""));
    }
    let name = match hostname.strip_prefix("*.") {
        Some(rest) => rest,
        None => hostname,
    };
    if name.contains('*') {
        return Err("\"*\" may only be the whole first label, as in *.example.com".into());
    }
    if let Some(bad) = name.chars().find(|&c| !is_host_char(c)) {
        return Err(format!(
            "{} is not allowed in a hostname",
            describe_char(bad)
        ));
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters".into());
    }
    if name.split('.').any(str::is_empty) {
        return Err(
            "it has an empty label (two dots in a row, or a dot at the start or end)".into(),
        );
    }
    if name.split('.').any(|label| label.len() > 63) {
        return Err("a label is longer than 63 characters".into());
    }
    Ok(())
}

/// `"x"` for a visible character, `a space` / `U+0009` otherwise.
fn describe_char(c: char) -> String {
    if c == ' ' {
        "a space".into()
    } else if c.is_control() || c.is_whitespace() {
        format!("the character U+{:04X}", u32::from(c))
    } else {
        format!("\"{c}\"")
    }
}

/// Collects "setting is ignored" warnings, one per setting, listing where it
/// appears.
#[derive(Default)]
struct Warnings {
    seen: BTreeMap<String, Vec<String>>,
}

impl Warnings {
    fn add(&mut self, what: String, place: String) {
        let places = self.seen.entry(what).or_default();
        // Blocks are read in order, so a repeat can only be the last place.
        if places.last() != Some(&place) {
            places.push(place);
        }
    }

    fn finish(self) -> Vec<String> {
        self.seen
            .into_iter()
            .map(|(what, places)| format!("{what} (in {})", places.join(", ")))
            .collect()
    }
}

/// `value` without YAML tags (`!foo x` is read as `x`).
fn untag(mut value: &Value) -> &Value {
    while let Value::Tagged(tagged) = value {
        value = &tagged.value;
    }
    value
}

/// The text of a scalar (strings, numbers, booleans), like Go's YAML
/// decoder does for string fields; `None` for null, lists and mappings.
fn scalar_text(value: &Value) -> Option<String> {
    match untag(value) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What kind of YAML value this is, for messages ("a list").
fn kind(value: &Value) -> &'static str {
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
fn key_text(key: &Value) -> String {
    scalar_text(key).unwrap_or_else(|| format!("({})", kind(key)))
}

/// Looks `key` up, treating an explicit null (`key:` with no value) as
/// absent.
fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !matches!(untag(v), Value::Null))
}

fn parse_config(text: &str, warnings: &mut Warnings) -> Result<IngressConfig, ConfigError> {
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
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            tracing::debug!("ingress config: ignoring top-level key {key:?}");
        }
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
    let mut rules = Vec::with_capacity(list.len());
    for (index, raw) in list.iter().enumerate() {
        let number = index + 1;
        let rule = parse_rule(raw, number, &defaults, warnings)?;
        if rule.is_catch_all() && number < list.len() {
            return Err(ConfigError::CatchAllNotLast { rule: number });
        }
        rules.push(rule);
    }
    if rules.last().is_some_and(|rule| !rule.is_catch_all()) {
        return Err(ConfigError::LastRuleNotCatchAll { rule: rules.len() });
    }
    Ok(IngressConfig { rules })
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

    let hostname = text_field("hostname", "app.example.com")?;
    if let Some(hostname) = &hostname {
        validate_hostname(hostname).map_err(|reason| ConfigError::BadHostname {
            rule: number,
            hostname: hostname.clone(),
            reason,
        })?;
    }

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
            service
        }
    };

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
