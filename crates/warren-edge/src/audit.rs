//! Writing the audit log from the request path without blocking it, and
//! without losing an entry.
//!
//! [`AuditSink::record`] puts an entry on a bounded queue; one writer task
//! appends what has queued up in a single transaction (so a burst costs one
//! fsync, not one per entry) and prunes entries older than the retention
//! once an hour. When the queue is full, `record` waits: the wait is at the
//! end of a connection, not in the middle of its bytes.
//!
//! When an append fails (the store is locked, read-only or full), the
//! writer keeps the batch and tries again with backoff until it is
//! written; nothing is dropped. Meanwhile [`AuditSink::admits`] says no, so
//! front ends refuse new connections that would need an entry rather than
//! serve them unaudited (`--audit-on-failure refuse`, the default), or keep
//! serving and queue (`serve`).
//!
//! Every session that will write an entry holds an [`Owed`] from its start
//! until it has queued the entry; at shutdown [`AuditSink::drain`] waits for
//! those, then for the queue to be written.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use warren_store::{AuditEntry, Store};

/// Entries that may wait for the writer.
const QUEUE: usize = 4096;
/// Most entries written in one transaction.
const BATCH: usize = 512;
/// How often old entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// First wait after a failed append; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// While appends keep failing, one log line per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the edge does with a new connection while the audit log cannot be
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnAuditFailure {
    /// Refuse it (503, or the PostgreSQL equivalent): nothing is served
    /// unaudited.
    #[default]
    Refuse,
    /// Serve it; its entry waits in the queue with the others.
    Serve,
}

/// Where the request path sends audit entries.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

struct Shared {
    /// False from a failed append until the next one succeeds.
    writable: AtomicBool,
    on_failure: OnAuditFailure,
    /// Sessions that have started and not yet queued their entry.
    owed: AtomicUsize,
    /// Notified when `owed` falls to 0.
    settled: Notify,
    /// Write latency and failures.
    metrics: Arc<crate::metrics::EdgeMetrics>,
}

// Nearly every message is an entry: boxing it would cost an allocation
// per entry to save space in the rare flush marker.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Entry(AuditEntry),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// Held by a session that will write an entry; dropped once it has.
pub(crate) struct Owed(Arc<Shared>);

impl Drop for Owed {
    fn drop(&mut self) {
        if self.0.owed.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

/// What [`AuditSink::drain`] could not finish in time.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    #[error("{0} sessions still had not recorded their entry")]
    Owed(usize),
    #[error("the queued entries were not all written (the audit log cannot be written)")]
    Unwritten,
}

impl AuditSink {
    /// Starts the writer for `store`, keeping entries for `retention`.
    pub(crate) fn start(
        store: Store,
        retention: Duration,
        on_failure: OnAuditFailure,
        metrics: Arc<crate::metrics::EdgeMetrics>,
    ) -> AuditSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            writable: AtomicBool::new(true),
            on_failure,
            owed: AtomicUsize::new(0),
            settled: Notify::new(),
            metrics,
        });
        tokio::spawn(write(store, rx, retention, shared.clone()));
        AuditSink { tx, shared }
    }

    /// Queues one entry, stamped now if it has no time yet (so an entry
    /// written late, after the store was locked, still says when it
    /// happened).
    pub async fn record(&self, mut entry: AuditEntry) {
        if entry.time == 0 {
            entry.time = now();
        }
        if self.tx.send(Msg::Entry(entry)).await.is_err() {
            tracing::error!("the audit writer has stopped; an entry was not recorded");
        }
    }

    /// Whether a new connection that will need an entry may start: the
    /// log is writable, or the operator chose to serve regardless.
    pub(crate) fn admits(&self) -> bool {
        self.shared.on_failure == OnAuditFailure::Serve
            || self.shared.writable.load(Ordering::Acquire)
    }

    /// Marks one more session as owing an entry, until the guard drops.
    pub(crate) fn owe(&self) -> Owed {
        self.shared.owed.fetch_add(1, Ordering::AcqRel);
        Owed(self.shared.clone())
    }

    /// At shutdown: waits for every session that owes an entry to queue it,
    /// then for everything queued to be written, all within `within`.
    pub async fn drain(&self, within: Duration) -> Result<(), DrainError> {
        let deadline = Instant::now() + within;
        loop {
            let settled = self.shared.settled.notified();
            let owed = self.shared.owed.load(Ordering::Acquire);
            if owed == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return Err(DrainError::Owed(self.shared.owed.load(Ordering::Acquire)));
            }
        }
        let (done, written) = oneshot::channel();
        let flushed =
            async { self.tx.send(Msg::Flush(done)).await.is_ok() && written.await.is_ok() };
        match tokio::time::timeout_at(deadline, flushed).await {
            Ok(true) => Ok(()),
            _ => Err(DrainError::Unwritten),
        }
    }
}

