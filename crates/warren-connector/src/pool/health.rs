//! Health: active checks (an HTTP `GET` of the check path through the
//! origin's pooled client, or a TCP connect), and the consecutive-result
//! streaks that take an origin out of the pool and bring it back.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use http::{header, Request, Version};
use http_body_util::{BodyExt, Limited};
use tokio::time::MissedTickBehavior;
use warren_transport::body::empty;

use super::{Member, Pool};
use crate::ingress::Service;
use crate::origin::origin_error;

/// Most of a health check answer's body that is read (so the connection
/// can be reused); the rest is dropped with the connection.
const CHECK_BODY_LIMIT: usize = 64 * 1024;

/// Consecutive check results of one origin.
#[derive(Debug, Default)]
pub(super) struct Streak {
    successes: u32,
    failures: u32,
    /// The last failure, with its [`Pool::failures_seen`] number.
    pub(super) last_error: Option<(u64, String)>,
}

impl Pool {
    /// Records that origin `index` failed (a check, or a request that could
    /// not connect); takes it out of the pool after `unhealthyAfter` in a
    /// row.
    pub(crate) fn record_failure(&self, index: usize, error: &str) {
        let m = &self.members[index];
        let seen = self.failures_seen.fetch_add(1, Ordering::Relaxed);
        let mut streak = m.streak.lock().unwrap_or_else(PoisonError::into_inner);
        streak.successes = 0;
        streak.failures = streak.failures.saturating_add(1);
        streak.last_error = Some((seen, error.to_string()));
        if streak.failures >= self.check.unhealthy_after && m.healthy.swap(false, Ordering::Relaxed)
        {
            tracing::warn!(
                rule = self.rule,
                "origin {} is unhealthy after {} failures in a row; taking it out of the pool: {error}",
                m.name,
                streak.failures
            );
        } else {
            tracing::debug!(rule = self.rule, origin = %m.name, failures = streak.failures, "origin failed: {error}");
        }
    }

    /// Records a passed check of origin `index`; brings it back after
    /// `healthyAfter` in a row.
    pub(super) fn record_success(&self, index: usize) {
        let m = &self.members[index];
        let mut streak = m.streak.lock().unwrap_or_else(PoisonError::into_inner);
        streak.failures = 0;
        streak.successes = streak.successes.saturating_add(1);
        if streak.successes >= self.check.healthy_after && !m.healthy.swap(true, Ordering::Relaxed)
        {
            tracing::info!(
                rule = self.rule,
                "origin {} is healthy again after {} passed checks; back in the pool",
                m.name,
                streak.successes
            );
        }
    }

    /// Checks every origin each `interval`, forever; a round's checks run
    /// concurrently, each bounded by `timeout`, and the first round starts
    /// at once. Meant to be spawned and aborted.
    pub(crate) async fn check_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.check.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let round = self.members.iter().map(|m| self.check_one(m));
            let results = futures_util::future::join_all(round).await;
            for (index, result) in results.into_iter().enumerate() {
                match result {
                    Ok(()) => self.record_success(index),
                    Err(e) => self.record_failure(index, &format!("health check: {e}")),
                }
            }
        }
    }

    async fn check_one(&self, m: &Member) -> Result<(), String> {
        let timeout = self.check.timeout;
        match (&self.check.path, &m.client, &m.service) {
            (
                Some(path),
                Some(client),
                Service::Http {
                    scheme_https,
                    authority,
                    ..
                },
            ) => {
                let scheme = if *scheme_https { "https" } else { "http" };
                let mut req = Request::get(format!("{scheme}://{authority}{path}")).header(
                    header::USER_AGENT,
                    concat!("warren-health-check/", env!("CARGO_PKG_VERSION")),
                );
                if self.http2 {
                    req = req.version(Version::HTTP_2);
                } else if let Some(host) = &self.check_host {
                    req = req.header(header::HOST, host);
                }
                let req = req
                    .body(empty())
                    .map_err(|e| format!("GET {path} cannot be sent: {e}"))?;
                let exchange = async {
                    let resp = client
                        .request(req)
                        .await
                        .map_err(|e| match origin_error(&e) {
                            Some(oe) => oe.to_string(),
                            None => format!("GET {path} failed: {}", source_text(&e)),
                        })?;
                    let status = resp.status();
                    let _ = Limited::new(resp.into_body(), CHECK_BODY_LIMIT)
                        .collect()
                        .await;
                    if status.is_success() || status.is_redirection() {
                        Ok(())
                    } else {
                        Err(format!("GET {path} answered {status}"))
                    }
                };
                tokio::time::timeout(timeout, exchange)
                    .await
                    .map_err(|_| format!("GET {path} got no answer within {timeout:?}"))?
            }
            _ => match tokio::time::timeout(timeout, m.dialer.dial()).await {
                Ok(Ok(_connection)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "connecting to {} took longer than {timeout:?}",
                    m.dialer.target
                )),
            },
        }
    }
}

/// The innermost cause's text, which says more than hyper's "client error".
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
