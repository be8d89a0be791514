//! Access control on the request path: who is asking, which application
//! covers the request, and what its policies decide.
//!
//! [`Access`] holds a [`Snapshot`] of the store's access tables (apps,
//! service tokens, revoked sessions, identity providers, signing keys),
//! refreshed when the store's control generation moves — by this process
//! or any other edge process on the same store — checked every
//! `refresh` (250 ms by default), so a revocation takes effect everywhere
//! well within a second. The decision itself is `warren_policy::decide`.
//!
//! - [`Access::authorize`]: one request → [`Grant`] or [`Refusal`].
//! - [`Access::watch`]: a long-lived connection (access tcp, WebSocket)
//!   registers its grant; after every refresh (and every second, for
//!   expiries) each is decided again and closed if no longer allowed.
//! - [`keys`]: signing keys, identity tokens, the JWKS.
//! - [`oidc`]: the browser and CLI sign-in flow.

mod grant;
pub mod keys;
pub mod live;
pub mod oidc;
pub mod pgcert;
mod refresh;
pub mod sessions;
mod tokens;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::HeaderMap;
use warren_policy::{Decision, Facts, Identity, Outcome};
use warren_store::{AppRow, AuditEntry, IdpRow, Store, StoreError};

use crate::audit::AuditSink;
use crate::databases::Databases;
use crate::routes::RouteTable;
pub use grant::{claims_for, reason, Grant, Refusal, Who};
pub use keys::{Claims, Keys};
pub use live::{LiveHandle, Watched};
pub(crate) use tokens::cookie;
use tokens::{Limiter, TokenCred};

/// The session cookie's name.
pub const COOKIE: &str = "warren_session";
/// Header a CLI sends its identity token in (`cf-access-token` is also read).
pub const TOKEN_HEADER: &str = "warren-access-token";
/// The header origins read the signed identity from.
pub const ASSERTION_HEADER: &str = "warren-access-jwt-assertion";
/// Request headers that carry credentials for the edge; never forwarded.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "warren-access-client-id",
    "warren-access-client-secret",
    "cf-access-client-id",
    "cf-access-client-secret",
    TOKEN_HEADER,
    "cf-access-token",
    ASSERTION_HEADER,
    "cf-access-jwt-assertion",
];

/// Access settings.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// How often the store's control generation is checked.
    pub refresh: Duration,
    /// How often open connections are decided again even without a change
    /// (sessions and tokens expire).
    pub recheck: Duration,
    /// Failed service-token secrets from one address before it is refused.
    pub max_failures: u32,
    /// The window those failures are counted in, and how long the address
    /// is refused afterwards.
    pub failure_window: Duration,
    /// How long the sign-in flow may take (state cookie lifetime).
    pub login_timeout: Duration,
    /// Timeout of each request to the identity provider.
    pub idp_timeout: Duration,
}

impl Default for AccessSettings {
    fn default() -> Self {
        AccessSettings {
            refresh: Duration::from_millis(250),
            recheck: Duration::from_secs(1),
            max_failures: 10,
            failure_window: Duration::from_secs(60),
            login_timeout: Duration::from_secs(600),
            idp_timeout: Duration::from_secs(10),
        }
    }
}

/// The store's access tables, as one consistent read.
pub struct Snapshot {
    pub generation: i64,
    pub apps: Vec<Arc<AppRow>>,
    tokens: std::collections::HashMap<String, TokenCred>,
    revoked_sessions: HashSet<String>,
    pub idps: Vec<IdpRow>,
    pub keys: Keys,
}

impl Snapshot {
    async fn load(store: &Store) -> Result<Snapshot, StoreError> {
        // Read the generation first: a change during the reads bumps it
        // again and is picked up by the next refresh.
        let generation = store.control_generation().await?;
        let apps = store.list_apps().await?.into_iter().map(Arc::new).collect();
        let tokens = store
            .service_token_credentials()
            .await?
            .into_iter()
            .filter_map(|(row, hash)| {
                let hash: [u8; 32] = hash.try_into().ok()?;
                Some((
                    row.id,
                    TokenCred {
                        name: row.name,
                        hash,
                        expires_at: row.expires_at,
                    },
                ))
            })
            .collect();
        let revoked_sessions = store.revoked_session_ids().await?.into_iter().collect();
        let idps = store.list_idps().await?;
        let keys = Keys::from_rows(&store.signing_keys().await?);
        Ok(Snapshot {
            generation,
            apps,
            tokens,
            revoked_sessions,
            idps,
            keys,
        })
    }

