//! `originRequest.access`: the connector checks the identity token the
//! edge signed for an access application before it reaches the origin,
//! as cloudflared does with `access.required`.
//!
//! The edge signs an ES256 token for every request an application allows
//! (the `Warren-Access-Jwt-Assertion` header of HTTP and WebSocket
//! requests, the `assertion` of a TCP stream). The connector gets the
//! edge's JWK set over the tunnel (`KeysRequest` → `KeysIssued` on a
//! stream it opens, like `certs.rs` does for certificates), caches it in a
//! [`KeyCache`] — fetched on first need, kept 10 minutes, fetched again at
//! most once a minute when a token names a key it does not know — and
//! [`verify`]s: ES256 only, the `kid` in the set, `aud` one of the rule's
//! `audTag`, `iss` `https://<hostname>`, not expired (30 s leeway).
//!
//! Nothing here panics on what a client or the edge sends; every failure
//! is a short reason for the refusal sentence and the log.

mod error;
mod jwks;
mod token;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use warren_proto::control::ControlMessage;
use warren_proto::stream::Headers;

pub(crate) use error::{KeyFetchError, TokenError, TokenRefusal};
pub(crate) use jwks::parse_jwks;
use token::token_text;
pub(crate) use token::{key_id, verify};

/// The header the edge puts the signed identity in (lower-case, as on the
/// wire).
pub(crate) const ASSERTION_HEADER: &str = "warren-access-jwt-assertion";

/// How long a fetched key set is used.
const CACHE_FOR: Duration = Duration::from_secs(10 * 60);
/// Least time between two fetches caused by unknown `kid`s.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);
/// Least time between two fetches after one failed.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);
/// How long the edge has to answer a key request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 30;
/// Longest token looked at; the edge's are well under 1 KiB.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Who a verified token names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub(crate) struct Identity {
    /// The user's subject, or the service token's client id.
    #[serde(default)]
    pub sub: String,
    /// The user's email; empty for a service token.
    #[serde(default)]
    pub email: String,
    /// `user` or `service_token`.
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// Verification keys by `kid`.
pub(crate) type KeySet = HashMap<String, DecodingKey>;

/// The edge's keys for one [`crate::serve::Runtime`]: fetched on first
/// need through a tunnel connection, then cached.
#[derive(Default)]
pub(crate) struct KeyCache {
    state: tokio::sync::Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// The last key set fetched, and when.
    keys: Option<(Arc<KeySet>, Instant)>,
    /// When a fetch was last started.
    last_attempt: Option<Instant>,
    /// Why the last fetch failed (`None` after a success).
    last_error: Option<KeyFetchError>,
}

impl KeyCache {
    /// Verifies `token` (as received; empty when none came) for `host`
    /// and one of `aud_tags`, fetching the edge's keys through `conn` when
    /// needed. The error is the reason, for a refusal sentence.
    pub(crate) async fn verify(
        &self,
        token: &[u8],
        host: &str,
        aud_tags: &[String],
        conn: &warren_transport::TunnelConnection,
    ) -> Result<Identity, TokenError> {
        self.verify_with(token, host, aud_tags, || fetch_jwks(conn))
            .await
    }

    /// [`KeyCache::verify`] with the key fetch given as a function (the JWK
    /// set document, or why it could not be had).
    pub(crate) async fn verify_with<F, Fut>(
        &self,
        token: &[u8],
        host: &str,
        aud_tags: &[String],
        fetch: F,
    ) -> Result<Identity, TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, KeyFetchError>>,
    {
        self.verify_at(token, host, aud_tags, fetch, Instant::now())
            .await
    }

    /// [`KeyCache::verify_with`] as if it were `now` (for the cache's
    /// timing).
    async fn verify_at<F, Fut>(
        &self,
        token: &[u8],
        host: &str,
        aud_tags: &[String],
        fetch: F,
        now: Instant,
    ) -> Result<Identity, TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, KeyFetchError>>,
    {
        let token = token_text(token)?;
        let kid = key_id(token)?;
        let key = self.key(&kid, fetch, now).await?;
        verify(token, host, aud_tags, &key)
    }

    /// The key named `kid`, from the cache or a fresh fetch.
    async fn key<F, Fut>(
        &self,
        kid: &str,
        fetch: F,
        now: Instant,
    ) -> Result<DecodingKey, TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, KeyFetchError>>,
    {
        let mut st = self.state.lock().await;
        let within = |t: Option<Instant>, d: Duration| {
            t.is_some_and(|t| now.saturating_duration_since(t) < d)
        };
        let fetch_now = match st.fresh(now) {
            None => !(st.last_error.is_some() && within(st.last_attempt, RETRY_FAILED_AFTER)),
            Some(set) => !set.contains_key(kid) && !within(st.last_attempt, REFRESH_AT_MOST_EVERY),
        };
        if fetch_now {
            st.last_attempt = Some(now);
            match fetch().await.and_then(|doc| parse_jwks(&doc)) {
                Ok(set) => {
                    tracing::debug!(keys = set.len(), "fetched the edge's identity-token keys");
                    st.keys = Some((Arc::new(set), now));
                    st.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot get the identity-token keys from the edge");
                    st.last_error = Some(e);
                }
            }
        }
        match st.fresh(now) {
            Some(set) => set.get(kid).cloned().ok_or(TokenError::UnknownKey),
            None => Err(TokenError::KeysUnavailable(
                st.last_error
                    .as_ref()
                    .map_or_else(|| "no answer yet".to_owned(), ToString::to_string),
            )),
        }
    }
}

impl CacheState {
    /// The key set, if it was fetched less than [`CACHE_FOR`] ago.
    fn fresh(&self, now: Instant) -> Option<Arc<KeySet>> {
        self.keys
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < CACHE_FOR)
            .map(|(set, _)| set.clone())
    }
}

/// The value of the assertion header when exactly one came; empty
/// otherwise (the edge sends one and removes any the client sent).
pub(crate) fn http_assertion(headers: &Headers) -> &[u8] {
    let mut found = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(ASSERTION_HEADER));
    match (found.next(), found.next()) {
        (Some((_, value)), None) => value,
        _ => &[],
    }
}

/// Asks the edge for its JWK set on a new stream of `conn`.
async fn fetch_jwks(conn: &warren_transport::TunnelConnection) -> Result<String, KeyFetchError> {
    let answer = crate::ask::ask(
        conn,
        &ControlMessage::KeysRequest,
        "key request",
        REQUEST_TIMEOUT,
    )
    .await?;
    match answer {
        ControlMessage::KeysIssued(k) => Ok(k.jwks),
        other => Err(KeyFetchError::UnexpectedAnswer(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests;
