//! `POST /v1/apply` and `GET /v1/export`: the edge's tunnels, routes,
//! stored ingress, identity providers, access applications and service
//! tokens made to match a [`Declared`] state (`warren apply`), and the
//! current state as one (`warren export`).
//!
//! An apply is planned against the store, then every step runs in **one
//! store transaction**: a step the store refuses (a bad name, a policy
//! that does not validate) rolls all of them back, so a bad file changes
//! nothing. A dry run takes the same path and rolls back at the end, so it
//! finds every error an apply would. Only after the commit does this edge
//! act on it: routes reloaded, access refreshed, deleted tunnels'
//! connectors closed, changed stored configs pushed.
//!
//! Without `prune` nothing the file does not name is touched; with it,
//! tunnels, routes, applications and identity providers it does not name
//! are deleted and service tokens revoked (revoked tokens stay listed).
//! A tunnel declared without `ingress` keeps its stored config. Applying
//! the same file twice plans nothing the second time.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use warren_policy::Application;
use warren_proto::token::hash_secret;
use warren_store::{
    AppRow, IdpRow, RouteRow, ServiceTokenRow, Steering, StoreError, StoreTx, TunnelConfig,
};

use super::access::{checked_idp, new_credentials, MAX_TOKEN_DAYS};
use super::error::ApiErrorBody;
use super::tunnels::FIRST_GENERATION;
use super::{AdminState, ApiError, ApiResult};
use crate::declared::{AppSpec, Declared, IdpSpec, RouteSpec, ServiceTokenSpec};
use crate::stored_config;

/// A declared state to apply.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ApplyRequest {
    /// The state to reach.
    declared: Declared,
    /// Plan and check everything, then change nothing.
    #[serde(default)]
    dry_run: bool,
    /// Also delete what `declared` does not name (service tokens are
    /// revoked).
    #[serde(default)]
    prune: bool,
}

/// What an apply did (or, dry, would do).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ApplyAnswer {
    /// In the order they run.
    changes: Vec<Change>,
    /// `false` for a dry run (and when there was nothing to do).
    applied: bool,
    /// The stored configs' warnings, by tunnel.
    warnings: Vec<String>,
    /// Service tokens the edge made a secret for: shown this once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    new_secrets: Vec<NewSecret>,
}

/// A service token the edge made a secret for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NewSecret {
    name: String,
    client_id: String,
    client_secret: String,
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(super) struct Change {
    /// `create`, `update` or `delete`.
    action: &'static str,
    /// `tunnel`, `ingress`, `route`, `identity_provider`, `app` or
    /// `service_token`.
    kind: &'static str,
    name: String,
    /// What differs, for an update.
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
}

impl Change {
    fn new(action: &'static str, kind: &'static str, name: &str, detail: String) -> Self {
        Change {
            action,
            kind,
            name: name.to_owned(),
            detail,
        }
    }
}

/// A store write of the plan.
#[derive(Debug)]
enum Step {
    DeleteRoute(String),
    DeleteApp(String),
    DeleteIdp(String),
    RevokeToken(String),
    DeleteTunnel {
        id: String,
    },
    CreateTunnel(String),
    SetIngress {
        tunnel: String,
        yaml: String,
    },
    PutIdp(Box<IdpRow>),
    CreateApp(Box<AppSpec>),
    ReplaceApp {
        spec: Box<AppSpec>,
        tag: String,
    },
    AddRoute(RouteSpec),
    SetRoutePublic {
        hostname: String,
        public: bool,
    },
    CreateToken {
        spec: ServiceTokenSpec,
        hash: Option<[u8; 32]>,
    },
    RotateToken {
        name: String,
        hash: [u8; 32],
    },
}

/// What the store holds now, as the plan compares it.
pub(super) struct Current {
    tunnels: BTreeMap<String, (String, Option<TunnelConfig>)>,
    routes: Vec<RouteRow>,
    idps: Vec<IdpRow>,
    apps: Vec<AppRow>,
    /// Every token, with the secret hash of the usable ones.
    tokens: Vec<(ServiceTokenRow, Option<Vec<u8>>)>,
}

