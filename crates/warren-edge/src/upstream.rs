//! Opening a stream to a connector — the one place that does it, for
//! every front end: pick a live connection of the route's tunnel
//! ([`Registry::pick_fresh`], steered by [`Route::candidates`]), open a
//! stream on it, write the typed header, read the typed answer, and try
//! another connection when the failure says that is safe
//! ([`warren_proto::retry`]).
//!
//! Failures are [`UpstreamError`]s: each surface (HTTP pages, PostgreSQL
//! ErrorResponses) turns them into what a person reads.

use std::sync::Arc;
use std::time::Duration;

use warren_proto::retry::{Failure, RetryBudget, RetryLimits, Verdict};
use warren_proto::stream::{ErrorCode, StreamRequest, StreamResponse};
use warren_transport::framed::{expect_frame, FrameError};
use warren_transport::{RecvStream, SendStream, StreamError};

use crate::registry::{Registry, StreamGuard, TunnelConn};
use crate::routes::Route;

/// Why no stream to a connector could be had, or why it failed before the
/// connector's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// No connection of the route's tunnels can take a stream (edge side:
    /// nothing is connected).
    #[error("no connector is connected")]
    NoConnector,
    /// The connector did not answer within the stream timeout.
    #[error("the connector did not answer in time")]
    Timeout,
    /// The tunnel stream failed before an answer came back.
    #[error("the tunnel stream failed: {0}")]
    Tunnel(String),
    /// The connector answered with an error (it could not reach or use the
    /// origin, or refused the stream).
    #[error("the connector could not serve the stream: {message}")]
    Origin { code: ErrorCode, message: String },
    /// The connector answered with the wrong kind of answer.
    #[error("the connector answered {what}")]
    UnexpectedAnswer { what: &'static str },
}

impl From<FrameError> for UpstreamError {
    fn from(e: FrameError) -> Self {
        UpstreamError::Tunnel(e.to_string())
    }
}

impl From<StreamError> for UpstreamError {
    fn from(e: StreamError) -> Self {
        UpstreamError::Tunnel(e.to_string())
    }
}

/// What opening a stream needs.
pub(crate) struct Upstream {
    pub(crate) registry: Registry,
    /// How long the connector has to take a stream and answer its header.
    pub(crate) stream_timeout: Duration,
}

/// A stream the connector answered.
pub(crate) struct Opened {
    pub(crate) answer: StreamResponse,
    pub(crate) send: SendStream,
    pub(crate) recv: RecvStream,
    /// Keeps the stream counted against its connection.
    pub(crate) guard: StreamGuard,
}

impl Upstream {
    /// Opens a stream with `header` and returns the connector's answer.
    /// `replay_safe`: the request may be sent twice (an idempotent request
    /// without a body, or a TCP stream whose client has sent nothing yet),
    /// so a stream that broke before its answer is tried once more.
    pub(crate) async fn exchange(
        &self,
        route: &Route,
        header: &StreamRequest,
        replay_safe: bool,
    ) -> Result<Opened, UpstreamError> {
        let mut budget = RetryBudget::new(RetryLimits::EDGE_STREAM);
        let mut tried = Vec::new();
        loop {
            let (send, mut recv, guard) = self
                .open_on_fresh(route, header, &mut tried, &mut budget)
                .await?;
            let (failure, error) = match self.answer(&mut recv).await {
                Ok(answer) => {
                    return Ok(Opened {
                        answer,
                        send,
                        recv,
                        guard,
                    })
                }
                Err(e @ UpstreamError::Origin { code, .. }) => (Failure::Answered(code), e),
                Err(e @ UpstreamError::Tunnel(_)) => (Failure::Broken, e),
                Err(e) => return Err(e),
            };
            match budget.on_failure(failure, replay_safe) {
                Verdict::Retry(reason) => {
                    if reason.marks_draining() {
                        guard.conn().set_draining();
                    }
                    tracing::info!(connection = %guard.conn().id, error = %error, ?reason, "trying the stream on another connection");
                }
                Verdict::GiveUp(_) => return Err(error),
            }
        }
    }

    /// Opens a stream and writes `header`; the caller sends what follows
    /// (a request body) and reads the answer with [`Upstream::answer`].
    /// A stream that could not be opened is tried on another connection:
    /// nothing reached the connector, so that is safe for any request.
    pub(crate) async fn open(
        &self,
        route: &Route,
        header: &StreamRequest,
    ) -> Result<(SendStream, RecvStream, StreamGuard), UpstreamError> {
        let mut budget = RetryBudget::new(RetryLimits::EDGE_STREAM);
        self.open_on_fresh(route, header, &mut Vec::new(), &mut budget)
            .await
    }

    /// [`Upstream::open`], avoiding the connections in `tried` and adding
    /// the ones it uses to it, within `budget`.
    async fn open_on_fresh(
        &self,
        route: &Route,
        header: &StreamRequest,
        tried: &mut Vec<String>,
        budget: &mut RetryBudget,
    ) -> Result<(SendStream, RecvStream, StreamGuard), UpstreamError> {
        let mut last_err = None;
        loop {
            let Some(conn) = self.pick(route, tried) else {
                return Err(last_err.unwrap_or(UpstreamError::NoConnector));
            };
            tried.push(conn.id.clone());
            let guard = conn.track();
            let open = async {
                let (mut send, recv) = conn.conn.open_stream().await.map_err(StreamError::from)?;
                send.write_all(&header.encode()).await?;
                Ok::<_, StreamError>((send, recv))
            };
            match tokio::time::timeout(self.stream_timeout, open).await {
                Err(_) => return Err(UpstreamError::Timeout),
                Ok(Ok((send, recv))) => return Ok((send, recv, guard)),
                Ok(Err(e)) => {
                    tracing::info!(connection = %conn.id, error = %e, "could not open a stream; trying another connection");
                    last_err = Some(UpstreamError::from(e));
                    if let Verdict::GiveUp(_) = budget.on_failure(Failure::Unreached, true) {
                        return Err(last_err.unwrap_or(UpstreamError::NoConnector));
                    }
                }
            }
        }
    }

    /// Reads the connector's answer to a stream header, within the
    /// timeout. An `Error` answer is an [`UpstreamError::Origin`].
    pub(crate) async fn answer(
        &self,
        recv: &mut RecvStream,
    ) -> Result<StreamResponse, UpstreamError> {
        let frame = tokio::time::timeout(self.stream_timeout, expect_frame(recv))
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        match StreamResponse::decode(&frame) {
            Ok(StreamResponse::Error { code, message }) => {
                Err(UpstreamError::Origin { code, message })
            }
            Ok(answer) => Ok(answer),
            Err(e) => Err(UpstreamError::Tunnel(format!("malformed answer: {e}"))),
        }
    }

    /// A fresh connection of the route's first tunnel (in steering order)
    /// that has one.
    fn pick(&self, route: &Route, tried: &[String]) -> Option<Arc<TunnelConn>> {
        if let [only] = route.tunnels.as_slice() {
            return self.registry.pick_fresh(&only.id, tried);
        }
        route
            .candidates(|id| self.registry.status(id), &mut rand::rng())
            .into_iter()
            .find_map(|t| self.registry.pick_fresh(&t.id, tried))
    }
}
