//! Cancel keys of open PostgreSQL sessions: psql ≤ 16 sends a
//! `CancelRequest` in plaintext on a new connection, naming only the
//! backend's pid and key; this table finds the hostname (so the route and
//! connector) of the session it cancels. A pooled client was given a key
//! Warren made ([`CancelKeys::fresh_key`]); its entry names the backend
//! its query runs on at that moment, if any.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use warren_pg::startup::CancelKey;

use super::pool::client::CurrentKey;

/// Most cancel keys remembered (one per open session).
const MAX_CANCEL_KEYS: usize = 100_000;

type Table = Mutex<HashMap<(u32, Vec<u8>), Target>>;

/// Where a cancel key leads.
enum Target {
    /// A spliced session: the key is the backend's own.
    Host(String),
    /// A pooled client: the backend of the connection it holds now.
    Pooled { host: String, current: CurrentKey },
}

/// What a cancel request should be sent as.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cancel {
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) key: CancelKey,
}

/// The open sessions' cancel keys.
#[derive(Default)]
pub(crate) struct CancelKeys {
    table: Arc<Table>,
}

impl CancelKeys {
    /// Remembers that `(pid, key)` belongs to a session on `host`, until
    /// the guard drops.
    pub(crate) fn remember(&self, pid: u32, key: &[u8], host: &str) -> CancelKeyGuard {
        self.insert(pid, key, Target::Host(host.to_owned()))
    }

    /// Remembers a pooled client's key: a cancel request with it goes to
    /// the backend `current` names at that moment.
    pub(crate) fn remember_pooled(
        &self,
        pid: u32,
        key: &[u8],
        host: &str,
        current: CurrentKey,
    ) -> CancelKeyGuard {
        let target = Target::Pooled {
            host: host.to_owned(),
            current,
        };
        self.insert(pid, key, target)
    }

    /// A process id and key no open session has, for a pooled client.
    pub(crate) fn fresh_key(&self) -> (u32, CancelKey) {
        loop {
            let pid = rand::random::<u32>() | 1;
            let key: [u8; 4] = rand::random();
            if !self
                .table
                .lock()
                .expect("cancel keys")
                .contains_key(&(pid, key.to_vec()))
            {
                let key =
                    CancelKey::new(Bytes::copy_from_slice(&key)).expect("4 bytes is a valid key");
                return (pid, key);
            }
        }
    }

    fn insert(&self, pid: u32, key: &[u8], target: Target) -> CancelKeyGuard {
        let mut map = self.table.lock().expect("cancel keys");
        if map.len() >= MAX_CANCEL_KEYS {
            tracing::warn!("too many PostgreSQL cancel keys remembered; forgetting them all");
            map.clear();
        }
        map.insert((pid, key.to_vec()), target);
        CancelKeyGuard {
            table: Arc::downgrade(&self.table),
            key: (pid, key.to_vec()),
        }
    }

    /// Where a cancel request with `(pid, key)` should go: the session's
    /// hostname and the backend's key. `None`: no such session, or a
    /// pooled client with no query running.
    pub(crate) fn target_of(&self, pid: u32, key: &CancelKey) -> Option<Cancel> {
        let map = self.table.lock().expect("cancel keys");
        match map.get(&(pid, key.as_bytes().to_vec()))? {
            Target::Host(host) => Some(Cancel {
                host: host.clone(),
                pid,
                key: key.clone(),
            }),
            Target::Pooled { host, current } => {
                let (pid, key) = current.lock().expect("current key").clone()?;
                Some(Cancel {
                    host: host.clone(),
                    pid,
                    key,
                })
            }
        }
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
        let k = |b: &'static [u8]| CancelKey::new(Bytes::from_static(b)).unwrap();
        assert_eq!(
            keys.target_of(7, &k(b"abcd")),
            Some(Cancel {
                host: "db.example.com".into(),
                pid: 7,
                key: k(b"abcd")
            })
        );
        assert_eq!(keys.target_of(7, &k(b"abce")), None);
        drop(g);
        assert_eq!(keys.target_of(7, &k(b"abcd")), None);
        assert_eq!(keys.len(), 0);
    }

    #[test]
    fn a_pooled_key_leads_to_the_backend_of_the_moment() {
        let keys = CancelKeys::default();
        let (pid, key) = keys.fresh_key();
        let current = CurrentKey::default();
        let _g = keys.remember_pooled(pid, key.as_bytes(), "db.example.com", current.clone());
        assert_eq!(keys.target_of(pid, &key), None, "no query running");
        let backend = CancelKey::new(Bytes::from_static(b"real")).unwrap();
        *current.lock().unwrap() = Some((99, backend.clone()));
        assert_eq!(
            keys.target_of(pid, &key),
            Some(Cancel {
                host: "db.example.com".into(),
                pid: 99,
                key: backend
            })
        );
        *current.lock().unwrap() = None;
        assert_eq!(keys.target_of(pid, &key), None);
        assert_ne!(keys.fresh_key(), (pid, key));
    }
}
