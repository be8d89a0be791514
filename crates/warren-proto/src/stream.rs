//! Data streams: one QUIC bidirectional stream per proxied HTTP request,
//! WebSocket or TCP connection, always opened by the edge.
//!
//! ```text
//! edge                                         connector
//!   | Request frame: Http | WebSocket | Tcp      |
//!   |------------------------------------------->|  match ingress rule, reach origin
//!   |   Response frame: Http{status} | Connected |
//!   |<-------------------------------------------|  or Error{code, message}, then FIN
//!   | Http:      body frames both ways (Data*, then Trailers | End | Abort)
//!   | WebSocket: after a 101 answer, raw bytes both ways
//!   | Tcp:       after Connected, raw bytes both ways; FIN is half-close
//! ```

use bytes::{Bytes, BytesMut};

use crate::codec::{read_headers, write_headers, DecodeError, Reader, Writer};
use crate::frame::{self, Frame, FrameType};

/// A header list, in order, names lower-case.
pub type Headers = Vec<(String, Vec<u8>)>;

/// Who the client is, as the edge saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientInfo {
    /// Client socket address (`ip:port`).
    pub addr: String,
    /// Scheme the client used to reach the edge (`https` or `http`).
    pub scheme: String,
}

/// An HTTP request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpHead {
    /// The request method (`GET`, `POST`, ...).
    pub method: String,
    /// The hostname the request was routed by (no port).
    pub host: String,
    /// Path and query.
    pub path: String,
    /// End-to-end headers (the edge strips hop-by-hop ones).
    pub headers: Headers,
    /// Who sent the request.
    pub client: ClientInfo,
    /// Whether body frames follow (false: the body is empty, no frames).
    pub has_body: bool,
}

/// A raw TCP connection request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpRequest {
    /// The hostname the connection was routed by.
    pub host: String,
    /// Who opened the connection.
    pub client: ClientInfo,
    /// An id the edge gave this session; the connector names it in
    /// `SessionReport`s (empty: do not report).
    pub session: String,
    /// Report the SQL statements of a PostgreSQL session.
    pub statement_log: bool,
    /// The signed identity (the `Warren-Access-Jwt-Assertion` an HTTP
    /// request would carry); empty when the route is public.
    pub assertion: String,
}

/// The header that opens a data stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    /// A plain HTTP request; body frames follow both ways.
    Http(HttpHead),
    /// An HTTP upgrade (WebSocket); raw bytes follow a 101 answer.
    WebSocket(HttpHead),
    /// A TCP connection; raw bytes follow a `Connected` answer.
    Tcp(TcpRequest),
    /// The tunnel's ingress config as stored at the edge (remote-managed
    /// tunnels): `len` bytes of YAML follow the header on the stream; the
    /// connector answers `ConfigStatus`.
    Config(ConfigPush),
}

/// A stored ingress config on its way to a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigPush {
    /// Its version at the edge: each change stores a higher one.
    pub version: u64,
    /// How many bytes of YAML follow.
    pub len: u32,
}

/// An HTTP response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponseHead {
    /// The status code (100-999).
    pub status: u16,
    /// End-to-end response headers.
    pub headers: Headers,
}

/// Why the connector could not serve a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// No ingress rule offers this kind of service for the hostname.
    NoService = 1,
    /// The origin refused the connection or could not be reached.
    OriginUnreachable = 2,
    /// The origin did not answer in time.
    OriginTimeout = 3,
    /// TLS to the origin failed (certificate not trusted, handshake error).
    OriginTls = 4,
    /// The origin broke the protocol (bad HTTP, reset mid-response).
    OriginProtocol = 5,
    /// The request itself was malformed.
    BadRequest = 6,
    /// The connector is shutting down; another connector may serve it.
    ShuttingDown = 7,
    /// Anything else.
    Internal = 8,
    /// The rule's origin pool has no healthy origin (all failed their
    /// health checks); the edge answers 503.
    NoHealthyOrigin = 9,
}