async fn write(
    store: Store,
    mut rx: mpsc::Receiver<Msg>,
    retention: Duration,
    shared: Arc<Shared>,
) {
    let mut msgs = Vec::with_capacity(BATCH);
    let mut entries = Vec::with_capacity(BATCH);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut msgs, BATCH) => {
                if n == 0 {
                    return;
                }
                let mut flushes = Vec::new();
                for msg in msgs.drain(..) {
                    match msg {
                        Msg::Entry(e) => entries.push(e),
                        Msg::Flush(done) => flushes.push(done),
                    }
                }
                // A flush is answered after the whole batch: everything
                // queued before it is in the batch or an earlier one.
                append_until_written(&store, &entries, &shared).await;
                entries.clear();
                for done in flushes {
                    let _ = done.send(());
                }
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

/// Appends `entries` (one transaction, so a failed try leaves nothing
/// behind), trying again with backoff until it succeeds.
async fn append_until_written(store: &Store, entries: &[AuditEntry], shared: &Shared) {
    let mut wait = RETRY_FIRST;
    let mut failures = 0u64;
    let mut logged: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let appended = store.append_audit(entries).await;
        shared
            .metrics
            .audit_write(started.elapsed(), appended.is_ok());
        match appended {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(
                        entries = entries.len(),
                        failures,
                        "the audit log can be written again; the held entries are written and new connections are let in"
                    );
                }
                shared.writable.store(true, Ordering::Release);
                return;
            }
            Err(e) => {
                failures += 1;
                let first = shared.writable.swap(false, Ordering::AcqRel);
                if first || logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    let what = match shared.on_failure {
                        OnAuditFailure::Refuse => "new connections are refused until it can",
                        OnAuditFailure::Serve => {
                            "connections are still served (--audit-on-failure serve) and their entries wait"
                        }
                    };
                    tracing::error!(
                        entries = entries.len(),
                        failures,
                        "cannot write the audit log ({e}); the entries are kept and the write is retried; {what}; check the data directory's disk and permissions"
                    );
                    logged = Some(Instant::now());
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str) -> AuditEntry {
        AuditEntry {
            kind: "connection".into(),
            hostname: host.into(),
            decision: "allow".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn drain_waits_for_owed_entries_then_writes_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let sink = AuditSink::start(
            store.clone(),
            PRUNE_EVERY,
            OnAuditFailure::Refuse,
            Default::default(),
        );
        let owed = sink.owe();
        let late = {
            let sink = sink.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                sink.record(entry("late.example.com")).await;
                drop(owed);
            })
        };
        sink.record(entry("early.example.com")).await;
        sink.drain(Duration::from_secs(30)).await.unwrap();
        late.await.unwrap();
        let hosts: Vec<_> = store
            .list_audit(&warren_store::AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.entry.hostname)
            .collect();
        assert!(hosts.contains(&"early.example.com".to_owned()), "{hosts:?}");
        assert!(hosts.contains(&"late.example.com".to_owned()), "{hosts:?}");
    }

    #[tokio::test]
    async fn drain_says_how_many_sessions_never_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let sink = AuditSink::start(
            store,
            PRUNE_EVERY,
            OnAuditFailure::Refuse,
            Default::default(),
        );
        let _a = sink.owe();
        let _b = sink.owe();
        assert_eq!(
            sink.drain(Duration::from_millis(20)).await,
            Err(DrainError::Owed(2))
        );
    }
}
