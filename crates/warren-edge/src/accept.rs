//! What every accept loop of the edge does when `accept()` fails: wait,
//! longer each time it fails again, and say so in the log once per
//! interval rather than once per failure.
//!
//! `accept()` fails mostly when the process is out of file descriptors
//! (`EMFILE`); retrying at once burns a core and floods the log while
//! nothing can get better until connections close.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// First wait after a failed accept.
const FIRST_WAIT: Duration = Duration::from_millis(10);
/// Longest wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// At most one log line per listener per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The state of one listener's failed accepts.
#[derive(Debug)]
pub(crate) struct AcceptBackoff {
    /// Which listener, for the log line.
    what: &'static str,
    wait: Duration,
    /// When the last line was logged, and failures since.
    logged: Option<Instant>,
    unlogged: u64,
}

/// What to do after a failed accept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AfterFailure {
    /// How long to wait before accepting again.
    pub(crate) wait: Duration,
    /// `Some(failures since the last line)` when a line is due now.
    pub(crate) log: Option<u64>,
}

impl AcceptBackoff {
    pub(crate) fn new(what: &'static str) -> Self {
        AcceptBackoff {
            what,
            wait: FIRST_WAIT,
            logged: None,
            unlogged: 0,
        }
    }

    /// A connection was accepted: the next failure waits briefly again.
    pub(crate) fn succeeded(&mut self) {
        self.wait = FIRST_WAIT;
    }

    /// An accept failed at `now`.
    pub(crate) fn failed(&mut self, now: Instant) -> AfterFailure {
        let wait = self.wait;
        self.wait = (self.wait * 2).min(MAX_WAIT);
        self.unlogged += 1;
        let due = self.logged.is_none_or(|t| now >= t + LOG_EVERY);
        let log = due.then(|| {
            self.logged = Some(now);
            std::mem::take(&mut self.unlogged)
        });
        AfterFailure { wait, log }
    }

    /// Accepts the next connection, waiting out failures.
    pub(crate) async fn accept(
        &mut self,
        listener: &TcpListener,
    ) -> (TcpStream, std::net::SocketAddr) {
        loop {
            match listener.accept().await {
                Ok(a) => {
                    self.succeeded();
                    return a;
                }
                Err(e) => {
                    let after = self.failed(Instant::now());
                    if let Some(n) = after.log {
                        tracing::warn!(
                            listener = self.what,
                            error = %e,
                            failures = n,
                            "accepting connections failed; waiting before the next attempt (out of file descriptors? raise `ulimit -n`)"
                        );
                    }
                    tokio::time::sleep(after.wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_a_second_and_reset_after_a_success() {
        let mut b = AcceptBackoff::new("test");
        let t = Instant::now();
        let waits: Vec<_> = (0..9).map(|_| b.failed(t).wait).collect();
        assert_eq!(waits[0], FIRST_WAIT);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*waits.last().unwrap(), MAX_WAIT);
        b.succeeded();
        assert_eq!(b.failed(t).wait, FIRST_WAIT);
    }

    #[test]
    fn one_line_per_interval_counting_what_it_did_not_log() {
        let mut b = AcceptBackoff::new("test");
        let t = Instant::now();
        assert_eq!(b.failed(t).log, Some(1));
        for i in 1..100 {
            assert_eq!(b.failed(t + Duration::from_millis(i)).log, None);
        }
        assert_eq!(b.failed(t + LOG_EVERY).log, Some(100));
        assert_eq!(b.failed(t + LOG_EVERY).log, None);
    }
}
