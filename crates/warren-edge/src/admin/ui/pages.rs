//! The signed-in pages: tunnels (status, connectors, uptime) and one
//! tunnel, traffic plots, routes (with delete), access applications and
//! their policies, service tokens (create, shown once; revoke). Reads are
//! the store and registry reads the API makes; the actions call the
//! API's own functions (`admin/access.rs`, `admin/routes.rs`).

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use warren_store::{RouteRow, ServiceTokenRow, Steering};

use super::session::Signed;
use super::{html, message, span, utc, Chrome, Ctx};
use crate::admin::ApiError;
use crate::registry::TunnelStatus;

fn now() -> i64 {
    crate::audit::now()
}

fn status_word(s: TunnelStatus) -> &'static str {
    match s {
        TunnelStatus::Active => "active",
        TunnelStatus::Degraded => "degraded",
        TunnelStatus::Inactive => "inactive",
    }
}

/// The page for a store failure.
fn failed(e: ApiError) -> Response {
    message(
        e.status(),
        "The dashboard could not read the edge's state",
        &format!("{} Reload the page in a moment.", e.message()),
    )
}

pub(super) struct ConnectorRow {
    id: String,
    version: String,
    source_ip: String,
    up: usize,
    configured: u8,
    since: String,
    draining: bool,
    old_secret: bool,
}

pub(super) struct TunnelRow {
    name: String,
    status: &'static str,
    uptime: String,
    connectors: Vec<ConnectorRow>,
    routes: Vec<String>,
}

#[derive(Template)]
#[template(path = "tunnels.html")]
struct TunnelsPage {
    chrome: Chrome,
    tunnels: Vec<TunnelRow>,
}

/// Every tunnel with its status and connectors, as `GET /v1/tunnels`
/// has them, and its routes.
async fn tunnel_rows(ctx: &Ctx) -> Result<Vec<TunnelRow>, ApiError> {
    let tunnels = ctx.admin.store.list_tunnels().await?;
    let routes = ctx.admin.store.list_routes().await?;
    let now = u64::try_from(now()).unwrap_or(0);
    Ok(tunnels
        .into_iter()
        .map(|t| {
            let health = ctx.admin.registry.health(&t.id, t.secret_generation);
            TunnelRow {
                status: status_word(health.status),
                uptime: health
                    .up_since
                    .map_or_else(|| "—".to_owned(), |s| span(now.saturating_sub(s))),
                connectors: health
                    .connectors
                    .into_iter()
                    .map(|c| ConnectorRow {
                        id: c.id.chars().take(8).collect(),
                        version: c.version,
                        source_ip: c.source_ip,
                        up: c.connections_up,
                        configured: c.connections_configured,
                        since: span(now.saturating_sub(c.connected_since)),
                        draining: c.draining,
                        old_secret: c.previous_secret,
                    })
                    .collect(),
                routes: routes
                    .iter()
                    .filter(|r| r.tunnels.iter().any(|m| m.tunnel_id == t.id))
                    .map(|r| r.hostname.clone())
                    .collect(),
                name: t.name,
            }
        })
        .collect())
}

/// `GET /ui/tunnels`.
pub(super) async fn tunnels(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
) -> Response {
    match tunnel_rows(&ctx).await {
        Ok(tunnels) => html(
            StatusCode::OK,
            &TunnelsPage {
                chrome: Chrome::new(&signed, "tunnels"),
                tunnels,
            },
        ),
        Err(e) => failed(e),
    }
}

pub(super) struct ConnectionRow {
    connector: String,
    index: u8,
    remote: String,
    edge: String,
    since: String,
    streams: usize,
    draining: bool,
    old_secret: bool,
    config: String,
}

#[derive(Template)]
#[template(path = "tunnel.html")]
struct TunnelPage {
    chrome: Chrome,
    tunnel: TunnelRow,
    id: String,
    created: String,
    connections: Vec<ConnectionRow>,
}

