//! Writing the audit log from the request path without blocking it.
//!
//! [`AuditSink::record`] puts an entry on a bounded queue; one writer task
//! appends what has queued up in a single transaction (so a burst costs one
//! fsync, not one per entry) and prunes entries older than the retention
//! once an hour. When the queue is full, `record` waits: audit entries are
//! never dropped, and the wait is at the end of a connection, not in the
//! middle of its bytes.

use std::time::Duration;

use tokio::sync::mpsc;
use warren_store::{AuditEntry, Store};

/// Entries that may wait for the writer.
const QUEUE: usize = 4096;
/// Most entries written in one transaction.
const BATCH: usize = 512;
/// How often old entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Where the request path sends audit entries.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditEntry>,
}

impl AuditSink {
    /// Starts the writer for `store`, keeping entries for `retention`.
    pub fn start(store: Store, retention: Duration) -> AuditSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, rx, retention));
        AuditSink { tx }
    }

    /// Queues one entry.
    pub async fn record(&self, entry: AuditEntry) {
        if self.tx.send(entry).await.is_err() {
            tracing::error!("the audit writer has stopped; an entry was not recorded");
        }
    }
}

async fn write(store: Store, mut rx: mpsc::Receiver<AuditEntry>, retention: Duration) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return;
                }
                if let Err(e) = store.append_audit(&batch).await {
                    tracing::error!(entries = batch.len(), "cannot write the audit log: {e}");
                }
                batch.clear();
            }
            _ = prune.tick() => {
                let cutoff = now() - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
                match store.prune_audit(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(entries = n, "pruned audit entries older than the retention"),
                    Err(e) => tracing::error!("cannot prune the audit log: {e}"),
                }
            }
        }
    }
}

/// Unix seconds.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
