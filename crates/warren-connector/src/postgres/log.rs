//! What the connector records of a PostgreSQL session: the start (user,
//! database, application_name, upstream TLS) for its log and the edge's
//! audit entry, and — when the application logs statements — every simple
//! Query and extended Parse text, reported as it passes.

use warren_pg::track::{FrontendEvent, FrontendTracker};
use warren_pg::Startup;
use warren_transport::copy::Inspect;

use super::db::DbStream;
use crate::origin::PgTls;

/// Logs the start of a session; returns what the edge's audit log keeps
/// of it.
pub(super) fn log_start(
    host: &str,
    client: &str,
    target: &str,
    startup: &Startup,
    pg: &PgTls,
    db: &DbStream,
    client_tls: &str,
) -> Vec<(String, String)> {
    let (tls_version, cipher) = match db {
        DbStream::Tls(t) => {
            let c = t.get_ref().1;
            (
                c.protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default(),
                c.negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()))
                    .unwrap_or_default(),
            )
        }
        DbStream::Plain(_) => ("none".to_owned(), String::new()),
    };
    tracing::info!(
        %host,
        %client,
        origin = %target,
        user = %startup.user(),
        database = %startup.database(),
        application_name = %startup.application_name().unwrap_or(""),
        client_tls = %client_tls,
        sslmode = %pg.mode,
        tls = %tls_version,
        cipher = %cipher,
        "PostgreSQL session started"
    );
    let upstream = if cipher.is_empty() {
        tls_version
    } else {
        format!("{tls_version}/{cipher}")
    };
    vec![
        ("pg_user".into(), startup.user().to_owned()),
        ("pg_database".into(), startup.database().to_owned()),
        (
            "application_name".into(),
            startup.application_name().unwrap_or("").to_owned(),
        ),
        ("upstream".into(), target.to_owned()),
        ("upstream_tls".into(), upstream),
        ("sslmode".into(), pg.mode.to_string()),
        ("client_tls".into(), client_tls.to_owned()),
    ]
}

/// Reports the statements a client sends, seen by the one copier as the
/// bytes pass (nothing is buffered but a watched statement's text).
pub(super) struct StatementLog {
    pub(super) tracker: FrontendTracker,
    pub(super) reporter: crate::report::Reporter,
}

impl Inspect for StatementLog {
    async fn inspect(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let mut statements = Vec::new();
        for event in self.tracker.observe(chunk) {
            match event {
                Ok(FrontendEvent::Query(sql)) | Ok(FrontendEvent::Parse { query: sql, .. })
                    if !sql.is_empty() =>
                {
                    statements.push(sql)
                }
                Ok(FrontendEvent::TooLong { len, .. }) => tracing::warn!(
                    bytes = len,
                    "a statement too long for the statement log passed unlogged"
                ),
                Ok(_) => {}
                Err(e @ warren_pg::TrackError::Framing(_)) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                }
                Err(e) => tracing::debug!(error = %e, "a statement could not be read for the log"),
            }
        }
        // Statements are never dropped: the client waits while the queue
        // to the edge is full.
        for sql in statements {
            self.reporter.statement(sql).await;
        }
        Ok(())
    }
}
