//! Why a token, or the edge's keys, could not be used.

/// Why a token was not accepted. Each message completes "...: <reason>"
/// in the refusal sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// The token is longer than any the edge signs.
    #[error("the token is too long")]
    TooLong,
    /// The token is not UTF-8 text.
    #[error("the token is not text")]
    NotText,
    /// No token came with the request.
    #[error("no identity token came with it; the hostname needs an access application that allows the request (`warren access app create`)")]
    Missing,
    /// The token is not a JWT.
    #[error("the token is malformed ({0})")]
    Malformed(String),
    /// The token is signed with another algorithm.
    #[error("the token is signed with {0}, not ES256")]
    WrongAlgorithm(String),
    /// The token's header names no key.
    #[error("the token names no signing key (kid)")]
    NoKeyId,
    /// The key the token names is not in the edge's key set.
    #[error("the token was signed by a key the edge does not publish")]
    UnknownKey,
    /// The rule accepts no audience (a config the loader refuses; checked
    /// again here so it can never mean "any").
    #[error("the rule lists no audTag to accept")]
    NoAudience,
    /// The token is for another application.
    #[error("the token is for another application (its audience is not in the rule's audTag)")]
    WrongAudience,
    /// The token was issued for another hostname.
    #[error("the token was issued for another hostname")]
    WrongIssuer,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// A claim the rule needs is missing.
    #[error("the token has no {0} claim")]
    MissingClaim(String),
    /// The edge's key for the token cannot be used.
    #[error("the edge's key for the token is unusable")]
    UnusableKey,
    /// The edge's keys could not be had.
    #[error("the connector cannot get the edge's keys to check the token ({0})")]
    KeysUnavailable(String),
}

/// Why the edge's key set could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyFetchError {
    /// The question on the tunnel failed or was refused.
    #[error(transparent)]
    Ask(#[from] crate::ask::AskError),
    /// The edge answered something other than its key set.
    #[error("unexpected answer to a key request: {0}")]
    UnexpectedAnswer(String),
    /// The document is not a JWK set.
    #[error("the edge's key set is not a JWK set: {0}")]
    NotJwks(String),
    /// The set holds no ES256 key.
    #[error("the edge's key set has no ES256 key")]
    NoEs256Key,
}

/// A stream refused by `originRequest.access.required`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the connector requires a valid Warren access token for {host} (originRequest.access.required): {reason}")]
pub(crate) struct TokenRefusal {
    /// The stream's hostname.
    pub host: String,
    /// Why its token was not accepted.
    pub reason: TokenError,
}