    /// The application that most specifically covers `host` and `path`.
    pub fn app_for(&self, host: &str, path: &str) -> Option<&Arc<AppRow>> {
        let best = warren_policy::most_specific(self.apps.iter().map(|a| &a.app), host, path)?;
        self.apps.iter().find(|a| std::ptr::eq(&a.app, best))
    }

    /// The identity provider applications sign in with: the first added.
    pub fn idp(&self) -> Option<&IdpRow> {
        self.idps.first()
    }

    fn session_revoked(&self, sid: &str) -> bool {
        self.revoked_sessions.contains(sid)
    }
}

/// The request facts `authorize` needs.
pub struct Request<'a> {
    pub headers: &'a HeaderMap,
    pub host: &'a str,
    pub path: &'a str,
    pub source: std::net::SocketAddr,
    /// The route is public (reachable when no application covers it).
    pub public_route: bool,
}

/// Access control for one edge process. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    snapshot: RwLock<Arc<Snapshot>>,
    limiter: Limiter,
    live: live::Live,
    audit: AuditSink,
    routes: RouteTable,
    /// Reloaded with the routes (`None`: an edge without pooled databases,
    /// as the fuzzers build it).
    databases: Option<Databases>,
    settings: AccessSettings,
    http: oidc::IdpClient,
    sessions: sessions::Sessions,
    device: oidc::DeviceLogins,
}

impl Access {
    /// Loads the first snapshot and starts the refresher.
    pub async fn start(
        store: Store,
        audit: AuditSink,
        routes: RouteTable,
        settings: AccessSettings,
    ) -> Result<Access, StoreError> {
        Access::start_with(store, audit, routes, None, settings).await
    }

    /// [`Access::start`], reloading `databases` too whenever the routes
    /// are reloaded.
    pub(crate) async fn start_with(
        store: Store,
        audit: AuditSink,
        routes: RouteTable,
        databases: Option<Databases>,
        settings: AccessSettings,
    ) -> Result<Access, StoreError> {
        let snapshot = Snapshot::load(&store).await?;
        let access = Access {
            inner: Arc::new(Inner {
                limiter: Limiter::new(settings.max_failures, settings.failure_window),
                http: oidc::IdpClient::new(settings.idp_timeout),
                store,
                snapshot: RwLock::new(Arc::new(snapshot)),
                live: live::Live::default(),
                audit,
                routes,
                databases,
                settings,
                sessions: sessions::Sessions::default(),
                device: oidc::DeviceLogins::default(),
            }),
        };
        tokio::spawn(refresh::refresh_loop(Arc::downgrade(&access.inner)));
        Ok(access)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.read().expect("snapshot lock").clone()
    }

    /// Sessions opened to connectors and what they report.
    pub fn sessions(&self) -> &sessions::Sessions {
        &self.inner.sessions
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn settings(&self) -> &AccessSettings {
        &self.inner.settings
    }

    pub(crate) fn idp_client(&self) -> &oidc::IdpClient {
        &self.inner.http
    }

    /// The device sign-ins waiting for their users.
    pub(crate) fn device_logins(&self) -> &oidc::DeviceLogins {
        &self.inner.device
    }

    /// Reloads the snapshot (and the route table and pooled databases)
    /// now.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        refresh::refresh(&self.inner).await
    }

