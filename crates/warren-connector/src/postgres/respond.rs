//! Every ErrorResponse the connector sends a PostgreSQL client, in one
//! place: a SQLSTATE and one sentence psql prints.

use tokio::io::{AsyncWrite, AsyncWriteExt};
use warren_pg::message::sqlstate;
use warren_pg::{error_response, AuthError, NegotiationError, Severity};

use super::db::DbError;

/// Why the connector ended a client's session before the splice.
#[derive(Debug)]
pub(super) enum PgRefusal {
    /// The negotiation core refused the client.
    Negotiation(NegotiationError),
    /// The database could not be reached as the rule asks.
    Database(DbError),
    /// The database closed the connection while the startup was sent.
    ClosedDuringStartup { target: String },
    /// The authentication relay ended.
    Auth(AuthError),
}

impl PgRefusal {
    /// SQLSTATE and the sentence, or `None` when the client gets nothing
    /// (it left, or the database's own error already reached it).
    pub(super) fn render(&self) -> Option<(&'static str, String)> {
        match self {
            PgRefusal::Negotiation(e) => Some((e.sqlstate()?, e.to_string())),
            PgRefusal::Database(e) => Some((sqlstate::UNABLE_TO_CONNECT, e.to_string())),
            PgRefusal::ClosedDuringStartup { target } => Some((
                sqlstate::CONNECTION_FAILURE,
                format!("the database at {target} closed the connection during startup"),
            )),
            PgRefusal::Auth(e) => Some((e.sqlstate()?, e.to_string())),
        }
    }

    /// Sends the FATAL ErrorResponse (if any) and closes the client's side.
    pub(super) async fn send<S: AsyncWrite + Unpin>(&self, s: &mut S) {
        if let Some((code, message)) = self.render() {
            let m = error_response(Severity::Fatal, code, &message);
            let _ = s.write_all(&m.encode()).await;
        }
        let _ = s.shutdown().await;
    }
}
