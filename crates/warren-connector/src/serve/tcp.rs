//! Byte streams: a TCP (or Unix) origin, a healthy member of a TCP pool,
//! or a PostgreSQL database (`postgres.rs` speaks the protocol's first
//! messages); then the one copier until both ends are done.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use warren_proto::retry::{Failure, RetryBudget, RetryLimits, Verdict};
use warren_proto::stream::{ErrorCode, StreamResponse, TcpRequest};
use warren_transport::copy::{self, Traffic};
use warren_transport::{RecvStream, SendStream, TunnelConnection, TunnelStream};

use super::respond::{self, error, respond, respond_final, Answered};
use super::{admit, Admitted, RuleOrigin, Runtime};
use crate::ingress::Service;
use crate::origin::OriginStream;
use crate::pool::{Facts, Outstanding, Pool};

/// A byte stream: dial the origin (PostgreSQL rules speak the protocol's
/// first messages first), answer `Connected`, then splice.
pub(super) async fn serve_tcp(
    rt: &Runtime,
    conn: &TunnelConnection,
    t: TcpRequest,
    send: SendStream,
    recv: RecvStream,
) -> Answered {
    let Admitted {
        index: idx,
        rule,
        origin: rule_origin,
    } = match admit(rt, conn, &t.host, "/", t.assertion.as_bytes()).await {
        Ok(a) => a,
        // No HTTP answer on a TCP stream: the edge shows the sentence.
        Err(refusal) => return respond_final(send, respond::token_refused(&refusal)).await,
    };
    if let (Service::Postgres { .. }, RuleOrigin::Single(single)) = (&rule.service, rule_origin) {
        let mut send = send;
        let answered = respond(&mut send, StreamResponse::Connected).await;
        let tunnel = TunnelStream::new(send, recv);
        let pg = crate::postgres::PgCtx {
            host: &t.host,
            client: &t.client.addr,
            dialer: &single.dialer,
            certs: &rt.certs,
            conn,
            session: &t.session,
            statement_log: t.statement_log,
            edge_tls: t.client.scheme == "postgres+tls",
        };
        pg.serve(tunnel).await;
        return answered;
    }
    let (mut origin, _outstanding) = match (&rule.service, rule_origin) {
        (Service::Tcp { .. } | Service::Unix { tls: false, .. }, RuleOrigin::Single(single)) => {
            match single.dialer.dial().await {
                Ok(s) => (s, None),
                Err(e) => {
                    tracing::info!(host = %t.host, rule = idx + 1, error = %e, "TCP origin unreachable");
                    return respond_final(send, respond::dial_failed(&e)).await;
                }
            }
        }
        (Service::Pool(p), RuleOrigin::Pool(pool)) if p.is_tcp() => {
            match pool_dial(pool, idx, &t).await {
                Ok((s, outstanding)) => (s, Some(outstanding)),
                Err(answer) => return respond_final(send, answer).await,
            }
        }
        (Service::Unsupported(mode), _) => {
            return respond_final(send, error(ErrorCode::NoService, mode.answer(&t.host))).await
        }
        (svc, _) => {
            return respond_final(
                send,
                error(
                    ErrorCode::NoService,
                    format!("{} is served by {svc}, which is not a TCP service; add a tcp:// ingress rule for it", t.host),
                ),
            )
            .await
        }
    };
    if let Some(v) = rule.origin_request.proxy_protocol {
        if let (Ok(client), Some(dest)) = (t.client.addr.parse(), origin.peer_addr()) {
            let header = crate::proxy_protocol::header(v, client, dest);
            if let Err(e) = origin.write_all(&header).await {
                return respond_final(
                    send,
                    error(
                        ErrorCode::OriginUnreachable,
                        format!("writing the PROXY header: {e}"),
                    ),
                )
                .await;
            }
        }
    }
    let mut send = send;
    let answered = respond(&mut send, StreamResponse::Connected).await;
    let traffic = Traffic::default();
    let end = copy::splice(
        copy::stream_side(send, recv),
        copy::io_side(origin),
        &traffic,
        std::future::pending(),
    )
    .await;
    tracing::debug!(
        up = traffic.up(),
        down = traffic.down(),
        ?end,
        "TCP stream ended"
    );
    answered
}

/// Dials a healthy origin of a TCP `pool`, and once more another one if
/// that fails. The [`Outstanding`] guard must live as long as the
/// connection.
async fn pool_dial(
    pool: &Arc<Pool>,
    idx: usize,
    t: &TcpRequest,
) -> Result<(OriginStream, Outstanding), StreamResponse> {
    let facts = Facts {
        headers: &[],
        client_addr: &t.client.addr,
    };
    let mut budget = RetryBudget::new(RetryLimits::ORIGIN_POOL);
    let mut failed: Option<(usize, StreamResponse)> = None;
    while let Some(pick) = pool.pick(&facts, failed.as_ref().map(|(i, _)| *i)) {
        let outstanding = pool.acquire(pick);
        let member = pool.member(pick);
        match member.dialer.dial().await {
            Ok(stream) => return Ok((stream, outstanding)),
            Err(e) => {
                tracing::info!(host = %t.host, rule = idx + 1, origin = %member.name, error = %e, "pool TCP origin unreachable");
                pool.record_failure(pick, &e.to_string());
                let answer = respond::dial_failed(&e);
                match budget.on_failure(Failure::Unreached, true) {
                    Verdict::Retry(_) => failed = Some((pick, answer)),
                    Verdict::GiveUp(_) => return Err(answer),
                }
            }
        }
    }
    Err(match failed {
        Some((_, answer)) => answer,
        None => error(ErrorCode::NoHealthyOrigin, pool.unavailable(&t.host)),
    })
}
