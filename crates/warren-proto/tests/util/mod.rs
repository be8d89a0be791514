//! An [`EdgeSession`] and a [`ConnectorSession`] back to back through
//! in-memory pipes, on a virtual clock.
//!
//! Knobs: [`Pair::delay`] (one way, both directions) and [`Pair::silent`]
//! (everything sent is dropped, close frames included). The edge's
//! registration check is a closure; it may hold a check unanswered.
//! Data streams are modelled only as far as the sessions see them: the
//! edge opens one if [`EdgeSession::may_open_stream`], the connector
//! admits it on arrival, and a `ShuttingDown` answer travels back to the
//! edge's retry decision.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use warren_proto::close::CloseCode;
use warren_proto::control::{ControlMessage, Register};
use warren_proto::frame::FrameDecoder;
use warren_proto::retry::{Failure, RetryBudget, RetryLimits, Verdict};
use warren_proto::session::{
    Admission, ConnectorEvent, ConnectorSession, ConnectorSessionConfig, EdgeEvent, EdgeSession,
    EdgeSessionConfig, RegistrationAnswer, StreamId, Transmit,
};
use warren_proto::stream::ErrorCode;

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const SEC: Duration = Duration::from_secs(1);

/// The one real instant of a test; everything after it is virtual.
#[allow(clippy::disallowed_methods)]
pub(crate) fn base() -> Instant {
    Instant::now()
}

/// A connector's registration.
pub(crate) fn register() -> Register {
    Register {
        versions: warren_proto::SUPPORTED_VERSIONS.to_vec(),
        tunnel_id: "5f0c2a52-0d47-4f7e-9d8e-2f1f7a3b9c10".into(),
        secret: [7; 32],
        connector_id: "c-1".into(),
        connector_version: "0.1.0".into(),
        conn_index: 0,
        ha_connections: 2,
        host: "box".into(),
    }
}

/// The check's answer for an accepted registration.
pub(crate) fn accept() -> RegistrationAnswer {
    RegistrationAnswer::Accept {
        connection_id: "conn-1".into(),
        tunnel_name: "office".into(),
    }
}

/// Decodes the frames in `bytes` as control messages.
pub(crate) fn control_messages(bytes: &[u8]) -> Vec<ControlMessage> {
    let mut buf = BytesMut::from(bytes);
    let mut dec = FrameDecoder::new();
    let mut out = Vec::new();
    while let Ok(Some(f)) = dec.decode(&mut buf) {
        out.push(ControlMessage::decode(&f.payload).expect("a control message"));
    }
    out
}

enum Packet {
    Data(Bytes),
    Finish,
    /// The sender closed the connection.
    Lost,
    /// A data stream the edge opened.
    Stream,
    /// The connector's `ShuttingDown` answer to a stream.
    ShuttingDown,
    /// The edge acknowledged a stream's answer.
    Delivered(StreamId),
}

/// One direction of the path, in arrival order (things sent at the same
/// delay arrive in the order they were sent).
#[derive(Default)]
struct Pipe(VecDeque<(Instant, Packet)>);

impl Pipe {
    fn send(&mut self, at: Instant, p: Packet) {
        let pos = self.0.partition_point(|(t, _)| *t <= at);
        self.0.insert(pos, (at, p));
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.0.front().map(|(t, _)| *t)
    }

    fn arrived(&mut self, now: Instant) -> Option<Packet> {
        if self.next_arrival()? <= now {
            self.0.pop_front().map(|(_, p)| p)
        } else {
            None
        }
    }
}

/// How a side's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It closed with this code.
    Closed(CloseCode),
    /// The peer closed first.
    Lost,
}

pub(crate) type Checker = Box<dyn FnMut(&Register) -> Option<RegistrationAnswer>>;

