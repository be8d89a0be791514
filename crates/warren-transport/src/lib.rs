//! Tokio glue shared by the edge, the connector and the access client.
//!
//! - [`tls`]: loading PEM files, and the verifier that trusts an edge whose
//!   CA matches the pin in a tunnel token.
//! - [`quic`]: QUIC endpoint and transport settings for tunnel connections.
//! - [`framed`]: reading [`warren_proto`] frames from a stream with exact
//!   reads (never past the frame, so raw bytes that follow stay unread).
//! - [`body`]: HTTP bodies carried as body frames, both directions.
//! - [`splice`]: a QUIC bidirectional stream as one `AsyncRead + AsyncWrite`,
//!   and byte splicing with half-close.
//!
//! All of it is cancel-safe only where a function's doc says so.

#![forbid(unsafe_code)]

pub mod body;
pub mod framed;
pub mod quic;
pub mod splice;
pub mod tls;
