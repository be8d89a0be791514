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
//! `unix+tls:/path/to.sock`, `http_status:NNN` and `hello_world`. Any other
//! `scheme://host:port` is raw TCP, as cloudflared has it, with a warning
//! (a misspelt `htps://` lands there too). cloudflared's `bastion` and
//! `socks-proxy` (and a rule with `bastionMode: true` and no service) load
//! with a warning naming the rule, and every request such a rule matches
//! is answered with an error saying what to write instead. See [`Service`].
//!
//! A Unicode `hostname` is matched in its punycode form
//! (`bücher.example` is `xn--bcher-kva.example`).
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
//! Every rule is read, and every wrong one is reported in rule order (the
//! global `originRequest` first) as one [`ConfigError`] (`Several` when
//! there is more than one), each a sentence naming the 1-based rule number
//! and what to change.

mod duration;
mod error;
mod hostname;
mod origin;
mod overrides;
mod parse;
mod pool;
mod service;
#[cfg(test)]
mod tests;

use std::path::Path;

use regex::Regex;

pub use duration::{parse_duration, DurationError};
pub use error::{ConfigError, Scope};
pub use hostname::{ingress_for_url_check, match_hostname, HostnameError};
pub use origin::{OriginAccess, OriginRequest, ProxyProtocol, SslMode};
pub use pool::{HashOn, HealthCheck, OriginPool, Steering};
pub use service::{Service, Unsupported};

use parse::{parse_config, Warnings};

/// The largest config file [`IngressConfig::load`] reads by default
/// (1 MiB: thousands of rules); `--max-config-size` raises it.
pub const DEFAULT_MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Parsed and validated ingress rules.
///
/// Built by [`IngressConfig::from_yaml`], [`IngressConfig::load`] or
/// [`IngressConfig::single`], the last rule is always a catch-all.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// The rules, in matching order.
    pub rules: Vec<Rule>,
    /// cloudflared's top-level `metrics:`: where to serve `/metrics` and
    /// `/ready` when `--metrics` is not given.
    pub metrics: Option<std::net::SocketAddr>,
    /// cloudflared's top-level `grace-period:`: how long in-flight streams
    /// may run after SIGTERM when `--grace-period` is not given.
    pub grace_period: Option<std::time::Duration>,
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

    /// Reads and parses the config file at `path`, refusing one larger
    /// than `max_bytes` before reading it ([`DEFAULT_MAX_CONFIG_BYTES`]
    /// unless the operator raised it).
    pub fn load(path: &Path, max_bytes: u64) -> Result<Self, ConfigError> {
        use warren_transport::file::{read_bounded, BoundedReadError};
        let text = read_bounded(path, max_bytes).map_err(|e| match e {
            BoundedReadError::TooLarge { limit } => ConfigError::TooLarge {
                path: path.to_path_buf(),
                limit,
            },
            e => ConfigError::Read {
                path: path.to_path_buf(),
                error: e.to_string(),
            },
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
        if let Service::Unsupported(mode) = service {
            return Err(ConfigError::UnsupportedService {
                rule: 1,
                service: url.to_owned(),
                instead: mode.instead(),
            });
        }
        if let Some(scheme) = service::tcp_by_scheme(url) {
            tracing::warn!(
                "--url {url}: the scheme \"{scheme}\" is not one Warren knows, so it is proxied as raw TCP to {service}"
            );
        }
        Ok(IngressConfig {
            rules: vec![Rule {
                hostname: None,
                path: None,
                service,
                origin_request: OriginRequest::default(),
            }],
            metrics: None,
            grace_period: None,
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
