//! The in-memory hostname route table the request path reads.
//!
//! Routes live in the store; this is a read-mostly copy that the admin API
//! reloads after every change, so the data path never touches SQL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warren_store::{Store, StoreError};

/// Where a hostname goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub tunnel_id: String,
    pub tunnel_name: String,
}

/// Hostname → tunnel, exact names and `*.suffix` wildcards.
#[derive(Clone, Default)]
pub struct RouteTable {
    inner: Arc<RwLock<Table>>,
}

#[derive(Default)]
struct Table {
    exact: HashMap<String, Route>,
    /// `*.example.com` is stored as `example.com`.
    wildcard: HashMap<String, Route>,
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the table with the store's routes.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let routes = store.list_routes().await?;
        let mut t = Table::default();
        for r in routes {
            let route = Route {
                tunnel_id: r.tunnel_id,
                tunnel_name: r.tunnel_name,
            };
            let host = r.hostname.to_ascii_lowercase();
            match host.strip_prefix("*.") {
                Some(suffix) => t.wildcard.insert(suffix.to_owned(), route),
                None => t.exact.insert(host, route),
            };
        }
        *self.inner.write().expect("route table lock") = t;
        Ok(())
    }

    /// The route for a hostname (lower-case, no port): an exact route wins,
    /// then the longest wildcard suffix.
    pub fn lookup(&self, host: &str) -> Option<Route> {
        let t = self.inner.read().expect("route table lock");
        if let Some(r) = t.exact.get(host) {
            return Some(r.clone());
        }
        let mut rest = host;
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(r) = t.wildcard.get(suffix) {
                return Some(r.clone());
            }
            rest = suffix;
        }
        None
    }

    /// Whether any route covers the hostname (used to decide whether to
    /// issue a certificate for it).
    pub fn covers(&self, host: &str) -> bool {
        self.lookup(host).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> RouteTable {
        let rt = RouteTable::new();
        {
            let mut t = rt.inner.write().unwrap();
            for (h, tun) in entries {
                let r = Route {
                    tunnel_id: tun.to_string(),
                    tunnel_name: tun.to_string(),
                };
                match h.strip_prefix("*.") {
                    Some(s) => t.wildcard.insert(s.into(), r),
                    None => t.exact.insert(h.to_string(), r),
                };
            }
        }
        rt
    }

    #[test]
    fn exact_beats_wildcard_and_longest_suffix_wins() {
        let rt = table(&[
            ("app.example.com", "a"),
            ("*.example.com", "b"),
            ("*.dev.example.com", "c"),
        ]);
        assert_eq!(rt.lookup("app.example.com").unwrap().tunnel_id, "a");
        assert_eq!(rt.lookup("x.example.com").unwrap().tunnel_id, "b");
        assert_eq!(rt.lookup("x.dev.example.com").unwrap().tunnel_id, "c");
        assert!(rt.lookup("example.com").is_none());
        assert!(rt.lookup("other.org").is_none());
    }
}
