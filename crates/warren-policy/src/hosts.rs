//! Which application covers a request: hostnames, path prefixes, and the
//! most specific of several.
//!
//! Paths are compared after the normalisation an origin is likely to do
//! (`/public/../admin` is `/admin`, `/%61dmin` is `/admin`, `%2F` and `\`
//! are `/`), so a request cannot reach a path-scoped application's paths
//! while being judged by another application's policies. Paths are
//! case-sensitive, as URLs are.

use std::borrow::Cow;

use crate::model::Application;

impl Application {
    /// Whether this application covers a request for `host` (no port;
    /// ASCII case-insensitive; a trailing dot is ignored) and `path` (as
    /// received; a query or fragment is ignored). `*.example.com` covers
    /// `a.example.com` and `a.b.example.com` but not `example.com`; a path
    /// prefix `/admin` covers `/admin` and `/admin/x` but not
    /// `/administrator`.
    pub fn covers(&self, host: &str, path: &str) -> bool {
        self.specificity(host, &normalize_path(path)).is_some()
    }

    /// How specifically this application covers the request, or `None`.
    /// Ordered: an exact hostname beats a wildcard, a longer wildcard
    /// suffix a shorter one, then a longer path prefix a shorter one.
    fn specificity(&self, host: &str, normal_path: &str) -> Option<(bool, usize, usize)> {
        let host = host.strip_suffix('.').unwrap_or(host);
        let (exact, suffix) = self
            .hostnames
            .iter()
            .filter_map(|pattern| host_match(pattern, host))
            .max()?;
        let prefix = match &self.path_prefix {
            None => 0,
            Some(p) => path_match(&normalize_path(p), normal_path)?,
        };
        Some((exact, suffix, prefix))
    }
}

/// The application that most specifically covers `host` and `path` (see
/// [`Application::covers`]): an exact hostname beats a wildcard (and a
/// longer wildcard a shorter one), then a longer path prefix beats a
/// shorter one. On a tie the first in `apps` wins.
pub fn most_specific<'a>(
    apps: impl IntoIterator<Item = &'a Application>,
    host: &str,
    path: &str,
) -> Option<&'a Application> {
    let path = normalize_path(path);
    let mut best: Option<((bool, usize, usize), &Application)> = None;
    for app in apps {
        if let Some(rank) = app.specificity(host, &path) {
            if best.is_none_or(|(b, _)| rank > b) {
                best = Some((rank, app));
            }
        }
    }
    best.map(|(_, app)| app)
}

/// `(true, 0)` for an exact match, `(false, suffix length)` for a wildcard.
fn host_match(pattern: &str, host: &str) -> Option<(bool, usize)> {
    match pattern.strip_prefix("*.") {
        None => host.eq_ignore_ascii_case(pattern).then_some((true, 0)),
        Some(suffix) => {
            let (h, s) = (host.as_bytes(), suffix.as_bytes());
            // At least one character and a dot before the suffix.
            let cut = h.len().checked_sub(s.len() + 1).filter(|&c| c > 0)?;
            (!s.is_empty() && h[cut] == b'.' && h[cut + 1..].eq_ignore_ascii_case(s))
                .then_some((false, s.len()))
        }
    }
}

/// The prefix's length when `path` is the prefix or lies below it (the
/// next character is `/` or `;`), both normalised. `/` covers everything.
fn path_match(prefix: &str, path: &str) -> Option<usize> {
    let prefix = prefix.trim_end_matches('/');
    let rest = path.strip_prefix(prefix)?;
    matches!(rest.bytes().next(), None | Some(b'/' | b';')).then_some(prefix.len())
}

