//! The edge and connector sessions back to back on a virtual clock.

mod util;

use std::time::{Duration, Instant};

use util::{accept, Ended, Pair, MS, SEC};
use warren_proto::close::CloseCode;
use warren_proto::control::{ControlMessage, RefuseCode, Refused, Registered};
use warren_proto::liveness::LivenessConfig;
use warren_proto::retry::{RetryReason, Verdict};
use warren_proto::session::{
    Admission, ConnectorEvent, ConnectorSession, ConnectorSessionConfig, EdgeEvent,
    EdgeSessionConfig, RegisterError, RegistrationAnswer,
};

fn connector_failure(p: &Pair) -> &RegisterError {
    p.connector_events
        .iter()
        .find_map(|(_, e)| match e {
            ConnectorEvent::Failed(f) => Some(f),
            _ => None,
        })
        .expect("the registration failed")
}

fn refuse(code: RefuseCode) -> RegistrationAnswer {
    RegistrationAnswer::Refuse(Refused {
        code,
        message: format!("refused: {code:?}"),
    })
}

fn registered_pair() -> Pair {
    let mut p = Pair::accepting();
    p.run_for(SEC);
    assert!(p.connector.is_registered() && p.edge.may_open_stream());
    p
}

#[test]
fn registration_is_accepted() {
    let mut p = Pair::accepting();
    p.delay = 25 * MS;
    p.run_for(SEC);

    let (at, ev) = &p.connector_events[0];
    assert_eq!(*at, p.start + 50 * MS, "one round trip");
    assert_eq!(
        *ev,
        ConnectorEvent::Registered(Registered {
            version: 2,
            connection_id: "conn-1".into(),
            tunnel_name: "office".into(),
        })
    );
    assert!(
        matches!(&p.edge_events[0].1, EdgeEvent::Check(r) if r.tunnel_id == util::register().tunnel_id)
    );
    assert_eq!(p.edge_events[1].1, EdgeEvent::Registered);
    assert_eq!(p.edge.version(), Some(2));
    assert!(p.edge.may_open_stream());
    assert_eq!(p.connector.registered().unwrap().tunnel_name, "office");
    assert!(p.edge_ended.is_none() && p.connector_ended.is_none());
}

#[test]
fn a_first_frame_that_is_not_register_is_refused_and_the_connection_closes() {
    let mut p = Pair::accepting();
    p.inject_to_edge(&ControlMessage::Ping(1).encode());
    p.run_for(10 * SEC);

    let refused = p.edge_events.iter().find_map(|(at, e)| match e {
        EdgeEvent::Refused(r) => Some((*at, r.clone())),
        _ => None,
    });
    let (at, r) = refused.expect("refused");
    assert_eq!(at, p.start + 10 * MS);
    assert_eq!(r.code, RefuseCode::BadRequest);
    assert_eq!(r.message, "expected a registration, got Ping");
    assert!(!p
        .edge_events
        .iter()
        .any(|(_, e)| matches!(e, EdgeEvent::Check(_))));
    // The connector reads the refusal (not retryable) and closes.
    assert!(!connector_failure(&p).is_retryable());
    assert_eq!(p.edge_ended, Some((p.start + 30 * MS, Ended::Lost)));
    assert!(p.connector.is_closed() && p.edge.is_closed());
}

#[test]
fn bad_secret_is_refused_for_good_and_the_edge_stops_lingering() {
    let mut p = Pair::answering(refuse(RefuseCode::BadSecret));
    p.run_for(10 * SEC);

    let failure = connector_failure(&p);
    assert_eq!(
        *failure,
        RegisterError::Refused {
            code: RefuseCode::BadSecret,
            message: "refused: BadSecret".into()
        }
    );
    assert!(!failure.is_retryable(), "a bad secret needs the operator");
    assert_eq!(
        p.connector_ended,
        Some((
            p.start + 20 * MS,
            Ended::Closed(CloseCode::ConnectorStopped)
        ))
    );
    // The connector closed on reading the refusal, long before the linger
    // would have ended: the edge never had to close.
    assert_eq!(p.edge_ended, Some((p.start + 30 * MS, Ended::Lost)));
    assert!(p
        .edge_events
        .iter()
        .any(|(_, e)| matches!(e, EdgeEvent::Refused(r) if r.code == RefuseCode::BadSecret)));
    assert!(!p
        .edge_events
        .iter()
        .any(|(_, e)| matches!(e, EdgeEvent::Close(_))));
}

#[test]
fn internal_error_is_refused_but_worth_retrying() {
    let mut p = Pair::answering(refuse(RefuseCode::Internal));
    p.run_for(SEC);
    let failure = connector_failure(&p);
    assert!(matches!(
        failure,
        RegisterError::Refused {
            code: RefuseCode::Internal,
            ..
        }
    ));
    assert!(failure.is_retryable());
    assert_eq!(p.connector_closed_with(), Some(CloseCode::ConnectorStopped));
}

