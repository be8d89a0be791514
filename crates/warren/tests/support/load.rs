//! A bounded load loop of curls through the edge, for failover tests.

use super::{eventually, Edge, DEADLINE};

/// Outcome of one request of a [`load`] loop.
pub struct LoadResult {
    pub started: tokio::time::Instant,
    pub status: u16,
    pub detail: String,
}

/// A bounded load loop started by [`load`].
pub struct Load {
    pub run: tokio::task::JoinHandle<Vec<LoadResult>>,
    /// Requests finished so far.
    pub done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Load {
    /// Waits until `n` more requests have finished.
    pub async fn progress(&self, n: usize) {
        use std::sync::atomic::Ordering;
        let target = self.done.load(Ordering::SeqCst) + n;
        eventually(&format!("{n} more requests"), DEADLINE, || async {
            (self.done.load(Ordering::SeqCst) >= target).then_some(())
        })
        .await
    }

    /// Stops the loop and returns every request's outcome.
    pub async fn finish(self) -> Vec<LoadResult> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.run.await.unwrap()
    }
}

/// Runs `workers` loops of sequential `GET host path` through the edge
/// until [`Load::finish`], at most `max_each` requests per worker.
pub fn load(edge: &Edge, host: &str, path: &str, workers: usize, max_each: usize) -> Load {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let target = edge.https_target();
    let (host, path) = (host.to_owned(), path.to_owned());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let (stop2, done2) = (stop.clone(), done.clone());
    let run = tokio::spawn(async move {
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (target, host, path) = (target.clone(), host.clone(), path.clone());
            let (stop, done) = (stop2.clone(), done2.clone());
            handles.push(tokio::spawn(async move {
                let mut out = Vec::new();
                while out.len() < max_each && !stop.load(Ordering::SeqCst) {
                    let started = tokio::time::Instant::now();
                    let r = target.curl(&host, &path, &[]).await;
                    out.push(LoadResult {
                        started,
                        status: r.status,
                        detail: format!("{} {}", r.status, r.stderr.trim()),
                    });
                    done.fetch_add(1, Ordering::SeqCst);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all
    });
    Load { run, done, stop }
}
