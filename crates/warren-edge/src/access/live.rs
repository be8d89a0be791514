//! Long-lived connections and the grants they were opened under, so a
//! revocation or policy change can close them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::Who;

/// What a connection was allowed as.
#[derive(Debug, Clone)]
pub struct Watched {
    pub who: Who,
    pub host: String,
    pub path: String,
    pub source: SocketAddr,
}

struct Entry {
    watched: Watched,
    cancel: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

type Table = Arc<Mutex<HashMap<u64, Entry>>>;

/// The open connections of one edge process.
#[derive(Default)]
pub(super) struct Live {
    table: Table,
    next: AtomicU64,
}

impl Live {
    pub(super) fn add(&self, watched: Watched) -> LiveHandle {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let reason = Arc::new(Mutex::new(None));
        self.table.lock().expect("live table lock").insert(
            id,
            Entry {
                watched,
                cancel: cancel.clone(),
                reason: reason.clone(),
            },
        );
        LiveHandle {
            id,
            table: Arc::downgrade(&self.table),
            cancel,
            reason,
        }
    }

    /// Closes every connection for which `verdict` gives a reason.
    pub(super) fn recheck(&self, verdict: impl Fn(&Watched) -> Option<String>) {
        let table = self.table.lock().expect("live table lock");
        for e in table.values() {
            if e.cancel.is_cancelled() {
                continue;
            }
            if let Some(why) = verdict(&e.watched) {
                tracing::info!(host = %e.watched.host, identity = %e.watched.who.label(), reason = %why, "closing a connection its access no longer allows");
                *e.reason.lock().expect("reason lock") = Some(why);
                e.cancel.cancel();
            }
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.table.lock().expect("live table lock").len()
    }
}

/// A registered connection; dropping it unregisters.
pub struct LiveHandle {
    id: u64,
    table: std::sync::Weak<Mutex<HashMap<u64, Entry>>>,
    cancel: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl LiveHandle {
    /// Resolves when access to the connection is withdrawn.
    pub async fn revoked(&self) {
        self.cancel.cancelled().await;
    }

    /// Why access was withdrawn, once it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().expect("reason lock").clone()
    }
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        if let Some(t) = self.table.upgrade() {
            t.lock().expect("live table lock").remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recheck_cancels_only_what_the_verdict_refuses() {
        let live = Live::default();
        let w = |host: &str| Watched {
            who: Who::default(),
            host: host.into(),
            path: "/".into(),
            source: "127.0.0.1:1".parse().unwrap(),
        };
        let a = live.add(w("a.example.com"));
        let b = live.add(w("b.example.com"));
        live.recheck(|w| (w.host == "a.example.com").then(|| "session revoked".to_owned()));
        tokio::time::timeout(std::time::Duration::from_secs(1), a.revoked())
            .await
            .unwrap();
        assert_eq!(a.reason().as_deref(), Some("session revoked"));
        assert!(b.reason().is_none());
        assert_eq!(live.len(), 2);
        drop(a);
        assert_eq!(live.len(), 1);
    }
}