#[test]
fn a_refusal_the_connector_never_reads_ends_after_the_linger() {
    let mut p = Pair::answering(refuse(RefuseCode::UnknownTunnel));
    p.run_for(15 * MS); // the Register arrived and was refused
                        // From now on nothing gets through: the connector reads the refusal
                        // already on its way, but its close is lost.
    p.silent = true;
    p.run_for(10 * SEC);
    assert_eq!(
        p.edge_ended,
        Some((
            p.start + 10 * MS + 3 * SEC,
            Ended::Closed(CloseCode::Refused)
        ))
    );
}

#[test]
fn a_silent_connector_misses_the_registration_deadline() {
    let mut p = Pair::accepting();
    p.silent = true;
    p.run_for(60 * SEC);
    assert_eq!(
        p.edge_ended,
        Some((
            p.start + 10 * SEC,
            Ended::Closed(CloseCode::RegistrationTimeout)
        ))
    );
    assert_eq!(
        p.connector_ended,
        Some((
            p.start + 15 * SEC,
            Ended::Closed(CloseCode::RegistrationTimeout)
        ))
    );
    let failure = connector_failure(&p);
    assert_eq!(*failure, RegisterError::Timeout(15 * SEC));
    assert!(failure.is_retryable());
}

#[test]
fn a_check_still_pending_at_the_deadline_is_refused_as_internal() {
    let mut p = Pair::new(
        EdgeSessionConfig::default(),
        ConnectorSessionConfig::default(),
        Box::new(|_| None),
    );
    p.run_for(30 * SEC);
    assert_eq!(p.held_checks.len(), 1);
    let failure = connector_failure(&p);
    assert!(matches!(
        failure,
        RegisterError::Refused {
            code: RefuseCode::Internal,
            ..
        }
    ));
    assert!(failure.is_retryable());
    assert_eq!(
        p.edge_ended,
        Some((p.start + 10 * SEC + 20 * MS, Ended::Lost))
    );
    // The store's answer, when it finally comes, changes nothing.
    p.edge.handle_answer(p.now, accept());
    assert!(p.edge.poll_event().is_none() && !p.edge.may_open_stream());
}

#[test]
fn drain_lets_streams_finish_and_takes_no_new_one() {
    let mut p = registered_pair();
    assert!(p.open_stream() && p.open_stream());
    p.run_for(SEC);
    let served: Vec<_> = p.admitted.iter().map(|a| a.id()).collect();
    assert!(matches!(
        p.admitted[..],
        [Admission::Serve(_), Admission::Serve(_)]
    ));

    let t = p.now;
    p.drain(30 * SEC);
    assert!(p.connector.is_draining());
    // A stream the edge opens before the Drain reaches it arrives after
    // the drain began: answered ShuttingDown, and still counted.
    assert!(p.open_stream());
    p.run_for(15 * MS);
    assert!(matches!(p.admitted[2], Admission::ShuttingDown(_)));
    assert_eq!(p.connector.open_streams(), 3);
    assert!(p
        .edge_events
        .iter()
        .any(|(at, e)| *e == EdgeEvent::Draining && *at == t + 10 * MS));
    assert!(!p.edge.may_open_stream() && !p.open_stream());

    p.run_for(SEC);
    // The edge read ShuttingDown: retry elsewhere, mark the connection.
    assert_eq!(p.edge_verdicts, [Verdict::Retry(RetryReason::PeerDraining)]);
    assert!(p.edge.is_draining());
    // The refused stream stopped counting once its answer was delivered.
    assert_eq!(p.connector.open_streams(), 2);

    p.finish_stream(served[0]);
    p.run_for(SEC);
    assert!(p.connector_ended.is_none(), "one stream is still open");
    p.finish_stream(served[1]);
    let done = p.now;
    p.run_for(SEC);
    assert!(p
        .connector_events
        .iter()
        .any(|(at, e)| *e == ConnectorEvent::Drained { open_streams: 0 } && *at == done));
    assert_eq!(
        p.connector_ended,
        Some((done, Ended::Closed(CloseCode::ConnectorStopped)))
    );
    assert_eq!(p.edge_ended, Some((done + 10 * MS, Ended::Lost)));
}

#[test]
fn the_grace_period_ends_a_drain_with_streams_still_open() {
    let mut p = registered_pair();
    assert!(p.open_stream());
    p.run_for(SEC);
    let t = p.now;
    p.drain(5 * SEC);
    p.run_for(60 * SEC);
    assert!(p
        .connector_events
        .iter()
        .any(|(at, e)| *e == ConnectorEvent::Drained { open_streams: 1 } && *at == t + 5 * SEC));
    assert_eq!(
        p.connector_ended,
        Some((t + 5 * SEC, Ended::Closed(CloseCode::ConnectorStopped)))
    );
}

