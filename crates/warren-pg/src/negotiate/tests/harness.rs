//! The negotiation tests' driver: runs a scripted client through a
//! [`Negotiator`] and records what a driver would do, in a form that does
//! not depend on how the bytes were cut into reads; and the messages the
//! scripts are made of.

use super::super::*;
use crate::startup::{encode_cancel, encode_ssl_request, encode_startup, CancelKey};
use crate::{ProtocolVersion, GSSENC_REQUEST_CODE, TLS_HANDSHAKE_BYTE};

/// One thing a driver saw, in a form that does not depend on how the bytes
/// were cut into reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Sent(Vec<u8>),
    Asked {
        direct: bool,
    },
    /// What the TLS acceptor reads: `replay`, then the plaintext not fed.
    StartTls(Vec<u8>),
    /// `rest` followed by what the client sent and was not fed.
    Startup {
        user: String,
        raw: Vec<u8>,
        tls: bool,
        rest: Vec<u8>,
    },
    Cancel {
        pid: u32,
        raw: Vec<u8>,
        tls: bool,
    },
    Close {
        sentence: String,
        sqlstate: Option<&'static str>,
    },
    /// Nothing more to read, no end of stream: the driver would wait.
    Waiting,
}

/// A client: what it sends before TLS, what it sends inside TLS, and
/// whether it closes after that; and the driver's TLS decisions.
#[derive(Debug, Clone)]
pub(super) struct Script {
    policy: Policy,
    plain: Vec<u8>,
    tls: Vec<u8>,
    decisions: Vec<bool>,
    eof: bool,
}

impl Script {
    pub(super) fn new(policy: Policy, plain: Vec<u8>) -> Self {
        Self {
            policy,
            plain,
            tls: Vec::new(),
            decisions: Vec::new(),
            eof: false,
        }
    }

    pub(super) fn tls(mut self, tls: Vec<u8>) -> Self {
        self.tls = tls;
        self
    }

    pub(super) fn decide(mut self, decisions: &[bool]) -> Self {
        self.decisions = decisions.to_vec();
        self
    }

    pub(super) fn eof(mut self) -> Self {
        self.eof = true;
        self
    }
}

/// How the driver reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Feeding {
    /// Everything available in one read.
    Whole,
    /// One byte per read, polling after each.
    Bytewise,
    /// One byte per feed, all of them before polling.
    BytewiseLazy,
}

pub(super) fn run(script: &Script, feeding: Feeding) -> Vec<Step> {
    let mut n = Negotiator::new(script.policy);
    let mut decisions = script.decisions.iter().copied();
    let mut stream: &[u8] = &script.plain;
    let mut steps = Vec::new();
    let mut eof_sent = false;
    loop {
        while let Some(action) = n.poll() {
            match action {
                Action::Send(b) => steps.push(Step::Sent(b.to_vec())),
                Action::DecideTls { direct } => {
                    steps.push(Step::Asked { direct });
                    n.decide_tls(decisions.next().expect("a decision for the script"));
                }
                Action::StartTls { replay } => {
                    let mut acceptor = replay.to_vec();
                    acceptor.extend_from_slice(stream);
                    steps.push(Step::StartTls(acceptor));
                    n.tls_established();
                    stream = &script.tls;
                    eof_sent = false;
                }
                Action::Startup(s) => {
                    let mut rest = s.rest.to_vec();
                    rest.extend_from_slice(stream);
                    steps.push(Step::Startup {
                        user: s.startup.user().to_owned(),
                        raw: s.raw.to_vec(),
                        tls: s.tls,
                        rest,
                    });
                }
                Action::Cancel(c) => steps.push(Step::Cancel {
                    pid: c.request.pid,
                    raw: c.raw.to_vec(),
                    tls: c.tls,
                }),
                Action::Close(e) => steps.push(Step::Close {
                    sentence: e.to_string(),
                    sqlstate: e.sqlstate(),
                }),
            }
        }
        if n.is_finished() {
            assert!(n.poll().is_none(), "nothing after the end");
            return steps;
        }
        if stream.is_empty() {
            if script.eof && !eof_sent {
                eof_sent = true;
                n.eof();
                continue;
            }
            steps.push(Step::Waiting);
            return steps;
        }
        match feeding {
            Feeding::Whole => {
                n.feed(stream);
                stream = &[];
            }
            Feeding::Bytewise => {
                n.feed(&stream[..1]);
                stream = &stream[1..];
            }
            Feeding::BytewiseLazy => {
                for b in stream.chunks(1) {
                    n.feed(b);
                }
                stream = &[];
            }
        }
    }
}

pub(super) fn ssl() -> Vec<u8> {
    encode_ssl_request().to_vec()
}

pub(super) fn gssenc() -> Vec<u8> {
    let mut v = 8u32.to_be_bytes().to_vec();
    v.extend_from_slice(&GSSENC_REQUEST_CODE.to_be_bytes());
    v
}

pub(super) fn startup() -> Vec<u8> {
    encode_startup(
        ProtocolVersion::V3_0,
        &[("user", "alice"), ("database", "shop")],
    )
    .unwrap()
    .to_vec()
}

pub(super) fn cancel() -> Vec<u8> {
    encode_cancel(42, &CancelKey::new(&b"\x01\x02\x03\x04"[..]).unwrap()).to_vec()
}

/// The start of a TLS ClientHello record.
pub(super) fn client_hello() -> Vec<u8> {
    vec![TLS_HANDSHAKE_BYTE, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]
}

/// A simple Query, as a client that pipelines would send after its startup.
pub(super) fn query() -> Vec<u8> {
    crate::Message::new(b'Q', &b"select 1\0"[..])
        .encode()
        .to_vec()
}

pub(super) fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

pub(super) fn sent(b: u8) -> Step {
    Step::Sent(vec![b])
}

pub(super) fn started(tls: bool, rest: Vec<u8>) -> Step {
    Step::Startup {
        user: "alice".into(),
        raw: startup(),
        tls,
        rest,
    }
}

pub(super) fn cancelled(tls: bool) -> Step {
    Step::Cancel {
        pid: 42,
        raw: cancel(),
        tls,
    }
}

pub(super) fn closed(sentence: &str, sqlstate: Option<&'static str>) -> Step {
    Step::Close {
        sentence: sentence.into(),
        sqlstate,
    }
}

pub(super) const VIOLATION: Option<&str> = Some(sqlstate::PROTOCOL_VIOLATION);
pub(super) const TOO_MANY: &str = "too many encryption requests before the startup message";

/// A startup message the builder would refuse (here: without a user).
pub(super) fn encode_startup_unchecked(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (n, v) in params {
        body.extend_from_slice(n.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut m = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    m.extend_from_slice(&crate::PROTOCOL_3_0.to_be_bytes());
    m.extend(body);
    m
}
