//! Each session driven on its own with hand-made bytes: what a peer that
//! breaks the protocol gets.

mod util;

use std::time::Instant;

use bytes::Bytes;
use util::{accept, base, control_messages, register, MS, SEC};
use warren_proto::close::CloseCode;
use warren_proto::codec::DecodeError;
use warren_proto::control::{ControlMessage, RefuseCode, Registered};
use warren_proto::frame::{self, FrameType};
use warren_proto::session::{
    Admission, ConnectorEvent, ConnectorSession, ConnectorSessionConfig, EdgeEvent, EdgeSession,
    EdgeSessionConfig, Ignored, RegisterError, Transmit, Violation,
};
use warren_proto::stream::StreamResponse;

fn edge_out(s: &mut EdgeSession, now: Instant) -> (Vec<Transmit>, Vec<EdgeEvent>) {
    let t = std::iter::from_fn(|| s.poll_transmit(now)).collect();
    (t, std::iter::from_fn(|| s.poll_event()).collect())
}

fn connector_out(s: &mut ConnectorSession, now: Instant) -> (Vec<Transmit>, Vec<ConnectorEvent>) {
    let t = std::iter::from_fn(|| s.poll_transmit(now)).collect();
    (t, std::iter::from_fn(|| s.poll_event()).collect())
}

fn frames(t: &[Transmit]) -> Vec<ControlMessage> {
    t.iter()
        .flat_map(|t| match t {
            Transmit::Frame(b) => control_messages(b),
            Transmit::Finish => Vec::new(),
        })
        .collect()
}

fn registered_edge(t0: Instant) -> EdgeSession {
    let mut s = EdgeSession::new(EdgeSessionConfig::default(), t0);
    s.handle_data(t0, &ControlMessage::Register(register()).encode());
    let (_, ev) = edge_out(&mut s, t0);
    assert!(matches!(ev[..], [EdgeEvent::Check(_)]));
    s.handle_answer(t0, accept());
    let (t, ev) = edge_out(&mut s, t0);
    assert!(matches!(frames(&t)[..], [ControlMessage::Registered(_)]));
    assert_eq!(ev, [EdgeEvent::Registered]);
    s
}

fn registered_connector(t0: Instant) -> ConnectorSession {
    let mut s = ConnectorSession::new(ConnectorSessionConfig::default(), register(), t0);
    let (t, _) = connector_out(&mut s, t0);
    assert!(matches!(frames(&t)[..], [ControlMessage::Register(_)]));
    s.handle_data(t0, &registered(2).encode());
    let (_, ev) = connector_out(&mut s, t0);
    assert!(matches!(ev[..], [ConnectorEvent::Registered(_)]));
    s
}

fn registered(version: u16) -> ControlMessage {
    ControlMessage::Registered(Registered {
        version,
        connection_id: "c".into(),
        tunnel_name: "t".into(),
    })
}

#[test]
fn every_wrong_first_frame_is_refused_then_closed_after_the_linger() {
    let mut short_secret = vec![1u8, 0, 1, 0, 1];
    short_secret.extend_from_slice(&[0, 0, 0, 1, b't', 0, 0, 0, 3, 1, 2, 3]);
    let cases: Vec<(&str, Bytes)> = vec![
        ("a ping", ControlMessage::Ping(1).encode()),
        ("a drain", ControlMessage::Drain.encode()),
        ("not a control frame", StreamResponse::Connected.encode()),
        (
            "an unknown frame type",
            Bytes::from_static(&[0x7f, 0, 0, 0, 0]),
        ),
        (
            "an unknown control tag",
            frame::encode(FrameType::Control, &[0xee]),
        ),
        (
            "a short secret",
            frame::encode(FrameType::Control, &short_secret),
        ),
    ];
    for (what, bytes) in cases {
        let t0 = base();
        let mut s = EdgeSession::new(EdgeSessionConfig::default(), t0);
        s.handle_data(t0 + MS, &bytes);
        let (t, ev) = edge_out(&mut s, t0 + MS);
        assert_eq!(t.last(), Some(&Transmit::Finish), "{what}");
        let [ControlMessage::Refused(r)] = &frames(&t)[..] else {
            panic!("{what}: {t:?}")
        };
        assert_eq!(r.code, RefuseCode::BadRequest, "{what}");
        assert!(
            matches!(&ev[..], [EdgeEvent::Refused(e)] if e == r),
            "{what}"
        );
        assert!(!s.may_open_stream());
        assert_eq!(s.poll_timeout(), Some(t0 + MS + 3 * SEC), "{what}");
        s.handle_timeout(t0 + 3 * SEC);
        assert!(
            edge_out(&mut s, t0 + 3 * SEC).1.is_empty(),
            "{what}: not yet"
        );
        s.handle_timeout(t0 + MS + 3 * SEC);
        assert_eq!(
            edge_out(&mut s, t0).1,
            [EdgeEvent::Close(CloseCode::Refused)]
        );
        assert!(s.is_closed() && s.poll_timeout().is_none());
    }
}

