//! The audit log: append, list, verify, prune.
//!
//! Every row carries `prev_hash` and `hash = SHA-256(prev_hash || fields)`,
//! fields length-prefixed in a fixed order with the row's `seq`, so editing
//! a row breaks its hash, and deleting or reordering rows breaks the chain.
//! Retention deletes the oldest rows and records the last deleted row's
//! `(seq, hash)` as the anchor the chain continues from.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::now;
use crate::{Store, StoreError};

/// What happened, as the caller records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Unix seconds; 0 means now.
    pub time: i64,
    /// `decision` (an access check) or `connection` (a finished one).
    pub kind: String,
    /// User email or service token name; empty if anonymous.
    pub identity: String,
    /// Client address.
    pub source: String,
    /// Access application, if any.
    pub app: String,
    pub hostname: String,
    pub tunnel: String,
    /// Origin, database, ... as known.
    pub destination: String,
    /// `allow`, `deny`, ...
    pub decision: String,
    /// The policy and rule that decided.
    pub rule: String,
    pub bytes_up: i64,
    pub bytes_down: i64,
    pub duration_ms: i64,
    /// Why a connection ended.
    pub end_reason: String,
}

/// A stored entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Hex SHA-256 of this row.
    pub hash: String,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries at or after this unix time.
    pub since: Option<i64>,
    pub app: Option<String>,
    pub identity: Option<String>,
    pub decision: Option<String>,
    /// Entries with a larger `seq` (the paging cursor).
    pub after_seq: Option<i64>,
    /// At most this many (capped at 1000).
    pub limit: u32,
}

/// The outcome of [`Store::verify_audit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditVerdict {
    /// Rows checked.
    pub checked: u64,
    /// `None` when the chain is intact; otherwise the first row that does
    /// not fit and why.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

/// Most rows read at once.
const PAGE: i64 = 1000;

/// One `audit_log` row.
#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    time: i64,
    kind: String,
    identity: String,
    source: String,
    app: String,
    hostname: String,
    tunnel: String,
    destination: String,
    decision: String,
    rule: String,
    bytes_up: i64,
    bytes_down: i64,
    duration_ms: i64,
    end_reason: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// The columns of [`Row`], as a literal for `concat!`.
macro_rules! columns {
    () => {
        "seq, time, kind, identity, source, app, hostname, tunnel, destination, \
         decision, rule, bytes_up, bytes_down, duration_ms, end_reason, prev_hash, hash"
    };
}

fn entry_of(r: &Row) -> AuditEntry {
    AuditEntry {
        time: r.time,
        kind: r.kind.clone(),
        identity: r.identity.clone(),
        source: r.source.clone(),
        app: r.app.clone(),
        hostname: r.hostname.clone(),
        tunnel: r.tunnel.clone(),
        destination: r.destination.clone(),
        decision: r.decision.clone(),
        rule: r.rule.clone(),
        bytes_up: r.bytes_up,
        bytes_down: r.bytes_down,
        duration_ms: r.duration_ms,
        end_reason: r.end_reason.clone(),
    }
}

/// The chain hash of entry `e` at `seq` after `prev`.
fn chain_hash(prev: &[u8], seq: i64, e: &AuditEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(&seq.to_be_bytes());
    field(&e.time.to_be_bytes());
    for s in [
        &e.kind,
        &e.identity,
        &e.source,
        &e.app,
        &e.hostname,
        &e.tunnel,
        &e.destination,
        &e.decision,
        &e.rule,
    ] {
        field(s.as_bytes());
    }
    field(&e.bytes_up.to_be_bytes());
    field(&e.bytes_down.to_be_bytes());
    field(&e.duration_ms.to_be_bytes());
    field(e.end_reason.as_bytes());
    h.finalize().into()
}

