//! Session reports to the edge (`SessionReport` on a stream the connector
//! opens): what the connector learned about a session the edge started,
//! and — when the application logs them — its SQL statements.
//!
//! [`Reporter`] batches statements on a bounded queue; a writer task sends
//! them in order, one stream per batch. When the queue is full the
//! session's client waits: statements are never dropped.

use tokio::sync::mpsc;
use warren_proto::control::{ControlMessage, SessionReport};
use warren_transport::StreamError;

/// Statements waiting to be sent.
const QUEUE: usize = 256;
/// Most statements in one report.
const BATCH: usize = 64;

/// Sends one report on a new stream of `conn`; failures are logged.
pub(crate) async fn send(conn: &warren_transport::TunnelConnection, report: SessionReport) {
    let msg = ControlMessage::SessionReport(report).encode();
    let result = async {
        let (mut s, _r) = conn.open_stream().await.map_err(StreamError::from)?;
        s.write_all(&msg).await?;
        s.finish()?;
        // Wait until the edge has it (bounded), so a report is not lost
        // when the connection closes right after.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.stopped()).await;
        Ok::<_, StreamError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "a session report could not be sent to the edge");
    }
}

/// Statement reporting for one session.
pub(crate) struct Reporter {
    tx: mpsc::Sender<String>,
}

impl Reporter {
    /// Starts the writer for `session` on `conn`.
    pub(crate) fn start(conn: warren_transport::TunnelConnection, session: String) -> Reporter {
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let statements = std::mem::take(&mut batch);
                send(
                    &conn,
                    SessionReport {
                        session: session.clone(),
                        fields: Vec::new(),
                        statements,
                    },
                )
                .await;
            }
        });
        Reporter { tx }
    }

    /// Queues a statement (waits while the queue is full).
    pub(crate) async fn statement(&self, sql: String) {
        let _ = self.tx.send(sql).await;
    }
}
