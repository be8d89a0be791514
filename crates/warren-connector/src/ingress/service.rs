//! The `service:` of an ingress rule: where matching requests go.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

use super::hostname::{is_host_char, is_scheme, split_host_port};
use super::{ConfigError, OriginPool};

/// Where a rule sends requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Service {
    /// `http://host[:port]` or `https://host[:port]`.
    Http {
        /// `https://`.
        scheme_https: bool,
        /// `host:port` with the default port (80 / 443) filled in; IPv6
        /// addresses in brackets.
        authority: String,
        /// The host as written, without brackets for IPv6.
        host: String,
        /// The port, defaulted.
        port: u16,
        /// Prefix for request paths; always empty today, since services
        /// cannot have a path.
        base_path: String,
    },
    /// `tcp://host:port`; also cloudflared's aliases `ssh://` (default port
    /// 22), `rdp://` (3389) and `smb://` (445).
    Tcp {
        /// The host as written, without brackets for IPv6.
        host: String,
        /// The port.
        port: u16,
    },
    /// `postgres://host[:port]` (default port 5432): a PostgreSQL server.
    /// The connector speaks the start of the protocol itself so the link
    /// to the database uses TLS as `originRequest.sslmode` says.
    Postgres {
        /// The host as written, without brackets for IPv6.
        host: String,
        /// The port.
        port: u16,
    },
    /// `unix:/path/to.sock`, or `unix+tls:/path/to.sock` to speak HTTPS over
    /// the socket.
    Unix {
        /// The socket path, as written.
        path: PathBuf,
        /// `unix+tls:`.
        tls: bool,
    },
    /// `http_status:NNN`: answer every request with this status.
    HttpStatus(u16),
    /// `hello_world`: Warren's built-in test page.
    HelloWorld,
    /// `pool`: several `http(s)://` or `tcp://` origins, from the rule's
    /// `originPool`.
    Pool(OriginPool),
    /// `bastion`, `socks-proxy`, or a rule whose `originRequest.bastionMode`
    /// is true and that names no service: cloudflared modes Warren does not
    /// have. The config still loads (with a warning naming the rule) and
    /// every request the rule matches is answered with
    /// [`Unsupported::answer`].
    Unsupported(Unsupported),
}

/// A cloudflared service mode Warren does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unsupported {
    /// `bastion` (or `bastionMode: true`): cloudflared picks the SSH
    /// target from a header the client sends.
    Bastion,
    /// `socks-proxy`: a SOCKS5 proxy into the connector's network.
    SocksProxy,
}

impl Unsupported {
    /// The service as cloudflared spells it.
    pub fn spelling(self) -> &'static str {
        match self {
            Unsupported::Bastion => "bastion",
            Unsupported::SocksProxy => "socks-proxy",
        }
    }

    /// What to write instead, as one clause.
    pub fn instead(self) -> &'static str {
        match self {
            Unsupported::Bastion => {
                "Warren has no bastion mode; give each SSH host its own rule, such as \
                 `service: ssh://HOST:22`, and reach it with `warren access tcp`"
            }
            Unsupported::SocksProxy => {
                "Warren's connector has no SOCKS proxy service; give each origin its own rule, \
                 such as `service: tcp://HOST:PORT`"
            }
        }
    }

    /// The answer to a request the rule matches, one sentence.
    pub fn answer(self, host: &str) -> String {
        format!(
            "{host} is served by the `{}` service, which Warren does not support: {}",
            self.spelling(),
            self.instead()
        )
    }
}

