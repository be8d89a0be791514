//! Arbitrary bytes through the frame decoder and every message decoder a
//! peer can reach: none may panic, and whatever decodes must re-encode to
//! something that decodes to the same value. The same bytes then go to
//! the control-stream state machines (edge before and after registration,
//! connector after registration), which must not panic either.
#![no_main]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_proto::control::{ControlMessage, Register, Registered};
use warren_proto::frame::{FrameDecoder, FrameType};
use warren_proto::session::{
    ConnectorEvent, ConnectorSession, ConnectorSessionConfig, EdgeEvent, EdgeSession,
    EdgeSessionConfig, RegistrationAnswer,
};
use warren_proto::stream::{BodyFrame, StreamRequest, StreamResponse};

fn register() -> Register {
    Register {
        versions: vec![2, 1],
        tunnel_id: "t".into(),
        secret: [0; 32],
        connector_id: "c".into(),
        connector_version: "v".into(),
        conn_index: 0,
        ha_connections: 1,
        host: "h".into(),
    }
}

/// Feeds `data` to both sides in chunks of 1 to 16 bytes (sized by the
/// data itself), polling everything after each chunk and firing timers in
/// between.
fn sessions(data: &[u8]) {
    let t0 = Instant::now();
    let mut now = t0;
    let mut fresh = EdgeSession::new(EdgeSessionConfig::default(), now);
    let mut edge = EdgeSession::new(EdgeSessionConfig::default(), now);
    edge.handle_data(now, &ControlMessage::Register(register()).encode());
    while let Some(e) = edge.poll_event() {
        if let EdgeEvent::Check(_) = e {
            edge.handle_answer(
                now,
                RegistrationAnswer::Accept {
                    connection_id: "x".into(),
                    tunnel_name: "y".into(),
                },
            );
        }
    }
    let mut conn = ConnectorSession::new(ConnectorSessionConfig::default(), register(), now);
    // Version 2: the one with keep-alive, so Ping and Pong are acted on.
    let ok = ControlMessage::Registered(Registered {
        version: 2,
        connection_id: "x".into(),
        tunnel_name: "y".into(),
    });
    conn.handle_data(now, &ok.encode());
    while conn.poll_transmit(now).is_some() {}
    assert!(matches!(conn.poll_event(), Some(ConnectorEvent::Registered(_))));

    let mut rest = data;
    while !rest.is_empty() {
        let n = (usize::from(rest[0]) % 16 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        now += Duration::from_millis(u64::from(chunk[0]) * 40);
        for s in [&mut fresh, &mut edge] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            s.handle_data(now, chunk);
            while s.poll_transmit(now).is_some() {}
            while s.poll_event().is_some() {}
        }
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now);
        }
        conn.handle_data(now, chunk);
        while conn.poll_transmit(now).is_some() {}
        while conn.poll_event().is_some() {}
        let _ = conn.accept_stream(now);
    }
    // Whatever came, a fresh edge session never lets a stream be opened
    // without a check having been answered.
    assert!(!fresh.may_open_stream());
}

fuzz_target!(|data: &[u8]| {
    // Keep-alive messages carry any u64: take one from the input, so Ping
    // and Pong are exercised even before the fuzzer finds their tags.
    if let Some(id) = data.get(..8) {
        let id = u64::from_be_bytes(id.try_into().unwrap());
        for m in [ControlMessage::Ping(id), ControlMessage::Pong(id)] {
            let mut b = BytesMut::from(&m.encode()[..]);
            let f = FrameDecoder::new().decode(&mut b).unwrap().unwrap();
            assert!(b.is_empty());
            assert_eq!(ControlMessage::decode(&f.payload).unwrap(), m);
        }
    }
    sessions(data);
    let mut buf = BytesMut::from(data);
    let mut dec = FrameDecoder::new();
    while let Ok(Some(frame)) = dec.decode(&mut buf) {
        match frame.kind {
            FrameType::Control => {
                if let Ok(m) = ControlMessage::decode(&frame.payload) {
                    let enc = m.encode();
                    let mut b = BytesMut::from(&enc[..]);
                    let f = FrameDecoder::new().decode(&mut b).unwrap().unwrap();
                    assert_eq!(ControlMessage::decode(&f.payload).unwrap(), m);
                }
            }
            FrameType::Request => {
                if let Ok(r) = StreamRequest::decode(&frame) {
                    let mut b = BytesMut::from(&r.encode()[..]);
                    let f = FrameDecoder::new().decode(&mut b).unwrap().unwrap();
                    assert_eq!(StreamRequest::decode(&f).unwrap(), r);
                }
            }
            FrameType::Response => {
                if let Ok(r) = StreamResponse::decode(&frame) {
                    let mut b = BytesMut::from(&r.encode()[..]);
                    let f = FrameDecoder::new().decode(&mut b).unwrap().unwrap();
                    assert_eq!(StreamResponse::decode(&f).unwrap(), r);
                }
            }
            _ => {
                let _ = BodyFrame::decode(frame);
            }
        }
    }
});