impl Current {
    async fn read(state: &AdminState) -> ApiResult<Current> {
        let store = &state.store;
        let mut tunnels = BTreeMap::new();
        for t in store.list_tunnels().await? {
            let config = store.tunnel_config(&t.id).await?;
            tunnels.insert(t.name, (t.id, config));
        }
        let hashes: BTreeMap<String, Vec<u8>> = store
            .service_token_credentials()
            .await?
            .into_iter()
            .map(|(row, hash)| (row.id, hash))
            .collect();
        let tokens = store
            .list_service_tokens()
            .await?
            .into_iter()
            .map(|row| {
                let hash = hashes.get(&row.id).cloned();
                (row, hash)
            })
            .collect();
        Ok(Current {
            tunnels,
            routes: store.list_routes().await?,
            idps: store.list_idps().await?,
            apps: store.list_apps().await?,
            tokens,
        })
    }
}

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// `host` as routes are stored: trimmed, lower-case, no trailing dot.
fn normal_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Refuses a second entry with the same name in one list.
fn unique<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> ApiResult<()> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(bad(format!(
                "the file declares {kind} {name:?} twice; keep one"
            )));
        }
    }
    Ok(())
}

/// The plan: the changes to show and the steps that make them, checked
/// as far as can be without the store (which checks the rest as the
/// steps run).
pub(super) struct Plan {
    changes: Vec<Change>,
    steps: Vec<Step>,
    warnings: Vec<String>,
}

