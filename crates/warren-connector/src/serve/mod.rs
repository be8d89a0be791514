//! Serving one data stream the edge opened, in phases:
//!
//! 1. **header**: the typed [`StreamRequest`], within [`HEADER_TIMEOUT`];
//! 2. **admit** ([`admit`]): the ingress rule for the hostname and path,
//!    and — when the rule says `originRequest.access.required` — the
//!    edge's signed identity, checked before any origin is contacted;
//! 3. **reach the origin and answer**: HTTP and WebSocket upgrades in
//!    [`http`], TCP and PostgreSQL in [`tcp`] (and `postgres.rs`);
//! 4. **carry bytes**: body frames, or the one copier
//!    (`warren_transport::copy`) for upgrades and byte streams.
//!
//! Every failure is answered on the stream with a typed
//! [`StreamResponse::Error`] whose sentence the edge shows to the client
//! ([`respond`]); nothing here can take down the connection or the
//! process.

pub(crate) mod config;
mod http;
pub(crate) mod respond;
mod tcp;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use warren_proto::stream::{ErrorCode, StreamRequest};
use warren_transport::framed::expect_frame;
use warren_transport::{RecvStream, SendStream, TunnelConnection};

use crate::access::TokenRefusal;
use crate::ingress::{IngressConfig, Rule, Service, SslMode};
use crate::origin::{http_client, Dialer, HttpClient, OriginError};
use crate::pool::Pool;
use respond::{error, Answered};

/// How long the edge has to send a stream's header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A loaded ingress config with its dialers, pooled clients and origin
/// pools, swapped whole on reload. Dropping it stops its pools' health
/// checks.
pub(crate) struct Runtime {
    pub ingress: IngressConfig,
    origins: Vec<RuleOrigin>,
    checkers: Vec<tokio::task::AbortHandle>,
    /// Certificates from the edge's CA for client TLS the connector
    /// terminates (PostgreSQL).
    certs: crate::certs::CertCache,
    /// The edge's identity-token keys, for `originRequest.access`.
    access_keys: crate::access::KeyCache,
    /// The connector's metrics (the same across reloads).
    pub(crate) metrics: Arc<crate::metrics::ConnectorMetrics>,
    /// The version of the edge's stored config this is (remote-managed
    /// tunnels); `None` for a local config.
    pub(crate) version: Option<u64>,
    /// Remote-managed, and no config has arrived yet: every stream is
    /// answered with a sentence saying so.
    awaiting: bool,
}

/// How one rule reaches its origins.
pub(crate) enum RuleOrigin {
    /// The connector answers itself (`http_status`, `hello_world`).
    None,
    /// One origin (boxed: the HTTP client is large).
    Single(Box<SingleOrigin>),
    /// `service: pool`.
    Pool(Arc<Pool>),
}

/// The dialer and pooled HTTP client of a one-origin rule.
pub(crate) struct SingleOrigin {
    pub(crate) dialer: Dialer,
    pub(crate) client: HttpClient,
}

