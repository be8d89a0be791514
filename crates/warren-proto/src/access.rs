//! The access carrier: how `warren access tcp` reaches the edge over one
//! long-lived QUIC connection instead of a TCP + TLS + WebSocket handshake
//! per local connection.
//!
//! ```text
//! access client                                   edge
//!   | QUIC, ALPN warren-access/1, SNI = hostname    |
//!   | per local connection, one bidi stream:        |
//!   | AccessRequest {host, credentials}  ---------->|  identify, authorize,
//!   |                                               |  open a tunnel stream
//!   |<----------  AccessResponse Connected          |  (or Refused{status, message}, then FIN)
//!   | raw bytes both ways; FIN is half-close,       |
//!   | a reset is an abort                           |
//! ```
//!
//! The request carries the same credentials an `access tcp` WebSocket
//! upgrade carries in its headers (service token id and secret, or an
//! identity token), so the edge decides each stream exactly as it decides
//! each upgrade, and a revoked identity loses its next stream, not only its
//! next connection. Frames are the tunnel's ([`crate::frame`]): a request
//! is a `Request` frame, an answer a `Response` frame, each bounded by
//! [`crate::frame::MAX_HEADER_FRAME`].

use bytes::Bytes;

use crate::codec::{read_headers, write_headers, DecodeError, Reader, Writer};
use crate::frame::{self, Frame, FrameType};
use crate::stream::Headers;

/// ALPN protocol identifier of an access client's QUIC connection.
pub const ALPN: &[u8] = b"warren-access/1";

/// The kind byte of a TCP access request (distinct from every
/// [`crate::stream::StreamRequest`] kind, so one is never read as the other).
const REQ_TCP: u8 = 0x41;
const RESP_CONNECTED: u8 = 0x41;
const RESP_REFUSED: u8 = 0x42;

/// What opens an access stream: the hostname to reach and the
/// credentials, as header name/value pairs (names lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// The routed hostname whose TCP service to reach.
    pub host: String,
    /// Credential headers (`warren-access-client-id`, ...), the same the
    /// WebSocket upgrade carries.
    pub credentials: Headers,
}

/// The edge's answer to an [`AccessRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessResponse {
    /// The origin is connected; raw bytes follow.
    Connected,
    /// The stream is refused; the edge then ends it.
    Refused {
        /// The HTTP status the same refusal gets on the WebSocket path.
        status: u16,
        /// One sentence saying what was wrong and what to do.
        message: String,
    },
}

impl AccessRequest {
    /// Encodes as a complete `Request` frame.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u8(REQ_TCP).str(&self.host);
        write_headers(&mut w, &self.credentials);
        frame::encode(FrameType::Request, &w.finish())
    }

    /// Decodes a `Request` frame.
    pub fn decode(f: &Frame) -> Result<Self, DecodeError> {
        f.expect(FrameType::Request)?;
        let mut r = Reader::new(&f.payload);
        match r.u8("access request kind")? {
            REQ_TCP => {}
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "access request kind",
                    tag,
                })
            }
        }
        let req = AccessRequest {
            host: r.string("host")?,
            credentials: read_headers(&mut r)?,
        };
        r.finish()?;
        Ok(req)
    }
}

impl AccessResponse {
    /// Encodes as a complete `Response` frame.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::Connected => {
                w.u8(RESP_CONNECTED);
            }
            Self::Refused { status, message } => {
                w.u8(RESP_REFUSED).u16(*status).str(message);
            }
        }
        frame::encode(FrameType::Response, &w.finish())
    }

    /// Decodes a `Response` frame.
    pub fn decode(f: &Frame) -> Result<Self, DecodeError> {
        f.expect(FrameType::Response)?;
        let mut r = Reader::new(&f.payload);
        let resp = match r.u8("access response kind")? {
            RESP_CONNECTED => Self::Connected,
            RESP_REFUSED => {
                let status = r.u16("status")?;
                if !(100..=999).contains(&status) {
                    return Err(DecodeError::InvalidValue("status"));
                }
                Self::Refused {
                    status,
                    message: r.string("refusal message")?,
                }
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "access response kind",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;
    use bytes::BytesMut;

    fn frame_of(bytes: &Bytes) -> Frame {
        let mut buf = BytesMut::from(&bytes[..]);
        FrameDecoder::new()
            .decode(&mut buf)
            .expect("valid frame")
            .expect("whole frame")
    }

    #[test]
    fn requests_and_answers_round_trip() {
        let req = AccessRequest {
            host: "db.example.com".into(),
            credentials: vec![
                ("warren-access-client-id".into(), b"id".to_vec()),
                ("warren-access-client-secret".into(), b"s3cret".to_vec()),
            ],
        };
        assert_eq!(AccessRequest::decode(&frame_of(&req.encode())), Ok(req));
        for resp in [
            AccessResponse::Connected,
            AccessResponse::Refused {
                status: 403,
                message: "Access to db.example.com is denied.".into(),
            },
        ] {
            assert_eq!(AccessResponse::decode(&frame_of(&resp.encode())), Ok(resp));
        }
    }

    #[test]
    fn a_tunnel_stream_header_is_not_an_access_request() {
        let tcp = crate::stream::StreamRequest::Tcp(crate::stream::TcpRequest {
            host: "h".into(),
            client: Default::default(),
            session: String::new(),
            statement_log: false,
            assertion: String::new(),
        });
        assert!(matches!(
            AccessRequest::decode(&frame_of(&tcp.encode())),
            Err(DecodeError::UnknownTag { .. })
        ));
        let connected = crate::stream::StreamResponse::Connected;
        assert!(AccessResponse::decode(&frame_of(&connected.encode())).is_err());
    }

    #[test]
    fn malformed_answers_are_refused() {
        let bad_status = frame::encode(FrameType::Response, &[RESP_REFUSED, 0, 42, 0, 0]);
        assert!(AccessResponse::decode(&frame_of(&bad_status)).is_err());
        let trailing = frame::encode(FrameType::Response, &[RESP_CONNECTED, 0]);
        assert!(AccessResponse::decode(&frame_of(&trailing)).is_err());
        let wrong_frame = frame::encode(FrameType::Request, &[RESP_CONNECTED]);
        assert!(AccessResponse::decode(&frame_of(&wrong_frame)).is_err());
    }
}
