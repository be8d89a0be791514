//! Checks on names and hostnames before they reach the database, so bad
//! input gets a sentence instead of a constraint violation.

/// Longest tunnel name: the first character plus 62 more.
const MAX_NAME_LEN: usize = 63;
/// Longest DNS name in text form, without a trailing dot.
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// Whether `name` matches `^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$` and is not a
/// UUID (a name that looked like an id would make "name or id" lookups
/// ambiguous).
pub(crate) fn is_valid_tunnel_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() <= MAX_NAME_LEN
        && first.is_ascii_alphanumeric()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && uuid::Uuid::parse_str(name).is_err()
}

/// Lower-cases a route hostname and checks it is a DNS name, optionally a
/// `*.` wildcard over one. A single trailing dot is accepted and dropped.
/// Returns `None` when it is not a usable hostname.
pub(crate) fn normalize_hostname(hostname: &str) -> Option<String> {
    let host = hostname.trim().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty() || name.len() > MAX_HOSTNAME_LEN {
        return None;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    // An all-numeric last label is an IP address, not a hostname.
    let tld_ok = name
        .rsplit('.')
        .next()
        .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    (labels_ok && tld_ok).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_names() {
        for ok in ["office", "a", "Office-2", "db.prod_eu", &"x".repeat(63)] {
            assert!(is_valid_tunnel_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-office",
            ".x",
            "has space",
            "ünï",
            "a/b",
            &"x".repeat(64),
            "6f2c2c1e-5b7a-4c1e-9a0e-3d2f1b0c9e8d",
        ] {
            assert!(!is_valid_tunnel_name(bad), "{bad}");
        }
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            normalize_hostname("App.Example.COM").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(
            normalize_hostname("*.example.com.").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(
            normalize_hostname("localhost").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            normalize_hostname("a-1.b2.example").as_deref(),
            Some("a-1.b2.example")
        );
        for bad in [
            "",
            "*.",
            "*",
            "a..b",
            "-a.example.com",
            "a-.example.com",
            "a_b.example.com",
            "app.*.example.com",
            "**.example.com",
            "http://app.example.com",
            "app.example.com:443",
            "10.0.0.1",
            &format!("{}.com", "a".repeat(64)),
            &format!("{}com", "a.".repeat(130)),
        ] {
            assert_eq!(normalize_hostname(bad), None, "{bad}");
        }
    }
}
