//! The admin token check every endpoint but `/v1/health` passes through.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AdminState, ApiError};
use crate::secrets::try_check_admin_token;

pub(super) async fn require_admin(
    State(state): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
    const HINT: &str = "set WARREN_API_TOKEN to the contents of <data-dir>/admin-token (the API reads it from `Authorization: Bearer <token>`)";
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let Some(presented) = presented else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("this request carries no admin API token; {HINT}"),
        )
        .into_response();
    };
    match try_check_admin_token(&state.store, presented).await {
        Ok(true) => next.run(req).await,
        Ok(false) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("the admin API token is not valid for this edge; {HINT}"),
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
