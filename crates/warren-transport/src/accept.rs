//! What an accept loop does when `accept()` fails: wait, longer each time,
//! and say so in the log once per interval rather than once per failure.
//!
//! `accept()` fails mostly when the process is out of file descriptors
//! (`EMFILE`); retrying at once burns a core and floods the log while
//! nothing can get better until connections close, and giving up (a `?`)
//! takes down a listener whose clients will soon be back. Used by the
//! edge's listeners and by `warren access tcp`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// First wait after a failed accept.
const FIRST_WAIT: Duration = Duration::from_millis(10);
/// Longest wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// At most one log line per listener and condition per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Says whether a log line is due: the first time, then once per
/// [`LOG_EVERY`], counting the occurrences it did not log.
#[derive(Debug, Default)]
pub struct LogEvery {
    logged: Option<Instant>,
    unlogged: u64,
}

impl LogEvery {
    /// One more occurrence at `now`: `Some(occurrences since the last
    /// line)` when a line is due.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        let due = self.logged.is_none_or(|t| now >= t + LOG_EVERY);
        due.then(|| {
            self.logged = Some(now);
            std::mem::take(&mut self.unlogged)
        })
    }
}

/// The state of one listener's failed accepts.
#[derive(Debug)]
pub struct AcceptBackoff {
    wait: Duration,
    log: LogEvery,
}

/// What to do after a failed accept.
#[derive(Debug, PartialEq, Eq)]
pub struct AfterFailure {
    /// How long to wait before accepting again.
    pub wait: Duration,
    /// `Some(failures since the last line)` when a line is due now.
    pub log: Option<u64>,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self::new()
    }
}

impl AcceptBackoff {
    pub fn new() -> Self {
        AcceptBackoff {
            wait: FIRST_WAIT,
            log: LogEvery::default(),
        }
    }

    /// A connection was accepted: the next failure waits briefly again.
    pub fn succeeded(&mut self) {
        self.wait = FIRST_WAIT;
    }

    /// An accept failed at `now`.
    pub fn failed(&mut self, now: Instant) -> AfterFailure {
        let wait = self.wait;
        self.wait = (self.wait * 2).min(MAX_WAIT);
        AfterFailure {
            wait,
            log: self.log.due(now),
        }
    }
}

/// Accepts the next connection on `listener` (named `what` in the log),
/// waiting out failures. Cancel-safe: dropping it loses no connection.
pub async fn accept(
    listener: &TcpListener,
    backoff: &mut AcceptBackoff,
    what: &str,
) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(a) => {
                backoff.succeeded();
                return a;
            }
            Err(e) => {
                let after = backoff.failed(Instant::now());
                if let Some(n) = after.log {
                    tracing::warn!(
                        listener = what,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_a_second_and_reset_after_a_success() {
        let mut b = AcceptBackoff::new();
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
        let mut b = AcceptBackoff::new();
        let t = Instant::now();
        assert_eq!(b.failed(t).log, Some(1));
        for i in 1..100 {
            assert_eq!(b.failed(t + Duration::from_millis(i)).log, None);
        }
        assert_eq!(b.failed(t + LOG_EVERY).log, Some(100));
        assert_eq!(b.failed(t + LOG_EVERY).log, None);
    }
}
