//! Noticing a dead peer from the traffic itself, long before the idle
//! timeout: packets that ask for an answer (anything but a bare
//! acknowledgement) went out, and nothing at all has come back for much
//! longer than a round trip.
//!
//! A live peer's transport acknowledges an ack-eliciting packet within a
//! round trip plus its acknowledgement delay, whatever its application is
//! doing; so "sent something that needs an answer, heard nothing since for
//! [`AnsweredConfig::min_wait`] (or a few round trips, if longer)" is a
//! dead or cut-off peer. Used by the edge so new streams stop going to a
//! killed replica's connections within a second, and the ones caught on
//! them are retried elsewhere, instead of waiting for the idle timeout.
//!
//! The driver samples the transport's counters (ack-eliciting frames sent,
//! datagrams received, the round-trip estimate) every
//! [`AnsweredConfig::sample_every`] and feeds them to [`Answered::observe`]
//! with the time: no IO, no clock.

use std::time::{Duration, Instant};

/// The rule's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnsweredConfig {
    /// How often the driver samples the counters.
    pub sample_every: Duration,
    /// Waiting this long for any answer to something that needs one
    /// declares the peer unresponsive (or [`AnsweredConfig::rtts`] round
    /// trips, when that is longer).
    pub min_wait: Duration,
    /// Round trips to wait at least, for slow paths.
    pub rtts: u32,
}

/// A sample that comes this many intervals after the one before says this
/// end was not running (a starved process, a suspended machine): its
/// transport may not have read what arrived meanwhile, so the wait starts
/// again rather than blaming the peer.
const LATE_SAMPLE: u32 = 3;

impl Default for AnsweredConfig {
    fn default() -> Self {
        AnsweredConfig {
            sample_every: Duration::from_millis(100),
            min_wait: Duration::from_millis(500),
            rtts: 4,
        }
    }
}

/// The transport's counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames sent that the peer must acknowledge (everything but bare
    /// acknowledgements), since the connection started.
    pub eliciting_sent: u64,
    /// Datagrams received since the connection started.
    pub received: u64,
    /// The transport's smoothed round-trip estimate.
    pub rtt: Duration,
}

/// One connection's answered-or-not state.
#[derive(Debug, Clone)]
pub struct Answered {
    config: AnsweredConfig,
    last: Counters,
    /// When the oldest send still without any answer after it was seen.
    waiting_since: Option<Instant>,
    /// When the last sample was taken.
    sampled_at: Option<Instant>,
}

impl Answered {
    /// A connection whose counters are `start` now.
    pub fn new(config: AnsweredConfig, start: Counters) -> Self {
        Answered {
            config,
            last: start,
            waiting_since: None,
            sampled_at: None,
        }
    }

