//! Application error codes the transport carries: why a tunnel connection
//! was closed ([`CloseCode`]) and why one stream was reset or stopped
//! ([`ResetCode`]).
//!
//! The values are part of the wire protocol (QUIC `CONNECTION_CLOSE` and
//! `RESET_STREAM`/`STOP_SENDING` application codes; the TCP fallback carries
//! the same numbers). Both ends name them from here, so a log line on one
//! side and the code the other side reads always agree.

use thiserror::Error;

/// A close or reset code this version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("unknown {what} code {code:#x}")]
pub struct UnknownCode {
    /// Which kind of code it was ("close" or "stream reset").
    pub what: &'static str,
    /// The number that arrived.
    pub code: u32,
}

/// Why a tunnel connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CloseCode {
    /// The connector closed the connection: it stopped, finished draining,
    /// or read a refusal.
    ConnectorStopped = 0x00,
    /// The edge refused the registration (after sending `Refused`).
    Refused = 0x10,
    /// The tunnel was deleted or its secret rotated.
    TunnelGone = 0x11,
    /// The edge is shutting down.
    EdgeShutdown = 0x12,
    /// Nothing arrived on the control stream for the idle timeout.
    PeerDead = 0x13,
    /// The peer broke the control-stream protocol (bad framing, a message
    /// out of place, the stream ended).
    ProtocolViolation = 0x14,
    /// Registration did not complete before its deadline.
    RegistrationTimeout = 0x15,
}

impl CloseCode {
    /// Every close code, in numeric order.
    pub const ALL: [CloseCode; 7] = [
        Self::ConnectorStopped,
        Self::Refused,
        Self::TunnelGone,
        Self::EdgeShutdown,
        Self::PeerDead,
        Self::ProtocolViolation,
        Self::RegistrationTimeout,
    ];

    /// The number on the wire.
    pub fn to_u32(self) -> u32 {
        self as u32
    }

    /// The code for a number from the wire.
    pub fn from_u32(code: u32) -> Result<Self, UnknownCode> {
        Self::ALL
            .into_iter()
            .find(|c| c.to_u32() == code)
            .ok_or(UnknownCode {
                what: "close",
                code,
            })
    }

    /// A few words for logs and for the close frame's reason bytes.
    pub fn description(self) -> &'static str {
        match self {
            Self::ConnectorStopped => "connector stopped",
            Self::Refused => "registration refused",
            Self::TunnelGone => "tunnel deleted or secret rotated",
            Self::EdgeShutdown => "edge shutting down",
            Self::PeerDead => "peer declared dead: nothing arrived within the idle timeout",
            Self::ProtocolViolation => "control stream protocol violation",
            Self::RegistrationTimeout => "registration timeout",
        }
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:#x})", self.description(), self.to_u32())
    }
}

/// Why one data stream was reset (`RESET_STREAM`) or its reading stopped
/// (`STOP_SENDING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ResetCode {
    /// The stream is no longer wanted: the client went away or its access
    /// was revoked.
    Cancelled = 0,
    /// A body could not be sent in full (the source failed mid-body).
    BodyIncomplete = 1,
}

impl ResetCode {
    /// Every reset code, in numeric order.
    pub const ALL: [ResetCode; 2] = [Self::Cancelled, Self::BodyIncomplete];

    /// The number on the wire.
    pub fn to_u32(self) -> u32 {
        self as u32
    }

    /// The code for a number from the wire.
    pub fn from_u32(code: u32) -> Result<Self, UnknownCode> {
        Self::ALL
            .into_iter()
            .find(|c| c.to_u32() == code)
            .ok_or(UnknownCode {
                what: "stream reset",
                code,
            })
    }

    /// A few words for logs.
    pub fn description(self) -> &'static str {
        match self {
            Self::Cancelled => "stream cancelled",
            Self::BodyIncomplete => "body not sent in full",
        }
    }
}

impl std::fmt::Display for ResetCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.description(), self.to_u32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_keep_their_wire_values() {
        let table = [
            (CloseCode::ConnectorStopped, 0x00),
            (CloseCode::Refused, 0x10),
            (CloseCode::TunnelGone, 0x11),
            (CloseCode::EdgeShutdown, 0x12),
            (CloseCode::PeerDead, 0x13),
            (CloseCode::ProtocolViolation, 0x14),
            (CloseCode::RegistrationTimeout, 0x15),
        ];
        assert_eq!(table.len(), CloseCode::ALL.len());
        for (code, wire) in table {
            assert_eq!(code.to_u32(), wire, "{code:?}");
            assert_eq!(CloseCode::from_u32(wire), Ok(code));
            assert!(!code.description().is_empty());
        }
    }

    #[test]
    fn reset_codes_keep_their_wire_values() {
        let table = [(ResetCode::Cancelled, 0), (ResetCode::BodyIncomplete, 1)];
        assert_eq!(table.len(), ResetCode::ALL.len());
        for (code, wire) in table {
            assert_eq!(code.to_u32(), wire, "{code:?}");
            assert_eq!(ResetCode::from_u32(wire), Ok(code));
        }
    }

    #[test]
    fn unknown_numbers_are_errors() {
        for n in [1, 0x0f, 0x16, u32::MAX] {
            assert_eq!(
                CloseCode::from_u32(n),
                Err(UnknownCode {
                    what: "close",
                    code: n
                })
            );
        }
        assert_eq!(
            ResetCode::from_u32(2).unwrap_err().to_string(),
            "unknown stream reset code 0x2"
        );
    }

    #[test]
    fn codes_are_distinct() {
        for (i, a) in CloseCode::ALL.iter().enumerate() {
            for b in &CloseCode::ALL[i + 1..] {
                assert_ne!(a.to_u32(), b.to_u32());
                assert_ne!(a.description(), b.description());
            }
        }
    }
}
