//! `/v1/audit`: the audit log, paged oldest first, and its chain check.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use warren_store::{AuditFilter, AuditRecord, AuditVerdict};

use super::{AdminState, ApiResult};

/// Filters and paging of `GET /v1/audit`.
#[derive(Deserialize)]
pub(super) struct AuditQuery {
    since: Option<i64>,
    app: Option<String>,
    identity: Option<String>,
    decision: Option<String>,
    /// Entries after this sequence number (the previous page's
    /// `next_after`).
    after: Option<i64>,
    /// Page size, at most 1000 (default 100).
    limit: Option<u32>,
}

#[derive(Serialize)]
pub(super) struct AuditPage {
    entries: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<i64>,
}

pub(super) async fn list_audit(
    State(state): State<AdminState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state
        .store
        .list_audit(&AuditFilter {
            since: q.since,
            app: q.app,
            identity: q.identity,
            decision: q.decision,
            after_seq: q.after,
            limit,
        })
        .await?;
    let next_after = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_after,
    }))
}

pub(super) async fn verify_audit(State(state): State<AdminState>) -> ApiResult<Json<AuditVerdict>> {
    Ok(Json(state.store.verify_audit().await?))
}
