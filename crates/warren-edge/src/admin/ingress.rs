//! `/v1/tunnels/{t}/ingress`: a tunnel's ingress config stored at the edge
//! (remote-managed tunnels). `PUT {"config": "<YAML>"}` validates it with
//! the connector's own parser (refused with its sentence), stores it as the
//! next version and pushes it to every live connection, answering what
//! each connector did with it; `GET` returns the stored one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiErrorBody;
use super::{AdminState, ApiError, ApiResult};
use crate::stored_config::{self, ConfigRefusal};

/// A tunnel's ingress config.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SetIngress {
    /// The YAML text, cloudflared's `config.yml` shape.
    #[schema(
        example = "ingress:\n  - hostname: app.example.com\n    service: http://localhost:3000\n  - service: http_status:404\n"
    )]
    config: String,
}

/// What storing a config did.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct IngressStored {
    /// The stored version (the first is 1).
    version: i64,
    /// Unix seconds.
    updated_at: i64,
    /// What the parser noticed without refusing the config.
    warnings: Vec<String>,
    /// Every live connection's answer to the push.
    connections: Vec<PushAnswer>,
}

/// One connection's answer to a pushed config.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct PushAnswer {
    connector_id: String,
    conn_index: u8,
    /// The connector runs the new version now.
    applied: bool,
    /// Why not, when it does not.
    message: String,
}

/// A tunnel's stored config.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct IngressConfig {
    version: i64,
    /// Unix seconds.
    updated_at: i64,
    /// The YAML text, as given.
    config: String,
}

/// Store a tunnel's ingress config and push it to its connectors.
///
/// The config is validated with the connector's own parser (refused with
/// its sentence), stored as the next version and pushed to every live
/// connection; the answer says what each connector did with it.
#[utoipa::path(
    put,
    path = "/v1/tunnels/{tunnel}/ingress",
    tag = "ingress",
    params(("tunnel" = String, Path, description = "The tunnel's name or id.")),
    request_body = SetIngress,
    responses(
        (status = 200, description = "Stored and pushed.", body = IngressStored),
        (status = 400, description = "The config is not valid; nothing was stored.", body = ApiErrorBody),
        (status = 404, description = "No such tunnel.", body = ApiErrorBody),
    )
)]
pub(super) async fn set_ingress(
    State(state): State<AdminState>,
    Path(key): Path<String>,
    body: Result<Json<SetIngress>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<IngressStored>> {
    let Json(body) = body.map_err(|r| ApiError::bad_body(r, r#"{"config": "<the YAML text>"}"#))?;
    let tunnel = state.find_tunnel(&key).await?;
    let app_tags: Vec<String> = state
        .store
        .list_apps()
        .await?
        .into_iter()
        .map(|a| a.tag)
        .collect();
    let warnings = stored_config::validate(&body.config, &app_tags).map_err(|e| match e {
        ConfigRefusal::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        ConfigRefusal::Invalid(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the config was not stored: {e}"),
        ),
    })?;
    let stored = state
        .store
        .set_tunnel_config(&tunnel.id, &body.config)
        .await?;
    tracing::info!(tunnel = %tunnel.name, version = stored.version, "stored a new ingress config");
    let answers = stored_config::push_all(&state.registry, &tunnel.id, &stored).await;
    let connections = answers
        .into_iter()
        .map(|(conn, answer)| PushAnswer {
            connector_id: conn.connector_id.clone(),
            conn_index: conn.conn_index,
            applied: answer.applied,
            message: answer.message,
        })
        .collect();
    Ok(Json(IngressStored {
        version: stored.version,
        updated_at: stored.updated_at,
        warnings,
        connections,
    }))
}

/// Get a tunnel's stored ingress config.
#[utoipa::path(
    get,
    path = "/v1/tunnels/{tunnel}/ingress",
    tag = "ingress",
    params(("tunnel" = String, Path, description = "The tunnel's name or id.")),
    responses(
        (status = 200, description = "The stored config.", body = IngressConfig),
        (status = 404, description = "No such tunnel, or it has no stored config.", body = ApiErrorBody),
    )
)]
pub(super) async fn get_ingress(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Json<IngressConfig>> {
    let tunnel = state.find_tunnel(&key).await?;
    match state.store.tunnel_config(&tunnel.id).await? {
        Some(c) => Ok(Json(IngressConfig {
            version: c.version,
            updated_at: c.updated_at,
            config: c.yaml,
        })),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "tunnel {} has no stored ingress config; set one with `warren tunnel ingress set {} -f config.yml`",
                tunnel.name, tunnel.name
            ),
        )),
    }
}