impl fmt::Display for Service {
    /// The form written in the config, with the port omitted when it is the
    /// scheme's default; TCP aliases (`ssh://` ...) print as `tcp://`; a
    /// pool prints its origins: `pool [http://a:8000, http://b:8000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::Http {
                scheme_https,
                host,
                port,
                base_path,
                ..
            } => {
                let (scheme, default_port) = if *scheme_https {
                    ("https", 443)
                } else {
                    ("http", 80)
                };
                write!(f, "{scheme}://{}", bracketed(host))?;
                if *port != default_port {
                    write!(f, ":{port}")?;
                }
                f.write_str(base_path)
            }
            Service::Tcp { host, port } => write!(f, "tcp://{}:{port}", bracketed(host)),
            Service::Postgres { host, port } => {
                write!(f, "postgres://{}", bracketed(host))?;
                if *port != 5432 {
                    write!(f, ":{port}")?;
                }
                Ok(())
            }
            Service::Unix { path, tls } => {
                let scheme = if *tls { "unix+tls" } else { "unix" };
                write!(f, "{scheme}:{}", path.display())
            }
            Service::HttpStatus(code) => write!(f, "http_status:{code}"),
            Service::HelloWorld => f.write_str("hello_world"),
            Service::Pool(pool) => write!(f, "{pool}"),
            Service::Unsupported(mode) => f.write_str(mode.spelling()),
        }
    }
}

/// `[::1]` for IPv6 addresses, the host unchanged otherwise.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Schemes written as `scheme://host[:port]`: (name, https, default port)
/// where `https` is `None` for TCP.
const URL_SCHEMES: &[(&str, Option<bool>, Option<u16>)] = &[
    ("http", Some(false), Some(80)),
    ("https", Some(true), Some(443)),
    // cloudflared's WebSocket spellings: HTTP origins (upgrades pass through).
    ("ws", Some(false), Some(80)),
    ("wss", Some(true), Some(443)),
    ("tcp", None, None),
    ("ssh", None, Some(22)),
    ("rdp", None, Some(3389)),
    ("smb", None, Some(445)),
    ("postgres", None, Some(5432)),
    ("postgresql", None, Some(5432)),
];

/// Parses the `service` of rule `rule` (1-based, for errors). `svc` is
/// non-empty.
pub(super) fn parse(svc: &str, rule: usize) -> Result<Service, ConfigError> {
    let bad_service = |problem: String| ConfigError::BadService {
        rule,
        service: svc.to_string(),
        problem,
    };

    // `hello-world` is cloudflared's other spelling.
    if svc == "hello_world" || svc == "hello-world" {
        return Ok(Service::HelloWorld);
    }
    for mode in [Unsupported::Bastion, Unsupported::SocksProxy] {
        if svc == mode.spelling() {
            return Ok(Service::Unsupported(mode));
        }
    }
    if let Some(code) = svc.strip_prefix("http_status:") {
        return code
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| code.parse::<u16>().ok())
            .flatten()
            .filter(|code| (100..=599).contains(code))
            .map(Service::HttpStatus)
            .ok_or_else(|| ConfigError::BadStatus {
                rule,
                service: svc.to_string(),
            });
    }
    for (prefix, tls) in [("unix+tls:", true), ("unix:", false)] {
        if let Some(rest) = svc.strip_prefix(prefix) {
            // `unix:///run/app.sock` is the URL spelling of `unix:/run/app.sock`.
            let path = if rest.starts_with("///") {
                &rest[2..]
            } else {
                rest
            };
            if path.is_empty() {
                return Err(bad_service(format!(
                    "no socket path; add one, as in {prefix}/run/app.sock"
                )));
            }
            return Ok(Service::Unix {
                path: PathBuf::from(path),
                tls,
            });
        }
    }

    let Some((scheme, rest)) = svc.split_once("://") else {
        return Err(no_url_scheme(svc, rule));
    };
    let lower = scheme.to_ascii_lowercase();
    // Any other well-formed scheme is raw TCP, as cloudflared has it
    // (`redis://db:6379`); the rule gets a warning ([`tcp_by_scheme`]).
    let (https, default_port) = match URL_SCHEMES.iter().find(|(name, ..)| *name == lower) {
        Some(&(_, https, default_port)) => (https, default_port),
        None if is_scheme(scheme) => (None, None),
        None => {
            return Err(ConfigError::UnknownScheme {
                rule,
                service: svc.to_string(),
                scheme: scheme.to_string(),
            })
        }
    };

    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if !tail.is_empty() && tail != "/" {
        return Err(ConfigError::ServicePath {
            rule,
            service: svc.to_string(),
            path: tail.to_string(),
        });
    }
    if let Some((user, _)) = authority.rsplit_once('@') {
        return Err(bad_service(format!("a user name; remove \"{user}@\"")));
    }
    let example = format!("{lower}://localhost:8000");
    let Some((host, port_text)) = split_host_port(authority) else {
        return Err(bad_service(format!(
            "an invalid host \"{authority}\"; write an IPv6 address in brackets, as in \
             {lower}://[::1]:8000"
        )));
    };
    if host.is_empty() {
        return Err(bad_service(format!("no host; add one, as in {example}")));
    }
    let host_ok = if authority.starts_with('[') {
        host.parse::<Ipv6Addr>().is_ok()
    } else {
        host.chars().all(is_host_char)
    };
    if !host_ok {
        return Err(bad_service(format!(
            "an invalid host \"{host}\"; use a name or an IP address, as in {example}"
        )));
    }
    let port = match port_text {
        Some(text) => text
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| text.parse::<u16>().ok())
            .flatten()
            .filter(|port| *port != 0)
            .ok_or_else(|| ConfigError::BadPort {
                rule,
                service: svc.to_string(),
                port: text.to_string(),
            })?,
        None => default_port.ok_or_else(|| ConfigError::MissingPort {
            rule,
            service: svc.to_string(),
        })?,
    };
    Ok(match https {
        Some(scheme_https) => Service::Http {
            scheme_https,
            authority: format!("{}:{port}", bracketed(host)),
            host: host.to_string(),
            port,
            base_path: String::new(),
        },
        None if lower.starts_with("postgres") => Service::Postgres {
            host: host.to_string(),
            port,
        },
        None => Service::Tcp {
            host: host.to_string(),
            port,
        },
    })
}