pub(super) fn plan(
    state: &AdminState,
    want: &Declared,
    now: &Current,
    prune: bool,
) -> ApiResult<Plan> {
    unique("tunnel", want.tunnels.iter().map(|t| t.name.as_str()))?;
    let hosts: Vec<String> = want
        .routes
        .iter()
        .map(|r| normal_host(&r.hostname))
        .collect();
    unique("route", hosts.iter().map(String::as_str))?;
    unique(
        "identity provider",
        want.identity_providers.iter().map(|i| i.name.as_str()),
    )?;
    unique("app", want.apps.iter().map(|a| a.name.as_str()))?;
    unique(
        "service token",
        want.service_tokens.iter().map(|t| t.name.as_str()),
    )?;

    let mut p = Plan {
        changes: Vec::new(),
        steps: Vec::new(),
        warnings: Vec::new(),
    };
    let declared_tunnels: BTreeSet<&str> = want.tunnels.iter().map(|t| t.name.as_str()).collect();
    let tunnel_known =
        |name: &str| declared_tunnels.contains(name) || (!prune && now.tunnels.contains_key(name));

    // Deletions first, so that a moved route or a renamed token's
    // hostname is free again.
    // Added (or made public) after the tunnels they name exist.
    let mut route_steps = Vec::new();
    for (spec, host) in want.routes.iter().zip(&hosts) {
        let members = route_members(spec)?;
        for (tunnel, _) in &members.1 {
            if !tunnel_known(tunnel) {
                return Err(bad(format!(
                    "the route {host} names tunnel {tunnel:?}, which the file does not declare{}; add it under tunnels",
                    if prune { "" } else { " and the edge does not have" }
                )));
            }
        }
        state
            .route_policy
            .check(host)
            .map_err(|refusal| bad(refusal.to_string()))?;
        match now.routes.iter().find(|r| &r.hostname == host) {
            None => {
                p.changes
                    .push(Change::new("create", "route", host, String::new()));
                route_steps.push(Step::AddRoute(spec.clone()));
            }
            Some(row) => {
                let same_target = row.steering == members.0
                    && row.tunnels.len() == members.1.len()
                    && row.tunnels.iter().zip(&members.1).all(|(m, (t, w))| {
                        &m.tunnel_name == t && (members.0 == Steering::Single || m.weight == *w)
                    });
                if !same_target {
                    p.changes.push(Change::new(
                        "update",
                        "route",
                        host,
                        format!("{} -> {}", describe_row(row), describe_spec(&members)),
                    ));
                    p.steps.push(Step::DeleteRoute(host.clone()));
                    route_steps.push(Step::AddRoute(spec.clone()));
                } else if row.public != spec.public {
                    p.changes.push(Change::new(
                        "update",
                        "route",
                        host,
                        format!("public {} -> {}", row.public, spec.public),
                    ));
                    route_steps.push(Step::SetRoutePublic {
                        hostname: host.clone(),
                        public: spec.public,
                    });
                }
            }
        }
    }
    if prune {
        for row in &now.routes {
            if !hosts.contains(&row.hostname) {
                p.changes
                    .push(Change::new("delete", "route", &row.hostname, String::new()));
                p.steps.push(Step::DeleteRoute(row.hostname.clone()));
            }
        }
        for app in &now.apps {
            if !want.apps.iter().any(|a| a.name == app.name) {
                p.changes
                    .push(Change::new("delete", "app", &app.name, String::new()));
                p.steps.push(Step::DeleteApp(app.name.clone()));
            }
        }
        for idp in &now.idps {
            if !want.identity_providers.iter().any(|i| i.name == idp.name) {
                p.changes.push(Change::new(
                    "delete",
                    "identity_provider",
                    &idp.name,
                    String::new(),
                ));
                p.steps.push(Step::DeleteIdp(idp.name.clone()));
            }
        }
        for (token, _) in &now.tokens {
            let declared = want.service_tokens.iter().any(|t| t.name == token.name);
            if !declared && token.revoked_at.is_none() {
                p.changes.push(Change::new(
                    "delete",
                    "service_token",
                    &token.name,
                    "revoked".into(),
                ));
                p.steps.push(Step::RevokeToken(token.id.clone()));
            }
        }
        for (name, (id, _)) in &now.tunnels {
            if !declared_tunnels.contains(name.as_str()) {
                p.changes
                    .push(Change::new("delete", "tunnel", name, String::new()));
                p.steps.push(Step::DeleteTunnel { id: id.clone() });
            }
        }
    }

    // Tunnels and their stored configs.
    let app_tags: Vec<String> = now
        .apps
        .iter()
        .map(|a| a.tag.clone())
        .chain(want.apps.iter().filter_map(|a| a.tag.clone()))
        .collect();
    for t in &want.tunnels {
        if t.ingress_file.is_some() {
            return Err(bad(format!(
                "tunnel {:?} names an ingress_file; `warren apply` reads it and sends the text as ingress",
                t.name
            )));
        }
        let existing = now.tunnels.get(&t.name);
        if existing.is_none() {
            p.changes
                .push(Change::new("create", "tunnel", &t.name, String::new()));
            p.steps.push(Step::CreateTunnel(t.name.clone()));
        }
        let Some(yaml) = &t.ingress else { continue };
        let warnings = stored_config::validate(yaml, &app_tags).map_err(|e| {
            bad(format!(
                "the ingress of tunnel {:?} is refused: {e}",
                t.name
            ))
        })?;
        p.warnings.extend(
            warnings
                .into_iter()
                .map(|w| format!("tunnel {}: {w}", t.name)),
        );
        let stored = existing.and_then(|(_, c)| c.as_ref());
        if stored.is_none_or(|c| &c.yaml != yaml) {
            let action = if stored.is_some() { "update" } else { "create" };
            p.changes
                .push(Change::new(action, "ingress", &t.name, String::new()));
            p.steps.push(Step::SetIngress {
                tunnel: t.name.clone(),
                yaml: yaml.clone(),
            });
        }
    }

    // Identity providers.
    for spec in &want.identity_providers {
        if spec.client_secret_env.is_some() || spec.client_secret_file.is_some() {
            return Err(bad(format!(
                "identity provider {:?} names client_secret_env or client_secret_file; `warren apply` reads them and sends client_secret",
                spec.name
            )));
        }
        let existing = now.idps.iter().find(|i| i.name == spec.name);
        let secret = match (&spec.client_secret, existing) {
            (Some(s), _) => s.clone(),
            (None, Some(e)) => e.client_secret.clone(),
            (None, None) => {
                return Err(bad(format!(
                    "identity provider {:?} is new, so it needs its client secret: give client_secret_env or client_secret_file",
                    spec.name
                )))
            }
        };
        let row = checked_idp(idp_row(spec, secret))?;
        match existing {
            None => {
                p.changes.push(Change::new(
                    "create",
                    "identity_provider",
                    &spec.name,
                    String::new(),
                ));
                p.steps.push(Step::PutIdp(Box::new(row)));
            }
            Some(e) => {
                let diff = idp_diff(e, &row);
                if !diff.is_empty() {
                    p.changes
                        .push(Change::new("update", "identity_provider", &spec.name, diff));
                    p.steps.push(Step::PutIdp(Box::new(row)));
                }
            }
        }
    }

    // Applications.
    for spec in &want.apps {
        let app = application(spec);
        warren_policy::validate(&app)
            .map_err(|e| bad(format!("app {:?} is refused: {e}", spec.name)))?;
        match now.apps.iter().find(|a| a.name == spec.name) {
            None => {
                p.changes
                    .push(Change::new("create", "app", &spec.name, String::new()));
                p.steps.push(Step::CreateApp(Box::new(spec.clone())));
            }
            Some(row) => {
                let mut diff = Vec::new();
                if row.app != app {
                    diff.push("hostnames, path or policies");
                }
                if row.statement_log != spec.statement_log {
                    diff.push("statement_log");
                }
                let tag = spec.tag.clone().unwrap_or_else(|| row.tag.clone());
                if tag != row.tag {
                    diff.push("tag");
                }
                if !diff.is_empty() {
                    p.changes
                        .push(Change::new("update", "app", &spec.name, diff.join(", ")));
                    p.steps.push(Step::ReplaceApp {
                        spec: Box::new(spec.clone()),
                        tag,
                    });
                }
            }
        }
    }

    p.steps.extend(route_steps);

    // Service tokens.
    for spec in &want.service_tokens {
        if spec.secret_env.is_some() || spec.secret_file.is_some() {
            return Err(bad(format!(
                "service token {:?} names secret_env or secret_file; `warren apply` reads them and sends secret_sha256",
                spec.name
            )));
        }
        let hash = spec
            .secret_sha256
            .as_deref()
            .map(|h| parse_hash(&spec.name, h))
            .transpose()?;
        if let Some(id) = &spec.client_id {
            let ok = (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(bad(format!(
                    "service token {:?} has client id {id:?}; use 1 to 128 letters, digits, '.', '_' or '-' (or leave it out and the edge makes one)",
                    spec.name
                )));
            }
        }
        if spec.duration_days.is_some() && spec.expires_at.is_some() {
            return Err(bad(format!(
                "service token {:?} has both duration_days and expires_at; keep one",
                spec.name
            )));
        }
        if let Some(days) = spec.duration_days {
            if !(1..=MAX_TOKEN_DAYS).contains(&days) {
                return Err(bad(format!(
                    "service token {:?} has duration_days {days}; give 1 to {MAX_TOKEN_DAYS}, or leave it out for a token that does not expire",
                    spec.name
                )));
            }
        }
        match now.tokens.iter().find(|(t, _)| t.name == spec.name) {
            None => {
                p.changes.push(Change::new("create", "service_token", &spec.name, String::new()));
                p.steps.push(Step::CreateToken {
                    spec: spec.clone(),
                    hash,
                });
            }
            Some((row, _)) if row.revoked_at.is_some() => {
                return Err(bad(format!(
                    "service token {:?} is revoked on this edge, and revoked tokens keep their names; give the declared one another name",
                    spec.name
                )))
            }
            Some((row, stored)) => {
                if spec.client_id.as_ref().is_some_and(|id| id != &row.id) {
                    return Err(bad(format!(
                        "service token {:?} has client id {} on this edge, not the declared one; a token's client id cannot change, so give the declared token another name",
                        spec.name, row.id
                    )));
                }
                if let Some(hash) = hash {
                    if stored.as_deref() != Some(&hash[..]) {
                        p.changes.push(Change::new("update", "service_token", &spec.name, "secret".into()));
                        p.steps.push(Step::RotateToken {
                            name: spec.name.clone(),
                            hash,
                        });
                    }
                }
            }
        }
    }
    Ok(p)
}

