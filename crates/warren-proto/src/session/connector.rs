//! The connector's side of one tunnel connection.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::{ControlReader, Ignored, ReadError, Transmit, Violation};
use crate::close::CloseCode;
use crate::control::{ControlMessage, RefuseCode, Register, Registered};
use crate::liveness::{Liveness, LivenessConfig};
use crate::stream::{ErrorCode, StreamResponse};

/// Timers of a [`ConnectorSession`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorSessionConfig {
    /// From the session's start until `Registered` or `Refused` arrives.
    pub register_timeout: Duration,
    /// Keep-alive and idle timeout once registered.
    pub liveness: LivenessConfig,
}

impl Default for ConnectorSessionConfig {
    /// An answer within 15 s, the default liveness timers.
    fn default() -> Self {
        Self {
            register_timeout: Duration::from_secs(15),
            liveness: LivenessConfig::default(),
        }
    }
}

/// Why a registration did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegisterError {
    /// The edge answered `Refused`; the message is for the operator.
    #[error("{message}")]
    Refused {
        /// The edge's reason.
        code: RefuseCode,
        /// One sentence: what is wrong and what to do.
        message: String,
    },
    /// No answer came before the deadline.
    #[error("no answer to the registration within {0:?}")]
    Timeout(Duration),
    /// The edge broke the protocol while registering.
    #[error("registration: {0}")]
    Violation(Violation),
}

impl RegisterError {
    /// Whether dialling again may succeed without the operator changing
    /// anything: everything except a refusal whose code says otherwise
    /// ([`RefuseCode::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Refused { code, .. } => code.is_retryable(),
            Self::Timeout(_) | Self::Violation(_) => true,
        }
    }
}

/// What a [`ConnectorSession`] tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorEvent {
    /// The edge accepted the registration; streams may arrive.
    Registered(Registered),
    /// The registration failed; a `Close` follows. Re-dial if
    /// [`RegisterError::is_retryable`], stop otherwise.
    Failed(RegisterError),
    /// The drain is over: no stream is left (`open_streams == 0`), or the
    /// grace period ended with these still open. A `Close` follows.
    Drained {
        /// Streams still counted when the drain ended.
        open_streams: usize,
    },
    /// A control message was read and ignored.
    Ignored(Ignored),
    /// The edge broke the protocol after registration; a `Close` follows.
    Violation(Violation),
    /// Close the connection with this code now; the session is over.
    Close(CloseCode),
}

/// Names one stream the session counts, from [`ConnectorSession::accept_stream`]
/// until [`ConnectorSession::stream_done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(u64);

/// What to do with a stream the edge opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Serve it.
    Serve(StreamId),
    /// Answer [`shutting_down_response`] and nothing else: the edge may
    /// retry it on another connection.
    ShuttingDown(StreamId),
}

impl Admission {
    /// The id to hand back to [`ConnectorSession::stream_done`].
    pub fn id(self) -> StreamId {
        match self {
            Self::Serve(id) | Self::ShuttingDown(id) => id,
        }
    }
}

/// The answer to a stream that arrives while draining.
pub fn shutting_down_response() -> StreamResponse {
    StreamResponse::Error {
        code: ErrorCode::ShuttingDown,
        message: "the connector is shutting down".into(),
    }
}

#[derive(Debug)]
enum State {
    /// `Register` is sent; waiting for the answer.
    AwaitAnswer {
        deadline: Instant,
    },
    /// Registered; `drain_until` is set once draining. No liveness on a
    /// protocol version without keep-alive.
    Registered {
        liveness: Option<Box<Liveness>>,
        drain_until: Option<Instant>,
    },
    Closed,
}

/// The connector's side of one tunnel connection: sends `Register`, reads
/// the answer, admits streams, drains, and keeps the path alive. No IO, no
/// clock.
///
/// # Call order
///
/// 1. [`ConnectorSession::new`] with the `Register` to send, once the
///    control stream is open (or with the instant the dial started, so the
///    deadline covers the handshake too).
/// 2. Feed input: [`ConnectorSession::handle_data`] with bytes read from
///    the control stream, [`ConnectorSession::handle_finished`] when the
///    edge ends it, [`ConnectorSession::handle_connection_lost`] when the
///    connection is gone, [`ConnectorSession::handle_timeout`] at the
///    instant [`ConnectorSession::poll_timeout`] named.
/// 3. After each input (and after 4 and 5): [`ConnectorSession::poll_transmit`]
///    until `None` (write in order), then [`ConnectorSession::poll_event`]
///    until `None`:
///    - [`ConnectorEvent::Registered`]: count the connection as up;
///    - [`ConnectorEvent::Failed`]: re-dial with backoff if
///      [`RegisterError::is_retryable`], stop the connector otherwise;
///    - [`ConnectorEvent::Close`]: close the connection with that code.
/// 4. For each stream the edge opens, [`ConnectorSession::accept_stream`]:
///    serve it, or answer [`shutting_down_response`]; either way call
///    [`ConnectorSession::stream_done`] once its answer was delivered.
/// 5. To stop, [`ConnectorSession::drain`]: `Drain` goes out, new streams
///    are answered `ShuttingDown`, and [`ConnectorEvent::Drained`] then
///    `Close(ConnectorStopped)` come when no stream is left or the grace
///    period ends.
///
/// A `Refused` answer closes with [`CloseCode::ConnectorStopped`]; no
/// answer within the deadline closes with
/// [`CloseCode::RegistrationTimeout`]; a dead path with
/// [`CloseCode::PeerDead`].
#[derive(Debug)]
pub struct ConnectorSession {
    config: ConnectorSessionConfig,
    offered: Vec<u16>,
    state: State,
    reader: ControlReader,
    registered: Option<Registered>,
    streams: BTreeSet<StreamId>,
    next_stream: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ConnectorEvent>,
}

