//! Cancel keys of open PostgreSQL sessions: psql ≤ 16 sends a
//! `CancelRequest` in plaintext on a new connection, naming only the
//! backend's pid and key; this table finds the hostname (so the route and
//! connector) of the session it cancels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Most cancel keys remembered (one per open session).
const MAX_CANCEL_KEYS: usize = 100_000;

type Table = Mutex<HashMap<(u32, Vec<u8>), String>>;

/// The open sessions' cancel keys.
#[derive(Default)]
pub(crate) struct CancelKeys {
    table: Arc<Table>,
}

impl CancelKeys {
    /// Remembers that `(pid, key)` belongs to a session on `host`, until
    /// the guard drops.
    pub(crate) fn remember(&self, pid: u32, key: &[u8], host: &str) -> CancelKeyGuard {
        let mut map = self.table.lock().expect("cancel keys");
        if map.len() >= MAX_CANCEL_KEYS {
            tracing::warn!("too many PostgreSQL cancel keys remembered; forgetting them all");
            map.clear();
        }
        map.insert((pid, key.to_vec()), host.to_owned());
        CancelKeyGuard {
            table: Arc::downgrade(&self.table),
            key: (pid, key.to_vec()),
        }
    }

    /// The hostname of the session `(pid, key)` names.
    pub(crate) fn host_of(&self, pid: u32, key: &[u8]) -> Option<String> {
        self.table
            .lock()
            .expect("cancel keys")
            .get(&(pid, key.to_vec()))
            .cloned()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().expect("cancel keys").len()
    }
}

/// Keeps a cancel key known; dropping it forgets the key.
pub(crate) struct CancelKeyGuard {
    table: Weak<Table>,
    key: (u32, Vec<u8>),
}

impl Drop for CancelKeyGuard {
    fn drop(&mut self) {
        if let Some(t) = self.table.upgrade() {
            t.lock().expect("cancel keys").remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_known_while_its_guard_lives() {
        let keys = CancelKeys::default();
        let g = keys.remember(7, b"abcd", "db.example.com");
        assert_eq!(keys.host_of(7, b"abcd").as_deref(), Some("db.example.com"));
        assert_eq!(keys.host_of(7, b"abce"), None);
        drop(g);
        assert_eq!(keys.host_of(7, b"abcd"), None);
        assert_eq!(keys.len(), 0);
    }
}
