//! `/v1/audit`: the audit log, paged oldest first, and its chain check.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use warren_store::{AuditFilter, AuditRecord, AuditVerdict};

use super::error::ApiErrorBody;
use super::{AdminState, ApiError, ApiResult};

/// Filters and paging of `GET /v1/audit`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Entries at or after this Unix second.
    since: Option<i64>,
    /// Entries of this access application.
    app: Option<String>,
    /// Entries of this user email or service-token name.
    identity: Option<String>,
    /// Entries with this decision (`allow`, `deny`, ...).
    decision: Option<String>,
    /// Entries after this sequence number (the previous page's
    /// `next_after`).
    after: Option<i64>,
    /// Page size, 1 to 1000 (default 100; others are brought into range).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One page of audit entries, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AuditPage {
    entries: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<i64>,
}

/// List audit entries, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries; pass `next_after` as `after` for the next.", body = AuditPage),
        (status = 400, description = "A filter is not understood.", body = ApiErrorBody),
    )
)]
pub(super) async fn list_audit(
    State(state): State<AdminState>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let Query(q) = q.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the query is not understood ({e}); give since, after and limit as whole numbers"
            ),
        )
    })?;
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

/// Check the audit log's hash chain.
#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    tag = "audit",
    responses((status = 200, description = "How many entries were checked, and the first that does not fit, if any.", body = AuditVerdict))
)]
pub(super) async fn verify_audit(State(state): State<AdminState>) -> ApiResult<Json<AuditVerdict>> {
    Ok(Json(state.store.verify_audit().await?))
}
