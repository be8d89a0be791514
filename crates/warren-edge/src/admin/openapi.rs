//! The admin API's OpenAPI 3.1 document, served at `GET /api/openapi.json`.
//!
//! The operations come from the handlers: `admin.rs` registers each with
//! `utoipa_axum::routes!`, which takes the path, method, parameters, body
//! and answers from its `#[utoipa::path]` and the schemas from the types'
//! `ToSchema`. This module adds what no one handler knows: the document's
//! info and tags ([`base`]), the `admin_token` bearer scheme, its
//! requirement on every operation behind the token check with the answers
//! that check gives ([`behind_token`]), and the refusals of a request body
//! that every operation taking one can give.
//!
//! It is served without the admin token, for the reasons `admin.rs` gives.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::OpenApi as _;

use super::error::ApiErrorBody;

/// The name of the admin token's security scheme.
pub(super) const SCHEME: &str = "admin_token";

/// The document before any operation: info, tags, the error schema and
/// the security scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Warren admin API",
        version = env!("CARGO_PKG_VERSION"),
        description = "The admin API of a Warren edge, on its admin listener: tunnels, their tokens and ingress configs, hostname routes, the audit log, access control, pooled PostgreSQL databases and metrics. Every error answer is `{\"error\": \"<one sentence>\"}` (`ApiErrorBody`). Every operation but `GET /v1/health` and this document needs `Authorization: Bearer <admin token>` (the `admin_token` scheme)."
    ),
    components(schemas(ApiErrorBody)),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Whether the admin API answers."),
        (name = "openapi", description = "This document."),
        (name = "tunnels", description = "Tunnels, their status and connections, their tokens and secret rotation."),
        (name = "ingress", description = "A tunnel's ingress config stored at the edge and pushed to its connectors."),
        (name = "routes", description = "Hostname routes to a tunnel or a load balancer over tunnels."),
        (name = "audit", description = "The hash-chained audit log."),
        (name = "apps", description = "Access applications and their policies."),
        (name = "service-tokens", description = "Service tokens for machines."),
        (name = "idps", description = "OIDC identity providers."),
        (name = "sessions", description = "Sessions the edge issued."),
        (name = "keys", description = "The identity-token signing key."),
        (name = "databases", description = "Pooled PostgreSQL databases, their pool and cache settings, and the credentials the edge logs in with (stored sealed, never returned)."),
        (name = "apply", description = "The edge's state as one declared document: `warren apply` and `warren export`."),
        (name = "metrics", description = "The edge's metrics."),
    )
)]
struct Base;

/// The document [`Base`] describes, to register the operations in.
pub(super) fn base() -> OpenApi {
    Base::openapi()
}

/// Adds the `admin_token` scheme to the components.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, api: &mut OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The contents of <data-dir>/admin-token (what WARREN_API_TOKEN is set to for the CLI).",
            ))
            .build();
        api.components
            .get_or_insert_with(Components::new)
            .add_security_scheme(SCHEME, SecurityScheme::Http(scheme));
    }
}

/// Marks every operation of `api` as needing the admin token, with the
/// answers of the token check, and documents the body refusals of those
/// that take a body. `admin.rs` calls it on the router the check is
/// layered on, so the document says what the layer does.
pub(super) fn behind_token(api: &mut OpenApi) {
    for op in operations(api) {
        op.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
        error(
            op,
            401,
            "No admin token, or not this edge's (WWW-Authenticate: Bearer).",
        );
        error(op, 500, "The store could not be read or written.");
        if op.request_body.is_some() {
            error(op, 400, "The body is not JSON.");
            error(
                op,
                408,
                "The body did not arrive whole within --header-read-timeout.",
            );
            error(op, 413, "The body is larger than the endpoint takes.");
            error(
                op,
                415,
                "The body is not marked Content-Type: application/json.",
            );
            error(
                op,
                422,
                "The body is JSON but not of the shape the endpoint takes.",
            );
        }
    }
}

/// Every operation of every path of `api`.
fn operations(api: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    api.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

/// Documents an error answer of `op` with `status`, unless the handler's
/// own annotation already does (its description says more).
fn error(op: &mut Operation, status: u16, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ApiErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        });
}

/// The document as served, serialized once per router.
#[derive(Clone)]
pub(super) struct Document(Bytes);

impl Document {
    pub(super) fn new(api: OpenApi) -> Self {
        Self(Bytes::from(
            api.to_pretty_json()
                .expect("an OpenAPI document serializes"),
        ))
    }
}

/// This document: every admin endpoint, its parameters, bodies and answers.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json"))
)]
pub(super) async fn openapi_json(Extension(doc): Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.0).into_response()
}