impl Store {
    /// Appends entries in one transaction, chained after the last row.
    pub async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        let last: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.db())?;
        let (mut seq, mut prev) = match last {
            Some(l) => l,
            None => sqlx::query_as("SELECT seq, hash FROM audit_anchor WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.db())?
                .unwrap_or((0, vec![0; 32])),
        };
        for e in entries {
            let mut e = e.clone();
            if e.time == 0 {
                e.time = now();
            }
            seq += 1;
            let hash = chain_hash(&prev, seq, &e);
            sqlx::query(concat!(
                "INSERT INTO audit_log (",
                columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))
            .bind(seq)
            .bind(e.time)
            .bind(&e.kind)
            .bind(&e.identity)
            .bind(&e.source)
            .bind(&e.app)
            .bind(&e.hostname)
            .bind(&e.tunnel)
            .bind(&e.destination)
            .bind(&e.decision)
            .bind(&e.rule)
            .bind(e.bytes_up)
            .bind(e.bytes_down)
            .bind(e.duration_ms)
            .bind(&e.end_reason)
            .bind(&prev)
            .bind(&hash[..])
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
            prev = hash.to_vec();
        }
        tx.commit().await.map_err(self.db())?;
        Ok(())
    }

    /// Entries matching `f`, oldest first, at most `f.limit` (≤ 1000).
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            columns!(),
            " FROM audit_log WHERE seq > ?1 \
             AND (?2 IS NULL OR time >= ?2) AND (?3 IS NULL OR app = ?3) \
             AND (?4 IS NULL OR identity = ?4) AND (?5 IS NULL OR decision = ?5) \
             ORDER BY seq LIMIT ?6"
        );
        let limit = i64::from(f.limit.clamp(1, 1000));
        let rows: Vec<Row> = sqlx::query_as(SQL)
            .bind(f.after_seq.unwrap_or(0))
            .bind(f.since)
            .bind(f.app.as_deref())
            .bind(f.identity.as_deref())
            .bind(f.decision.as_deref())
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(rows
            .iter()
            .map(|r| AuditRecord {
                seq: r.seq,
                entry: entry_of(r),
                hash: r.hash.iter().map(|b| format!("{b:02x}")).collect(),
            })
            .collect())
    }

    /// Walks the whole chain from the anchor; reports the first row that
    /// was changed, removed or reordered.
    pub async fn verify_audit(&self) -> Result<AuditVerdict, StoreError> {
        let (mut seq, mut prev): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, hash FROM audit_anchor WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(self.db())?
                .unwrap_or((0, vec![0; 32]));
        let mut checked = 0u64;
        let broken = |at: i64, problem: String, checked: u64| AuditVerdict {
            checked,
            broken_at: Some(at),
            problem: Some(problem),
        };
        loop {
            let rows: Vec<Row> = sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .bind(seq)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(self.db())?;
            if rows.is_empty() {
                return Ok(AuditVerdict {
                    checked,
                    broken_at: None,
                    problem: None,
                });
            }
            for r in &rows {
                if r.seq != seq + 1 {
                    return Ok(broken(
                        seq + 1,
                        format!("entries {} to {} are missing", seq + 1, r.seq - 1),
                        checked,
                    ));
                }
                if r.prev_hash != prev {
                    return Ok(broken(
                        r.seq,
                        "its link to the previous entry does not match".into(),
                        checked,
                    ));
                }
                let want = chain_hash(&prev, r.seq, &entry_of(r));
                if r.hash != want {
                    return Ok(broken(
                        r.seq,
                        "its content was changed after it was written".into(),
                        checked,
                    ));
                }
                seq = r.seq;
                prev = r.hash.clone();
                checked += 1;
            }
        }
    }

    /// Deletes entries older than `before` (unix seconds) and moves the
    /// chain's anchor to the last one deleted. Returns how many went.
    pub async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        // Rows are appended in time order, so the old ones are a prefix.
        let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, hash FROM audit_log WHERE time < ?1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(before)
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.db())?;
        let Some((seq, hash)) = last else {
            return Ok(0);
        };
        let done = sqlx::query("DELETE FROM audit_log WHERE seq <= ?1")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        sqlx::query(
            "INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(seq)
        .bind(&hash)
        .execute(&mut *tx)
        .await
        .map_err(self.db())?;
        tx.commit().await.map_err(self.db())?;
        Ok(done.rows_affected())
    }
}