impl Runtime {
    /// Builds dialers and HTTP clients for every rule, and the pools of
    /// `service: pool` rules. Inside a tokio runtime it also starts one
    /// health-check task per pool, which runs until this `Runtime` is
    /// dropped. `base_dir` resolves relative `caPool` paths (the config
    /// file's directory).
    pub(crate) fn new(
        ingress: IngressConfig,
        base_dir: &Path,
        metrics: Arc<crate::metrics::ConnectorMetrics>,
    ) -> Result<Runtime, OriginError> {
        let mut origins = Vec::with_capacity(ingress.rules.len());
        for (index, rule) in ingress.rules.iter().enumerate() {
            if let Service::Postgres { .. } = &rule.service {
                match rule.origin_request.sslmode {
                    SslMode::Require => {
                        tracing::warn!(rule = index + 1, service = %rule.service, "sslmode: require encrypts the link to the database but does not check its certificate; use verify-full with caPool")
                    }
                    SslMode::Disable => {
                        tracing::error!(rule = index + 1, service = %rule.service, "sslmode: disable: the link from this connector to the database is NOT ENCRYPTED; anyone on that network can read and change it")
                    }
                    SslMode::VerifyFull | SslMode::VerifyCa => {}
                }
            }
            origins.push(match &rule.service {
                Service::Pool(pool) => {
                    RuleOrigin::Pool(Arc::new(Pool::new(index + 1, rule, pool, base_dir)?))
                }
                _ => match Dialer::for_rule(rule, base_dir)? {
                    Some(dialer) => {
                        let client = http_client(dialer.clone(), &rule.origin_request);
                        RuleOrigin::Single(Box::new(SingleOrigin { dialer, client }))
                    }
                    None => RuleOrigin::None,
                },
            });
        }
        let checkers = match tokio::runtime::Handle::try_current() {
            Ok(handle) => origins
                .iter()
                .filter_map(|o| match o {
                    RuleOrigin::Pool(pool) => {
                        Some(handle.spawn(pool.clone().check_forever()).abort_handle())
                    }
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        Ok(Runtime {
            ingress,
            origins,
            checkers,
            certs: Default::default(),
            access_keys: Default::default(),
            metrics,
            version: None,
            awaiting: false,
        })
    }

    /// The runtime of a remote-managed connector before the edge's stored
    /// config has arrived: no rules.
    pub(crate) fn awaiting_remote(metrics: Arc<crate::metrics::ConnectorMetrics>) -> Runtime {
        let mut rt = Runtime::new(
            IngressConfig {
                rules: Vec::new(),
                metrics: None,
                grace_period: None,
            },
            Path::new("."),
            metrics,
        )
        .expect("an empty config has no origin to set up");
        rt.awaiting = true;
        rt
    }

    /// How rule `index` (from [`IngressConfig::find`]) reaches its origins.
    pub(crate) fn origin(&self, index: usize) -> &RuleOrigin {
        self.origins.get(index).unwrap_or(&RuleOrigin::None)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for checker in &self.checkers {
            checker.abort();
        }
    }
}

/// Serves one stream opened by the edge, counted in the metrics by how
/// it was answered.
pub(crate) async fn serve_stream(
    rt: Arc<Runtime>,
    slot: Arc<config::ConfigSlot>,
    conn: TunnelConnection,
    send: SendStream,
    recv: RecvStream,
) {
    let started = tokio::time::Instant::now();
    let open = rt.metrics.stream_opened();
    let (kind, answered) = serve_request(&rt, &slot, conn, send, recv).await;
    drop(open);
    rt.metrics
        .stream_done(kind, answered.outcome(), started.elapsed());
}

/// [`serve_stream`] after the metrics: the stream's kind and its answer.
async fn serve_request(
    rt: &Runtime,
    slot: &config::ConfigSlot,
    conn: TunnelConnection,
    send: SendStream,
    mut recv: RecvStream,
) -> (&'static str, Answered) {
    let header = match tokio::time::timeout(HEADER_TIMEOUT, expect_frame(&mut recv)).await {
        Ok(Ok(f)) => StreamRequest::decode(&f).map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no stream header in time".into()),
    };
    let req = match header {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "malformed stream header; closing that stream");
            let answer = error(
                ErrorCode::BadRequest,
                format!("malformed stream header: {e}"),
            );
            return ("malformed", respond::respond_final(send, answer).await);
        }
    };
    match req {
        StreamRequest::Config(push) => ("config", slot.serve_push(push, send, recv).await),
        req if rt.awaiting => {
            let answer = error(
                ErrorCode::NoService,
                format!(
                    "the connector for {} has no ingress rules yet: it runs the config stored at the edge, and none is stored; set one with `warren tunnel ingress set TUNNEL -f config.yml`",
                    req.host()
                ),
            );
            ("unconfigured", respond::respond_final(send, answer).await)
        }
        StreamRequest::Http(head) => ("http", http::serve_http(rt, &conn, head, send, recv).await),
        StreamRequest::WebSocket(head) => (
            "websocket",
            http::serve_upgrade(rt, &conn, head, send, recv).await,
        ),
        StreamRequest::Tcp(t) => ("tcp", tcp::serve_tcp(rt, &conn, t, send, recv).await),
    }
}

/// A stream past the admit phase: its rule and how the rule reaches its
/// origins.
struct Admitted<'a> {
    /// The rule's position in the config (0-based).
    index: usize,
    rule: &'a Rule,
    origin: &'a RuleOrigin,
}

/// Phase 2 of every stream: the ingress rule for `host` and `path`, and
/// `originRequest.access.required` checked on `token` (the edge's signed
/// identity as received; empty when none came). A refusal is already
/// logged.
async fn admit<'a>(
    rt: &'a Runtime,
    conn: &TunnelConnection,
    host: &str,
    path: &str,
    token: &[u8],
) -> Result<Admitted<'a>, TokenRefusal> {
    let (index, rule) = rt.ingress.find(host, path_only(path));
    rt.metrics
        .rule_matched(index, rule.hostname.as_deref().unwrap_or(""));
    if let Some(access) = rule.origin_request.access.as_ref().filter(|a| a.required) {
        match rt
            .access_keys
            .verify(token, host, &access.aud_tags, conn)
            .await
        {
            Ok(who) => {
                tracing::debug!(%host, rule = index + 1, sub = %who.sub, kind = %who.kind, "access token verified");
            }
            Err(e) => {
                tracing::warn!(%host, rule = index + 1, reason = %e, "refused a stream without a valid access token (originRequest.access.required)");
                return Err(TokenRefusal {
                    host: host.to_owned(),
                    reason: e,
                });
            }
        }
    }
    Ok(Admitted {
        index,
        rule,
        origin: rt.origin(index),
    })
}

fn path_only(p: &str) -> &str {
    p.split('?').next().unwrap_or("/")
}