    /// Decides one request.
    pub fn authorize(&self, req: &Request<'_>) -> Result<Grant, Refusal> {
        let snap = self.snapshot();
        let app = match covering_app(&snap, req.host, req.path, req.public_route)? {
            Ok(app) => app,
            Err(public) => return Ok(public),
        };
        let ip = req.source.ip();
        let who = match tokens::presented(req.headers) {
            tokens::Presented::ServiceToken { id, secret } => {
                if self.inner.limiter.blocked(ip) {
                    return Err(Refusal::TooManyAttempts { app });
                }
                match tokens::check(&snap, &id, &secret) {
                    Some(who) => who,
                    None => {
                        self.inner.limiter.fail(ip);
                        return Err(Refusal::BadServiceToken { app });
                    }
                }
            }
            tokens::Presented::Session(token) => self.session_who(&snap, &token, &app.tag),
            tokens::Presented::Nothing => Who::default(),
        };
        decide_for(app, who, ip)
    }

    /// Decides a connection whose identity came from a client certificate
    /// the edge issued (the native PostgreSQL listener): `who` is `None`
    /// without a certificate. A certificate whose session or service token
    /// was revoked counts as none.
    pub fn authorize_certificate(
        &self,
        host: &str,
        source: std::net::SocketAddr,
        public_route: bool,
        who: Option<Who>,
    ) -> Result<Grant, Refusal> {
        let snap = self.snapshot();
        let app = match covering_app(&snap, host, "/", public_route)? {
            Ok(app) => app,
            Err(public) => return Ok(public),
        };
        let who = who
            .filter(|w| refresh::credentials_hold(&snap, w).is_none())
            .unwrap_or_default();
        decide_for(app, who, source.ip())
    }

    /// The identity in a session token for application `tag`, or nobody.
    fn session_who(&self, snap: &Snapshot, token: &str, tag: &str) -> Who {
        match snap.keys.verify(token, tag) {
            Ok(c) if c.sid.as_deref().is_some_and(|s| !snap.session_revoked(s)) => Who {
                identity: Some(match c.kind.as_str() {
                    "service_token" => Identity::ServiceToken {
                        name: c.common_name.unwrap_or_default(),
                    },
                    _ => Identity::User {
                        email: c.email,
                        groups: c.groups,
                    },
                }),
                sub: c.sub,
                session: c.sid,
                token_id: None,
                expires_at: Some(c.exp),
            },
            Ok(_) => {
                tracing::debug!("a revoked session was presented");
                Who::default()
            }
            Err(e) => {
                tracing::debug!(error = %e, "a session token was not accepted");
                Who::default()
            }
        }
    }

    /// Records a decision in the audit log.
    pub async fn audit(&self, entry: AuditEntry) {
        self.inner.audit.record(entry).await;
    }

    /// Registers a long-lived connection: it is closed (the handle's
    /// token is cancelled) when its grant no longer holds.
    pub fn watch(&self, w: Watched) -> LiveHandle {
        self.inner.live.add(w)
    }
}

/// The application covering a request (`Ok(Ok(app))`); a public grant
/// when none does and the route is public (`Ok(Err(grant))`); or the
/// default-deny refusal.
#[allow(clippy::result_large_err)]
fn covering_app(
    snap: &Snapshot,
    host: &str,
    path: &str,
    public_route: bool,
) -> Result<Result<Arc<AppRow>, Grant>, Refusal> {
    match snap.app_for(host, path) {
        Some(app) => Ok(Ok(app.clone())),
        None if public_route => Ok(Err(Grant {
            app: None,
            who: Who::default(),
            decision: Decision {
                outcome: Outcome::Allow,
                policy: None,
                rule: Some("public route".into()),
            },
        })),
        None => Err(Refusal::NotProtected),
    }
}

/// The application's decision for `who` from `ip`.
fn decide_for(app: Arc<AppRow>, who: Who, ip: IpAddr) -> Result<Grant, Refusal> {
    let facts = Facts {
        identity: who.identity.clone(),
        source_ip: ip,
    };
    let decision = warren_policy::decide(&app.app, &facts);
    match decision.outcome {
        Outcome::Allow => Ok(Grant {
            app: Some(app),
            who,
            decision,
        }),
        Outcome::Deny => Err(Refusal::Denied {
            app,
            who: Box::new(who),
            decision,
        }),
        Outcome::NeedsLogin => Err(Refusal::NeedsLogin { app, decision }),
    }
}