    /// The counters at `now`. `Some(how long it has waited)` once the peer
    /// has left something unanswered for longer than the rule allows.
    ///
    /// Anything received answers everything seen sent before it; when both
    /// moved since the last sample, the send is taken to be the later one
    /// (waiting starts now), so a reply is never missed. A sample much later
    /// than [`AnsweredConfig::sample_every`] after the one before restarts
    /// the wait: this end was not running, so it cannot tell.
    pub fn observe(&mut self, now: Instant, c: Counters) -> Option<Duration> {
        let late = self.sampled_at.is_some_and(|at| {
            now.saturating_duration_since(at) > self.config.sample_every * LATE_SAMPLE
        });
        self.sampled_at = Some(now);
        if c.received != self.last.received {
            self.waiting_since = None;
        }
        if late && self.waiting_since.is_some() {
            self.waiting_since = Some(now);
        }
        if c.eliciting_sent != self.last.eliciting_sent && self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
        self.last = c;
        let waited = now.saturating_duration_since(self.waiting_since?);
        let allowed = self.config.min_wait.max(c.rtt * self.config.rtts);
        (waited > allowed).then_some(waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[allow(clippy::disallowed_methods)] // the one real instant; time is advanced by hand
    fn start() -> Instant {
        Instant::now()
    }

    fn c(sent: u64, received: u64) -> Counters {
        Counters {
            eliciting_sent: sent,
            received,
            rtt: Duration::from_millis(1),
        }
    }

    #[test]
    fn a_peer_that_answers_is_never_unresponsive() {
        let t0 = start();
        let mut a = Answered::new(AnsweredConfig::default(), c(0, 0));
        for i in 1..100u64 {
            // A send, answered by the next sample.
            assert_eq!(a.observe(at(t0, i * 100), c(i, i - 1)), None);
        }
    }

    #[test]
    fn an_idle_connection_is_not_unresponsive() {
        let t0 = start();
        let mut a = Answered::new(AnsweredConfig::default(), c(5, 5));
        for i in 1..100 {
            assert_eq!(a.observe(at(t0, i * 100), c(5, 5)), None);
        }
    }

    #[test]
    fn our_bare_acks_do_not_count_as_waiting() {
        // The peer sent data and went idle; we only acknowledged (no
        // eliciting frame counted): not a reason to wait.
        let t0 = start();
        let mut a = Answered::new(AnsweredConfig::default(), c(3, 10));
        assert_eq!(a.observe(at(t0, 100), c(3, 20)), None);
        for i in 2..50 {
            assert_eq!(a.observe(at(t0, i * 100), c(3, 20)), None);
        }
    }

    #[test]
    fn a_send_left_unanswered_past_the_wait_is_unresponsive() {
        let t0 = start();
        let mut a = Answered::new(AnsweredConfig::default(), c(10, 10));
        assert_eq!(a.observe(at(t0, 100), c(11, 10)), None);
        assert_eq!(a.observe(at(t0, 400), c(12, 10)), None);
        assert_eq!(a.observe(at(t0, 600), c(12, 10)), None, "500 ms is allowed");
        assert_eq!(
            a.observe(at(t0, 700), c(13, 10)),
            Some(Duration::from_millis(600)),
            "measured from the first unanswered send"
        );
    }

    #[test]
    fn anything_received_resets_the_wait() {
        let t0 = start();
        let mut a = Answered::new(AnsweredConfig::default(), c(0, 0));
        assert_eq!(a.observe(at(t0, 100), c(1, 0)), None);
        assert_eq!(a.observe(at(t0, 500), c(1, 1)), None);
        assert_eq!(a.observe(at(t0, 1000), c(1, 1)), None, "answered");
    }

    #[test]
    fn a_late_sample_restarts_the_wait() {
        // This end was starved for two seconds: the peer's answers may be
        // sitting unread in the socket, so that is no reason to give up.
        let t0 = start();
        let mut a = Answered::new(AnsweredConfig::default(), c(10, 10));
        assert_eq!(a.observe(at(t0, 100), c(11, 10)), None);
        assert_eq!(a.observe(at(t0, 2100), c(11, 10)), None, "late: restarted");
        for ms in (2200..=2600).step_by(100) {
            assert_eq!(a.observe(at(t0, ms), c(11, 10)), None, "500 ms is allowed");
        }
        assert!(
            a.observe(at(t0, 2700), c(11, 10)).is_some(),
            "samples on time again: a silent peer is still noticed"
        );
    }

    #[test]
    fn slow_paths_get_a_few_round_trips() {
        let t0 = start();
        let slow = |sent, received| Counters {
            eliciting_sent: sent,
            received,
            rtt: Duration::from_millis(300),
        };
        let mut a = Answered::new(AnsweredConfig::default(), slow(0, 0));
        assert_eq!(a.observe(at(t0, 0), slow(1, 0)), None);
        for ms in (100..=1200).step_by(100) {
            assert_eq!(a.observe(at(t0, ms), slow(1, 0)), None, "4 × 300 ms");
        }
        assert!(a.observe(at(t0, 1300), slow(1, 0)).is_some());
    }
}
