//! Every ErrorResponse the native PostgreSQL listener sends, in one place:
//! a SQLSTATE and one sentence psql prints, saying what was wrong and what
//! to do.

use tokio::io::{AsyncWrite, AsyncWriteExt};
use warren_pg::message::sqlstate;
use warren_pg::{error_response, NegotiationError, Severity};

use warren_pg::pool::{FlowError, StartupParamError};

use super::pool::client::RoleRefusal;
use super::pool::PoolError;
use crate::access::Refusal;
use crate::session::Failure;
use crate::upstream::UpstreamError;

/// Why the listener refused a client, before or instead of a session.
#[derive(Debug)]
pub(crate) enum PgRefusal {
    /// The negotiation core refused the client (bad first message,
    /// unexpected message inside TLS, too many encryption requests, data
    /// pipelined before TLS).
    Negotiation(NegotiationError),
    /// A plaintext StartupMessage: only TLS is accepted.
    PlaintextStartup,
    /// TLS without SNI: the hostname is unknown.
    NoServerName,
    /// A session could not go on: `had_cert` says whether the client
    /// presented a certificate.
    Session {
        host: String,
        failure: Failure,
        had_cert: bool,
    },
    /// The connector answered with something that is not a byte stream.
    NotTcp { host: String },
    /// The tunnel closed while the startup was being sent.
    TunnelClosedDuringStartup,
    /// Pooled: the identity maps to no role it may use.
    NoRole {
        database: String,
        who: String,
        why: RoleRefusal,
    },
    /// Pooled: the edge holds no credential for the role.
    NoCredential { database: String, role: String },
    /// Pooled: a startup parameter the pool cannot carry.
    StartupParam(StartupParamError),
    /// Pooled: no server connection.
    Pool(PoolError),
    /// Pooled: the client's messages could not be followed.
    Protocol(FlowError),
    /// Pooled: the server connection closed under the client.
    ServerGone,
    /// Access was withdrawn while the session was open.
    Revoked,
}

impl PgRefusal {
    /// SQLSTATE and the sentence.
    pub(crate) fn render(&self) -> (&'static str, String) {
        use sqlstate::*;
        match self {
            PgRefusal::Negotiation(e) => (e.sqlstate().unwrap_or(PROTOCOL_VIOLATION), e.to_string()),
            PgRefusal::PlaintextStartup => (INVALID_AUTHORIZATION, "the Warren edge accepts PostgreSQL connections only over TLS; connect with sslmode=verify-full and the certificate from `warren access pg-cert HOST`".into()),
            PgRefusal::NoServerName => (INVALID_AUTHORIZATION, "the connection names no hostname (TLS SNI); connect with host=HOSTNAME (and hostaddr=IP if it does not resolve)".into()),
            PgRefusal::Session { host, failure, had_cert } => session(host, failure, *had_cert),
            PgRefusal::NotTcp { host } => (UNABLE_TO_CONNECT, format!("{host} is not a PostgreSQL or TCP service")),
            PgRefusal::TunnelClosedDuringStartup => (CONNECTION_FAILURE, "the tunnel closed during startup".into()),
            PgRefusal::NoRole { database, who, why: RoleRefusal::NoneMapped } => (INSUFFICIENT_PRIVILEGE, format!("{who} may connect to {database} but no database role is mapped to them; an administrator can add one with `warren access policy add APP POLICY ... --db-role ROLE`")),
            PgRefusal::NoRole { database, who, why: RoleRefusal::NotAllowed { asked, allowed } } => (INSUFFICIENT_PRIVILEGE, format!("{who} may use the role{} {} on {database}, not {asked}; connect with user={}", if allowed.len() == 1 { "" } else { "s" }, allowed.join(", "), allowed[0])),
            PgRefusal::NoCredential { database, role } => (INVALID_AUTHORIZATION, format!("the Warren edge holds no credential for role {role} on {database}; an administrator can store one with `warren db credential set {database} --role {role} --password-file FILE`")),
            PgRefusal::StartupParam(e) => (FEATURE_NOT_SUPPORTED, e.to_string()),
            PgRefusal::Pool(e @ PoolError::Exhausted { .. }) => (TOO_MANY_CONNECTIONS, e.to_string()),
            PgRefusal::Pool(PoolError::Upstream(e)) => (UNABLE_TO_CONNECT, e.to_string()),
            PgRefusal::Pool(e @ PoolError::Login(_)) => (INVALID_AUTHORIZATION, e.to_string()),
            PgRefusal::Pool(e) => (UNABLE_TO_CONNECT, e.to_string()),
            PgRefusal::Protocol(e) => (PROTOCOL_VIOLATION, e.to_string()),
            PgRefusal::ServerGone => (CONNECTION_FAILURE, "the database connection closed in the middle of the session; reconnect".into()),
            PgRefusal::Revoked => (ADMIN_SHUTDOWN, "access to this database was withdrawn; the session is closed".into()),
        }
    }

    /// Writes the FATAL ErrorResponse, leaving the stream open (to a
    /// write half; closing is the caller's).
    pub(crate) async fn write<S: AsyncWrite + Unpin>(&self, s: &mut S) {
        let (code, message) = self.render();
        let m = error_response(Severity::Fatal, code, &message);
        let _ = s.write_all(&m.encode()).await;
    }

