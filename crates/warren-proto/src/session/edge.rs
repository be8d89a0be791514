//! The edge's side of one tunnel connection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{ControlReader, Ignored, ReadError, Transmit, Violation};
use crate::close::CloseCode;
use crate::control::{ControlMessage, RefuseCode, Refused, Register, Registered};
use crate::liveness::{Liveness, LivenessConfig};

/// Timers of an [`EdgeSession`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeSessionConfig {
    /// From the session's start until `Registered` or `Refused` is sent.
    pub register_timeout: Duration,
    /// After `Refused`, how long to wait for the connector to close the
    /// connection before the edge closes it.
    pub refuse_linger: Duration,
    /// Keep-alive and idle timeout once registered.
    pub liveness: LivenessConfig,
}

impl Default for EdgeSessionConfig {
    /// Registration within 10 s, linger 3 s, the default liveness timers.
    fn default() -> Self {
        Self {
            register_timeout: Duration::from_secs(10),
            refuse_linger: Duration::from_secs(3),
            liveness: LivenessConfig::default(),
        }
    }
}

/// The driver's answer to [`EdgeEvent::Check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationAnswer {
    /// The tunnel exists and the secret matches.
    Accept {
        /// The id the edge gives this connection.
        connection_id: String,
        /// The tunnel's name, for the connector's logs.
        tunnel_name: String,
    },
    /// The registration is refused; the session sends this and closes.
    Refuse(Refused),
}

/// What an [`EdgeSession`] asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeEvent {
    /// Check this registration (the tunnel exists, the secret matches) and
    /// answer with [`EdgeSession::handle_answer`]. The protocol version is
    /// already agreed ([`EdgeSession::version`]).
    Check(Box<Register>),
    /// `Registered` was queued: the connection may carry streams.
    Registered,
    /// `Refused` was queued (by the driver's answer or the session's own
    /// rules); the session now lingers and then closes.
    Refused(Refused),
    /// The connector sent `Drain`: open no new stream here.
    Draining,
    /// A control message was read and ignored.
    Ignored(Ignored),
    /// The connector broke the protocol; a `Close` follows.
    Violation(Violation),
    /// Close the connection with this code now; the session is over.
    Close(CloseCode),
}

#[derive(Debug)]
enum State {
    /// Waiting for the first frame, which must be `Register`.
    AwaitRegister {
        deadline: Instant,
    },
    /// `Check` was asked; waiting for the driver's answer.
    Checking {
        deadline: Instant,
        version: u16,
    },
    /// Registered; streams may be opened unless draining. No liveness on
    /// a protocol version without keep-alive.
    Registered {
        liveness: Option<Box<Liveness>>,
    },
    /// `Refused` was sent; waiting for the connector to close.
    Lingering {
        until: Instant,
    },
    Closed,
}

/// The edge's side of one tunnel connection: bytes of the control stream
/// in, frames to send and events out. No IO, no clock.
///
/// # Call order
///
/// 1. [`EdgeSession::new`] when the transport connection is up; the
///    registration deadline starts now.
/// 2. Feed input: [`EdgeSession::handle_data`] with bytes read from the
///    control stream (the first stream the connector opens),
///    [`EdgeSession::handle_finished`] when the connector ends it,
///    [`EdgeSession::handle_connection_lost`] when the connection is gone,
///    [`EdgeSession::handle_timeout`] at the instant
///    [`EdgeSession::poll_timeout`] named.
/// 3. After each input: [`EdgeSession::poll_transmit`] until `None` (write
///    in order), then [`EdgeSession::poll_event`] until `None`:
///    - [`EdgeEvent::Check`]: run the registration check and call
///      [`EdgeSession::handle_answer`] (then poll again);
///    - [`EdgeEvent::Registered`]: put the connection in the registry;
///    - [`EdgeEvent::Draining`]: stop choosing it for new streams;
///    - [`EdgeEvent::Close`]: close the connection with that code.
/// 4. Before opening a data stream on this connection, ask
///    [`EdgeSession::may_open_stream`]; when a stream on it was answered
///    `ShuttingDown`, call [`EdgeSession::set_draining`].
/// 5. To close for the edge's own reasons (tunnel deleted, edge shutting
///    down), [`EdgeSession::close`].
///
/// The first frame must be `Register`; anything else (another message, a
/// frame that is not a control frame, bytes that do not decode) is
/// refused with [`RefuseCode::BadRequest`], and so is anything the
/// connector sends before its registration is answered. A refusal is
/// followed by a linger of [`EdgeSessionConfig::refuse_linger`] for the
/// connector to close, then [`CloseCode::Refused`]. No `Register` within
/// the deadline closes with [`CloseCode::RegistrationTimeout`]; a check
/// still unanswered at the deadline is refused with
/// [`RefuseCode::Internal`] (worth retrying).
#[derive(Debug)]
pub struct EdgeSession {
    config: EdgeSessionConfig,
    state: State,
    reader: ControlReader,
    version: Option<u16>,
    draining: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<EdgeEvent>,
}

