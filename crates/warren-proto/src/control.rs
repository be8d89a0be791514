//! The control stream: the first bidirectional stream of a tunnel
//! connection, opened by the connector.
//!
//! ```text
//! connector                                   edge
//!   | Register{versions, tunnel, secret, ...}  |
//!   |----------------------------------------->|  verify secret (constant time)
//!   |       Registered{version, conn id} |     |
//!   |<-----------------------------------------|  or Refused{code, message}, then close
//!   |                 ...                      |
//!   | Drain                                    |  stop sending new streams here
//!   |----------------------------------------->|
//!   | Ping(n) / Pong(n), either way            |  keep-alive, dead-path detection, RTT
//!   |<---------------------------------------->|
//! ```
//!
//! Every message travels in a [`crate::frame::FrameType::Control`] frame
//! whose payload starts with a one-byte message tag.

use bytes::Bytes;

use crate::codec::{DecodeError, Reader, Writer};
use crate::frame::{self, FrameType};

/// Length of a tunnel secret in bytes.
pub const SECRET_LEN: usize = 32;

/// A message on the control stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMessage {
    /// Connector → edge, first message: who I am and which versions I speak.
    Register(Register),
    /// Edge → connector: registration accepted.
    Registered(Registered),
    /// Edge → connector: registration refused; the edge closes the
    /// connection after sending it.
    Refused(Refused),
    /// Connector → edge: stop opening new streams on this connection; the
    /// connector is shutting down and will close it when in-flight streams
    /// end.
    Drain,
    /// Connector → edge, first message of a stream the connector opens:
    /// sign this CSR for a hostname routed to my tunnel (the connector
    /// terminates a client's TLS for it, e.g. PostgreSQL's SSLRequest).
    CertRequest(CertRequest),
    /// Edge → connector: the certificate chain (leaf first, DER), issued
    /// by the edge's CA.
    CertIssued(CertIssued),
    /// Connector → edge, first message of a stream the connector opens:
    /// send the keys that verify identity tokens (for rules with
    /// `originRequest.access.required`).
    KeysRequest,
    /// Edge → connector: the JWK set published at `/.warren/certs`.
    KeysIssued(KeysIssued),
    /// Connector → edge, first message of a stream the connector opens:
    /// what the connector learned about a session the edge started (a
    /// PostgreSQL session's user, database, application name, upstream TLS;
    /// statements when the application logs them). No answer.
    SessionReport(SessionReport),
    /// Either way, after registration: keep-alive. The receiver answers
    /// `Pong` with the same number. See [`crate::liveness`].
    Ping(u64),
    /// Either way: the answer to `Ping` carrying its number.
    Pong(u64),
}

/// The identity-token verification keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysIssued {
    /// A JWK set document (JSON).
    pub jwks: String,
}

/// Facts about one session, keyed by the id the edge put in its
/// `TcpRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReport {
    /// The session id from the `TcpRequest`.
    pub session: String,
    /// Name/value pairs (`pg_user`, `pg_database`, `application_name`,
    /// `upstream_tls`, ...).
    pub fields: Vec<(String, String)>,
    /// SQL statements, in order (simple Query and extended Parse text).
    pub statements: Vec<String>,
}

/// A certificate signing request for one hostname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRequest {
    /// The hostname to certify; it must be routed to the connection's
    /// tunnel.
    pub hostname: String,
    /// PKCS#10, DER. The edge sets the names and validity itself.
    pub csr: Vec<u8>,
}

/// An issued certificate chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIssued {
    /// DER certificates, leaf first, then the CA.
    pub chain: Vec<Vec<u8>>,
}

/// Registration of one connection of a connector.
#[derive(Clone, PartialEq, Eq)]
pub struct Register {
    /// Protocol versions the connector speaks.
    pub versions: Vec<u16>,
    /// The tunnel's id (a UUID in text form).
    pub tunnel_id: String,
    /// The tunnel secret. The connection is TLS with a pinned CA, so the
    /// secret itself is the proof; the edge keeps only its hash.
    pub secret: [u8; SECRET_LEN],
    /// Stable id of this connector process (a UUID), shared by its HA
    /// connections.
    pub connector_id: String,
    /// Connector software version.
    pub connector_version: String,
    /// Index of this connection among the connector's HA connections.
    pub conn_index: u8,
    /// How many HA connections the connector keeps (`--ha-connections`),
    /// so the edge can tell a fully connected connector from a degraded one.
    pub ha_connections: u8,
    /// Host name of the machine the connector runs on (informational).
    pub host: String,
}

// Never print the secret.
impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("versions", &self.versions)
            .field("tunnel_id", &self.tunnel_id)
            .field("secret", &"<redacted>")
            .field("connector_id", &self.connector_id)
            .field("connector_version", &self.connector_version)
            .field("conn_index", &self.conn_index)
            .field("ha_connections", &self.ha_connections)
            .field("host", &self.host)
            .finish()
    }
}

/// Registration accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The version both sides will speak.
    pub version: u16,
    /// Id the edge gave this connection (for logs on both sides).
    pub connection_id: String,
    /// Name of the tunnel, for the connector's logs.
    pub tunnel_name: String,
}