    /// Sends the FATAL ErrorResponse and closes the client's side (only
    /// closes, for a client that can no longer read one).
    pub(crate) async fn send<S: AsyncWrite + Unpin>(&self, s: &mut S) {
        if let PgRefusal::Negotiation(e) = self {
            if e.sqlstate().is_none() {
                let _ = s.shutdown().await;
                return;
            }
        }
        let (code, message) = self.render();
        let m = error_response(Severity::Fatal, code, &message);
        let _ = s.write_all(&m.encode()).await;
        let _ = s.shutdown().await;
    }
}

fn session(host: &str, f: &Failure, had_cert: bool) -> (&'static str, String) {
    use sqlstate::*;
    let pg_cert = format!("`warren access pg-cert {host}`");
    match f {
        Failure::UnknownHost => (INVALID_AUTHORIZATION, format!("there is no tunnel route for {host}; an administrator can add one with `warren tunnel route dns TUNNEL {host}`")),
        Failure::CertificateExpired => (INVALID_AUTHORIZATION, format!("the client certificate expired; get a new one with {pg_cert}")),
        Failure::CertificateInvalid(why) => (INVALID_AUTHORIZATION, why.to_string()),
        Failure::Refused(Refusal::NeedsLogin { .. } | Refusal::Denied { .. }) if !had_cert => (INVALID_AUTHORIZATION, format!("{host} needs a client certificate: run {pg_cert} and connect with the sslcert and sslkey it prints")),
        Failure::Refused(Refusal::Denied { app, who, .. }) => (INVALID_AUTHORIZATION, format!("access to {} was denied for {}", app.name, who.label())),
        Failure::Refused(Refusal::NeedsLogin { .. }) => (INVALID_AUTHORIZATION, format!("the client certificate's session or service token is no longer valid; sign in again and run {pg_cert}")),
        Failure::Refused(Refusal::NotProtected) => (INVALID_AUTHORIZATION, format!("{host} is not open to anyone: no access application covers it and its route is not public; an administrator can create one with `warren access app create` or make the route public")),
        // Service tokens travel in headers, never to this listener.
        Failure::Refused(Refusal::BadServiceToken { .. } | Refusal::TooManyAttempts { .. }) => (INVALID_AUTHORIZATION, "the credentials were not accepted".into()),
        Failure::Upstream(e) => (UNABLE_TO_CONNECT, upstream(host, e)),
        Failure::AuditUnavailable => (CANNOT_CONNECT_NOW, "the Warren edge cannot write its audit log right now, so it lets no new connection through; try again in a minute".into()),
    }
}

fn upstream(host: &str, e: &UpstreamError) -> String {
    match e {
        UpstreamError::NoConnector => format!("the tunnel for {host} has no connected connector; start one with `warren tunnel run` on the private network"),
        UpstreamError::Timeout => format!("the connector for {host} did not answer in time; try again"),
        UpstreamError::Tunnel(reason) => format!("the tunnel to {host} failed before the database answered ({reason}); try again"),
        UpstreamError::Origin { message, .. } => format!("the connector for {host} could not reach the database: {message}"),
        UpstreamError::UnexpectedAnswer { what } => format!("the connector for {host} answered {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_sentence_and_a_sqlstate() {
        let host = "db.example.com".to_owned();
        let cases = [
            PgRefusal::PlaintextStartup,
            PgRefusal::NoServerName,
            PgRefusal::Negotiation(NegotiationError::TooManyEncryptionRequests),
            PgRefusal::NotTcp { host: host.clone() },
            PgRefusal::TunnelClosedDuringStartup,
            PgRefusal::NoRole {
                database: "orders".into(),
                who: "ci".into(),
                why: RoleRefusal::NoneMapped,
            },
            PgRefusal::NoRole {
                database: "orders".into(),
                who: "ci".into(),
                why: RoleRefusal::NotAllowed {
                    asked: "postgres".into(),
                    allowed: vec!["app".into()],
                },
            },
            PgRefusal::NoCredential {
                database: "orders".into(),
                role: "app".into(),
            },
            PgRefusal::StartupParam(StartupParamError::Replication),
            PgRefusal::Pool(PoolError::Exhausted {
                database: "orders".into(),
                role: "app".into(),
                size: 2,
                waited_ms: 5000,
            }),
            PgRefusal::ServerGone,
            PgRefusal::Revoked,
            PgRefusal::Session {
                host: host.clone(),
                failure: Failure::UnknownHost,
                had_cert: true,
            },
            PgRefusal::Session {
                host: host.clone(),
                failure: Failure::CertificateExpired,
                had_cert: true,
            },
            PgRefusal::Session {
                host: host.clone(),
                failure: Failure::Refused(Refusal::NotProtected),
                had_cert: false,
            },
            PgRefusal::Session {
                host: host.clone(),
                failure: Failure::Upstream(UpstreamError::NoConnector),
                had_cert: true,
            },
        ];
        for c in cases {
            let (code, text) = c.render();
            assert_eq!(code.len(), 5, "{c:?}");
            assert!(!text.is_empty() && !text.ends_with('.'), "{c:?}: {text}");
        }
        let (_, t) = PgRefusal::Session {
            host: host.clone(),
            failure: Failure::CertificateExpired,
            had_cert: true,
        }
        .render();
        assert!(t.contains("the client certificate expired"), "{t}");
        let (_, t) = PgRefusal::PlaintextStartup.render();
        assert!(
            t.contains("accepts PostgreSQL connections only over TLS"),
            "{t}"
        );
    }
}