impl ErrorCode {
    /// Its name in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoService => "no_service",
            Self::OriginUnreachable => "origin_unreachable",
            Self::OriginTimeout => "origin_timeout",
            Self::OriginTls => "origin_tls",
            Self::OriginProtocol => "origin_protocol",
            Self::BadRequest => "bad_request",
            Self::ShuttingDown => "shutting_down",
            Self::Internal => "internal_error",
            Self::NoHealthyOrigin => "no_healthy_origin",
        }
    }

    fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            1 => Self::NoService,
            2 => Self::OriginUnreachable,
            3 => Self::OriginTimeout,
            4 => Self::OriginTls,
            5 => Self::OriginProtocol,
            6 => Self::BadRequest,
            7 => Self::ShuttingDown,
            8 => Self::Internal,
            9 => Self::NoHealthyOrigin,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "error code",
                    tag,
                })
            }
        })
    }

    /// Whether the same stream may be retried on another connector without
    /// any risk that the origin saw it. This is the only place that rule
    /// lives: [`crate::retry::decide`] asks it, and so must anything else
    /// that retries.
    pub fn is_retryable_elsewhere(self) -> bool {
        matches!(self, Self::ShuttingDown)
    }
}

/// The connector's answer to a [`StreamRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamResponse {
    /// HTTP response head; for `Http`, body frames follow; for a
    /// `WebSocket` answered 101, raw bytes follow.
    Http(HttpResponseHead),
    /// The TCP origin is connected; raw bytes follow.
    Connected,
    /// The answer to a `Config` push: whether the connector runs that
    /// version now, and if not, one sentence saying why (the config was
    /// refused, or the connector runs a local `--config`).
    ConfigStatus {
        /// The version pushed.
        version: u64,
        /// The connector runs it now.
        applied: bool,
        /// Why not, when it does not (empty when it does).
        message: String,
    },
    /// The stream could not be served; the connector ends the stream.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// One sentence the edge shows to the client.
        message: String,
    },
}

const REQ_HTTP: u8 = 1;
const REQ_WEBSOCKET: u8 = 2;
const REQ_TCP: u8 = 3;
const REQ_CONFIG: u8 = 4;

const RESP_HTTP: u8 = 1;
const RESP_CONNECTED: u8 = 2;
const RESP_ERROR: u8 = 3;
const RESP_CONFIG_STATUS: u8 = 4;

fn write_client(w: &mut Writer, c: &ClientInfo) {
    w.str(&c.addr).str(&c.scheme);
}

fn read_client(r: &mut Reader<'_>) -> Result<ClientInfo, DecodeError> {
    Ok(ClientInfo {
        addr: r.string("client addr")?,
        scheme: r.string("client scheme")?,
    })
}

fn write_head(w: &mut Writer, h: &HttpHead) {
    w.str(&h.method).str(&h.host).str(&h.path);
    write_headers(w, &h.headers);
    write_client(w, &h.client);
    w.bool(h.has_body);
}

fn read_head(r: &mut Reader<'_>) -> Result<HttpHead, DecodeError> {
    Ok(HttpHead {
        method: r.string("method")?,
        host: r.string("host")?,
        path: r.string("path")?,
        headers: read_headers(r)?,
        client: read_client(r)?,
        has_body: r.bool("has body")?,
    })
}