/// Registration refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why, as a code the connector acts on.
    pub code: RefuseCode,
    /// One sentence for the operator: what is wrong and what to do.
    pub message: String,
}

/// Why a registration was refused. Values are part of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RefuseCode {
    /// No version in common.
    UnsupportedVersion = 1,
    /// No tunnel with that id (it may have been deleted).
    UnknownTunnel = 2,
    /// The secret does not match (it may have been rotated).
    BadSecret = 3,
    /// Malformed registration.
    BadRequest = 4,
    /// The edge could not check the registration; retrying may help.
    Internal = 5,
}

impl RefuseCode {
    /// Its name in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownTunnel => "unknown_tunnel",
            Self::BadSecret => "bad_secret",
            Self::BadRequest => "bad_request",
            Self::Internal => "internal_error",
        }
    }

    fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            1 => Self::UnsupportedVersion,
            2 => Self::UnknownTunnel,
            3 => Self::BadSecret,
            4 => Self::BadRequest,
            5 => Self::Internal,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "refuse code",
                    tag,
                })
            }
        })
    }

    /// Whether dialling again can succeed without the operator changing
    /// anything.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Internal)
    }
}

const TAG_REGISTER: u8 = 1;
const TAG_REGISTERED: u8 = 2;
const TAG_REFUSED: u8 = 3;
const TAG_DRAIN: u8 = 4;
const TAG_CERT_REQUEST: u8 = 5;
const TAG_CERT_ISSUED: u8 = 6;
const TAG_KEYS_REQUEST: u8 = 7;
const TAG_KEYS_ISSUED: u8 = 8;
const TAG_SESSION_REPORT: u8 = 9;
const TAG_PING: u8 = 10;
const TAG_PONG: u8 = 11;

