//! Tokio glue shared by the edge, the connector and the access client.
//!
//! - [`conn`]: **the transport seam**: [`TunnelConnection`] (open and accept
//!   streams, datagrams, close with a code, observe closure) and its
//!   [`SendStream`]/[`RecvStream`]. The edge's registry, its stream opener
//!   and the connector hold these types, never a transport's own.
//! - [`quic`]: the first transport: the edge's listener, the connector's
//!   dialer, and the QUIC timers both ends share.
//! - [`copy`]: the one byte copier every spliced path uses, with live
//!   byte counters ([`copy::Traffic`]) and a hook for protocol trackers.
//! - [`ws`]: a WebSocket as a byte stream (`warren access tcp`'s carrier).
//! - [`pg`]: the IO half of PostgreSQL negotiation (the decisions are
//!   `warren_pg`'s sans-IO core), shared by the edge and the connector.
//! - [`clock`]: the clock the protocol cores' drivers read (tokio's).
//! - [`tls`]: loading PEM files, and the verifier that trusts an edge whose
//!   CA matches the pin in a tunnel token.
//! - [`framed`]: reading [`warren_proto`] frames from a stream with exact
//!   reads (never past the frame, so raw bytes that follow stay unread).
//! - [`body`]: HTTP bodies carried as body frames, both directions.
//! - [`file`]: reading a config file with a bound on its size.
//! - [`accept`]: an accept loop that waits out `accept()` failures.
//! - [`metrics`]: the OpenMetrics rendering and buckets both `/metrics`
//!   endpoints use.
//!
//! All of it is cancel-safe only where a function's doc says so.

#![forbid(unsafe_code)]

pub mod accept;
pub mod body;
pub mod clock;
pub mod conn;
pub mod copy;
pub mod file;
pub mod framed;
pub mod metrics;
pub mod pg;
pub mod quic;
pub mod tls;
pub mod ws;

pub use conn::{
    ConnectionError, Protocol, RecvStream, SendStream, StreamError, TunnelConnection, TunnelStream,
};
