//! The declared state of an edge, as `warren apply -f warren.yaml` reads
//! it and `warren export` writes it: tunnels (with their stored ingress),
//! hostname routes, identity providers, access applications with their
//! policies, and service tokens, each named.
//!
//! ```yaml
//! tunnels:
//!   - name: office
//!     ingress: |               # optional: the tunnel's stored config
//!       ingress:
//!         - service: http://localhost:8000
//! routes:
//!   - hostname: app.example.com
//!     tunnel: office
//!   - hostname: lb.example.com
//!     steering: weighted       # or failover
//!     tunnels: [{tunnel: office, weight: 3}, {tunnel: lab, weight: 1}]
//!     public: true             # reachable without an access application
//! identity_providers:
//!   - name: corp
//!     issuer: https://id.example.com
//!     client_id: warren
//!     client_secret_env: CORP_CLIENT_SECRET   # or client_secret_file
//! apps:
//!   - name: wiki
//!     hostnames: [app.example.com]
//!     policies:
//!       - {name: staff, action: allow, include: [{email_domain: example.com}]}
//! service_tokens:
//!   - name: ci
//!     secret_env: CI_SECRET    # or secret_file; none: the edge makes one
//! ```
//!
//! The same types travel to the edge (`POST /v1/apply`), with one
//! difference: secrets named by `*_env`/`*_file` are read by the CLI, so
//! the edge gets an identity provider's `client_secret` and a service
//! token's `secret_sha256` (the token's secret itself never leaves the
//! machine that holds it) and refuses the `*_env`/`*_file` fields.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use warren_policy::Policy;
use warren_store::Steering;

/// Everything `warren apply` manages, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tunnels: Vec<TunnelSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_providers: Vec<IdpSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_tokens: Vec<ServiceTokenSpec>,
}

/// A tunnel. Its secret and token are the edge's; `warren tunnel token
/// NAME` prints the token after the apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TunnelSpec {
    pub name: String,
    /// The tunnel's stored ingress config (cloudflared's `config.yml`
    /// text). Without it, a stored config is left as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    /// A file holding it, relative to the declaring file (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ingress_file: Option<PathBuf>,
}

/// A hostname route: to one `tunnel`, or over several `tunnels` with
/// `steering`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steering: Option<Steering>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tunnels: Vec<RouteTunnel>,
    /// Reachable without an access application.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

/// One tunnel of a load-balanced route (priority is the list order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteTunnel {
    pub tunnel: String,
    #[serde(default = "one")]
    pub weight: i64,
}

fn one() -> i64 {
    1
}

/// An OIDC identity provider.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdpSpec {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// The resolved secret (on the wire only; a file names where it is).
    /// Without one, an existing provider keeps the secret it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// An environment variable holding the client secret (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// A file holding the client secret (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub client_secret_file: Option<PathBuf>,
    /// Default: openid, email, profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Default: groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for IdpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpSpec")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_secret_env", &self.client_secret_env)
            .field("client_secret_file", &self.client_secret_file)
            .finish_non_exhaustive()
    }
}

/// An access application and its policies, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    pub name: String,
    /// The audience of its tokens (`audTag` in connector configs). Made by
    /// the edge when absent; `warren export` writes it so that a second
    /// edge keeps the tags connectors already check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default = "default_session")]
    pub session_duration_secs: u64,
    #[serde(default)]
    pub policies: Vec<Policy>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub statement_log: bool,
}

fn default_session() -> u64 {
    24 * 3600
}

/// A service token, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceTokenSpec {
    pub name: String,
    /// The client id (`Warren-Access-Client-Id`); made by the edge when
    /// absent. `warren export` writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// SHA-256 of the secret, in hex: what the edge stores. A new token
    /// without one gets a secret made by the edge, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    /// An environment variable holding the secret (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// A file holding the secret (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub secret_file: Option<PathBuf>,
    /// Days a new token lasts; absent (and no `expires_at`): it does not
    /// expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_days: Option<i64>,
    /// When a new token expires, in Unix seconds (`warren export` writes
    /// it for tokens that expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}