/// A route spec's steering and `(tunnel, weight)` members.
fn route_members(spec: &RouteSpec) -> ApiResult<(Steering, Vec<(String, i64)>)> {
    match (&spec.tunnel, spec.tunnels.is_empty(), spec.steering) {
        (Some(t), true, None | Some(Steering::Single)) => Ok((Steering::Single, vec![(t.clone(), 1)])),
        (None, false, steering) if steering != Some(Steering::Single) => Ok((
            steering.unwrap_or(Steering::Failover),
            spec.tunnels.iter().map(|m| (m.tunnel.clone(), m.weight)).collect(),
        )),
        _ => Err(bad(format!(
            "the route {} needs either `tunnel: NAME`, or `tunnels:` with `steering: failover` or `weighted`",
            spec.hostname
        ))),
    }
}

fn describe_row(row: &RouteRow) -> String {
    let names: Vec<String> = row
        .tunnels
        .iter()
        .map(|m| format!("{}:{}", m.tunnel_name, m.weight))
        .collect();
    format!("{} [{}]", row.steering.as_str(), names.join(", "))
}

fn describe_spec((steering, members): &(Steering, Vec<(String, i64)>)) -> String {
    let names: Vec<String> = members.iter().map(|(t, w)| format!("{t}:{w}")).collect();
    format!("{} [{}]", steering.as_str(), names.join(", "))
}