#[test]
fn a_register_split_into_single_bytes_is_read_whole() {
    let t0 = base();
    let mut s = EdgeSession::new(EdgeSessionConfig::default(), t0);
    let bytes = ControlMessage::Register(register()).encode();
    for (i, b) in bytes.iter().enumerate() {
        assert!(s.poll_event().is_none(), "an event before byte {i}");
        s.handle_data(t0, &[*b]);
    }
    assert!(matches!(s.poll_event(), Some(EdgeEvent::Check(r)) if *r == register()));
}

#[test]
fn no_common_version_is_refused_without_asking_the_store() {
    let t0 = base();
    let mut s = EdgeSession::new(EdgeSessionConfig::default(), t0);
    let mut reg = register();
    reg.versions = vec![98, 99];
    s.handle_data(t0, &ControlMessage::Register(reg).encode());
    let (t, ev) = edge_out(&mut s, t0);
    assert!(
        matches!(&frames(&t)[..], [ControlMessage::Refused(r)] if r.code == RefuseCode::UnsupportedVersion)
    );
    assert!(matches!(ev[..], [EdgeEvent::Refused(_)]));
}

#[test]
fn sending_before_the_answer_or_ending_the_stream_is_refused() {
    let t0 = base();
    let mut pipelined = ControlMessage::Register(register()).encode().to_vec();
    pipelined.extend_from_slice(&ControlMessage::Ping(0).encode());
    let mut s = EdgeSession::new(EdgeSessionConfig::default(), t0);
    s.handle_data(t0, &pipelined);
    assert!(
        matches!(&edge_out(&mut s, t0).1[..], [EdgeEvent::Refused(r)] if r.code == RefuseCode::BadRequest)
    );

    let mut s = EdgeSession::new(EdgeSessionConfig::default(), t0);
    s.handle_data(t0, &ControlMessage::Register(register()).encode());
    s.handle_data(t0, &ControlMessage::Ping(0).encode());
    let ev = edge_out(&mut s, t0).1;
    assert!(
        matches!(&ev[..], [EdgeEvent::Check(_), EdgeEvent::Refused(r)] if r.code == RefuseCode::BadRequest)
    );
    s.handle_answer(t0, accept());
    assert!(s.poll_event().is_none(), "the late answer is ignored");

    let mut s = EdgeSession::new(EdgeSessionConfig::default(), t0);
    s.handle_finished(t0);
    assert!(
        matches!(&edge_out(&mut s, t0).1[..], [EdgeEvent::Refused(r)] if r.code == RefuseCode::BadRequest)
    );
}

