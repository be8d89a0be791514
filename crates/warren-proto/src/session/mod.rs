//! The two ends of one tunnel connection's control stream, as state
//! machines: [`EdgeSession`] (registration check, refusal, drain, which
//! streams may be opened) and [`ConnectorSession`] (registration, stream
//! admission, drain). Once registered at a version with keep-alive
//! ([`crate::has_keepalive`]), both keep the path alive with a
//! [`crate::liveness::Liveness`] and close with
//! [`crate::close::CloseCode::PeerDead`] when it goes silent; at version 1
//! neither sends nor expects `Ping`.
//!
//! They follow one pattern. The driver (a tokio task owning the transport
//! connection) feeds them what happened, each call with the time:
//!
//! - `handle_data(now, bytes)`: bytes read from the control stream;
//! - `handle_finished(now)`: the peer ended its half of the control stream;
//! - `handle_connection_lost(now)`: the connection is gone (closed by the
//!   peer or by the transport);
//! - `handle_timeout(now)`: the instant [`poll_timeout`] named has come;
//!
//! and after each of them drains, in this order:
//!
//! 1. `poll_transmit(now)` until `None`, writing each [`Transmit`] to its
//!    half of the control stream, in order;
//! 2. `poll_event()` until `None`, acting on each event; a `Close(code)`
//!    event means "close the connection with `code` now", after which the
//!    session is over;
//! 3. `poll_timeout()`, to know when to call `handle_timeout` next (`None`:
//!    no timer; the session waits for input or is over).
//!
//! [`poll_timeout`]: EdgeSession::poll_timeout

mod connector;
mod edge;

pub use connector::{
    shutting_down_response, Admission, ConnectorEvent, ConnectorSession, ConnectorSessionConfig,
    RegisterError, StreamId,
};
pub use edge::{EdgeEvent, EdgeSession, EdgeSessionConfig, RegistrationAnswer};

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::codec::DecodeError;
use crate::control::ControlMessage;
use crate::frame::{FrameDecoder, FrameType};

/// Something to write on the session's half of the control stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// One complete frame.
    Frame(Bytes),
    /// Finish the send half (no more frames follow).
    Finish,
}

/// A control message that was read and deliberately not acted on; worth a
/// log line, not a closed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// A well-framed control frame whose payload did not decode (an
    /// unknown message tag from a newer peer, a bad field).
    Malformed(DecodeError),
    /// A valid message that has no meaning at this point (its name).
    Unexpected(&'static str),
}

/// How the peer broke the control-stream protocol. Each one closes the
/// connection with [`crate::close::CloseCode::ProtocolViolation`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    /// The bytes could not be read as control frames.
    #[error("the control stream is malformed: {0}")]
    Malformed(DecodeError),
    /// A message arrived where the protocol does not allow it.
    #[error("unexpected {0} message on the control stream")]
    Unexpected(&'static str),
    /// The peer ended the control stream while the connection was in use.
    #[error("the peer ended the control stream")]
    StreamEnded,
    /// The edge chose a protocol version the connector did not offer.
    #[error("the edge chose protocol version {0}, which this connector did not offer")]
    VersionNotOffered(u16),
}

/// Why the next control message could not be read.
#[derive(Debug)]
enum ReadError {
    /// The framing is broken (unknown frame type, oversized, not a control
    /// frame); nothing after it can be read.
    Framing(DecodeError),
    /// One control frame's payload did not decode; the next frame can
    /// still be read.
    Payload(DecodeError),
}

impl ReadError {
    fn into_decode_error(self) -> DecodeError {
        match self {
            Self::Framing(e) | Self::Payload(e) => e,
        }
    }
}

/// Control messages out of the bytes of a control stream. After a framing
/// error it reads nothing more.
#[derive(Debug, Default)]
struct ControlReader {
    buf: BytesMut,
    decoder: FrameDecoder,
    broken: bool,
}

impl ControlReader {
    fn push(&mut self, data: &[u8]) {
        if !self.broken {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes received that are not yet part of a returned message.
    fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn next(&mut self) -> Option<Result<ControlMessage, ReadError>> {
        if self.broken {
            return None;
        }
        let frame = match self.decoder.decode(&mut self.buf) {
            Ok(Some(f)) => f,
            Ok(None) => return None,
            Err(e) => return Some(Err(self.break_off(e))),
        };
        if frame.kind != FrameType::Control {
            let e = DecodeError::Unexpected {
                got: frame.kind.name(),
                expected: FrameType::Control.name(),
            };
            return Some(Err(self.break_off(e)));
        }
        Some(ControlMessage::decode(&frame.payload).map_err(ReadError::Payload))
    }

    fn break_off(&mut self, e: DecodeError) -> ReadError {
        self.broken = true;
        self.buf = BytesMut::new();
        ReadError::Framing(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamResponse;

    #[test]
    fn reader_reads_messages_split_anywhere() {
        let mut all = ControlMessage::Ping(1).encode().to_vec();
        all.extend_from_slice(&ControlMessage::Drain.encode());
        for split in 0..all.len() {
            let mut r = ControlReader::default();
            let mut got = Vec::new();
            for part in [&all[..split], &all[split..]] {
                r.push(part);
                while let Some(m) = r.next() {
                    got.push(m.unwrap());
                }
            }
            assert_eq!(got, [ControlMessage::Ping(1), ControlMessage::Drain]);
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn a_bad_payload_is_skipped_but_bad_framing_stops_the_reader() {
        let mut r = ControlReader::default();
        r.push(&crate::frame::encode(FrameType::Control, &[0xee]));
        r.push(&ControlMessage::Drain.encode());
        assert!(matches!(r.next(), Some(Err(ReadError::Payload(_)))));
        assert!(matches!(r.next(), Some(Ok(ControlMessage::Drain))));

        r.push(&StreamResponse::Connected.encode());
        r.push(&ControlMessage::Drain.encode());
        let err = r.next().unwrap().unwrap_err();
        assert!(matches!(
            err,
            ReadError::Framing(DecodeError::Unexpected { .. })
        ));
        assert!(r.next().is_none());
        r.push(&ControlMessage::Drain.encode());
        assert!(r.next().is_none());
        assert_eq!(
            err.into_decode_error().to_string(),
            "unexpected response frame, expected control"
        );
    }
}