pub(crate) struct Pair {
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    pub(crate) edge: EdgeSession,
    pub(crate) connector: ConnectorSession,
    /// One-way delay, both directions.
    pub(crate) delay: Duration,
    /// Drop everything sent.
    pub(crate) silent: bool,
    checker: Checker,
    /// Checks the checker held.
    pub(crate) held_checks: Vec<Register>,
    to_edge: Pipe,
    to_connector: Pipe,
    pub(crate) edge_events: Vec<(Instant, EdgeEvent)>,
    pub(crate) connector_events: Vec<(Instant, ConnectorEvent)>,
    /// Control messages each side sent, with when.
    pub(crate) edge_sent: Vec<(Instant, ControlMessage)>,
    pub(crate) connector_sent: Vec<(Instant, ControlMessage)>,
    /// When each side last received anything.
    pub(crate) edge_last_arrival: Option<Instant>,
    pub(crate) connector_last_arrival: Option<Instant>,
    pub(crate) edge_ended: Option<(Instant, Ended)>,
    pub(crate) connector_ended: Option<(Instant, Ended)>,
    /// Streams the connector admitted, in arrival order.
    pub(crate) admitted: Vec<Admission>,
    /// The edge's retry budget for the streams it opened.
    pub(crate) edge_budget: RetryBudget,
    /// What the edge decided on each `ShuttingDown` answer.
    pub(crate) edge_verdicts: Vec<Verdict>,
}

impl Pair {
    pub(crate) fn new(
        edge: EdgeSessionConfig,
        connector: ConnectorSessionConfig,
        checker: Checker,
    ) -> Self {
        let start = base();
        Self {
            start,
            now: start,
            edge: EdgeSession::new(edge, start),
            connector: ConnectorSession::new(connector, register(), start),
            delay: 10 * MS,
            silent: false,
            checker,
            held_checks: Vec::new(),
            to_edge: Pipe::default(),
            to_connector: Pipe::default(),
            edge_events: Vec::new(),
            connector_events: Vec::new(),
            edge_sent: Vec::new(),
            connector_sent: Vec::new(),
            edge_last_arrival: None,
            connector_last_arrival: None,
            edge_ended: None,
            connector_ended: None,
            admitted: Vec::new(),
            edge_budget: RetryBudget::new(RetryLimits::EDGE_STREAM),
            edge_verdicts: Vec::new(),
        }
    }

    /// Default timers; every registration accepted.
    pub(crate) fn accepting() -> Self {
        Self::new(
            EdgeSessionConfig::default(),
            ConnectorSessionConfig::default(),
            Box::new(|_| Some(accept())),
        )
    }

    /// Default timers; every registration answered by `answer`.
    pub(crate) fn answering(answer: RegistrationAnswer) -> Self {
        Self::new(
            EdgeSessionConfig::default(),
            ConnectorSessionConfig::default(),
            Box::new(move |_| Some(answer.clone())),
        )
    }