#[test]
fn after_registration_the_edge_ignores_what_it_can_and_closes_on_broken_framing() {
    let t0 = base();
    let mut s = registered_edge(t0);
    s.handle_data(t0, &frame::encode(FrameType::Control, &[0xee]));
    s.handle_data(t0, &ControlMessage::Register(register()).encode());
    s.handle_data(t0, &ControlMessage::Drain.encode());
    s.handle_data(t0, &ControlMessage::Drain.encode());
    let ev = edge_out(&mut s, t0).1;
    assert_eq!(
        ev,
        [
            EdgeEvent::Ignored(Ignored::Malformed(DecodeError::UnknownTag {
                what: "control message",
                tag: 0xee
            })),
            EdgeEvent::Ignored(Ignored::Unexpected("Register")),
            EdgeEvent::Draining,
        ]
    );
    assert!(s.is_registered() && !s.may_open_stream());

    s.handle_data(t0, &StreamResponse::Connected.encode());
    let ev = edge_out(&mut s, t0).1;
    assert!(matches!(
        ev[..],
        [
            EdgeEvent::Violation(Violation::Malformed(_)),
            EdgeEvent::Close(CloseCode::ProtocolViolation)
        ]
    ));

    let mut s = registered_edge(t0);
    s.handle_finished(t0);
    let ev = edge_out(&mut s, t0).1;
    assert_eq!(
        ev,
        [
            EdgeEvent::Violation(Violation::StreamEnded),
            EdgeEvent::Close(CloseCode::ProtocolViolation)
        ]
    );
}

#[test]
fn the_edge_marks_a_connection_draining_on_a_shutting_down_answer() {
    let t0 = base();
    let mut s = registered_edge(t0);
    assert!(s.may_open_stream());
    s.set_draining();
    assert!(!s.may_open_stream() && s.is_draining() && s.is_registered());
}

#[test]
fn the_edge_answers_pings_and_pings_when_quiet() {
    let t0 = base();
    let mut s = registered_edge(t0);
    s.handle_data(t0 + SEC, &ControlMessage::Ping(9).encode());
    assert_eq!(
        frames(&edge_out(&mut s, t0 + SEC).0),
        [ControlMessage::Pong(9)]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + 2 * SEC));
    s.handle_timeout(t0 + 2 * SEC);
    assert_eq!(
        frames(&edge_out(&mut s, t0 + 2 * SEC).0),
        [ControlMessage::Ping(0)]
    );
    s.handle_data(t0 + 2 * SEC + 30 * MS, &ControlMessage::Pong(0).encode());
    assert_eq!(s.liveness().unwrap().rtt(), Some(30 * MS));
}

#[test]
fn the_connector_sends_only_register_until_answered() {
    let t0 = base();
    let mut s = ConnectorSession::new(ConnectorSessionConfig::default(), register(), t0);
    let (t, ev) = connector_out(&mut s, t0);
    assert_eq!(frames(&t), [ControlMessage::Register(register())]);
    assert!(ev.is_empty());
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + 15 * SEC),
        "no keep-alive timer yet"
    );
    assert!(matches!(s.accept_stream(t0), Admission::ShuttingDown(_)));
}

#[test]
fn wrong_answers_to_register_are_retryable_violations() {
    let cases: Vec<(Bytes, Violation)> = vec![
        (registered(9).encode(), Violation::VersionNotOffered(9)),
        (
            ControlMessage::Drain.encode(),
            Violation::Unexpected("Drain"),
        ),
        (
            ControlMessage::Ping(3).encode(),
            Violation::Unexpected("Ping"),
        ),
        (
            StreamResponse::Connected.encode(),
            Violation::Malformed(DecodeError::Unexpected {
                got: "response",
                expected: "control",
            }),
        ),
    ];
    for (bytes, want) in cases {
        let t0 = base();
        let mut s = ConnectorSession::new(ConnectorSessionConfig::default(), register(), t0);
        connector_out(&mut s, t0);
        s.handle_data(t0, &bytes);
        let ev = connector_out(&mut s, t0).1;
        let [ConnectorEvent::Failed(e), ConnectorEvent::Close(CloseCode::ProtocolViolation)] =
            &ev[..]
        else {
            panic!("{want:?}: {ev:?}")
        };
        assert_eq!(*e, RegisterError::Violation(want));
        assert!(e.is_retryable());
    }

    let t0 = base();
    let mut s = ConnectorSession::new(ConnectorSessionConfig::default(), register(), t0);
    s.handle_finished(t0);
    let ev = connector_out(&mut s, t0).1;
    assert_eq!(
        ev[0],
        ConnectorEvent::Failed(RegisterError::Violation(Violation::StreamEnded))
    );
}

