//! Hostnames: matching a rule's pattern against a request's host, checking
//! patterns when a config loads, and splitting a URL for
//! `warren tunnel ingress rule`.

use super::ConfigError;

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
    if !is_scheme(scheme) {
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

/// `scheme` is a URL scheme: a letter, then letters, digits, `+`, `-`
/// or `.`.
pub(super) fn is_scheme(scheme: &str) -> bool {
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Characters allowed in a host name (not IP literals).
pub(super) fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
}

/// Splits `host:port`, `host`, `[v6]:port` or `[v6]` (brackets removed).
/// `None` for an unbalanced bracket, junk after `]`, or several colons
/// outside brackets.
pub(super) fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
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

/// What is wrong with a `hostname` pattern, for
/// [`ConfigError::BadHostname`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    /// Nothing was written.
    #[error("it is empty")]
    Empty,
    /// A URL instead of a name.
    #[error("a hostname has no scheme or path, remove \"{0}://\" and anything after the name")]
    Scheme(String),
    /// A path after the name.
    #[error("a hostname has no path, remove \"{0}\" (use `path:` to match paths)")]
    Path(String),
    /// A port after the name.
    #[error("a hostname cannot have a port, remove \":{0}\"")]
    Port(String),
    /// A `*` that is not the whole first label.
    #[error("\"*\" may only be the whole first label, as in *.example.com")]
    MisplacedWildcard,
    /// A character names cannot hold (described: `"x"`, `a space`, ...).
    #[error("{0} is not allowed in a hostname")]
    BadCharacter(String),
    /// Over 253 characters.
    #[error("it is longer than 253 characters")]
    TooLong,
    /// Two dots in a row, or one at either end.
    #[error("it has an empty label (two dots in a row, or a dot at the start or end)")]
    EmptyLabel,
    /// A label over 63 characters.
    #[error("a label is longer than 63 characters")]
    LongLabel,
    /// A Unicode name that IDNA cannot turn into an ASCII one.
    #[error(
        "it is not a valid internationalised domain name; write it in its xn-- (punycode) form"
    )]
    NotIdna,
}

/// A `hostname` pattern in the ASCII form requests carry: a Unicode name
/// (`bücher.example`, `*.bücher.example`) becomes its punycode
/// (`xn--bcher-kva.example`), as cloudflared accepts it; an ASCII one is
/// returned as written.
pub(super) fn ascii_hostname(hostname: &str) -> Result<String, HostnameError> {
    if hostname.is_ascii() {
        return Ok(hostname.to_owned());
    }
    let (wildcard, name) = match hostname.strip_prefix("*.") {
        Some(rest) => ("*.", rest),
        None => ("", hostname),
    };
    let ascii = idna::domain_to_ascii(name).map_err(|_| HostnameError::NotIdna)?;
    Ok(format!("{wildcard}{ascii}"))
}

/// Checks a `hostname` pattern.
pub(super) fn validate_hostname(hostname: &str) -> Result<(), HostnameError> {
    if hostname.is_empty() {
        return Err(HostnameError::Empty);
    }
    if hostname == "*" {
        return Ok(());
    }
    if let Some((scheme, _)) = hostname.split_once("://") {
        return Err(HostnameError::Scheme(scheme.to_owned()));
    }
    if let Some(slash) = hostname.find('/') {
        return Err(HostnameError::Path(hostname[slash..].to_owned()));
    }
    if let Some((_, port)) = hostname.rsplit_once(':') {
        return Err(HostnameError::Port(port.to_owned()));
    }
    let name = match hostname.strip_prefix("*.") {
        Some(rest) => rest,
        None => hostname,
    };
    if name.contains('*') {
        return Err(HostnameError::MisplacedWildcard);
    }
    if let Some(bad) = name.chars().find(|&c| !is_host_char(c)) {
        return Err(HostnameError::BadCharacter(describe_char(bad)));
    }
    if name.len() > 253 {
        return Err(HostnameError::TooLong);
    }
    if name.split('.').any(str::is_empty) {
        return Err(HostnameError::EmptyLabel);
    }
    if name.split('.').any(|label| label.len() > 63) {
        return Err(HostnameError::LongLabel);
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
