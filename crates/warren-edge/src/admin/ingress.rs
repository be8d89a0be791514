//! `/v1/tunnels/{t}/ingress`: a tunnel's ingress config stored at the edge
//! (remote-managed tunnels). `PUT {"config": "<YAML>"}` validates it with
//! the connector's own parser (refused with its sentence), stores it as the
//! next version and pushes it to every live connection, answering what
//! each connector did with it; `GET` returns the stored one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{AdminState, ApiError, ApiResult};
use crate::stored_config::{self, ConfigRefusal};

#[derive(Deserialize)]
pub(super) struct SetIngress {
    /// The YAML text, cloudflared's `config.yml` shape.
    config: String,
}

pub(super) async fn set_ingress(
    State(state): State<AdminState>,
    Path(key): Path<String>,
    body: Result<Json<SetIngress>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
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
    let connections: Vec<Value> = answers
        .iter()
        .map(|(conn, answer)| {
            json!({
                "connector_id": conn.connector_id,
                "conn_index": conn.conn_index,
                "applied": answer.applied,
                "message": answer.message,
            })
        })
        .collect();
    Ok(Json(json!({
        "version": stored.version,
        "updated_at": stored.updated_at,
        "warnings": warnings,
        "connections": connections,
    })))
}

pub(super) async fn get_ingress(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let tunnel = state.find_tunnel(&key).await?;
    match state.store.tunnel_config(&tunnel.id).await? {
        Some(c) => Ok(Json(json!({
            "version": c.version,
            "updated_at": c.updated_at,
            "config": c.yaml,
        }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "tunnel {} has no stored ingress config; set one with `warren tunnel ingress set {} -f config.yml`",
                tunnel.name, tunnel.name
            ),
        )),
    }
}
