//! Sessions the edge opened to a connector, and what the connector reports
//! about them (`SessionReport`): a PostgreSQL session's user, database,
//! application name and upstream TLS, merged into the connection's audit
//! entry at its end; statements, audited as they arrive when the
//! application logs them.
//!
//! Only ids the edge registered are accepted, so a connector cannot grow
//! this table or write into sessions it does not carry.

use std::collections::HashMap;
use std::sync::Mutex;

use warren_proto::control::SessionReport;
use warren_store::AuditEntry;

/// Longest statement kept in the audit log.
const MAX_STATEMENT: usize = 8 * 1024;
/// Most report fields kept per session.
const MAX_FIELDS: usize = 16;

/// Who a session belongs to, for the entries its reports produce.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    pub identity: String,
    pub app: String,
    pub host: String,
    pub source: String,
    pub tunnel: String,
}

struct Open {
    info: SessionInfo,
    fields: Vec<(String, String)>,
}

/// The open sessions of one edge process.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Open>>,
}

impl Sessions {
    /// Registers a session the edge is about to open.
    pub fn open(&self, id: &str, info: SessionInfo) {
        self.map.lock().expect("sessions lock").insert(
            id.to_owned(),
            Open {
                info,
                fields: Vec::new(),
            },
        );
    }

    /// Takes a report; returns the audit entries for its statements.
    pub fn report(&self, r: SessionReport) -> Vec<AuditEntry> {
        let mut map = self.map.lock().expect("sessions lock");
        let Some(open) = map.get_mut(&r.session) else {
            tracing::debug!("a session report for an unknown session was ignored");
            return Vec::new();
        };
        for (k, v) in r.fields {
            if let Some(slot) = open.fields.iter_mut().find(|(ok, _)| *ok == k) {
                slot.1 = v;
            } else if open.fields.len() < MAX_FIELDS {
                open.fields.push((k, v));
            }
        }
        let db = describe(&open.fields);
        r.statements
            .into_iter()
            .map(|mut sql| {
                if sql.len() > MAX_STATEMENT {
                    let mut cut = MAX_STATEMENT;
                    while !sql.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    sql.truncate(cut);
                    sql.push_str(" [truncated]");
                }
                AuditEntry {
                    kind: "statement".into(),
                    identity: open.info.identity.clone(),
                    source: open.info.source.clone(),
                    app: open.info.app.clone(),
                    hostname: open.info.host.clone(),
                    tunnel: open.info.tunnel.clone(),
                    destination: sql,
                    decision: "allow".into(),
                    rule: db.clone(),
                    ..Default::default()
                }
            })
            .collect()
    }

    /// Ends a session; returns its description for the connection entry
    /// (empty if the connector reported nothing).
    pub fn close(&self, id: &str) -> String {
        self.map
            .lock()
            .expect("sessions lock")
            .remove(id)
            .map(|o| describe(&o.fields))
            .unwrap_or_default()
    }
}

/// `pg_user=app pg_database=app application_name=psql upstream_tls=...`.
fn describe(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            if v.is_empty() || v.contains(char::is_whitespace) {
                format!("{k}={v:?}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_merge_and_unknown_sessions_are_ignored() {
        let s = Sessions::default();
        s.open(
            "a",
            SessionInfo {
                identity: "ci".into(),
                app: "db".into(),
                ..Default::default()
            },
        );
        let none = s.report(SessionReport {
            session: "b".into(),
            fields: vec![("pg_user".into(), "x".into())],
            statements: vec!["SELECT 1".into()],
        });
        assert!(none.is_empty());
        let e = s.report(SessionReport {
            session: "a".into(),
            fields: vec![
                ("pg_user".into(), "app".into()),
                ("application_name".into(), "my app".into()),
            ],
            statements: vec!["SELECT 1".into(), "x".repeat(MAX_STATEMENT + 10)],
        });
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].destination, "SELECT 1");
        assert_eq!(e[0].identity, "ci");
        assert_eq!(e[0].rule, "pg_user=app application_name=\"my app\"");
        assert!(e[1].destination.ends_with(" [truncated]"));
        assert_eq!(s.close("a"), "pg_user=app application_name=\"my app\"");
        assert_eq!(s.close("a"), "");
    }
}