    /// Runs for `d` of virtual time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `t`, or until both sides are over.
    pub(crate) fn run_until(&mut self, t: Instant) {
        loop {
            self.flush();
            let next = [
                self.edge.poll_timeout(),
                self.connector.poll_timeout(),
                self.to_edge.next_arrival(),
                self.to_connector.next_arrival(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(n) if n <= t => self.now = self.now.max(n),
                _ => {
                    self.now = self.now.max(t);
                    self.flush();
                    return;
                }
            }
            self.deliver();
            if self.edge.poll_timeout().is_some_and(|w| w <= self.now) {
                self.edge.handle_timeout(self.now);
            }
            if self.connector.poll_timeout().is_some_and(|w| w <= self.now) {
                self.connector.handle_timeout(self.now);
            }
        }
    }

    /// The edge opens a data stream now, if its session allows it.
    pub(crate) fn open_stream(&mut self) -> bool {
        if !self.edge.may_open_stream() {
            return false;
        }
        self.send_to_connector(Packet::Stream);
        true
    }

    /// Puts raw bytes on the path to the edge now, ahead of anything the
    /// connector has not sent yet (a connector that misbehaves).
    pub(crate) fn inject_to_edge(&mut self, bytes: &[u8]) {
        self.send_to_edge(Packet::Data(Bytes::copy_from_slice(bytes)));
    }

    /// The connector is done with a stream it served.
    pub(crate) fn finish_stream(&mut self, id: StreamId) {
        assert!(self.connector.stream_done(self.now, id));
        self.flush();
    }

    /// The connector starts draining now.
    pub(crate) fn drain(&mut self, grace: Duration) {
        self.connector.drain(self.now, grace);
        self.flush();
    }

    pub(crate) fn edge_closed_with(&self) -> Option<CloseCode> {
        match self.edge_ended {
            Some((_, Ended::Closed(c))) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn connector_closed_with(&self) -> Option<CloseCode> {
        match self.connector_ended {
            Some((_, Ended::Closed(c))) => Some(c),
            _ => None,
        }
    }

    fn send_to_connector(&mut self, p: Packet) {
        if !self.silent {
            self.to_connector.send(self.now + self.delay, p);
        }
    }

    fn send_to_edge(&mut self, p: Packet) {
        if !self.silent {
            self.to_edge.send(self.now + self.delay, p);
        }
    }

    /// Everything both sessions have to say now, until neither has more.
    fn flush(&mut self) {
        loop {
            let mut quiet = true;
            while let Some(t) = self.edge.poll_transmit(self.now) {
                quiet = false;
                if let Transmit::Frame(f) = &t {
                    let now = self.now;
                    self.edge_sent
                        .extend(control_messages(f).into_iter().map(|m| (now, m)));
                }
                self.send_to_connector(transmit(t));
            }
            while let Some(t) = self.connector.poll_transmit(self.now) {
                quiet = false;
                if let Transmit::Frame(f) = &t {
                    let now = self.now;
                    self.connector_sent
                        .extend(control_messages(f).into_iter().map(|m| (now, m)));
                }
                self.send_to_edge(transmit(t));
            }
            while let Some(e) = self.edge.poll_event() {
                quiet = false;
                match &e {
                    EdgeEvent::Check(reg) => match (self.checker)(reg) {
                        Some(answer) => self.edge.handle_answer(self.now, answer),
                        None => self.held_checks.push((**reg).clone()),
                    },
                    EdgeEvent::Close(code) => {
                        self.edge_ended = Some((self.now, Ended::Closed(*code)));
                        self.send_to_connector(Packet::Lost);
                    }
                    _ => {}
                }
                self.edge_events.push((self.now, e));
            }
            while let Some(e) = self.connector.poll_event() {
                quiet = false;
                if let ConnectorEvent::Close(code) = &e {
                    self.connector_ended = Some((self.now, Ended::Closed(*code)));
                    self.send_to_edge(Packet::Lost);
                }
                self.connector_events.push((self.now, e));
            }
            if quiet {
                return;
            }
        }
    }

    fn deliver(&mut self) {
        let now = self.now;
        while let Some(p) = self.to_edge.arrived(now) {
            if self.edge_ended.is_some() {
                continue;
            }
            match p {
                Packet::Data(b) => {
                    self.edge_last_arrival = Some(now);
                    self.edge.handle_data(now, &b);
                }
                Packet::Finish => self.edge.handle_finished(now),
                Packet::Lost => {
                    self.edge.handle_connection_lost(now);
                    self.edge_ended = Some((now, Ended::Lost));
                }
                Packet::ShuttingDown => {
                    let v = self
                        .edge_budget
                        .on_failure(Failure::Answered(ErrorCode::ShuttingDown), false);
                    if let Verdict::Retry(reason) = v {
                        if reason.marks_draining() {
                            self.edge.set_draining();
                        }
                    }
                    self.edge_verdicts.push(v);
                }
                Packet::Stream | Packet::Delivered(_) => unreachable!("not sent to the edge"),
            }
            self.flush();
        }
        while let Some(p) = self.to_connector.arrived(now) {
            if self.connector_ended.is_some() {
                continue;
            }
            match p {
                Packet::Data(b) => {
                    self.connector_last_arrival = Some(now);
                    self.connector.handle_data(now, &b);
                }
                Packet::Finish => self.connector.handle_finished(now),
                Packet::Lost => {
                    self.connector.handle_connection_lost(now);
                    self.connector_ended = Some((now, Ended::Lost));
                }
                Packet::Stream => {
                    let a = self.connector.accept_stream(now);
                    if let Admission::ShuttingDown(id) = a {
                        // The answer goes back; the edge's acknowledgement
                        // of it comes back one more delay later.
                        self.send_to_edge(Packet::ShuttingDown);
                        self.to_connector
                            .send(now + 2 * self.delay, Packet::Delivered(id));
                    }
                    self.admitted.push(a);
                }
                Packet::Delivered(id) => {
                    self.connector.stream_done(now, id);
                }
                Packet::ShuttingDown => unreachable!("not sent to the connector"),
            }
            self.flush();
        }
    }
}

fn transmit(t: Transmit) -> Packet {
    match t {
        Transmit::Frame(b) => Packet::Data(b),
        Transmit::Finish => Packet::Finish,
    }
}