/// `GET /ui/tunnels/{name}`: one tunnel, as `GET /v1/tunnels/{name}`.
pub(super) async fn tunnel(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
) -> Response {
    let t = match ctx.admin.find_tunnel(&name).await {
        Ok(t) => t,
        Err(e) => {
            return message(
                e.status(),
                "No such tunnel",
                &format!("{} The tunnels page lists them.", e.message()),
            )
        }
    };
    let rows = match tunnel_rows(&ctx).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let Some(row) = rows.into_iter().find(|r| r.name == t.name) else {
        return message(
            StatusCode::NOT_FOUND,
            "No such tunnel",
            "The tunnel was deleted just now; the tunnels page lists those there are.",
        );
    };
    let now = u64::try_from(now()).unwrap_or(0);
    let health = ctx.admin.registry.health(&t.id, t.secret_generation);
    let connections = health
        .connections
        .into_iter()
        .map(|c| ConnectionRow {
            connector: c.connector_id.chars().take(8).collect(),
            index: c.conn_index,
            remote: c.remote,
            edge: c.edge_addr,
            since: span(now.saturating_sub(c.connected_at)),
            streams: c.outstanding_streams,
            draining: c.draining,
            old_secret: c.previous_secret,
            config: match c.config {
                Some(s) if s.applied => format!("version {} applied", s.version),
                Some(s) => format!("version {} not applied: {}", s.version, s.message),
                None => "its own".to_owned(),
            },
        })
        .collect();
    html(
        StatusCode::OK,
        &TunnelPage {
            chrome: Chrome::new(&signed, "tunnels"),
            id: t.id,
            created: utc(t.created_at),
            tunnel: row,
            connections,
        },
    )
}

