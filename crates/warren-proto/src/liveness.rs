//! Keep-alive and dead-path detection on the control stream, independent
//! of the transport.
//!
//! Each side of a tunnel connection registered at a version with
//! keep-alive ([`crate::has_keepalive`]) runs one [`Liveness`]:
//!
//! - it sends `Ping(n)` when it has sent nothing on the control stream but
//!   `Pong`s for [`LivenessConfig::keep_alive`], so the peer always hears
//!   from it at least that often;
//! - it answers every `Ping(n)` with `Pong(n)`, and takes a round-trip
//!   time sample from each `Pong` that answers one of its own pings.
//!   Pongs do not postpone its own pings: otherwise the side whose timer
//!   happens to fire second would only ever answer, and never measure;
//! - it declares the path dead when nothing has arrived for
//!   [`LivenessConfig::idle_timeout`].
//!
//! Because the peer sends at least every `keep_alive`, a live path never
//! goes quiet for longer than `keep_alive` plus the one-way delay; a
//! silent one is declared dead `idle_timeout` after the last bytes that
//! arrived, which is within `idle_timeout + keep_alive` of the last packet
//! the peer sent.
//!
//! # Call order
//!
//! [`crate::session::EdgeSession`] and [`crate::session::ConnectorSession`]
//! drive their own `Liveness`; a driver only reads it. Used on its own:
//!
//! 1. [`Liveness::new`] once the control stream is in use (after
//!    registration).
//! 2. For bytes that arrived on the control stream:
//!    [`Liveness::on_received`], then for each `Ping`/`Pong` in them
//!    [`Liveness::handle_ping`]/[`Liveness::handle_pong`].
//! 3. [`Liveness::poll_transmit`] until `None`, sending each message;
//!    [`Liveness::on_sent`] for anything else sent on the control stream.
//! 4. Wake at [`Liveness::poll_timeout`] and call
//!    [`Liveness::handle_timeout`]; then back to 3. Stop when
//!    [`Liveness::is_dead`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::control::ControlMessage;

/// Pongs owed to the peer that are kept; a peer that pings faster than we
/// send loses the oldest answers, not our memory.
const MAX_OWED_PONGS: usize = 16;
/// Our pings whose answer may still come (and give an RTT sample).
const MAX_PINGS_IN_FLIGHT: usize = 8;

/// The two timers of [`Liveness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// Send a `Ping` after this long without sending anything.
    pub keep_alive: Duration,
    /// Declare the path dead after this long without receiving anything.
    /// Must be well above `keep_alive` plus the round-trip time.
    pub idle_timeout: Duration,
}

impl Default for LivenessConfig {
    /// The QUIC transport's values: keep-alive 2 s, idle timeout 7 s.
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(7),
        }
    }
}

/// Keep-alive, RTT and dead-path state of one control stream. See the
/// [module docs](self) for the rules and the call order.
#[derive(Debug, Clone)]
pub struct Liveness {
    config: LivenessConfig,
    last_sent: Instant,
    last_received: Instant,
    ping_due: bool,
    next_ping: u64,
    owed_pongs: VecDeque<u64>,
    pings_in_flight: VecDeque<(u64, Instant)>,
    latest_rtt: Option<Duration>,
    smoothed_rtt: Option<Duration>,
    dead: bool,
}

impl Liveness {
    /// Starts both timers at `now`, as if something had just been sent and
    /// received.
    pub fn new(config: LivenessConfig, now: Instant) -> Self {
        Self {
            config,
            last_sent: now,
            last_received: now,
            ping_due: false,
            next_ping: 0,
            owed_pongs: VecDeque::new(),
            pings_in_flight: VecDeque::new(),
            latest_rtt: None,
            smoothed_rtt: None,
            dead: false,
        }
    }

    /// The timers in use.
    pub fn config(&self) -> LivenessConfig {
        self.config
    }

    /// Something other than what [`Liveness::poll_transmit`] returned was
    /// sent on the control stream at `now`.
    pub fn on_sent(&mut self, now: Instant) {
        self.last_sent = self.last_sent.max(now);
    }

    /// Bytes arrived on the control stream at `now` (any bytes, even part
    /// of a frame: they prove the path works).
    pub fn on_received(&mut self, now: Instant) {
        if !self.dead {
            self.last_received = self.last_received.max(now);
        }
    }

    /// When bytes last arrived.
    pub fn last_received(&self) -> Instant {
        self.last_received
    }

    /// The peer sent `Ping(id)`: owe it a `Pong(id)`.
    pub fn handle_ping(&mut self, id: u64) {
        if self.dead {
            return;
        }
        if self.owed_pongs.len() == MAX_OWED_PONGS {
            self.owed_pongs.pop_front();
        }
        self.owed_pongs.push_back(id);
    }

    /// The peer sent `Pong(id)` at `now`: if it answers one of our pings
    /// still in flight, take an RTT sample. Other numbers are ignored.
    pub fn handle_pong(&mut self, now: Instant, id: u64) {
        let Some(pos) = self.pings_in_flight.iter().position(|(n, _)| *n == id) else {
            return;
        };
        let (_, sent) = self.pings_in_flight[pos];
        // Older pings will not be answered now (the peer answers in order).
        self.pings_in_flight.drain(..=pos);
        let sample = now.saturating_duration_since(sent);
        self.latest_rtt = Some(sample);
        self.smoothed_rtt = Some(match self.smoothed_rtt {
            None => sample,
            Some(s) => (s * 7 + sample) / 8,
        });
    }

