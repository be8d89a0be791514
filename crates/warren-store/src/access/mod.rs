//! Access control in the store: applications (with their ordered policies),
//! service tokens, identity providers, sessions, signing keys, and the
//! control generation that tells every edge process something changed.

mod apps;
mod generation;
mod idps;
mod service_tokens;
mod sessions;
mod signing_keys;

pub use apps::AppRow;
pub use idps::IdpRow;
pub use service_tokens::ServiceTokenRow;
pub use sessions::SessionRow;
pub use signing_keys::SigningKeyRow;