impl ConnectorSession {
    /// A session that sends `register` first; the deadline for the answer
    /// is `now + register_timeout`.
    pub fn new(config: ConnectorSessionConfig, register: Register, now: Instant) -> Self {
        let offered = register.versions.clone();
        let mut transmits = VecDeque::new();
        transmits.push_back(Transmit::Frame(ControlMessage::Register(register).encode()));
        Self {
            config,
            offered,
            state: State::AwaitAnswer {
                deadline: now + config.register_timeout,
            },
            reader: ControlReader::default(),
            registered: None,
            streams: BTreeSet::new(),
            next_stream: 0,
            transmits,
            events: VecDeque::new(),
        }
    }

    /// Bytes read from the control stream at `now`.
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if let State::Registered {
            liveness: Some(l), ..
        } = &mut self.state
        {
            if !data.is_empty() {
                l.on_received(now);
            }
        }
        self.reader.push(data);
        while let Some(read) = self.reader.next() {
            match &mut self.state {
                State::AwaitAnswer { .. } => self.read_answer(now, read),
                State::Registered { liveness, .. } => match (read, liveness.as_deref_mut()) {
                    (Ok(ControlMessage::Ping(id)), Some(l)) => l.handle_ping(id),
                    (Ok(ControlMessage::Pong(id)), Some(l)) => l.handle_pong(now, id),
                    (Ok(other), _) => {
                        self.event(ConnectorEvent::Ignored(Ignored::Unexpected(other.name())))
                    }
                    (Err(ReadError::Payload(e)), _) => {
                        self.event(ConnectorEvent::Ignored(Ignored::Malformed(e)))
                    }
                    (Err(ReadError::Framing(e)), _) => {
                        self.event(ConnectorEvent::Violation(Violation::Malformed(e)));
                        self.close_with(CloseCode::ProtocolViolation);
                    }
                },
                State::Closed => return,
            }
        }
    }

    /// The edge ended (finished or reset) its half of the control stream.
    pub fn handle_finished(&mut self, _now: Instant) {
        match self.state {
            State::AwaitAnswer { .. } => {
                self.fail(RegisterError::Violation(Violation::StreamEnded));
            }
            State::Registered { .. } => {
                self.event(ConnectorEvent::Violation(Violation::StreamEnded));
                self.close_with(CloseCode::ProtocolViolation);
            }
            State::Closed => {}
        }
    }

    /// The connection is gone (the edge closed it, or the transport gave
    /// up). The session ends without a `Close` event.
    pub fn handle_connection_lost(&mut self, _now: Instant) {
        self.state = State::Closed;
        self.transmits.clear();
    }

    /// A stream the edge opened at `now`: serve it, or (draining, or not
    /// registered) answer it `ShuttingDown`. Either way it counts as open
    /// until [`ConnectorSession::stream_done`].
    pub fn accept_stream(&mut self, _now: Instant) -> Admission {
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        self.streams.insert(id);
        match self.state {
            State::Registered {
                drain_until: None, ..
            } => Admission::Serve(id),
            _ => Admission::ShuttingDown(id),
        }
    }

    /// The stream's answer (and body) was delivered, or it failed: it no
    /// longer counts. Returns false for an id that was not open.
    pub fn stream_done(&mut self, _now: Instant, id: StreamId) -> bool {
        let was_open = self.streams.remove(&id);
        if let State::Registered {
            drain_until: Some(_),
            ..
        } = self.state
        {
            if self.streams.is_empty() {
                self.finish_drain();
            }
        }
        was_open
    }

    /// Starts draining at `now`: sends `Drain`, admits no new stream, and
    /// ends the drain when no stream is left or at `now + grace`. Before
    /// registration there is nothing to drain: the session closes at once.
    /// A second call changes nothing.
    pub fn drain(&mut self, now: Instant, grace: Duration) {
        match &mut self.state {
            State::AwaitAnswer { .. } => self.finish_drain(),
            State::Registered {
                drain_until: drain_until @ None,
                ..
            } => {
                *drain_until = Some(now + grace);
                self.transmits
                    .push_back(Transmit::Frame(ControlMessage::Drain.encode()));
                if self.streams.is_empty() {
                    self.finish_drain();
                }
            }
            State::Registered { .. } | State::Closed => {}
        }
    }

    /// Closes the connection for the connector's own reason: a
    /// `Close(code)` event follows.
    pub fn close(&mut self, _now: Instant, code: CloseCode) {
        self.close_with(code);
    }

    /// The next frame to write on the control stream at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            if let State::Registered {
                liveness: Some(l), ..
            } = &mut self.state
            {
                l.on_sent(now);
            }
            return Some(t);
        }
        match &mut self.state {
            State::Registered {
                liveness: Some(l), ..
            } => l.poll_transmit(now).map(|m| Transmit::Frame(m.encode())),
            _ => None,
        }
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<ConnectorEvent> {
        self.events.pop_front()
    }

    /// When to call [`ConnectorSession::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::AwaitAnswer { deadline } => Some(*deadline),
            State::Registered {
                liveness,
                drain_until,
            } => match (
                liveness.as_ref().and_then(|l| l.poll_timeout()),
                *drain_until,
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            State::Closed => None,
        }
    }

    /// Fires what is due at `now`: the registration deadline, the end of
    /// the grace period, keep-alive and the idle timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::AwaitAnswer { deadline } if now >= *deadline => {
                self.fail(RegisterError::Timeout(self.config.register_timeout));
            }
            State::Registered {
                liveness,
                drain_until,
            } => {
                if let Some(l) = liveness {
                    l.handle_timeout(now);
                    if l.is_dead() {
                        return self.close_with(CloseCode::PeerDead);
                    }
                }
                if drain_until.is_some_and(|t| now >= t) {
                    self.finish_drain();
                }
            }
            _ => {}
        }
    }

    /// The edge's `Registered`, once it came.
    pub fn registered(&self) -> Option<&Registered> {
        self.registered.as_ref()
    }

    /// Whether the connection is registered and not closed.
    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    /// Whether a drain is under way.
    pub fn is_draining(&self) -> bool {
        matches!(
            self.state,
            State::Registered {
                drain_until: Some(_),
                ..
            }
        )
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Streams counted as open (served, or being answered `ShuttingDown`).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Keep-alive state (RTT), while registered on a version with
    /// keep-alive.
    pub fn liveness(&self) -> Option<&Liveness> {
        match &self.state {
            State::Registered { liveness, .. } => liveness.as_deref(),
            _ => None,
        }
    }

    fn read_answer(&mut self, now: Instant, read: Result<ControlMessage, ReadError>) {
        match read {
            Ok(ControlMessage::Registered(r)) if self.offered.contains(&r.version) => {
                self.registered = Some(r.clone());
                self.state = State::Registered {
                    liveness: crate::has_keepalive(r.version)
                        .then(|| Box::new(Liveness::new(self.config.liveness, now))),
                    drain_until: None,
                };
                self.event(ConnectorEvent::Registered(r));
            }
            Ok(ControlMessage::Registered(r)) => {
                self.fail(RegisterError::Violation(Violation::VersionNotOffered(
                    r.version,
                )));
            }
            Ok(ControlMessage::Refused(r)) => self.fail(RegisterError::Refused {
                code: r.code,
                message: r.message,
            }),
            Ok(other) => self.fail(RegisterError::Violation(Violation::Unexpected(
                other.name(),
            ))),
            Err(e) => self.fail(RegisterError::Violation(Violation::Malformed(
                e.into_decode_error(),
            ))),
        }
    }

    fn fail(&mut self, e: RegisterError) {
        let code = match &e {
            RegisterError::Refused { .. } => CloseCode::ConnectorStopped,
            RegisterError::Timeout(_) => CloseCode::RegistrationTimeout,
            RegisterError::Violation(_) => CloseCode::ProtocolViolation,
        };
        self.event(ConnectorEvent::Failed(e));
        self.close_with(code);
    }

    fn finish_drain(&mut self) {
        self.event(ConnectorEvent::Drained {
            open_streams: self.streams.len(),
        });
        self.close_with(CloseCode::ConnectorStopped);
    }

    fn event(&mut self, e: ConnectorEvent) {
        self.events.push_back(e);
    }

    fn close_with(&mut self, code: CloseCode) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.state = State::Closed;
        self.transmits.clear();
        self.events.push_back(ConnectorEvent::Close(code));
    }
}
