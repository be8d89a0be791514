//! Every error page the edge answers with, in one place.
//!
//! Each page is a short HTML document whose `<p>` is one sentence saying
//! what went wrong and what to do, plus a `Warren-Error` header with a
//! stable machine-readable code. Internals (tunnel ids, addresses of
//! connectors) never appear.

use http::{header, Response, StatusCode};
use warren_proto::stream::ErrorCode;
use warren_transport::body::{full, BoxBody};

use crate::access::Refusal;
use crate::session::Failure;
use crate::upstream::UpstreamError;

/// Why the edge answered instead of the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EdgeFailure {
    /// No route for the hostname.
    UnknownHost { host: String },
    /// The request had no usable Host.
    NoHost,
    /// The route's tunnel has no connected connector.
    NoConnector { host: String },
    /// The connector could not serve the stream.
    Origin {
        host: String,
        code: ErrorCode,
        message: String,
    },
    /// The tunnel stream failed before an answer came back.
    Tunnel { host: String, reason: String },
    /// The connector did not answer in time.
    Timeout { host: String },
    /// The request was malformed.
    BadRequest { reason: String },
    /// No access application covers the hostname and its route is not
    /// public (default deny).
    NotProtected { host: String },
    /// The application's policies deny the request.
    AccessDenied { app: String },
    /// The application needs a signed-in user or a service token.
    SignInRequired { host: String, app: String },
    /// The service token presented is not valid.
    BadServiceToken,
    /// Too many bad service-token secrets from this address.
    TooManyAttempts,
    /// The audit log cannot be written, so nothing that needs an entry is
    /// let through.
    AuditUnavailable,
    /// Sign-in is needed but no identity provider is set up.
    NoIdentityProvider { app: String },
    /// The identity provider could not be used.
    IdentityProvider { reason: String },
    /// `access login --device`: the identity provider offers no device
    /// authorization grant.
    DeviceUnavailable { idp: String },
    /// Too many device sign-ins are waiting (from this address, or on the
    /// edge).
    TooManySignIns,
    /// The device sign-in expired, or was never started, or was used.
    SignInExpired,
    /// The user declined the device sign-in at the identity provider.
    SignInDeclined,
    /// A pasted one-time code is unknown, used or expired.
    CodeNotValid,
}

impl EdgeFailure {
    /// The page for a session that could not go on.
    pub(crate) fn from_failure(f: Failure, host: &str) -> EdgeFailure {
        let host = host.to_owned();
        match f {
            Failure::UnknownHost => EdgeFailure::UnknownHost { host },
            Failure::Refused(r) => EdgeFailure::from_refusal(&r, &host),
            // Certificates are the PostgreSQL listener's; an HTTP client
            // never presents one.
            Failure::CertificateExpired | Failure::CertificateInvalid(_) => {
                EdgeFailure::BadRequest {
                    reason: "the client certificate cannot be used".into(),
                }
            }
            Failure::Upstream(e) => EdgeFailure::from_upstream(e, host),
            Failure::AuditUnavailable => EdgeFailure::AuditUnavailable,
        }
    }

    /// The page for an access refusal.
    pub(crate) fn from_refusal(r: &Refusal, host: &str) -> EdgeFailure {
        match r {
            Refusal::NotProtected => EdgeFailure::NotProtected {
                host: host.to_owned(),
            },
            Refusal::Denied { app, .. } => EdgeFailure::AccessDenied {
                app: app.name.clone(),
            },
            Refusal::NeedsLogin { app, .. } => EdgeFailure::SignInRequired {
                host: host.to_owned(),
                app: app.name.clone(),
            },
            Refusal::BadServiceToken { .. } => EdgeFailure::BadServiceToken,
            Refusal::TooManyAttempts { .. } => EdgeFailure::TooManyAttempts,
        }
    }