#[test]
fn draining_before_registration_just_closes() {
    let t0 = base();
    let mut s = ConnectorSession::new(ConnectorSessionConfig::default(), register(), t0);
    connector_out(&mut s, t0);
    s.drain(t0, 30 * SEC);
    let (t, ev) = connector_out(&mut s, t0);
    assert!(t.is_empty(), "no Drain before registration");
    assert_eq!(
        ev,
        [
            ConnectorEvent::Drained { open_streams: 0 },
            ConnectorEvent::Close(CloseCode::ConnectorStopped)
        ]
    );
}

#[test]
fn stream_admission_counts_each_stream_once() {
    let t0 = base();
    let mut s = registered_connector(t0);
    let a = s.accept_stream(t0);
    let b = s.accept_stream(t0);
    assert!(matches!((a, b), (Admission::Serve(x), Admission::Serve(y)) if x != y));
    assert_eq!(s.open_streams(), 2);
    assert!(s.stream_done(t0, a.id()));
    assert!(!s.stream_done(t0, a.id()), "done twice");
    assert_eq!(s.open_streams(), 1);

    s.drain(t0, 30 * SEC);
    s.drain(t0 + SEC, SEC);
    let (t, ev) = connector_out(&mut s, t0);
    assert_eq!(frames(&t), [ControlMessage::Drain], "one Drain");
    assert!(ev.is_empty());
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + 2 * SEC),
        "the keep-alive comes first"
    );
    let c = s.accept_stream(t0);
    assert!(matches!(c, Admission::ShuttingDown(_)));
    assert!(s.stream_done(t0, b.id()));
    assert!(
        connector_out(&mut s, t0).1.is_empty(),
        "the refused stream still counts"
    );
    assert!(s.stream_done(t0, c.id()));
    assert_eq!(
        connector_out(&mut s, t0).1,
        [
            ConnectorEvent::Drained { open_streams: 0 },
            ConnectorEvent::Close(CloseCode::ConnectorStopped)
        ]
    );
}

#[test]
fn after_registration_the_connector_ignores_what_it_can() {
    let t0 = base();
    let mut s = registered_connector(t0);
    s.handle_data(t0, &registered(2).encode());
    s.handle_data(t0, &frame::encode(FrameType::Control, &[0xee]));
    assert_eq!(
        connector_out(&mut s, t0).1,
        [
            ConnectorEvent::Ignored(Ignored::Unexpected("Registered")),
            ConnectorEvent::Ignored(Ignored::Malformed(DecodeError::UnknownTag {
                what: "control message",
                tag: 0xee
            })),
        ]
    );
    s.handle_finished(t0);
    assert_eq!(
        connector_out(&mut s, t0).1,
        [
            ConnectorEvent::Violation(Violation::StreamEnded),
            ConnectorEvent::Close(CloseCode::ProtocolViolation)
        ]
    );
}

#[test]
fn a_connector_registered_by_a_version_1_edge_runs_no_keep_alive() {
    let t0 = base();
    let mut s = ConnectorSession::new(ConnectorSessionConfig::default(), register(), t0);
    connector_out(&mut s, t0);
    s.handle_data(t0, &registered(1).encode());
    assert!(matches!(
        connector_out(&mut s, t0).1[..],
        [ConnectorEvent::Registered(_)]
    ));
    assert!(s.liveness().is_none());
    assert_eq!(s.poll_timeout(), None, "no timer: the old edge never pings");
    s.handle_data(t0, &ControlMessage::Ping(1).encode());
    let (t, ev) = connector_out(&mut s, t0);
    assert!(t.is_empty(), "no Pong on version 1");
    assert_eq!(ev, [ConnectorEvent::Ignored(Ignored::Unexpected("Ping"))]);
}

#[test]
fn the_shutting_down_answer_is_retryable_elsewhere() {
    let StreamResponse::Error { code, message } = warren_proto::session::shutting_down_response()
    else {
        panic!("an error answer")
    };
    assert!(code.is_retryable_elsewhere());
    assert_eq!(message, "the connector is shutting down");
}