#[derive(Template)]
#[template(path = "traffic.html")]
struct TrafficPage {
    chrome: Chrome,
    tunnels: Vec<String>,
    selected: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Which {
    tunnel: Option<String>,
}

/// `GET /ui/traffic?tunnel=NAME`: the plots of one tunnel (the first,
/// when none is named).
pub(super) async fn traffic(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Query(which): Query<Which>,
) -> Response {
    let tunnels: Vec<String> = match ctx.admin.store.list_tunnels().await {
        Ok(t) => t.into_iter().map(|t| t.name).collect(),
        Err(e) => return failed(e.into()),
    };
    let selected = match which.tunnel {
        Some(name) if tunnels.contains(&name) => Some(name),
        Some(name) => {
            return message(
                StatusCode::NOT_FOUND,
                "No such tunnel",
                &format!(
                    "There is no tunnel named {name:?}; the traffic page lists those there are."
                ),
            )
        }
        None => tunnels.first().cloned(),
    };
    html(
        StatusCode::OK,
        &TrafficPage {
            chrome: Chrome::new(&signed, "traffic"),
            tunnels,
            selected,
        },
    )
}

/// `GET /ui/traffic.json?tunnel=NAME`: the samples the plots draw.
pub(super) async fn traffic_json(State(ctx): State<Ctx>, Query(which): Query<Which>) -> Response {
    let name = which.tunnel.unwrap_or_default();
    match ctx.admin.find_tunnel(&name).await {
        Ok(t) => {
            let now = u64::try_from(now()).unwrap_or(0);
            Json(ctx.ui.traffic.series(&t.id, now)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(super) struct RouteView {
    hostname: String,
    tunnels: String,
    steering: &'static str,
    public: bool,
    created: String,
}

impl From<RouteRow> for RouteView {
    fn from(r: RouteRow) -> Self {
        RouteView {
            tunnels: r
                .tunnels
                .iter()
                .map(|m| m.tunnel_name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            steering: if r.steering == Steering::Single {
                ""
            } else {
                r.steering.as_str()
            },
            public: r.public,
            created: utc(r.created_at),
            hostname: r.hostname,
        }
    }
}

#[derive(Template)]
#[template(path = "routes.html")]
struct RoutesPage {
    chrome: Chrome,
    routes: Vec<RouteView>,
    notice: Option<String>,
    error: Option<String>,
}

async fn routes_page(
    ctx: &Ctx,
    signed: &Signed,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    match ctx.admin.store.list_routes().await {
        Ok(routes) => html(
            status,
            &RoutesPage {
                chrome: Chrome::new(signed, "routes"),
                routes: routes.into_iter().map(RouteView::from).collect(),
                notice,
                error,
            },
        ),
        Err(e) => failed(e.into()),
    }
}

/// `GET /ui/routes`.
pub(super) async fn routes(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
) -> Response {
    routes_page(&ctx, &signed, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub(super) struct RouteForm {
    #[serde(default)]
    hostname: String,
}

/// The page's answer to a form that did not arrive as one.
const NOT_A_FORM: &str = "The form did not arrive as a form; use the page's own buttons.";

/// `POST /ui/routes/delete` `hostname=...`: `DELETE /v1/routes/{hostname}`.
pub(super) async fn delete_route(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    form: Result<Form<RouteForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return routes_page(
            &ctx,
            &signed,
            StatusCode::BAD_REQUEST,
            None,
            Some(NOT_A_FORM.into()),
        )
        .await;
    };
    match crate::admin::routes::remove_route(&ctx.admin, &form.hostname).await {
        Ok(()) => {
            let notice = format!(
                "Deleted the route {}; the edge no longer serves it.",
                form.hostname
            );
            routes_page(&ctx, &signed, StatusCode::OK, Some(notice), None).await
        }
        Err(e) => {
            routes_page(
                &ctx,
                &signed,
                e.status(),
                None,
                Some(e.message().to_owned()),
            )
            .await
        }
    }
}

pub(super) struct PolicyView {
    position: usize,
    name: String,
    action: String,
    include: String,
    exclude: String,
    require: String,
}

pub(super) struct AppView {
    name: String,
    hostnames: String,
    path_prefix: String,
    session: String,
    statement_log: bool,
    tag: String,
    policies: Vec<PolicyView>,
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    chrome: Chrome,
    apps: Vec<AppView>,
}

fn rules(rules: &[warren_policy::Rule]) -> String {
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /ui/apps`: as `GET /v1/access/apps`.
pub(super) async fn apps(State(ctx): State<Ctx>, Extension(signed): Extension<Signed>) -> Response {
    let apps = match ctx.admin.store.list_apps().await {
        Ok(a) => a,
        Err(e) => return failed(e.into()),
    };
    let apps = apps
        .into_iter()
        .map(|a| AppView {
            hostnames: a.app.hostnames.join(", "),
            path_prefix: a.app.path_prefix.clone().unwrap_or_default(),
            session: span(a.app.session_duration_secs),
            statement_log: a.statement_log,
            policies: a
                .app
                .policies
                .iter()
                .enumerate()
                .map(|(i, p)| PolicyView {
                    position: i + 1,
                    name: p.name.clone(),
                    action: p.action.to_string(),
                    include: rules(&p.include),
                    exclude: rules(&p.exclude),
                    require: rules(&p.require),
                })
                .collect(),
            tag: a.tag,
            name: a.name,
        })
        .collect();
    html(
        StatusCode::OK,
        &AppsPage {
            chrome: Chrome::new(&signed, "apps"),
            apps,
        },
    )
}

pub(super) struct TokenView {
    name: String,
    client_id: String,
    created: String,
    expires: String,
    /// `active`, `expired` or `revoked`.
    state: &'static str,
}

impl From<ServiceTokenRow> for TokenView {
    fn from(t: ServiceTokenRow) -> Self {
        let state = if t.revoked_at.is_some() {
            "revoked"
        } else if t.expires_at.is_some_and(|e| e <= now()) {
            "expired"
        } else {
            "active"
        };
        TokenView {
            created: utc(t.created_at),
            expires: t.expires_at.map_or_else(|| "never".to_owned(), utc),
            state,
            client_id: t.id,
            name: t.name,
        }
    }
}

/// A token just created, with its secret: on this one answer only.
pub(super) struct NewSecret {
    name: String,
    client_id: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenView>,
    created: Option<NewSecret>,
    notice: Option<String>,
    error: Option<String>,
    max_days: i64,
}

async fn tokens_page(
    ctx: &Ctx,
    signed: &Signed,
    status: StatusCode,
    created: Option<NewSecret>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    match ctx.admin.store.list_service_tokens().await {
        Ok(tokens) => {
            let mut resp = html(
                status,
                &TokensPage {
                    chrome: Chrome::new(signed, "tokens"),
                    tokens: tokens.into_iter().map(TokenView::from).collect(),
                    created,
                    notice,
                    error,
                    max_days: crate::admin::access::MAX_TOKEN_DAYS,
                },
            );
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                "no-store".parse().expect("a header value"),
            );
            resp
        }
        Err(e) => failed(e.into()),
    }
}

/// `GET /ui/service-tokens`: as `GET /v1/access/service-tokens`, no
/// secrets.
pub(super) async fn tokens(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
) -> Response {
    tokens_page(&ctx, &signed, StatusCode::OK, None, None, None).await
}

#[derive(Deserialize)]
pub(super) struct CreateTokenForm {
    #[serde(default)]
    name: String,
    /// Empty: never expires.
    #[serde(default)]
    duration_days: String,
}

/// `POST /ui/service-tokens` `name=...&duration_days=...`: as `POST
/// /v1/access/service-tokens`; the answer shows the secret, this once.
pub(super) async fn create_token(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    form: Result<Form<CreateTokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return tokens_page(
            &ctx,
            &signed,
            StatusCode::BAD_REQUEST,
            None,
            None,
            Some(NOT_A_FORM.into()),
        )
        .await;
    };
    let days = match form.duration_days.trim() {
        "" => None,
        d => match d.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => {
                let error = format!("{d:?} is not a number of days; give 1 to {} days, or leave it empty for a token that does not expire.", crate::admin::access::MAX_TOKEN_DAYS);
                return tokens_page(
                    &ctx,
                    &signed,
                    StatusCode::BAD_REQUEST,
                    None,
                    None,
                    Some(error),
                )
                .await;
            }
        },
    };
    let name = form.name.trim();
    match crate::admin::access::new_service_token(&ctx.admin, name, days).await {
        Ok((row, secret)) => {
            let created = NewSecret {
                name: row.name.clone(),
                client_id: row.id.clone(),
                secret,
            };
            tokens_page(
                &ctx,
                &signed,
                StatusCode::CREATED,
                Some(created),
                None,
                None,
            )
            .await
        }
        Err(e) => {
            tokens_page(
                &ctx,
                &signed,
                e.status(),
                None,
                None,
                Some(e.message().to_owned()),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    name: String,
}

/// `POST /ui/service-tokens/revoke` `name=...`: as `POST
/// /v1/access/service-tokens/{name}/revoke`.
pub(super) async fn revoke_token(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return tokens_page(
            &ctx,
            &signed,
            StatusCode::BAD_REQUEST,
            None,
            None,
            Some(NOT_A_FORM.into()),
        )
        .await;
    };
    match crate::admin::access::revoke_token(&ctx.admin, &form.name).await {
        Ok(row) => {
            let notice = format!(
                "Revoked the service token {}; it is refused from now on.",
                row.name
            );
            tokens_page(&ctx, &signed, StatusCode::OK, None, Some(notice), None).await
        }
        Err(e) => {
            tokens_page(
                &ctx,
                &signed,
                e.status(),
                None,
                None,
                Some(e.message().to_owned()),
            )
            .await
        }
    }
}