fn idp_row(spec: &IdpSpec, client_secret: String) -> IdpRow {
    IdpRow {
        name: spec.name.clone(),
        issuer: spec.issuer.clone(),
        client_id: spec.client_id.clone(),
        client_secret,
        scopes: spec.scopes.clone(),
        groups_claim: spec.groups_claim.clone().unwrap_or_default(),
        ca_file: spec.ca_file.clone(),
        created_at: 0,
    }
}

/// The fields of two providers that differ, by name (never the secret's
/// value).
fn idp_diff(now: &IdpRow, want: &IdpRow) -> String {
    let mut diff = Vec::new();
    if now.issuer != want.issuer {
        diff.push("issuer");
    }
    if now.client_id != want.client_id {
        diff.push("client_id");
    }
    if hash_secret(now.client_secret.as_bytes()) != hash_secret(want.client_secret.as_bytes()) {
        diff.push("client_secret");
    }
    if now.scopes != want.scopes {
        diff.push("scopes");
    }
    if now.groups_claim != want.groups_claim {
        diff.push("groups_claim");
    }
    if now.ca_file != want.ca_file {
        diff.push("ca_file");
    }
    diff.join(", ")
}

/// The application a spec declares, hostnames as the API stores them.
fn application(spec: &AppSpec) -> Application {
    Application {
        name: spec.name.clone(),
        hostnames: spec
            .hostnames
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        path_prefix: spec.path_prefix.clone(),
        session_duration_secs: spec.session_duration_secs,
        policies: spec.policies.clone(),
    }
}

fn parse_hash(name: &str, hex_text: &str) -> ApiResult<[u8; 32]> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            bad(format!(
                "service token {name:?} has a secret_sha256 that is not 64 hex digits"
            ))
        })
}

/// What running the steps produced, for the answer and for acting on it.
#[derive(Default)]
struct Outcome {
    new_secrets: Vec<NewSecret>,
    deleted_tunnels: Vec<String>,
    configs: Vec<(String, TunnelConfig)>,
}

