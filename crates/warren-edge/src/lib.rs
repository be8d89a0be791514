//! Warren's edge: the only internet-facing part.
//!
//! It accepts connector connections on the tunnel listener (QUIC), public
//! HTTP(S) by Host/SNI, and `warren access tcp` byte streams carried over
//! WebSocket; it holds the control plane (through `warren-store`) and serves
//! the admin API.
//!
//! Entry point: [`run`] with an [`EdgeConfig`] and already-bound
//! [`Listeners`]. Every client request or connection goes through one
//! session pipeline (`session.rs`: identify → authorize → route + open →
//! proxy → finish) whose front ends are thin: `http/` (HTTPS requests and
//! the edge's own `/.warren/` endpoints), `tcp.rs` (`access tcp` byte
//! streams over WebSocket) and `pg/` (the native PostgreSQL listener).
//! Streams to connectors are opened in one place (`upstream.rs`). Around
//! it: `tunnel.rs` (connector registration), `registry.rs` (live
//! connections and the power-of-two-choices pick), `routes.rs` (hostname
//! → tunnel), [`ca`] (the local CA and per-SNI certificates), `admin`
//! (REST API), `pages.rs` (every error a browser or curl can see),
//! `audit.rs` (the audit-log writer), [`access`] (access applications,
//! identities, service tokens, sign-in, signed identity for origins).
//!
//! **The edge never dials a private network**: everything reaches origins
//! through a stream on a connection the connector opened.

#![forbid(unsafe_code)]

mod accept;
pub mod access;
mod admin;
mod audit;
pub mod ca;
pub mod config;
mod databases;
pub mod declared;
#[doc(hidden)]
pub mod fuzz;
mod http;
mod listen;
mod metrics;
mod pages;
mod pg;
mod quick;
mod registry;
mod routes;
pub mod secrets;
mod server;
mod session;
mod stored_config;
mod tcp;
mod tcp_quic;
mod tunnel;
mod upstream;

pub use access::AccessSettings;

pub use audit::OnAuditFailure;
pub use config::{EdgeConfig, PartialEdgeConfig};
pub use pg::VerifierError;
pub use server::{run, BoundAddrs, EdgeError, Listeners};