impl EdgeSession {
    /// A session for a new connection; its registration deadline is
    /// `now + register_timeout`.
    pub fn new(config: EdgeSessionConfig, now: Instant) -> Self {
        Self {
            config,
            state: State::AwaitRegister {
                deadline: now + config.register_timeout,
            },
            reader: ControlReader::default(),
            version: None,
            draining: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Bytes read from the control stream at `now`.
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        match &mut self.state {
            State::AwaitRegister { deadline } => {
                let deadline = *deadline;
                self.reader.push(data);
                self.read_register(now, deadline);
            }
            State::Checking { .. } => {
                if !data.is_empty() {
                    self.refuse(
                        now,
                        RefuseCode::BadRequest,
                        "the connector sent more on the control stream before its registration was answered".into(),
                    );
                }
            }
            State::Registered { liveness } => {
                if let Some(l) = liveness.as_mut().filter(|_| !data.is_empty()) {
                    l.on_received(now);
                }
                self.reader.push(data);
                self.read_registered(now);
            }
            State::Lingering { .. } | State::Closed => {}
        }
    }

    /// The connector ended (finished or reset) its half of the control
    /// stream.
    pub fn handle_finished(&mut self, now: Instant) {
        match self.state {
            State::AwaitRegister { .. } | State::Checking { .. } => self.refuse(
                now,
                RefuseCode::BadRequest,
                "the control stream ended before the registration was complete".into(),
            ),
            State::Registered { .. } => self.violation(Violation::StreamEnded),
            State::Lingering { .. } | State::Closed => {}
        }
    }

    /// The connection is gone (the connector closed it, or the transport
    /// gave up). The session ends without a `Close` event.
    pub fn handle_connection_lost(&mut self, _now: Instant) {
        self.state = State::Closed;
        self.transmits.clear();
    }

    /// The driver's answer to [`EdgeEvent::Check`]. Ignored unless a check
    /// is pending (it came after the deadline, or after the session refused
    /// on its own).
    pub fn handle_answer(&mut self, now: Instant, answer: RegistrationAnswer) {
        let State::Checking { version, .. } = self.state else {
            return;
        };
        match answer {
            RegistrationAnswer::Accept {
                connection_id,
                tunnel_name,
            } => {
                self.send(ControlMessage::Registered(Registered {
                    version,
                    connection_id,
                    tunnel_name,
                }));
                self.state = State::Registered {
                    liveness: crate::has_keepalive(version)
                        .then(|| Box::new(Liveness::new(self.config.liveness, now))),
                };
                self.events.push_back(EdgeEvent::Registered);
            }
            RegistrationAnswer::Refuse(r) => self.refuse(now, r.code, r.message),
        }
    }

    /// A stream on this connection was answered `ShuttingDown`: the
    /// connector is draining even if its `Drain` has not arrived yet.
    pub fn set_draining(&mut self) {
        self.draining = true;
    }

    /// Closes the connection for the edge's own reason (e.g.
    /// [`CloseCode::TunnelGone`], [`CloseCode::EdgeShutdown`]): a
    /// `Close(code)` event follows.
    pub fn close(&mut self, _now: Instant, code: CloseCode) {
        self.close_with(code);
    }

    /// The next frame to write on the control stream at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            if let State::Registered { liveness: Some(l) } = &mut self.state {
                l.on_sent(now);
            }
            return Some(t);
        }
        match &mut self.state {
            State::Registered { liveness: Some(l) } => {
                l.poll_transmit(now).map(|m| Transmit::Frame(m.encode()))
            }
            _ => None,
        }
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<EdgeEvent> {
        self.events.pop_front()
    }

    /// When to call [`EdgeSession::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::AwaitRegister { deadline } | State::Checking { deadline, .. } => Some(*deadline),
            State::Registered { liveness } => liveness.as_ref().and_then(|l| l.poll_timeout()),
            State::Lingering { until } => Some(*until),
            State::Closed => None,
        }
    }

    /// Fires what is due at `now`: the registration deadline, the linger's
    /// end, keep-alive and the idle timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::AwaitRegister { deadline } if now >= *deadline => {
                self.close_with(CloseCode::RegistrationTimeout);
            }
            State::Checking { deadline, .. } if now >= *deadline => {
                let secs = self.config.register_timeout.as_secs_f32();
                self.refuse(
                    now,
                    RefuseCode::Internal,
                    format!("the edge could not check the registration within {secs} s; retrying may help"),
                );
            }
            State::Registered { liveness: Some(l) } => {
                l.handle_timeout(now);
                if l.is_dead() {
                    self.close_with(CloseCode::PeerDead);
                }
            }
            State::Lingering { until } if now >= *until => self.close_with(CloseCode::Refused),
            _ => {}
        }
    }

    /// Whether a new data stream may be opened on this connection now:
    /// registered, not draining, not closed.
    pub fn may_open_stream(&self) -> bool {
        matches!(self.state, State::Registered { .. }) && !self.draining
    }

    /// Whether the connection is registered and not closed.
    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    /// Whether the connector drains this connection (or a stream on it was
    /// answered `ShuttingDown`).
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The protocol version agreed with the connector, once its `Register`
    /// was read.
    pub fn version(&self) -> Option<u16> {
        self.version
    }

    /// Keep-alive state (RTT), while registered on a version with
    /// keep-alive.
    pub fn liveness(&self) -> Option<&Liveness> {
        match &self.state {
            State::Registered { liveness } => liveness.as_deref(),
            _ => None,
        }
    }

    fn read_register(&mut self, now: Instant, deadline: Instant) {
        let reg = match self.reader.next() {
            None => return,
            Some(Ok(ControlMessage::Register(r))) => r,
            Some(Ok(other)) => {
                let msg = format!("expected a registration, got {}", other.name());
                return self.refuse(now, RefuseCode::BadRequest, msg);
            }
            Some(Err(e)) => {
                let msg = format!("malformed registration: {}", e.into_decode_error());
                return self.refuse(now, RefuseCode::BadRequest, msg);
            }
        };
        if self.reader.buffered() > 0 {
            return self.refuse(
                now,
                RefuseCode::BadRequest,
                "the connector sent more on the control stream before its registration was answered".into(),
            );
        }
        let Some(version) = crate::negotiate_version(&reg.versions) else {
            let msg = format!(
                "the connector speaks protocol versions {:?} but this edge speaks {:?}; run the same warren version on both",
                reg.versions,
                crate::SUPPORTED_VERSIONS
            );
            return self.refuse(now, RefuseCode::UnsupportedVersion, msg);
        };
        self.version = Some(version);
        self.state = State::Checking { deadline, version };
        self.events.push_back(EdgeEvent::Check(Box::new(reg)));
    }

    fn read_registered(&mut self, now: Instant) {
        while let Some(read) = self.reader.next() {
            let State::Registered { liveness } = &mut self.state else {
                return;
            };
            match (read, liveness.as_deref_mut()) {
                (Ok(ControlMessage::Drain), _) => {
                    if !self.draining {
                        self.draining = true;
                        self.events.push_back(EdgeEvent::Draining);
                    }
                }
                (Ok(ControlMessage::Ping(id)), Some(l)) => l.handle_ping(id),
                (Ok(ControlMessage::Pong(id)), Some(l)) => l.handle_pong(now, id),
                (Ok(other), _) => self
                    .events
                    .push_back(EdgeEvent::Ignored(Ignored::Unexpected(other.name()))),
                (Err(ReadError::Payload(e)), _) => self
                    .events
                    .push_back(EdgeEvent::Ignored(Ignored::Malformed(e))),
                (Err(ReadError::Framing(e)), _) => return self.violation(Violation::Malformed(e)),
            }
        }
    }

    fn send(&mut self, msg: ControlMessage) {
        self.transmits.push_back(Transmit::Frame(msg.encode()));
    }

    fn refuse(&mut self, now: Instant, code: RefuseCode, message: String) {
        let refused = Refused { code, message };
        self.transmits.clear();
        self.send(ControlMessage::Refused(refused.clone()));
        self.transmits.push_back(Transmit::Finish);
        self.events.push_back(EdgeEvent::Refused(refused));
        self.state = State::Lingering {
            until: now + self.config.refuse_linger,
        };
    }

    fn violation(&mut self, v: Violation) {
        self.events.push_back(EdgeEvent::Violation(v));
        self.close_with(CloseCode::ProtocolViolation);
    }

    fn close_with(&mut self, code: CloseCode) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.state = State::Closed;
        self.transmits.clear();
        self.events.push_back(EdgeEvent::Close(code));
    }
}