/// The path as an origin resolves it: query and fragment dropped,
/// percent-encoded unreserved characters, `/` and `\` decoded, `\` as `/`,
/// empty and `.` segments dropped, `..` segments applied. A trailing slash
/// is kept. Borrows when the path is already normal.
pub(crate) fn normalize_path(raw: &str) -> Cow<'_, str> {
    let path = raw.find(['?', '#']).map_or(raw, |i| &raw[..i]);
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let mut b = bytes[i];
        if b == b'%' {
            if let Some(v) = bytes.get(i + 1..i + 3).and_then(hex_byte) {
                if v.is_ascii_alphanumeric() || b"-._~/\\".contains(&v) {
                    b = v;
                    i += 2;
                }
            }
        }
        decoded.push(if b == b'\\' { b'/' } else { b });
        i += 1;
    }
    // Only ASCII sequences were replaced by ASCII bytes, so this is UTF-8.
    let decoded = String::from_utf8(decoded)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());

    let mut segments: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in decoded.split('/') {
        trailing = matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for seg in &segments {
        out.push('/');
        out.push_str(seg);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

fn is_normal(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if path.contains(['%', '\\']) {
        return false;
    }
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if seg == "." || seg == ".." || (seg.is_empty() && !last) {
            return false;
        }
    }
    true
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    match two {
        [a, b] => Some((digit(*a)? * 16 + digit(*b)?) as u8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, hostnames: &[&str], path_prefix: Option<&str>) -> Application {
        Application {
            name: name.into(),
            hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
            path_prefix: path_prefix.map(Into::into),
            session_duration_secs: 3600,
            policies: vec![],
        }
    }

    #[test]
    fn exact_and_wildcard_hosts() {
        let a = app("a", &["App.Example.com", "*.dev.example.com"], None);
        assert!(a.covers("app.example.com", "/"));
        assert!(a.covers("APP.EXAMPLE.COM", "/x"));
        assert!(a.covers("app.example.com.", "/"), "trailing dot");
        assert!(!a.covers("other.example.com", "/"));
        assert!(!a.covers("app.example.com.evil", "/"));
        assert!(a.covers("x.dev.example.com", "/"));
        assert!(a.covers("y.x.DEV.example.com", "/"), "any depth");
        assert!(!a.covers("dev.example.com", "/"), "not the apex");
        assert!(!a.covers(".dev.example.com", "/"), "empty label");
        assert!(!a.covers("xdev.example.com", "/"));
        assert!(!a.covers("", "/"));
        assert!(a.covers("é.dev.example.com", "/"), "byte-wise, no panic");
        assert!(!a.covers("é", "/"));
    }

    #[test]
    fn path_prefix_on_segment_boundary() {
        let a = app("a", &["app.example.com"], Some("/admin"));
        assert!(a.covers("app.example.com", "/admin"));
        assert!(a.covers("app.example.com", "/admin/"));
        assert!(a.covers("app.example.com", "/admin/x/y"));
        assert!(a.covers("app.example.com", "/admin?next=/"));
        assert!(a.covers("app.example.com", "/admin;jsessionid=1"));
        assert!(!a.covers("app.example.com", "/administrator"));
        assert!(!a.covers("app.example.com", "/"));
        assert!(
            !a.covers("app.example.com", "/Admin"),
            "paths are case-sensitive"
        );
        assert!(!a.covers("other.example.com", "/admin"));

        let slash = app("s", &["app.example.com"], Some("/admin/"));
        assert!(slash.covers("app.example.com", "/admin"));
        assert!(!slash.covers("app.example.com", "/administrator"));
        let root = app("r", &["app.example.com"], Some("/"));
        assert!(root.covers("app.example.com", "/anything"));
    }

    #[test]
    fn path_tricks_resolve_like_the_origin() {
        let a = app("a", &["app.example.com"], Some("/admin"));
        for path in [
            "/public/../admin",
            "/public/%2e%2e/admin/x",
            "/%61dmin",
            "//admin",
            "/./admin",
            "/admin%2Fx",
            "/public\\..\\admin",
            "admin",
        ] {
            assert!(a.covers("app.example.com", path), "{path}");
        }
        for path in ["/admin%00", "/admin%3Bx", "/%2561dmin", "/admin/../public"] {
            assert!(!a.covers("app.example.com", path), "{path}");
        }
    }

    #[test]
    fn normalize() {
        assert!(matches!(normalize_path("/a/b"), Cow::Borrowed("/a/b")));
        assert!(matches!(normalize_path("/a/b/?q"), Cow::Borrowed("/a/b/")));
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/.."), "/");
        assert_eq!(normalize_path("/a/b/.."), "/a/");
        assert_eq!(normalize_path("/a//b/./c/"), "/a/b/c/");
        assert_eq!(normalize_path("/%7Euser/%41"), "/~user/A");
        assert_eq!(normalize_path("/%zz/%4"), "/%zz/%4");
        assert_eq!(normalize_path("/caf%C3%A9"), "/caf%C3%A9");
        assert_eq!(normalize_path("/ü/../é"), "/é");
    }

    #[test]
    fn most_specific_application() {
        let wide = app("wide", &["*.example.com"], None);
        let dev = app("dev", &["*.dev.example.com"], None);
        let exact = app("exact", &["app.example.com"], None);
        let admin = app("admin", &["app.example.com"], Some("/admin"));
        let admin_api = app("admin-api", &["app.example.com"], Some("/admin/api"));
        let wild_admin = app("wild-admin", &["*.example.com"], Some("/admin"));
        let apps = [&wide, &dev, &exact, &admin, &admin_api, &wild_admin];
        let pick = |host: &str, path: &str| most_specific(apps, host, path).map(|a| &*a.name);

        assert_eq!(pick("app.example.com", "/"), Some("exact"));
        assert_eq!(pick("app.example.com", "/admin/users"), Some("admin"));
        assert_eq!(pick("app.example.com", "/admin/api/v1"), Some("admin-api"));
        assert_eq!(pick("app.example.com", "/administrator"), Some("exact"));
        assert_eq!(pick("other.example.com", "/"), Some("wide"));
        assert_eq!(pick("other.example.com", "/admin"), Some("wild-admin"));
        assert_eq!(
            pick("x.dev.example.com", "/admin"),
            Some("dev"),
            "host first"
        );
        assert_eq!(pick("example.com", "/"), None);
        assert_eq!(pick("example.org", "/"), None);

        let first = app("first", &["app.example.com"], None);
        let second = app("second", &["APP.example.com"], None);
        assert_eq!(
            most_specific([&first, &second], "app.example.com", "/").map(|a| &*a.name),
            Some("first"),
            "a tie goes to the first"
        );
        assert!(most_specific([], "app.example.com", "/").is_none());
    }
}
