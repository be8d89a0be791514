//! The retry decision: after a stream (or an origin request) failed, may it
//! be tried again somewhere else?
//!
//! Two places ask: the edge's stream opener (another connection of the
//! tunnel) and the connector's pool failover (another origin of the pool).
//! Both describe what happened as a [`Failure`], say whether the request
//! may be sent twice, and get a [`Verdict`]:
//!
//! | failure                                   | verdict                                      |
//! |-------------------------------------------|----------------------------------------------|
//! | [`Failure::Unreached`]: nothing reached the peer | retry elsewhere                        |
//! | [`Failure::Answered`] with a code that [`ErrorCode::is_retryable_elsewhere`] | retry elsewhere, mark that connection draining |
//! | [`Failure::Answered`], any other code     | give up                                      |
//! | [`Failure::Broken`], replay-safe request  | retry elsewhere (a replay)                   |
//! | [`Failure::Broken`], not replay-safe      | give up                                      |
//! | [`Failure::TimedOut`]                     | give up                                      |
//!
//! [`decide`] is that table and nothing else. [`RetryBudget`] adds the
//! limits: how many retries of each [`RetryReason`] one request may spend
//! ([`RetryLimits`]).
//!
//! A request is **replay-safe** when the peer may see it twice without
//! harm: an idempotent HTTP method with no body, or a TCP stream whose
//! client has sent nothing yet.

use crate::stream::ErrorCode;

/// What went wrong with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing reached the peer: the stream could not be opened or its
    /// header not written, or the origin could not be connected to.
    Unreached,
    /// The peer answered with an error code.
    Answered(ErrorCode),
    /// The stream broke after the request went out and before any answer
    /// came back; the peer may have acted on it.
    Broken,
    /// No answer came within the deadline.
    TimedOut,
}

/// Why a retry is allowed; each reason has its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// Nothing reached the peer.
    Unreached,
    /// The peer is draining (it answered `ShuttingDown`).
    PeerDraining,
    /// The stream broke before an answer and the request is replay-safe.
    Replay,
}

impl RetryReason {
    /// Whether the caller must stop choosing the connection that failed
    /// for new streams before retrying.
    pub fn marks_draining(self) -> bool {
        matches!(self, Self::PeerDraining)
    }
}

/// Why no retry is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The failure is final: the peer's answer stands, or the deadline
    /// passed.
    Final,
    /// The stream broke, and the request may not be sent twice.
    NotReplaySafe,
    /// The limit for this reason is spent.
    Exhausted(RetryReason),
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again on a connection (or origin) not tried yet; first mark the
    /// failed connection draining if [`RetryReason::marks_draining`].
    Retry(RetryReason),
    /// Report the failure to the client.
    GiveUp(GiveUp),
}

/// The retry rule, without limits: see the module table.
pub fn decide(failure: Failure, replay_safe: bool) -> Verdict {
    match failure {
        Failure::Unreached => Verdict::Retry(RetryReason::Unreached),
        Failure::Answered(code) if code.is_retryable_elsewhere() => {
            Verdict::Retry(RetryReason::PeerDraining)
        }
        Failure::Answered(_) | Failure::TimedOut => Verdict::GiveUp(GiveUp::Final),
        Failure::Broken if replay_safe => Verdict::Retry(RetryReason::Replay),
        Failure::Broken => Verdict::GiveUp(GiveUp::NotReplaySafe),
    }
}

/// How many retries of each reason one request may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryLimits {
    /// Retries after [`RetryReason::Unreached`].
    pub unreached: u8,
    /// Retries after [`RetryReason::PeerDraining`].
    pub peer_draining: u8,
    /// Retries after [`RetryReason::Replay`].
    pub replay: u8,
}

impl RetryLimits {
    /// The edge opening a data stream: up to three connections when
    /// nothing reached a connector, two draining connectors skipped, one
    /// replay.
    pub const EDGE_STREAM: RetryLimits = RetryLimits {
        unreached: 2,
        peer_draining: 2,
        replay: 1,
    };

    /// The connector's origin pool: one other origin when the first could
    /// not be connected to; an origin that was reached is never asked
    /// twice.
    pub const ORIGIN_POOL: RetryLimits = RetryLimits {
        unreached: 1,
        peer_draining: 0,
        replay: 0,
    };

    fn of(&self, reason: RetryReason) -> u8 {
        match reason {
            RetryReason::Unreached => self.unreached,
            RetryReason::PeerDraining => self.peer_draining,
            RetryReason::Replay => self.replay,
        }
    }
}

/// The retries one request has left. Create one per request; after each
/// failed attempt call [`RetryBudget::on_failure`] and retry only on
/// [`Verdict::Retry`].
#[derive(Debug, Clone)]
pub struct RetryBudget {
    limits: RetryLimits,
    spent: RetryLimits,
}

impl RetryBudget {
    /// A full budget.
    pub fn new(limits: RetryLimits) -> Self {
        Self {
            limits,
            spent: RetryLimits {
                unreached: 0,
                peer_draining: 0,
                replay: 0,
            },
        }
    }

    /// [`decide`] for this failure; a retry is then allowed only while its
    /// reason has retries left, and spends one.
    pub fn on_failure(&mut self, failure: Failure, replay_safe: bool) -> Verdict {
        let verdict = decide(failure, replay_safe);
        let Verdict::Retry(reason) = verdict else {
            return verdict;
        };
        let spent = match reason {
            RetryReason::Unreached => &mut self.spent.unreached,
            RetryReason::PeerDraining => &mut self.spent.peer_draining,
            RetryReason::Replay => &mut self.spent.replay,
        };
        if *spent >= self.limits.of(reason) {
            return Verdict::GiveUp(GiveUp::Exhausted(reason));
        }
        *spent += 1;
        verdict
    }