    /// The next keep-alive message to send at `now`, if any: owed pongs
    /// first, then a due ping (which restarts the keep-alive timer).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<ControlMessage> {
        if self.dead {
            return None;
        }
        if let Some(id) = self.owed_pongs.pop_front() {
            return Some(ControlMessage::Pong(id));
        }
        if self.ping_due {
            self.ping_due = false;
            let id = self.next_ping;
            self.next_ping = self.next_ping.wrapping_add(1);
            if self.pings_in_flight.len() == MAX_PINGS_IN_FLIGHT {
                self.pings_in_flight.pop_front();
            }
            self.pings_in_flight.push_back((id, now));
            self.on_sent(now);
            return Some(ControlMessage::Ping(id));
        }
        None
    }

    /// When [`Liveness::handle_timeout`] must next be called; `None` once
    /// the path is dead.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.dead {
            return None;
        }
        let dead_at = self.last_received + self.config.idle_timeout;
        if self.ping_due {
            return Some(dead_at);
        }
        Some(dead_at.min(self.last_sent + self.config.keep_alive))
    }

    /// Fires the timers due at `now`: declares the path dead, or makes a
    /// ping due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        if now >= self.last_received + self.config.idle_timeout {
            self.dead = true;
            self.ping_due = false;
            self.owed_pongs.clear();
            return;
        }
        if now >= self.last_sent + self.config.keep_alive {
            self.ping_due = true;
        }
    }

    /// Whether nothing arrived for the idle timeout.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The latest round-trip time sample.
    pub fn rtt(&self) -> Option<Duration> {
        self.latest_rtt
    }

    /// The round-trip time smoothed over samples (each new one weighs 1/8).
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.smoothed_rtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // the one real instant; time is advanced by hand
    fn base() -> Instant {
        Instant::now()
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pings_after_keep_alive_of_silence() {
        let t0 = base();
        let mut l = Liveness::new(LivenessConfig::default(), t0);
        assert_eq!(l.poll_transmit(t0), None);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        l.handle_timeout(t0 + Duration::from_secs(2));
        let t = t0 + Duration::from_secs(2);
        assert_eq!(l.poll_transmit(t), Some(ControlMessage::Ping(0)));
        assert_eq!(l.poll_transmit(t), None);
        // Sending restarted the keep-alive timer; the idle timer still
        // runs from t0.
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(4)));
    }

    #[test]
    fn sending_anything_postpones_the_ping() {
        let t0 = base();
        let mut l = Liveness::new(LivenessConfig::default(), t0);
        l.on_sent(t0 + 1500 * MS);
        l.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(l.poll_transmit(t0 + Duration::from_secs(2)), None);
        assert_eq!(l.poll_timeout(), Some(t0 + 3500 * MS));
    }

    #[test]
    fn answering_pings_does_not_postpone_its_own() {
        let t0 = base();
        let mut l = Liveness::new(LivenessConfig::default(), t0);
        l.handle_ping(5);
        let t = t0 + 1900 * MS;
        assert_eq!(l.poll_transmit(t), Some(ControlMessage::Pong(5)));
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn answers_pings_and_measures_rtt_from_its_own() {
        let t0 = base();
        let mut l = Liveness::new(LivenessConfig::default(), t0);
        l.handle_ping(41);
        assert_eq!(l.poll_transmit(t0), Some(ControlMessage::Pong(41)));
        l.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(
            l.poll_transmit(t0 + Duration::from_secs(2)),
            Some(ControlMessage::Ping(0))
        );
        l.handle_pong(t0 + Duration::from_secs(2) + 80 * MS, 99);
        assert_eq!(l.rtt(), None, "a pong for a ping never sent is ignored");
        l.handle_pong(t0 + Duration::from_secs(2) + 80 * MS, 0);
        assert_eq!(l.rtt(), Some(80 * MS));
        assert_eq!(l.smoothed_rtt(), Some(80 * MS));
        l.handle_pong(t0 + Duration::from_secs(3), 0);
        assert_eq!(l.rtt(), Some(80 * MS), "answered pings count once");
    }

    #[test]
    fn dead_after_idle_timeout_without_receiving() {
        let t0 = base();
        let cfg = LivenessConfig::default();
        let mut l = Liveness::new(cfg, t0);
        l.on_received(t0 + Duration::from_secs(1));
        let mut now = t0;
        while let Some(t) = l.poll_timeout() {
            now = t;
            l.handle_timeout(now);
            while l.poll_transmit(now).is_some() {}
        }
        assert!(l.is_dead());
        assert_eq!(now, t0 + Duration::from_secs(1) + cfg.idle_timeout);
        l.handle_ping(1);
        assert_eq!(l.poll_transmit(now), None, "a dead path sends nothing");
    }

    #[test]
    fn owed_pongs_are_bounded() {
        let t0 = base();
        let mut l = Liveness::new(LivenessConfig::default(), t0);
        for id in 0..100 {
            l.handle_ping(id);
        }
        let mut sent = Vec::new();
        while let Some(m) = l.poll_transmit(t0) {
            sent.push(m);
        }
        assert_eq!(sent.len(), MAX_OWED_PONGS);
        assert_eq!(sent.last(), Some(&ControlMessage::Pong(99)));
    }
}