/// Runs every step in `tx`.
async fn run(
    state: &AdminState,
    tx: &mut StoreTx,
    now: &Current,
    steps: Vec<Step>,
) -> Result<Outcome, StoreError> {
    let mut out = Outcome::default();
    // Tunnel name -> id, as the plan saw them and as the steps change them.
    let mut ids: BTreeMap<String, String> = now
        .tunnels
        .iter()
        .map(|(name, (id, _))| (name.clone(), id.clone()))
        .collect();
    let secrets = state.secrets.clone();
    for step in steps {
        match step {
            Step::DeleteRoute(host) => {
                tx.delete_route(&host).await?;
            }
            Step::DeleteApp(name) => {
                tx.delete_app(&name).await?;
            }
            Step::DeleteIdp(name) => {
                tx.delete_idp(&name).await?;
            }
            Step::RevokeToken(id) => {
                tx.revoke_service_token(&id).await?;
            }
            Step::DeleteTunnel { id } => {
                tx.delete_tunnel(&id).await?;
                ids.retain(|_, v| v != &id);
                out.deleted_tunnels.push(id);
            }
            Step::CreateTunnel(name) => {
                let t = tx
                    .create_tunnel_with(&name, FIRST_GENERATION, |id| {
                        hash_secret(&secrets.secret(id, FIRST_GENERATION))
                    })
                    .await?;
                ids.insert(t.name, t.id);
            }
            Step::SetIngress { tunnel, yaml } => {
                let id = tunnel_id(&ids, &tunnel)?;
                let stored = tx.set_tunnel_config(&id, &yaml).await?;
                out.configs.push((id, stored));
            }
            Step::PutIdp(row) => {
                tx.put_idp(&row).await?;
            }
            Step::CreateApp(spec) => {
                let row = tx
                    .create_app(&application(&spec), spec.statement_log)
                    .await?;
                if let Some(tag) = &spec.tag {
                    tx.replace_app(&row.app, row.statement_log, tag).await?;
                }
            }
            Step::ReplaceApp { spec, tag } => {
                tx.replace_app(&application(&spec), spec.statement_log, &tag)
                    .await?;
            }
            Step::AddRoute(spec) => match (&spec.tunnel, spec.steering) {
                (Some(t), _) => {
                    let id = tunnel_id(&ids, t)?;
                    tx.add_route(&spec.hostname, &id, spec.public).await?;
                }
                (None, steering) => {
                    let mut members = Vec::with_capacity(spec.tunnels.len());
                    for m in &spec.tunnels {
                        members.push((tunnel_id(&ids, &m.tunnel)?, m.weight));
                    }
                    tx.add_pool_route(
                        &spec.hostname,
                        steering.unwrap_or(Steering::Failover),
                        &members,
                        spec.public,
                    )
                    .await?;
                }
            },
            Step::SetRoutePublic { hostname, public } => {
                tx.set_route_public(&hostname, public).await?;
            }
            Step::CreateToken { spec, hash } => {
                let (made_id, secret) = new_credentials();
                let id = spec.client_id.clone().unwrap_or(made_id);
                let expires_at = spec
                    .duration_days
                    .map(|d| crate::audit::now() + d * 86_400)
                    .or(spec.expires_at);
                let hash = match hash {
                    Some(hash) => hash,
                    None => {
                        out.new_secrets.push(NewSecret {
                            name: spec.name.clone(),
                            client_id: id.clone(),
                            client_secret: secret.clone(),
                        });
                        hash_secret(secret.as_bytes())
                    }
                };
                tx.create_service_token(&id, &spec.name, &hash, expires_at)
                    .await?;
            }
            Step::RotateToken { name, hash } => {
                tx.rotate_service_token(&name, &hash).await?;
            }
        }
    }
    Ok(out)
}

fn tunnel_id(ids: &BTreeMap<String, String>, name: &str) -> Result<String, StoreError> {
    ids.get(name)
        .cloned()
        .ok_or_else(|| StoreError::UnknownTunnel(name.to_owned()))
}

/// Make the edge match a declared state (`warren apply`).
///
/// Planned against the store, then every step runs in one transaction;
/// a dry run runs them too and rolls back.
#[utoipa::path(
    post,
    path = "/v1/apply",
    tag = "apply",
    request_body = ApplyRequest,
    responses(
        (status = 200, description = "The plan, and whether it was applied; new service token secrets are shown this once (Cache-Control: no-store).", body = ApplyAnswer),
        (status = 400, description = "Something in the declared state is refused; nothing was changed.", body = ApiErrorBody),
        (status = 404, description = "A step names something the edge does not have; nothing was changed.", body = ApiErrorBody),
        (status = 409, description = "A step conflicts with what the edge has (a name taken); nothing was changed.", body = ApiErrorBody),
    )
)]
pub(super) async fn apply(
    State(state): State<AdminState>,
    body: Result<Json<ApplyRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body.map_err(|r| {
        ApiError::bad_body(
            r,
            r#"{"declared": {"tunnels": [{"name": "office"}]}, "dry_run": true, "prune": false}"#,
        )
    })?;
    let now = Current::read(&state).await?;
    let plan = plan(&state, &req.declared, &now, req.prune)?;
    let touches_routes = plan.steps.iter().any(|s| {
        matches!(
            s,
            Step::DeleteRoute(_)
                | Step::AddRoute(_)
                | Step::SetRoutePublic { .. }
                | Step::DeleteTunnel { .. }
        )
    });
    let mut tx = state.store.begin().await?;
    let outcome = run(&state, &mut tx, &now, plan.steps).await?;
    let applied = !req.dry_run && !plan.changes.is_empty();
    if !applied {
        // Dropping the transaction rolls every step back.
        drop(tx);
        return Ok(answer(ApplyAnswer {
            changes: plan.changes,
            applied,
            warnings: plan.warnings,
            new_secrets: Vec::new(),
        }));
    }
    tx.commit().await?;
    tracing::info!(
        changes = plan.changes.len(),
        prune = req.prune,
        "warren apply: changes committed"
    );
    for id in &outcome.deleted_tunnels {
        state
            .registry
            .disconnect_tunnel(id, "the tunnel was deleted by `warren apply`");
    }
    if touches_routes {
        state.reload_routes().await?;
    }
    state.access.refresh().await?;
    // Connectors answer a push within its own timeout; the answer does
    // not wait for them (`tunnel info` shows what each one runs).
    let Outcome {
        new_secrets,
        configs,
        ..
    } = outcome;
    if !configs.is_empty() {
        let registry = state.registry.clone();
        tokio::spawn(async move {
            for (id, config) in configs {
                stored_config::push_all(&registry, &id, &config).await;
            }
        });
    }
    Ok(answer(ApplyAnswer {
        changes: plan.changes,
        applied,
        warnings: plan.warnings,
        new_secrets,
    }))
}

