//! [`ApiError`], the admin API's one error answer: a status and one
//! sentence as `{"error": ...}`, and the one place store errors become
//! HTTP statuses.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use warren_store::StoreError;

use super::BODY_LIMIT;

/// The body of every error answer, `{"error": "<one sentence>"}`; the
/// OpenAPI document's `ApiErrorBody`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ApiErrorBody {
    /// What was wrong and what to do, in one sentence.
    #[schema(
        example = "no tunnel named or with id \"office\"; list tunnels with `warren tunnel list`"
    )]
    pub error: String,
}

/// An error answer: a status and one sentence.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// Its status (the dashboard answers with it too).
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    /// Its sentence (the dashboard shows it on the page).
    pub(super) fn message(&self) -> &str {
        &self.message
    }

    pub(super) fn no_tunnel(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no tunnel named or with id {key:?}; list tunnels with `warren tunnel list`"),
        )
    }

    /// Turns a body the JSON extractor refused into a sentence.
    pub(super) fn bad_body(rejection: JsonRejection, example: &str) -> Self {
        let detail = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => format!("it is larger than {BODY_LIMIT} bytes"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "it is not marked Content-Type: application/json".to_owned()
            }
            _ => rejection.body_text(),
        };
        Self::new(
            rejection.status(),
            format!("the request body was refused ({detail}); send JSON such as {example}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            error: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The one place store errors become HTTP answers.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::InvalidName(_)
            | StoreError::InvalidHostname(_)
            | StoreError::InvalidPool(_)
            | StoreError::InvalidApp(_)
            | StoreError::InvalidServiceTokenName(_)
            | StoreError::InvalidPgDatabase(_)
            | StoreError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            StoreError::TunnelExists(_)
            | StoreError::RouteExists { .. }
            | StoreError::AppExists(_)
            | StoreError::ServiceTokenExists(_)
            | StoreError::ServiceTokenRevoked(_)
            | StoreError::PgDatabaseExists(_)
            | StoreError::PgHostnameTaken { .. } => StatusCode::CONFLICT,
            StoreError::UnknownTunnel(_)
            | StoreError::UnknownApp(_)
            | StoreError::UnknownServiceToken(_)
            | StoreError::UnknownPgDatabase(_) => StatusCode::NOT_FOUND,
            StoreError::Io { .. }
            | StoreError::Database { .. }
            | StoreError::Migrate { .. }
            | StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "admin API store failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self::new(status, e.to_string())
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;