impl StreamRequest {
    /// Encodes as a complete request frame.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::Http(h) => {
                w.u8(REQ_HTTP);
                write_head(&mut w, h);
            }
            Self::WebSocket(h) => {
                w.u8(REQ_WEBSOCKET);
                write_head(&mut w, h);
            }
            Self::Tcp(t) => {
                w.u8(REQ_TCP).str(&t.host);
                write_client(&mut w, &t.client);
                w.str(&t.session).bool(t.statement_log).str(&t.assertion);
            }
            Self::Config(c) => {
                w.u8(REQ_CONFIG).u64(c.version).u32(c.len);
            }
        }
        frame::encode(FrameType::Request, &w.finish())
    }

    /// Decodes a request frame.
    pub fn decode(f: &Frame) -> Result<Self, DecodeError> {
        f.expect(FrameType::Request)?;
        let mut r = Reader::new(&f.payload);
        let req = match r.u8("request kind")? {
            REQ_HTTP => Self::Http(read_head(&mut r)?),
            REQ_WEBSOCKET => Self::WebSocket(read_head(&mut r)?),
            REQ_TCP => Self::Tcp(TcpRequest {
                host: r.string("host")?,
                client: read_client(&mut r)?,
                session: r.string("session")?,
                statement_log: r.bool("statement log")?,
                assertion: r.string("assertion")?,
            }),
            REQ_CONFIG => Self::Config(ConfigPush {
                version: r.u64("config version")?,
                len: r.u32("config length")?,
            }),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "request kind",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(req)
    }

    /// The hostname the stream was routed by (empty for a config push).
    pub fn host(&self) -> &str {
        match self {
            Self::Http(h) | Self::WebSocket(h) => &h.host,
            Self::Tcp(t) => &t.host,
            Self::Config(_) => "",
        }
    }
}

impl StreamResponse {
    /// Encodes as a complete response frame.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::Http(h) => {
                w.u8(RESP_HTTP).u16(h.status);
                write_headers(&mut w, &h.headers);
            }
            Self::Connected => {
                w.u8(RESP_CONNECTED);
            }
            Self::Error { code, message } => {
                w.u8(RESP_ERROR).u8(*code as u8).str(message);
            }
            Self::ConfigStatus {
                version,
                applied,
                message,
            } => {
                w.u8(RESP_CONFIG_STATUS)
                    .u64(*version)
                    .bool(*applied)
                    .str(message);
            }
        }
        frame::encode(FrameType::Response, &w.finish())
    }

    /// Decodes a response frame.
    pub fn decode(f: &Frame) -> Result<Self, DecodeError> {
        f.expect(FrameType::Response)?;
        let mut r = Reader::new(&f.payload);
        let resp = match r.u8("response kind")? {
            RESP_HTTP => {
                let status = r.u16("status")?;
                if !(100..=999).contains(&status) {
                    return Err(DecodeError::InvalidValue("status"));
                }
                Self::Http(HttpResponseHead {
                    status,
                    headers: read_headers(&mut r)?,
                })
            }
            RESP_CONNECTED => Self::Connected,
            RESP_ERROR => Self::Error {
                code: ErrorCode::from_u8(r.u8("error code")?)?,
                message: r.string("error message")?,
            },
            RESP_CONFIG_STATUS => Self::ConfigStatus {
                version: r.u64("config version")?,
                applied: r.bool("config applied")?,
                message: r.string("config message")?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "response kind",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(resp)
    }
}

/// One frame of an HTTP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFrame {
    /// Body bytes.
    Data(Bytes),
    /// Trailers; the body is complete.
    Trailers(Headers),
    /// The body is complete, without trailers.
    End,
    /// The sender gave up on the body (origin or client reset).
    Abort(String),
}

impl BodyFrame {
    /// Decodes a body frame.
    pub fn decode(f: Frame) -> Result<Self, DecodeError> {
        Ok(match f.kind {
            FrameType::Data => Self::Data(f.payload),
            FrameType::Trailers => {
                let mut r = Reader::new(&f.payload);
                let h = read_headers(&mut r)?;
                r.finish()?;
                Self::Trailers(h)
            }
            FrameType::End => Self::End,
            FrameType::Abort => Self::Abort(String::from_utf8_lossy(&f.payload).into_owned()),
            other => {
                return Err(DecodeError::Unexpected {
                    got: other.name(),
                    expected: "a body frame",
                })
            }
        })
    }

    /// Encodes a trailers frame.
    pub fn encode_trailers(headers: &Headers) -> Bytes {
        let mut w = Writer::new();
        write_headers(&mut w, headers);
        frame::encode(FrameType::Trailers, &w.finish())
    }

    /// The frame that ends a body without trailers.
    pub fn encode_end() -> Bytes {
        frame::encode(FrameType::End, &[])
    }