#[test]
fn a_drain_with_nothing_in_flight_closes_at_once() {
    let mut p = registered_pair();
    let t = p.now;
    p.drain(5 * SEC);
    p.run_for(SEC);
    assert_eq!(
        p.connector_ended,
        Some((t, Ended::Closed(CloseCode::ConnectorStopped)))
    );
    assert_eq!(p.edge_ended, Some((t + 10 * MS, Ended::Lost)));
}

/// Largest gap between two messages a side sent in `[from, to]`.
fn largest_gap(sent: &[(Instant, ControlMessage)], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = sent
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t >= from)
        .collect();
    times.push(to);
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[test]
fn ping_pong_keeps_a_quiet_live_path_up_for_minutes_in_milliseconds() {
    #[allow(clippy::disallowed_methods)] // real time, to show how little it takes
    let real = Instant::now();
    let mut p = registered_pair();
    p.delay = 80 * MS;
    let from = p.now;
    p.run_for(Duration::from_secs(600));

    assert!(p.edge_ended.is_none() && p.connector_ended.is_none());
    assert!(p.edge.may_open_stream());
    let keep_alive = LivenessConfig::default().keep_alive;
    for sent in [&p.edge_sent, &p.connector_sent] {
        let pings = sent
            .iter()
            .filter(|(_, m)| matches!(m, ControlMessage::Ping(_)))
            .count();
        assert!((290..=310).contains(&pings), "{pings} pings in 10 minutes");
        assert!(largest_gap(sent, from, p.now) <= keep_alive);
    }
    assert!(
        real.elapsed() < Duration::from_secs(1),
        "took {:?}",
        real.elapsed()
    );
}

#[test]
fn a_silent_path_is_declared_dead_by_both_sides() {
    let mut p = registered_pair();
    p.run_for(30 * SEC);
    let silent_from = p.now;
    p.silent = true;
    let cfg = LivenessConfig::default();
    p.run_for(cfg.idle_timeout + cfg.keep_alive);

    for (ended, last) in [
        (p.edge_ended, p.edge_last_arrival),
        (p.connector_ended, p.connector_last_arrival),
    ] {
        let (at, how) = ended.expect("declared dead");
        assert_eq!(how, Ended::Closed(CloseCode::PeerDead));
        let last = last.expect("something arrived once");
        assert_eq!(
            at - last,
            cfg.idle_timeout,
            "dead exactly idle_timeout after the last arrival"
        );
        assert!(at <= silent_from + cfg.idle_timeout + cfg.keep_alive);
    }
}

#[test]
fn rtt_is_twice_the_one_way_delay_on_both_sides() {
    let mut p = Pair::accepting();
    p.delay = 37 * MS;
    p.run_for(20 * SEC);
    for l in [p.edge.liveness().unwrap(), p.connector.liveness().unwrap()] {
        assert_eq!(l.rtt(), Some(74 * MS));
        assert_eq!(l.smoothed_rtt(), Some(74 * MS));
    }
}

#[test]
fn a_version_1_connector_is_served_without_keep_alive() {
    let mut p = Pair::accepting();
    let mut reg = util::register();
    reg.versions = vec![1];
    p.connector = ConnectorSession::new(ConnectorSessionConfig::default(), reg, p.start);
    p.run_for(SEC);
    assert_eq!(p.edge.version(), Some(1));
    assert!(p.edge.liveness().is_none() && p.connector.liveness().is_none());
    // A version 1 connector never pings (today's does not even read the
    // control stream): the edge must not declare it dead.
    p.silent = true;
    p.run_for(Duration::from_secs(600));
    assert!(p.edge_ended.is_none() && p.connector_ended.is_none());
    assert!(p.edge.may_open_stream());
    let pings = |sent: &[(Instant, ControlMessage)]| {
        sent.iter()
            .filter(|(_, m)| matches!(m, ControlMessage::Ping(_)))
            .count()
    };
    assert_eq!(pings(&p.edge_sent) + pings(&p.connector_sent), 0);
}

#[test]
fn the_edge_closing_the_connection_reaches_the_connector() {
    let mut p = registered_pair();
    let t = p.now;
    p.edge.close(t, CloseCode::TunnelGone);
    p.run_for(SEC);
    assert_eq!(
        p.edge_ended,
        Some((t, Ended::Closed(CloseCode::TunnelGone)))
    );
    assert_eq!(p.connector_ended, Some((t + 10 * MS, Ended::Lost)));
    assert!(p.connector.is_closed() && p.connector.poll_timeout().is_none());
}