    /// Retries left for `reason`.
    pub fn remaining(&self, reason: RetryReason) -> u8 {
        self.limits.of(reason) - self.spent.of(reason)
    }

    /// Attempts made so far (the first one included), assuming every retry
    /// was taken.
    pub fn attempts(&self) -> u32 {
        1 + u32::from(self.spent.unreached)
            + u32::from(self.spent.peer_draining)
            + u32::from(self.spent.replay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_CODES: [ErrorCode; 9] = [
        ErrorCode::NoService,
        ErrorCode::OriginUnreachable,
        ErrorCode::OriginTimeout,
        ErrorCode::OriginTls,
        ErrorCode::OriginProtocol,
        ErrorCode::BadRequest,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::NoHealthyOrigin,
    ];

    #[test]
    fn decision_table() {
        use Failure::*;
        let retry = Verdict::Retry;
        let give_up = Verdict::GiveUp;
        let table = [
            (Unreached, false, retry(RetryReason::Unreached)),
            (Unreached, true, retry(RetryReason::Unreached)),
            (
                Answered(ErrorCode::ShuttingDown),
                false,
                retry(RetryReason::PeerDraining),
            ),
            (
                Answered(ErrorCode::ShuttingDown),
                true,
                retry(RetryReason::PeerDraining),
            ),
            (
                Answered(ErrorCode::OriginUnreachable),
                true,
                give_up(GiveUp::Final),
            ),
            (Answered(ErrorCode::Internal), true, give_up(GiveUp::Final)),
            (Broken, true, retry(RetryReason::Replay)),
            (Broken, false, give_up(GiveUp::NotReplaySafe)),
            (TimedOut, true, give_up(GiveUp::Final)),
            (TimedOut, false, give_up(GiveUp::Final)),
        ];
        for (failure, replay_safe, want) in table {
            assert_eq!(
                decide(failure, replay_safe),
                want,
                "{failure:?} {replay_safe}"
            );
        }
    }

    #[test]
    fn only_codes_retryable_elsewhere_are_retried() {
        for code in ALL_CODES {
            let retried = matches!(decide(Failure::Answered(code), true), Verdict::Retry(_));
            assert_eq!(retried, code.is_retryable_elsewhere(), "{code:?}");
        }
    }

    #[test]
    fn only_a_draining_peer_marks_its_connection() {
        assert!(RetryReason::PeerDraining.marks_draining());
        assert!(!RetryReason::Unreached.marks_draining());
        assert!(!RetryReason::Replay.marks_draining());
    }

    #[test]
    fn edge_budget_tries_three_connections_when_unreached() {
        let mut b = RetryBudget::new(RetryLimits::EDGE_STREAM);
        assert_eq!(
            b.on_failure(Failure::Unreached, false),
            Verdict::Retry(RetryReason::Unreached)
        );
        assert_eq!(
            b.on_failure(Failure::Unreached, false),
            Verdict::Retry(RetryReason::Unreached)
        );
        assert_eq!(b.attempts(), 3);
        assert_eq!(
            b.on_failure(Failure::Unreached, false),
            Verdict::GiveUp(GiveUp::Exhausted(RetryReason::Unreached))
        );
    }

    #[test]
    fn edge_budget_skips_two_draining_connectors_and_replays_once() {
        let mut b = RetryBudget::new(RetryLimits::EDGE_STREAM);
        let drain = Failure::Answered(ErrorCode::ShuttingDown);
        assert!(matches!(b.on_failure(drain, false), Verdict::Retry(_)));
        assert!(matches!(b.on_failure(drain, false), Verdict::Retry(_)));
        assert_eq!(
            b.on_failure(drain, false),
            Verdict::GiveUp(GiveUp::Exhausted(RetryReason::PeerDraining))
        );
        // The other reasons keep their own retries.
        assert_eq!(b.remaining(RetryReason::Replay), 1);
        assert_eq!(
            b.on_failure(Failure::Broken, true),
            Verdict::Retry(RetryReason::Replay)
        );
        assert_eq!(
            b.on_failure(Failure::Broken, true),
            Verdict::GiveUp(GiveUp::Exhausted(RetryReason::Replay))
        );
        assert_eq!(b.remaining(RetryReason::Unreached), 2);
    }

    #[test]
    fn a_final_failure_spends_nothing() {
        let mut b = RetryBudget::new(RetryLimits::EDGE_STREAM);
        assert_eq!(
            b.on_failure(Failure::TimedOut, true),
            Verdict::GiveUp(GiveUp::Final)
        );
        assert_eq!(
            b.on_failure(Failure::Broken, false),
            Verdict::GiveUp(GiveUp::NotReplaySafe)
        );
        assert_eq!(b.attempts(), 1);
    }

    #[test]
    fn pool_budget_tries_one_other_origin_only_when_unreached() {
        let mut b = RetryBudget::new(RetryLimits::ORIGIN_POOL);
        assert_eq!(
            b.on_failure(Failure::Broken, true),
            Verdict::GiveUp(GiveUp::Exhausted(RetryReason::Replay))
        );
        assert_eq!(
            b.on_failure(Failure::Unreached, false),
            Verdict::Retry(RetryReason::Unreached)
        );
        assert_eq!(
            b.on_failure(Failure::Unreached, false),
            Verdict::GiveUp(GiveUp::Exhausted(RetryReason::Unreached))
        );
    }
}
