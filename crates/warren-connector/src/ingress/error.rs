//! [`ConfigError`]: why an ingress config was rejected.

use std::fmt;
use std::path::PathBuf;

/// Where an `originRequest` block sits, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The top-level `originRequest`.
    Global,
    /// The `originRequest` of the ingress rule with this 1-based number.
    Rule(usize),
}

/// Why a config was rejected. The `Display` text is one sentence for people.
///
/// `rule` fields are 1-based rule numbers, as in the messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read the config file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error's text.
        error: String,
    },
    /// The config file is larger than the bound.
    #[error(
        "the config file {} is larger than {limit} bytes, so it was not read; shorten it, or \
         raise the bound with --max-config-size BYTES",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound, in bytes.
        limit: u64,
    },
    /// The text is not YAML.
    #[error("the config file is not valid YAML: {0}")]
    Yaml(String),
    /// The top-level `metrics:` is not an address to listen on.
    #[error(
        "the config's `metrics: {value}` is not an address to listen on ({reason}); write it as \
         HOST:PORT, such as `metrics: localhost:2000`"
    )]
    Metrics {
        /// What the file says.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// No `ingress:` list, or an empty one.
    #[error(
        "the config has no ingress rules; add an `ingress:` list whose last rule is a catch-all \
         such as `- service: http_status:404`"
    )]
    NoRules,
    /// The YAML has the wrong shape (a list where a mapping belongs, ...);
    /// the text is the whole sentence.
    #[error("{0}")]
    Shape(String),
    /// The last rule has a hostname or a path.
    #[error(
        "ingress rule {rule} is the last rule but it has a hostname or path, so some requests \
         would match no rule; add a catch-all rule at the end, such as \
         `- service: http_status:404`"
    )]
    LastRuleNotCatchAll {
        /// Rule number.
        rule: usize,
    },
    /// A catch-all rule that is not the last one.
    #[error(
        "ingress rule {rule} matches every request, so the rules after it can never match; \
         move it to the end or give it a hostname"
    )]
    CatchAllNotLast {
        /// Rule number.
        rule: usize,
    },
    /// A rule without `service`.
    #[error(
        "ingress rule {rule} has no service; add one such as `service: http://localhost:8000`"
    )]
    MissingService {
        /// Rule number.
        rule: usize,
    },
    /// A `path` that is not a valid regular expression.
    #[error(
        "ingress rule {rule} has an invalid path regex \"{pattern}\": {reason}; fix the regular \
         expression"
    )]
    BadPathRegex {
        /// Rule number.
        rule: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `hostname` that is not a name or a `*.` wildcard.
    #[error(
        "ingress rule {rule} has an invalid hostname \"{hostname}\": {reason}; use a name like \
         app.example.com or *.example.com"
    )]
    BadHostname {
        /// Rule number.
        rule: usize,
        /// The hostname as written.
        hostname: String,
        /// What is wrong with it.
        reason: super::hostname::HostnameError,
    },
    /// `--url` naming a cloudflared mode Warren does not have (in a
    /// config file such a rule loads with a warning instead).
    #[error(
        "ingress rule {rule} has service \"{service}\", which Warren does not support: {instead}"
    )]
    UnsupportedService {
        /// Rule number.
        rule: usize,
        /// The service as written.
        service: String,
        /// What to write instead.
        instead: &'static str,
    },
    /// A service whose scheme Warren does not know.
    #[error(
        "ingress rule {rule} has service \"{service}\" with an unknown scheme \"{scheme}\"; use \
         http://, https://, tcp://, postgres://, unix:, http_status:NNN or hello_world"
    )]
    UnknownScheme {
        /// Rule number.
        rule: usize,
        /// The service as written.
        service: String,
        /// The scheme found.
        scheme: String,
    },
    /// A service port that is not in 1..=65535.
    #[error(
        "ingress rule {rule} has service \"{service}\" with an invalid port \"{port}\"; use a \
         number from 1 to 65535"
    )]
    BadPort {
        /// Rule number.
        rule: usize,
        /// The service as written.
        service: String,
        /// The port as written.
        port: String,
    },
    /// A `tcp://` service without a port.
    #[error(
        "ingress rule {rule} has service \"{service}\" with no port; add one, as in \
         tcp://localhost:5432"
    )]
    MissingPort {
        /// Rule number.
        rule: usize,
        /// The service as written.
        service: String,
    },
    /// An `http_status:` service whose code is not in 100..=599.
    #[error(
        "ingress rule {rule} has service \"{service}\" with an invalid status code; use a number \
         from 100 to 599, as in http_status:404"
    )]
    BadStatus {
        /// Rule number.
        rule: usize,
        /// The service as written.
        service: String,
    },
    /// A service URL with a path (or query).
    #[error(
        "ingress rule {rule} has service \"{service}\" with a path; services cannot have a path, \
         remove \"{path}\""
    )]
    ServicePath {
        /// Rule number.
        rule: usize,
        /// The service as written.
        service: String,
        /// The path part as written, starting with `/` (or `?`/`#`).
        path: String,
    },
    /// Any other problem with a service; `problem` completes the sentence
    /// "ingress rule N has service "SVC" with ..." and says what to change.
    #[error("ingress rule {rule} has service \"{service}\" with {problem}")]
    BadService {
        /// Rule number.
        rule: usize,
        /// The service as written.
        service: String,
        /// The rest of the sentence.
        problem: String,
    },
    /// An `originRequest` duration that does not parse.
    #[error(
        "{} \"{value}\"{}: {reason}; use a duration like 30s or 1m30s",
        scope.subject(key), scope.verb()
    )]
    BadDuration {
        /// Where the setting is.
        scope: Scope,
        /// The camelCase key.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `originRequest.proxyProtocol` other than `v1`/`v2`.
    #[error(
        "{} \"{value}\"{}; use v1 or v2",
        scope.subject("proxyProtocol"), scope.verb()
    )]
    BadProxyProtocol {
        /// Where the setting is.
        scope: Scope,
        /// The value as written.
        value: String,
    },
    /// An `originRequest.sslmode` other than the four Warren knows.
    #[error(
        "{} \"{value}\"{}; use verify-full (the default), verify-ca, require or disable",
        scope.subject("sslmode"), scope.verb()
    )]
    BadSslMode {
        /// Where the setting is.
        scope: Scope,
        /// The value as written.
        value: String,
    },
    /// Any other `originRequest` value of the wrong kind (a list where
    /// `true`/`false` belongs, ...).
    #[error("{} {value}{}; use {expected}", scope.subject(key), scope.verb())]
    BadOriginValue {
        /// Where the setting is.
        scope: Scope,
        /// The camelCase key.
        key: String,
        /// The value as written, quoted, or a description such as `(a list)`.
        value: String,
        /// What to write instead.
        expected: String,
    },
    /// `service: pool` without an `originPool` block.
    #[error(
        "ingress rule {rule} has `service: pool` but no originPool; add one listing the origins, \
         such as `originPool: {{ origins: [http://10.0.0.5:8000, http://10.0.0.6:8000] }}`"
    )]
    PoolWithoutOriginPool {
        /// Rule number.
        rule: usize,
    },
    /// An `originPool` block on a rule whose service is not `pool`.
    #[error(
        "ingress rule {rule} has an originPool but its service is \"{service}\"; write \
         `service: pool` to use the pool, or remove originPool"
    )]
    OriginPoolWithoutPool {
        /// Rule number.
        rule: usize,
        /// The service as written.
        service: String,
    },
    /// An `originPool` without origins (missing or empty `origins:`).
    #[error(
        "ingress rule {rule} has an originPool with no origins; list them under `origins:`, \
         such as `origins: [http://10.0.0.5:8000, http://10.0.0.6:8000]`"
    )]
    EmptyPool {
        /// Rule number.
        rule: usize,
    },
    /// A pool origin that is not an `http://`, `https://` or `tcp://`
    /// service (`unix:`, `hello_world`, an unknown scheme such as
    /// `postgres://`, ...).
    #[error(
        "ingress rule {rule} has originPool origin \"{origin}\", which is not an http://, \
         https:// or tcp:// service; a pool spreads requests over network origins, so use one \
         of those"
    )]
    PoolOriginKind {
        /// Rule number.
        rule: usize,
        /// The origin as written.
        origin: String,
    },
    /// A pool with both HTTP(S) and TCP origins.
    #[error(
        "ingress rule {rule} mixes HTTP and TCP origins in its originPool (\"{http}\" and \
         \"{tcp}\"); a pool's origins must be all http(s):// or all tcp://, so remove the \
         other kind"
    )]
    MixedPool {
        /// Rule number.
        rule: usize,
        /// The first HTTP(S) origin, as written.
        http: String,
        /// The first TCP origin, as written.
        tcp: String,
    },
    /// Any other bad `originPool` setting; `fix` says what to change.
    #[error("ingress rule {rule} has an invalid originPool.{key} {value}; {fix}")]
    BadPoolSetting {
        /// Rule number.
        rule: usize,
        /// The key, dotted below `originPool` (`steering`,
        /// `healthCheck.unhealthyAfter`).
        key: String,
        /// The value as written, quoted, or a description such as `(a list)`.
        value: String,
        /// The rest of the sentence: what to write instead.
        fix: String,
    },
    /// An `originPool.healthCheck` duration that does not parse or is zero.
    #[error(
        "ingress rule {rule} has an invalid originPool.{key} \"{value}\": {reason}; use a \
         duration like 5s or 500ms"
    )]
    BadPoolDuration {
        /// Rule number.
        rule: usize,
        /// The key, dotted below `originPool` (`healthCheck.interval`).
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`ingress_for_url_check`](super::ingress_for_url_check) was given something that is not a URL.
    #[error("\"{0}\" is not a URL; pass one like https://app.example.com/path")]
    NotAUrl(String),
    /// Several rules are wrong: each one's sentence, in rule order, so one
    /// `validate` run reports them all.
    #[error("{} problems in the config: {}", .0.len(), numbered(.0))]
    Several(Vec<ConfigError>),
}

/// `1) first; 2) second`.
fn numbered(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{}) {e}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConfigError {
    /// The single problems it stands for (itself, unless it is
    /// [`ConfigError::Several`]).
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Several(all) => all.iter().collect(),
            one => vec![one],
        }
    }
}

impl Scope {
    fn subject(self, key: &str) -> String {
        match self {
            Scope::Global => format!("the global originRequest.{key}"),
            Scope::Rule(n) => format!("ingress rule {n} has an invalid originRequest.{key}"),
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Scope::Global => " is invalid",
            Scope::Rule(_) => "",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("the global originRequest"),
            Scope::Rule(n) => write!(f, "rule {n}"),
        }
    }
}