    /// An abort frame carrying a reason.
    pub fn encode_abort(reason: &str) -> Bytes {
        let reason = &reason.as_bytes()[..reason.len().min(1024)];
        frame::encode(FrameType::Abort, reason)
    }

    /// The header of a data frame for a payload of `len` bytes (at most
    /// [`frame::MAX_DATA_FRAME`]); the caller writes the payload after it,
    /// so body bytes are never copied into a frame buffer.
    pub fn data_header(len: usize) -> [u8; frame::HEADER_LEN] {
        let mut b = BytesMut::with_capacity(frame::HEADER_LEN);
        frame::encode_header(FrameType::Data, len, &mut b);
        let mut out = [0u8; frame::HEADER_LEN];
        out.copy_from_slice(&b);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;

    fn one(b: Bytes) -> Frame {
        let mut buf = BytesMut::from(&b[..]);
        let f = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        f
    }

    fn head() -> HttpHead {
        HttpHead {
            method: "POST".into(),
            host: "app.example.com".into(),
            path: "/upload?x=1".into(),
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            client: ClientInfo {
                addr: "127.0.0.1:5000".into(),
                scheme: "https".into(),
            },
            has_body: true,
        }
    }

    #[test]
    fn requests_round_trip() {
        for req in [
            StreamRequest::Http(head()),
            StreamRequest::WebSocket(head()),
            StreamRequest::Tcp(TcpRequest {
                host: "db.example.com".into(),
                client: ClientInfo::default(),
                session: "s1".into(),
                statement_log: true,
                assertion: "a.b.c".into(),
            }),
            StreamRequest::Config(ConfigPush {
                version: 7,
                len: 1 << 20,
            }),
        ] {
            assert_eq!(StreamRequest::decode(&one(req.encode())).unwrap(), req);
        }
    }

    #[test]
    fn responses_round_trip() {
        for resp in [
            StreamResponse::Http(HttpResponseHead {
                status: 200,
                headers: vec![("x".into(), b"y".to_vec())],
            }),
            StreamResponse::Connected,
            StreamResponse::Error {
                code: ErrorCode::OriginUnreachable,
                message: "refused".into(),
            },
            StreamResponse::Error {
                code: ErrorCode::NoHealthyOrigin,
                message: "no healthy origin".into(),
            },
            StreamResponse::ConfigStatus {
                version: 7,
                applied: false,
                message: "ingress rule 2 ...".into(),
            },
        ] {
            assert_eq!(StreamResponse::decode(&one(resp.encode())).unwrap(), resp);
        }
    }

    #[test]
    fn body_frames_round_trip() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&BodyFrame::data_header(3));
        buf.extend_from_slice(b"abc");
        buf.extend_from_slice(&BodyFrame::encode_trailers(&vec![(
            "grpc-status".into(),
            b"0".to_vec(),
        )]));
        let mut dec = FrameDecoder::new();
        let a = BodyFrame::decode(dec.decode(&mut buf).unwrap().unwrap()).unwrap();
        let b = BodyFrame::decode(dec.decode(&mut buf).unwrap().unwrap()).unwrap();
        assert_eq!(a, BodyFrame::Data(Bytes::from_static(b"abc")));
        assert_eq!(
            b,
            BodyFrame::Trailers(vec![("grpc-status".into(), b"0".to_vec())])
        );
    }

    #[test]
    fn wrong_frame_kind_is_an_error() {
        let f = one(StreamResponse::Connected.encode());
        assert!(matches!(
            StreamRequest::decode(&f),
            Err(DecodeError::Unexpected { .. })
        ));
    }

    #[test]
    fn bad_status_is_refused() {
        let mut w = Writer::new();
        w.u8(RESP_HTTP).u16(42).count(0);
        let f = one(frame::encode(FrameType::Response, &w.finish()));
        assert_eq!(
            StreamResponse::decode(&f),
            Err(DecodeError::InvalidValue("status"))
        );
    }
}
