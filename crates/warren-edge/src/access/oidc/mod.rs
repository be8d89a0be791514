//! Signing in through an OpenID Connect provider: authorization code flow
//! with PKCE (S256), `state` and `nonce`.
//!
//! 1. [`begin`]: a browser that must sign in is redirected to the
//!    provider's authorization endpoint. The flow's secrets (state, nonce,
//!    PKCE verifier, where to return) travel in a short-lived cookie the
//!    edge signs, so any edge process can finish the flow.
//! 2. [`callback`] on `https://HOST/.warren/callback`: the code is
//!    exchanged at the token endpoint (client secret + PKCE verifier), the
//!    ID token is verified against the provider's JWKS by every rule of
//!    OpenID Connect Core §3.1.3.7 (`idtoken`: signature and algorithm,
//!    issuer, audiences and `azp`, `exp`, `iat`, nonce; an unknown key id
//!    has the key set fetched again), a session is recorded in the store,
//!    and the browser gets the session cookie (HttpOnly, Secure,
//!    SameSite=Lax) and is sent back where it started — or, for `warren
//!    access login`, the token is handed to the CLI's loopback listener.
//! 3. [`logout`]: the session is revoked and the cookie cleared.
//!
//! On a host without a browser, `warren access login --device` uses the
//! provider's device authorization grant instead (`device`: [`start`],
//! [`poll`]); it ends in the same `establish` as the callback.
//!
//! `client` talks to the provider ([`IdpClient`]); `idtoken` checks ID
//! tokens; `signin` holds the handlers and cookies; `query` the
//! query-string helpers both use.

mod client;
mod device;
mod idtoken;
mod query;
mod signin;

pub use client::{IdpClient, IdpError};
// The dashboard's sign-in (`admin/ui/signin.rs`) runs the same code flow.
pub(crate) use client::{authorization_url, exchange};
pub(crate) use device::limit as device_body;
pub use device::{
    poll, redeem, start, DeviceLogins, DEVICE_POLL_PATH, DEVICE_REDEEM_PATH, DEVICE_START_PATH,
};
pub(crate) use query::QUERY_VALUE;
pub use query::{decode, encode, query_param};
pub(crate) use signin::random_b64;
pub use signin::{begin, callback, logout, session_cookie};

/// Path the provider redirects back to.
pub const CALLBACK_PATH: &str = "/.warren/callback";
/// Path that starts a sign-in (used by `warren access login`).
pub const LOGIN_PATH: &str = "/.warren/login";
/// Path that signs out.
pub const LOGOUT_PATH: &str = "/.warren/logout";