/// The answer, never cached (it may carry a new token's secret).
fn answer(a: ApplyAnswer) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(a),
    )
        .into_response()
}

/// Write the edge's state as a declared state (`warren export`).
///
/// Identity providers come without their client secret (the CLI names an
/// environment variable for it); service tokens with the SHA-256 of their
/// secret, which is all the edge has and all another edge needs.
#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "apply",
    responses((status = 200, description = "The edge's state, as `warren apply` reads it (Cache-Control: no-store).", body = Declared))
)]
pub(super) async fn export(State(state): State<AdminState>) -> ApiResult<Response> {
    let now = Current::read(&state).await?;
    let tunnels = now
        .tunnels
        .iter()
        .map(|(name, (_, config))| crate::declared::TunnelSpec {
            name: name.clone(),
            ingress: config.as_ref().map(|c| c.yaml.clone()),
            ingress_file: None,
        })
        .collect();
    let routes = now
        .routes
        .iter()
        .map(|r| {
            let single = r.steering == Steering::Single;
            RouteSpec {
                hostname: r.hostname.clone(),
                tunnel: single.then(|| r.tunnel_name.clone()),
                steering: (!single).then_some(r.steering),
                tunnels: if single {
                    Vec::new()
                } else {
                    r.tunnels
                        .iter()
                        .map(|m| crate::declared::RouteTunnel {
                            tunnel: m.tunnel_name.clone(),
                            weight: m.weight,
                        })
                        .collect()
                },
                public: r.public,
            }
        })
        .collect();
    let identity_providers = now
        .idps
        .iter()
        .map(|i| IdpSpec {
            name: i.name.clone(),
            issuer: i.issuer.clone(),
            client_id: i.client_id.clone(),
            client_secret: None,
            client_secret_env: None,
            client_secret_file: None,
            scopes: i.scopes.clone(),
            groups_claim: Some(i.groups_claim.clone()),
            ca_file: i.ca_file.clone(),
        })
        .collect();
    let apps = now
        .apps
        .iter()
        .map(|a| AppSpec {
            name: a.name.clone(),
            tag: Some(a.tag.clone()),
            hostnames: a.app.hostnames.clone(),
            path_prefix: a.app.path_prefix.clone(),
            session_duration_secs: a.app.session_duration_secs,
            policies: a.app.policies.clone(),
            statement_log: a.statement_log,
        })
        .collect();
    let service_tokens = now
        .tokens
        .iter()
        .filter(|(t, _)| t.revoked_at.is_none())
        .map(|(t, hash)| ServiceTokenSpec {
            name: t.name.clone(),
            client_id: Some(t.id.clone()),
            secret_sha256: hash.as_ref().map(hex::encode),
            secret_env: None,
            secret_file: None,
            duration_days: None,
            expires_at: t.expires_at,
        })
        .collect();
    let declared = Declared {
        tunnels,
        routes,
        identity_providers,
        apps,
        service_tokens,
    };
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(declared),
    )
        .into_response())
}