    /// The page for a stream that could not be had or failed.
    pub(crate) fn from_upstream(e: UpstreamError, host: String) -> EdgeFailure {
        match e {
            UpstreamError::NoConnector => EdgeFailure::NoConnector { host },
            UpstreamError::Timeout => EdgeFailure::Timeout { host },
            UpstreamError::Tunnel(reason) => EdgeFailure::Tunnel { host, reason },
            UpstreamError::Origin { code, message } => EdgeFailure::Origin {
                host,
                code,
                message,
            },
            e @ UpstreamError::UnexpectedAnswer { .. } => EdgeFailure::Tunnel {
                host,
                reason: e.to_string(),
            },
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::UnknownHost { .. } => StatusCode::NOT_FOUND,
            Self::NoHost | Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Origin { code, .. } => match code {
                ErrorCode::OriginTimeout => StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
                ErrorCode::NoService => StatusCode::BAD_GATEWAY,
                ErrorCode::NoHealthyOrigin => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::NoConnector { .. } | Self::Tunnel { .. } => StatusCode::BAD_GATEWAY,
            Self::NotProtected { .. } | Self::AccessDenied { .. } => StatusCode::FORBIDDEN,
            Self::SignInRequired { .. } | Self::BadServiceToken => StatusCode::UNAUTHORIZED,
            Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::NoIdentityProvider { .. } | Self::AuditUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::IdentityProvider { .. } => StatusCode::BAD_GATEWAY,
            Self::DeviceUnavailable { .. } => StatusCode::NOT_IMPLEMENTED,
            Self::TooManySignIns => StatusCode::TOO_MANY_REQUESTS,
            Self::SignInExpired => StatusCode::GONE,
            Self::SignInDeclined => StatusCode::FORBIDDEN,
            Self::CodeNotValid => StatusCode::GONE,
        }
    }

    /// Stable code for the `Warren-Error` header.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::UnknownHost { .. } => "unknown-hostname",
            Self::NoHost => "no-host",
            Self::NoConnector { .. } => "no-connector",
            Self::Origin { code, .. } => match code {
                ErrorCode::NoService => "no-service",
                ErrorCode::OriginUnreachable => "origin-unreachable",
                ErrorCode::OriginTimeout => "origin-timeout",
                ErrorCode::OriginTls => "origin-tls",
                ErrorCode::OriginProtocol => "origin-protocol",
                ErrorCode::BadRequest => "bad-request",
                ErrorCode::ShuttingDown => "connector-shutting-down",
                ErrorCode::Internal => "connector-error",
                ErrorCode::NoHealthyOrigin => "no-healthy-origin",
            },
            Self::Tunnel { .. } => "tunnel-error",
            Self::Timeout { .. } => "connector-timeout",
            Self::BadRequest { .. } => "bad-request",
            Self::NotProtected { .. } => "no-access-application",
            Self::AccessDenied { .. } => "access-denied",
            Self::SignInRequired { .. } => "sign-in-required",
            Self::BadServiceToken => "bad-service-token",
            Self::TooManyAttempts => "too-many-attempts",
            Self::NoIdentityProvider { .. } => "no-identity-provider",
            Self::AuditUnavailable => "audit-unavailable",
            Self::IdentityProvider { .. } => "identity-provider-error",
            Self::DeviceUnavailable { .. } => "device-sign-in-unavailable",
            Self::TooManySignIns => "too-many-sign-ins",
            Self::SignInExpired => "sign-in-expired",
            Self::SignInDeclined => "sign-in-declined",
            Self::CodeNotValid => "code-not-valid",
        }
    }

    /// The one sentence a person reads.
    pub(crate) fn sentence(&self) -> String {
        match self {
            Self::UnknownHost { host } => format!(
                "There is no tunnel route for {host}; an administrator can add one with `warren tunnel route dns TUNNEL {host}`."
            ),
            Self::NoHost => "The request has no Host header, so it cannot be routed; send one.".into(),
            Self::NoConnector { host } => format!(
                "The tunnel for {host} has no connected connector; start one with `warren tunnel run` on the private network."
            ),
            Self::Origin { host, message, .. } => {
                format!("The connector for {host} could not reach the origin: {message}.")
            }
            Self::Tunnel { host, reason } => {
                format!("The tunnel to {host} failed before the origin answered ({reason}); try again.")
            }
            Self::Timeout { host } => {
                format!("The connector for {host} did not answer in time; try again.")
            }
            Self::BadRequest { reason } => format!("The request is malformed: {reason}."),
            Self::NotProtected { host } => format!(
                "{host} is not open to anyone: no access application covers it and its route is not public; an administrator can create one with `warren access app create` or make the route public."
            ),
            Self::AccessDenied { app } => format!(
                "Access to {app} was denied. If you think you should have access, ask the application's administrator, or sign in as another user."
            ),
            Self::SignInRequired { host, app } => format!(
                "{app} needs you to sign in: open https://{host}/ in a browser, run `warren access login https://{host}` in a terminal, or send a service token (Warren-Access-Client-Id and Warren-Access-Client-Secret)."
            ),
            Self::BadServiceToken => "The service token was not accepted: its client id or secret is wrong, or it was revoked or has expired; check the Warren-Access-Client-Id and Warren-Access-Client-Secret you send.".into(),
            Self::TooManyAttempts => "Too many wrong service-token secrets came from your address; wait a minute before trying again.".into(),
            Self::AuditUnavailable => "The edge cannot write its audit log right now, so it lets no new connection through rather than serve it unrecorded; try again in a minute (an administrator should check the edge's log and the disk of its data directory).".into(),
            Self::NoIdentityProvider { app } => format!(
                "{app} needs a signed-in user, but no identity provider is set up; an administrator can add one with `warren access idp add`."
            ),
            Self::IdentityProvider { reason } => format!(
                "The identity provider could not be reached to sign you in ({reason}); try again later."
            ),
            Self::DeviceUnavailable { idp } => format!(
                "The identity provider {idp} does not offer sign-in from another device (its discovery document has no device_authorization_endpoint); run `warren access login` where a browser can be opened, or enable the device grant for this client at the provider."
            ),
            Self::TooManySignIns => "Too many sign-ins from another device are waiting to be finished, from your address or on this edge; finish one, or wait a few minutes for them to expire, and try again.".into(),
            Self::SignInExpired => "This sign-in has expired, was already finished, or was never started here; run `warren access login --device` again.".into(),
            Self::SignInDeclined => "The sign-in was declined at the identity provider; run `warren access login --device` again to sign in.".into(),
            Self::CodeNotValid => "The pasted code is not valid: it was mistyped, already used, is for another hostname, or is more than 5 minutes old; run `warren access login --device` again for a new one.".into(),
        }
    }

    /// The same failure as JSON, for the CLI's endpoints:
    /// `{"error": code, "message": sentence}` with the status and the
    /// `Warren-Error` header of the page.
    pub(crate) fn json(&self) -> Response<BoxBody> {
        let body = serde_json::json!({ "error": self.code(), "message": self.sentence() });
        Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .header("warren-error", self.code())
            .body(full(body.to_string()))
            .expect("static response parts are valid")
    }

    /// The page.
    pub(crate) fn response(&self) -> Response<BoxBody> {
        let status = self.status();
        let title = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let mut resp = page(status, &title, &self.sentence());
        resp.headers_mut()
            .insert("warren-error", http::HeaderValue::from_static(self.code()));
        resp
    }
}

/// A short HTML page: a heading and one paragraph, never cached.
pub(crate) fn page(status: StatusCode, title: &str, text: &str) -> Response<BoxBody> {
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body><h1>{t}</h1>\n<p>{p}</p>\n<hr><p>warren</p></body></html>\n",
        t = html_escape(title),
        p = html_escape(text),
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(full(body))
        .expect("static response parts are valid")
}

/// Escapes text for HTML.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_connector_page_says_so() {
        let f = EdgeFailure::NoConnector {
            host: "app.example.com".into(),
        };
        assert_eq!(f.status(), StatusCode::BAD_GATEWAY);
        assert!(f.sentence().contains("has no connected connector"));
        assert_eq!(f.response().headers()["warren-error"], "no-connector");
    }

    #[test]
    fn hostile_host_is_escaped() {
        let f = EdgeFailure::UnknownHost {
            host: "<script>".into(),
        };
        let r = f.response();
        assert_eq!(r.status(), 404);
        assert_eq!(html_escape("<a&'\">"), "&lt;a&amp;&#39;&quot;&gt;");
    }
}