/// The scheme of `svc` when it is one Warren does not know, so that
/// [`parse`] made the service raw TCP: the rule deserves a warning, since
/// a misspelt `htps://` lands here too.
pub(super) fn tcp_by_scheme(svc: &str) -> Option<&str> {
    let (scheme, _) = svc.split_once("://")?;
    let lower = scheme.to_ascii_lowercase();
    (is_scheme(scheme) && !URL_SCHEMES.iter().any(|(name, ..)| *name == lower)).then_some(scheme)
}

/// The error for a service without `://`: a known scheme missing its `//`,
/// a bare `host:port`, or an unknown scheme such as `bastion`.
fn no_url_scheme(svc: &str, rule: usize) -> ConfigError {
    let (before, after) = svc.split_once(':').unwrap_or((svc, ""));
    let lower = before.to_ascii_lowercase();
    let problem = if URL_SCHEMES.iter().any(|(name, ..)| *name == lower) {
        Some(format!(
            "\"{before}:\" not followed by \"//\"; write it as {before}://{}",
            after.trim_start_matches('/')
        ))
    } else {
        let port_like = !after.is_empty() && after.bytes().all(|b| b.is_ascii_digit());
        let host_like = !before.is_empty()
            && before.chars().all(is_host_char)
            && (port_like
                || (!svc.contains(':') && (before.contains('.') || before == "localhost")));
        (before.is_empty() || host_like).then(|| {
            format!(
                "no scheme; add one, as in http://{}",
                if before.is_empty() {
                    "localhost:8000"
                } else {
                    svc
                }
            )
        })
    };
    match problem {
        Some(problem) => ConfigError::BadService {
            rule,
            service: svc.to_string(),
            problem,
        },
        None => ConfigError::UnknownScheme {
            rule,
            service: svc.to_string(),
            scheme: before.to_string(),
        },
    }
}
