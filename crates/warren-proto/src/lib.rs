//! Warren's tunnel wire protocol and its state machines, with no IO.
//!
//! Everything the edge and the connector say to each other over a tunnel
//! connection is defined here, as plain types with an encoder and a bounded
//! decoder:
//!
//! - [`control`]: the registration handshake (with version negotiation) and
//!   the control messages that follow it on the connection's first stream,
//!   keep-alive `Ping`/`Pong` included.
//! - [`stream`]: the typed header that opens every proxied request or
//!   connection ([`stream::StreamRequest`]), the connector's typed answer
//!   ([`stream::StreamResponse`]), and the HTTP body frames that follow.
//! - [`frame`]: the length-prefixed framing every message uses, with the
//!   size limits that keep a peer from making us buffer without bound.
//! - [`close`]: the connection close codes ([`close::CloseCode`]) and
//!   stream reset codes ([`close::ResetCode`]) both ends use.
//! - [`token`]: the tunnel token a connector needs to run.
//! - [`access`]: the access carrier, `warren access tcp`'s streams over
//!   one QUIC connection to the edge (request with credentials, answer).
//!
//! and so is how the two ends behave, as state machines a thin tokio task
//! drives (bytes and events in with the time, frames, events and the next
//! wake-up out):
//!
//! - [`session`]: one tunnel connection's control stream, edge side
//!   ([`session::EdgeSession`]: registration check, refusal and linger,
//!   drain, whether a stream may be opened) and connector side
//!   ([`session::ConnectorSession`]: registration, stream admission,
//!   drain with a grace period).
//! - [`liveness`]: keep-alive, RTT and dead-path detection on the control
//!   stream, independent of the transport ([`liveness::Liveness`]).
//! - [`retry`]: whether a failed stream (or origin request) may be tried
//!   elsewhere ([`retry::decide`], [`retry::RetryBudget`]).
//!
//! `docs/protocol.md` at the repository root is the prose description; the
//! two must agree.
//!
//! **This crate does no IO and reads no clock.** Callers feed it bytes and
//! get messages (or a [`DecodeError`]) back; every method that needs the
//! time takes `now: Instant`, so tests drive the state machines on a
//! virtual clock (`tests/pair.rs`). `clippy.toml` bans `Instant::now` and
//! `SystemTime::now` here. The tokio glue lives in the edge, the connector
//! and `warren-transport`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod answered;
pub mod close;
pub mod codec;
pub mod control;
pub mod frame;
pub mod liveness;
pub mod retry;
pub mod session;
pub mod stream;
pub mod token;

pub use codec::DecodeError;

/// ALPN protocol identifier of the tunnel QUIC connection.
pub const ALPN: &[u8] = b"warren-tunnel";

/// Protocol versions this build speaks, newest first. Version 2 is
/// version 1 plus the control-stream keep-alive (`Ping`/`Pong`,
/// [`liveness`]); a version 1 peer is still served, without it.
pub const SUPPORTED_VERSIONS: &[u16] = &[2, 1];

/// The first protocol version whose peers keep the control stream alive
/// with `Ping`/`Pong` and expect the other side to.
pub const KEEPALIVE_VERSION: u16 = 2;

/// Whether a connection registered at `version` runs keep-alive and
/// dead-path detection on its control stream.
pub fn has_keepalive(version: u16) -> bool {
    version >= KEEPALIVE_VERSION
}

/// The TLS server name connectors use for the edge's tunnel listener; the
/// edge's tunnel certificate always carries it.
pub const EDGE_SERVER_NAME: &str = "warren-edge";

/// Picks the highest protocol version both sides speak.
pub fn negotiate_version(offered: &[u16]) -> Option<u16> {
    SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|v| offered.contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_common_version() {
        assert_eq!(negotiate_version(&[1, 2]), Some(2));
        assert_eq!(negotiate_version(&[1]), Some(1));
        assert_eq!(negotiate_version(&[7]), None);
        assert_eq!(negotiate_version(&[]), None);
    }
}