impl ControlMessage {
    /// The message's name, for logs and errors (never its fields, which
    /// may hold a secret).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Register(_) => "Register",
            Self::Registered(_) => "Registered",
            Self::Refused(_) => "Refused",
            Self::Drain => "Drain",
            Self::CertRequest(_) => "CertRequest",
            Self::CertIssued(_) => "CertIssued",
            Self::KeysRequest => "KeysRequest",
            Self::KeysIssued(_) => "KeysIssued",
            Self::SessionReport(_) => "SessionReport",
            Self::Ping(_) => "Ping",
            Self::Pong(_) => "Pong",
        }
    }

    /// Encodes the message as a complete control frame.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::Register(r) => {
                w.u8(TAG_REGISTER).count(r.versions.len());
                for v in &r.versions {
                    w.u16(*v);
                }
                w.str(&r.tunnel_id)
                    .bytes(&r.secret)
                    .str(&r.connector_id)
                    .str(&r.connector_version)
                    .u8(r.conn_index)
                    .u8(r.ha_connections)
                    .str(&r.host);
            }
            Self::Registered(r) => {
                w.u8(TAG_REGISTERED)
                    .u16(r.version)
                    .str(&r.connection_id)
                    .str(&r.tunnel_name);
            }
            Self::Refused(r) => {
                w.u8(TAG_REFUSED).u8(r.code as u8).str(&r.message);
            }
            Self::Drain => {
                w.u8(TAG_DRAIN);
            }
            Self::CertRequest(c) => {
                w.u8(TAG_CERT_REQUEST).str(&c.hostname).bytes(&c.csr);
            }
            Self::CertIssued(c) => {
                w.u8(TAG_CERT_ISSUED).count(c.chain.len());
                for cert in &c.chain {
                    w.bytes(cert);
                }
            }
            Self::KeysRequest => {
                w.u8(TAG_KEYS_REQUEST);
            }
            Self::KeysIssued(k) => {
                w.u8(TAG_KEYS_ISSUED).str(&k.jwks);
            }
            Self::SessionReport(s) => {
                w.u8(TAG_SESSION_REPORT)
                    .str(&s.session)
                    .count(s.fields.len());
                for (k, v) in &s.fields {
                    w.str(k).str(v);
                }
                w.count(s.statements.len());
                for st in &s.statements {
                    w.str(st);
                }
            }
            Self::Ping(n) => {
                w.u8(TAG_PING).u64(*n);
            }
            Self::Pong(n) => {
                w.u8(TAG_PONG).u64(*n);
            }
        }
        frame::encode(FrameType::Control, &w.finish())
    }

    /// Decodes the payload of a control frame.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let msg = match r.u8("control tag")? {
            TAG_REGISTER => {
                let n = r.count("versions", 2)?;
                let mut versions = Vec::with_capacity(n);
                for _ in 0..n {
                    versions.push(r.u16("version")?);
                }
                let tunnel_id = r.string("tunnel id")?;
                let secret: [u8; SECRET_LEN] = r
                    .bytes("secret")?
                    .try_into()
                    .map_err(|_| DecodeError::InvalidValue("secret"))?;
                Self::Register(Register {
                    versions,
                    tunnel_id,
                    secret,
                    connector_id: r.string("connector id")?,
                    connector_version: r.string("connector version")?,
                    conn_index: r.u8("connection index")?,
                    ha_connections: r.u8("connection count")?,
                    host: r.string("host")?,
                })
            }
            TAG_REGISTERED => Self::Registered(Registered {
                version: r.u16("version")?,
                connection_id: r.string("connection id")?,
                tunnel_name: r.string("tunnel name")?,
            }),
            TAG_REFUSED => Self::Refused(Refused {
                code: RefuseCode::from_u8(r.u8("refuse code")?)?,
                message: r.string("message")?,
            }),
            TAG_DRAIN => Self::Drain,
            TAG_CERT_REQUEST => Self::CertRequest(CertRequest {
                hostname: r.string("hostname")?,
                csr: r.bytes("csr")?.to_vec(),
            }),
            TAG_CERT_ISSUED => {
                let n = r.count("certificates", 4)?;
                let mut chain = Vec::with_capacity(n);
                for _ in 0..n {
                    chain.push(r.bytes("certificate")?.to_vec());
                }
                Self::CertIssued(CertIssued { chain })
            }
            TAG_KEYS_REQUEST => Self::KeysRequest,
            TAG_KEYS_ISSUED => Self::KeysIssued(KeysIssued {
                jwks: r.string("jwks")?,
            }),
            TAG_SESSION_REPORT => {
                let session = r.string("session")?;
                let n = r.count("fields", 8)?;
                let mut fields = Vec::with_capacity(n);
                for _ in 0..n {
                    fields.push((r.string("field name")?, r.string("field value")?));
                }
                let n = r.count("statements", 4)?;
                let mut statements = Vec::with_capacity(n);
                for _ in 0..n {
                    statements.push(r.string("statement")?);
                }
                Self::SessionReport(SessionReport {
                    session,
                    fields,
                    statements,
                })
            }
            TAG_PING => Self::Ping(r.u64("ping")?),
            TAG_PONG => Self::Pong(r.u64("pong")?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "control message",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;
    use bytes::BytesMut;

    fn round_trip(m: ControlMessage) {
        let mut buf = BytesMut::from(&m.encode()[..]);
        let f = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.kind, FrameType::Control);
        assert_eq!(ControlMessage::decode(&f.payload).unwrap(), m);
    }

    #[test]
    fn round_trips_every_message() {
        round_trip(ControlMessage::Register(Register {
            versions: vec![1, 2],
            tunnel_id: "t".into(),
            secret: [9; 32],
            connector_id: "c".into(),
            connector_version: "0.1.0".into(),
            conn_index: 3,
            ha_connections: 4,
            host: "h".into(),
        }));
        round_trip(ControlMessage::Registered(Registered {
            version: 1,
            connection_id: "x".into(),
            tunnel_name: "office".into(),
        }));
        round_trip(ControlMessage::Refused(Refused {
            code: RefuseCode::BadSecret,
            message: "no".into(),
        }));
        round_trip(ControlMessage::Drain);
        round_trip(ControlMessage::CertRequest(CertRequest {
            hostname: "db.example.com".into(),
            csr: vec![0x30, 1, 2, 3],
        }));
        round_trip(ControlMessage::KeysRequest);
        round_trip(ControlMessage::KeysIssued(KeysIssued {
            jwks: r#"{"keys":[]}"#.into(),
        }));
        round_trip(ControlMessage::SessionReport(SessionReport {
            session: "s1".into(),
            fields: vec![("pg_user".into(), "app".into())],
            statements: vec!["SELECT 1".into(), String::new()],
        }));
        round_trip(ControlMessage::CertIssued(CertIssued {
            chain: vec![vec![1; 300], vec![2; 400]],
        }));
        round_trip(ControlMessage::Ping(0));
        round_trip(ControlMessage::Ping(u64::MAX));
        round_trip(ControlMessage::Pong(0x0102_0304_0506_0708));
    }

    #[test]
    fn ping_and_pong_are_exactly_nine_bytes() {
        let enc = ControlMessage::Ping(7).encode();
        assert_eq!(
            &enc[..],
            &[0x01, 0, 0, 0, 9, TAG_PING, 0, 0, 0, 0, 0, 0, 0, 7][..]
        );
        assert_eq!(
            ControlMessage::decode(&[TAG_PONG, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Truncated("pong"))
        );
        assert_eq!(
            ControlMessage::decode(&[TAG_PING, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(ControlMessage::Pong(1).name(), "Pong");
    }

    #[test]
    fn secret_is_not_debug_printed() {
        let r = Register {
            versions: vec![1],
            tunnel_id: "t".into(),
            secret: [0xab; 32],
            connector_id: "c".into(),
            connector_version: "v".into(),
            conn_index: 0,
            ha_connections: 1,
            host: "h".into(),
        };
        let s = format!("{r:?}");
        assert!(s.contains("redacted"));
        assert!(!s.contains("171"));
    }

    #[test]
    fn short_secret_is_invalid() {
        let mut w = Writer::new();
        w.u8(TAG_REGISTER)
            .count(1)
            .u16(1)
            .str("t")
            .bytes(&[1, 2, 3]);
        assert_eq!(
            ControlMessage::decode(&w.finish()),
            Err(DecodeError::InvalidValue("secret"))
        );
    }
}
