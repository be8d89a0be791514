//! Table tests of the authentication relay: every branch, fed whole, one
//! byte at a time, and with both sides fed everything before the first
//! poll.

use super::*;
use crate::message::{backend_key_data, error_response, ready_for_query, TransactionStatus};
use crate::startup::CancelKey;

/// One thing a driver saw, independent of how the bytes were read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    ToClient(Vec<u8>),
    ToDatabase(Vec<u8>),
    /// The handed-over bytes, followed by what each side sent and was not
    /// fed.
    Authenticated {
        to_client: Vec<u8>,
        to_database: Vec<u8>,
    },
    Failed {
        sentence: String,
        sqlstate: Option<&'static str>,
    },
    /// Nothing more from the side the relay waits for.
    Waiting(Side),
}

/// What each side sends, whether each closes after it, and whether the
/// client is on TLS.
#[derive(Debug, Clone, Default)]
struct Script {
    client_tls: bool,
    database: Vec<u8>,
    client: Vec<u8>,
    database_eof: bool,
    client_eof: bool,
}

#[derive(Debug, Clone, Copy)]
enum Feeding {
    /// Everything the wanted side has, in one read.
    Whole,
    /// One byte of the wanted side per read.
    Bytewise,
    /// Both sides, everything, a byte per feed, before the first poll.
    Upfront,
}

fn run(script: &Script, feeding: Feeding) -> Vec<Step> {
    let mut relay = AuthRelay::new(script.client_tls);
    let mut database: &[u8] = &script.database;
    let mut client: &[u8] = &script.client;
    let mut eofs = [false, false];
    let mut steps = Vec::new();
    if let Feeding::Upfront = feeding {
        for b in database.chunks(1) {
            relay.feed_database(b);
        }
        for b in client.chunks(1) {
            relay.feed_client(b);
        }
        (database, client) = (&[], &[]);
    }
    loop {
        while let Some(action) = relay.poll() {
            steps.push(match action {
                Action::ToClient(b) => Step::ToClient(b.to_vec()),
                Action::ToDatabase(b) => Step::ToDatabase(b.to_vec()),
                Action::Authenticated {
                    to_client,
                    to_database,
                } => Step::Authenticated {
                    to_client: [&to_client[..], database].concat(),
                    to_database: [&to_database[..], client].concat(),
                },
                Action::Failed(e) => Step::Failed {
                    sentence: e.to_string(),
                    sqlstate: e.sqlstate(),
                },
            });
        }
        let Some(side) = relay.wants() else {
            assert!(relay.poll().is_none(), "nothing after the end");
            return steps;
        };
        let (stream, eof, sent) = match side {
            Side::Database => (&mut database, script.database_eof, &mut eofs[0]),
            Side::Client => (&mut client, script.client_eof, &mut eofs[1]),
        };
        if stream.is_empty() {
            if eof && !*sent {
                *sent = true;
                match side {
                    Side::Database => relay.database_eof(),
                    Side::Client => relay.client_eof(),
                }
                continue;
            }
            steps.push(Step::Waiting(side));
            return steps;
        }
        let n = match feeding {
            Feeding::Bytewise => 1,
            Feeding::Whole | Feeding::Upfront => stream.len(),
        };
        match side {
            Side::Database => relay.feed_database(&stream[..n]),
            Side::Client => relay.feed_client(&stream[..n]),
        }
        *stream = &stream[n..];
    }
}

fn wire(tag: u8, body: &[u8]) -> Vec<u8> {
    Message::new(tag, body.to_vec()).encode().to_vec()
}

/// An `Authentication` request with this code and data.
fn auth(code: u32, data: &[u8]) -> Vec<u8> {
    wire(b'R', &[&code.to_be_bytes()[..], data].concat())
}

/// `AuthenticationSASL` offering these mechanisms.
fn sasl(mechanisms: &[&str]) -> Vec<u8> {
    let mut data = Vec::new();
    for m in mechanisms {
        data.extend_from_slice(m.as_bytes());
        data.push(0);
    }
    data.push(0);
    auth(10, &data)
}

/// A `SASLInitialResponse` for SCRAM-SHA-256 with this gs2 flag.
fn sasl_initial(flag: &str) -> Vec<u8> {
    let first = format!("{flag},,n=,r=rOprNGfwEbeRWgbNEkqO");
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(first.len() as u32).to_be_bytes());
    body.extend_from_slice(first.as_bytes());
    wire(b'p', &body)
}

/// A `PasswordMessage`, `SASLResponse` or `GSSResponse`.
fn answer(text: &str) -> Vec<u8> {
    wire(b'p', text.as_bytes())
}

/// What a database sends after `AuthenticationOk`.
fn after_ok() -> Vec<u8> {
    let key = CancelKey::new(&b"\x0a\x0b\x0c\x0d"[..]).unwrap();
    [
        wire(b'S', b"server_version\x0017.2\0"),
        backend_key_data(7, &key).encode().to_vec(),
        ready_for_query(TransactionStatus::Idle).encode().to_vec(),
    ]
    .concat()
}

fn ok() -> Vec<u8> {
    auth(0, b"")
}

fn to_client(b: Vec<u8>) -> Step {
    Step::ToClient(b)
}

fn to_database(b: Vec<u8>) -> Step {
    Step::ToDatabase(b)
}

fn authenticated(to_database: Vec<u8>) -> Step {
    Step::Authenticated {
        to_client: after_ok(),
        to_database,
    }
}

fn failed(e: AuthError) -> Step {
    Step::Failed {
        sentence: e.to_string(),
        sqlstate: e.sqlstate(),
    }
}

/// A SCRAM exchange: what the database sends (its first message
/// offering `offered`) and what a client with gs2 flag `flag` answers.
fn scram(offered: &[&str], flag: &str, client_tls: bool) -> Script {
    Script {
        client_tls,
        database: [
            sasl(offered),
            auth(11, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            auth(12, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            ok(),
            after_ok(),
        ]
        .concat(),
        client: [sasl_initial(flag), answer("c=biws,r=...,p=...")].concat(),
        ..Script::default()
    }
}

/// The steps of a SCRAM exchange that goes through; `first` is what the
/// client is shown of the database's first message.
fn scram_through(first: Vec<u8>, flag: &str) -> Vec<Step> {
    vec![
        to_client(first),
        to_database(sasl_initial(flag)),
        to_client(auth(
            11,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        )),
        to_database(answer("c=biws,r=...,p=...")),
        to_client(auth(12, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")),
        to_client(ok()),
        authenticated(vec![]),
    ]
}

const PLUS_OFFER: &[&str] = &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];

fn cases() -> Vec<(&'static str, Script, Vec<Step>)> {
    let db = |parts: &[Vec<u8>]| Script {
        database: parts.concat(),
        ..Script::default()
    };
    let with_client = |mut s: Script, parts: &[Vec<u8>]| {
        s.client = parts.concat();
        s
    };
    let refusal = error_response(Severity::Fatal, "28P01", "password authentication failed")
        .encode()
        .to_vec();
    let refused = AuthError::Refused(
        parse_fields(&error_response(
            Severity::Fatal,
            "28P01",
            "password authentication failed",
        ))
        .unwrap(),
    );
    let too_long = |tag: u8| {
        let mut v = vec![tag];
        v.extend_from_slice(&(MAX_AUTH_MESSAGE_LEN as u32 + 1).to_be_bytes());
        v
    };
    vec![
        (
            "trust: AuthenticationOk at once",
            db(&[ok(), after_ok()]),
            vec![to_client(ok()), authenticated(vec![])],
        ),
        (
            "cleartext password",
            with_client(db(&[auth(3, b""), ok(), after_ok()]), &[answer("secret\0")]),
            vec![
                to_client(auth(3, b"")),
                to_database(answer("secret\0")),
                to_client(ok()),
                authenticated(vec![]),
            ],
        ),
        (
            "MD5 password",
            with_client(
                db(&[auth(5, b"salt"), ok(), after_ok()]),
                &[answer("md5d41d8cd98f00b204e9800998ecf8427e\0")],
            ),
            vec![
                to_client(auth(5, b"salt")),
                to_database(answer("md5d41d8cd98f00b204e9800998ecf8427e\0")),
                to_client(ok()),
                authenticated(vec![]),
            ],
        ),
        (
            "GSS: one token each way, GSSContinue needs no answer",
            with_client(
                db(&[auth(7, b""), auth(8, b"token"), ok(), after_ok()]),
                &[answer("gss token")],
            ),
            vec![
                to_client(auth(7, b"")),
                to_database(answer("gss token")),
                to_client(auth(8, b"token")),
                to_client(ok()),
                authenticated(vec![]),
            ],
        ),
        (
            "SSPI",
            with_client(db(&[auth(9, b""), ok(), after_ok()]), &[answer("sspi")]),
            vec![
                to_client(auth(9, b"")),
                to_database(answer("sspi")),
                to_client(ok()),
                authenticated(vec![]),
            ],
        ),
        (
            "SCRAM without PLUS passes unchanged",
            scram(&["SCRAM-SHA-256"], "n", true),
            scram_through(sasl(&["SCRAM-SHA-256"]), "n"),
        ),
        (
            "SCRAM without PLUS, a TLS client saying y: the database decides",
            scram(&["SCRAM-SHA-256"], "y", true),
            scram_through(sasl(&["SCRAM-SHA-256"]), "y"),
        ),
        (
            "SCRAM with PLUS stripped, TLS client, flag n",
            scram(PLUS_OFFER, "n", true),
            scram_through(sasl(&["SCRAM-SHA-256"]), "n"),
        ),
        (
            "SCRAM with PLUS stripped, TLS client, flag y: refused",
            scram(PLUS_OFFER, "y", true),
            vec![
                to_client(sasl(&["SCRAM-SHA-256"])),
                failed(AuthError::ChannelBinding),
            ],
        ),
        (
            "SCRAM with PLUS stripped, plaintext client, flag y",
            scram(PLUS_OFFER, "y", false),
            scram_through(sasl(&["SCRAM-SHA-256"]), "y"),
        ),
        (
            "SCRAM with PLUS stripped, plaintext client, flag n",
            scram(PLUS_OFFER, "n", false),
            scram_through(sasl(&["SCRAM-SHA-256"]), "n"),
        ),
        (
            "a database offering only PLUS leaves the client no mechanism",
            with_client(db(&[sasl(&["SCRAM-SHA-256-PLUS"])]), &[answer("whatever")]),
            vec![
                to_client(sasl(&[])),
                to_database(answer("whatever")),
                Step::Waiting(Side::Database),
            ],
        ),
        (
            "ErrorResponse after the password",
            with_client(db(&[auth(3, b""), refusal.clone()]), &[answer("wrong\0")]),
            vec![
                to_client(auth(3, b"")),
                to_database(answer("wrong\0")),
                to_client(refusal.clone()),
                failed(refused.clone()),
            ],
        ),
        (
            "ErrorResponse at once (no such database)",
            db(std::slice::from_ref(&refusal)),
            vec![to_client(refusal.clone()), failed(refused)],
        ),
        (
            "notices and NegotiateProtocolVersion pass through",
            db(&[
                wire(b'v', b"\x00\x00\x00\x00\x00\x00\x00\x00"),
                wire(b'N', b"SNOTICE\0Mhello\0\0"),
                ok(),
                after_ok(),
            ]),
            vec![
                to_client(wire(b'v', b"\x00\x00\x00\x00\x00\x00\x00\x00")),
                to_client(wire(b'N', b"SNOTICE\0Mhello\0\0")),
                to_client(ok()),
                authenticated(vec![]),
            ],
        ),
        (
            "client bytes after its answer are handed over",
            with_client(
                db(&[auth(3, b""), ok(), after_ok()]),
                &[answer("secret\0"), wire(b'Q', b"select 1\0")],
            ),
            vec![
                to_client(auth(3, b"")),
                to_database(answer("secret\0")),
                to_client(ok()),
                authenticated(wire(b'Q', b"select 1\0")),
            ],
        ),
        (
            "oversized database message",
            db(&[too_long(b'R')]),
            vec![failed(AuthError::Framing {
                side: Side::Database,
                error: MessageError::TooLong {
                    tag: b'R',
                    len: MAX_AUTH_MESSAGE_LEN + 1,
                    max: MAX_AUTH_MESSAGE_LEN,
                },
            })],
        ),
        (
            "oversized client answer",
            with_client(db(&[auth(3, b"")]), &[too_long(b'p')]),
            vec![
                to_client(auth(3, b"")),
                failed(AuthError::Framing {
                    side: Side::Client,
                    error: MessageError::TooLong {
                        tag: b'p',
                        len: MAX_AUTH_MESSAGE_LEN + 1,
                        max: MAX_AUTH_MESSAGE_LEN,
                    },
                }),
            ],
        ),
        (
            "client length below 4",
            with_client(db(&[auth(3, b"")]), &[vec![b'p', 0, 0, 0, 3]]),
            vec![
                to_client(auth(3, b"")),
                failed(AuthError::Framing {
                    side: Side::Client,
                    error: MessageError::BadLength { tag: b'p', len: 3 },
                }),
            ],
        ),
        (
            "Authentication without a request code",
            db(&[wire(b'R', b"\0\0")]),
            vec![failed(AuthError::ShortAuthentication { len: 2 })],
        ),
        (
            "the database closes mid-message",
            Script {
                database_eof: true,
                ..db(&[auth(3, b"")[..6].to_vec()])
            },
            vec![failed(AuthError::Closed {
                side: Side::Database,
            })],
        ),
        (
            "the client closes instead of answering",
            Script {
                client_eof: true,
                ..db(&[auth(3, b"")])
            },
            vec![
                to_client(auth(3, b"")),
                failed(AuthError::Closed { side: Side::Client }),
            ],
        ),
        (
            "waits for the client's answer",
            db(&[auth(3, b"")]),
            vec![to_client(auth(3, b"")), Step::Waiting(Side::Client)],
        ),
        (
            "waits for the database",
            db(&[auth(3, b"")[..3].to_vec()]),
            vec![Step::Waiting(Side::Database)],
        ),
    ]
}

#[test]
fn every_branch_gives_the_same_steps_however_it_is_read() {
    for (name, script, want) in cases() {
        for feeding in [Feeding::Whole, Feeding::Bytewise, Feeding::Upfront] {
            assert_eq!(run(&script, feeding), want, "{name}, fed {feeding:?}");
        }
    }
}

#[test]
fn reports_whether_channel_binding_was_stripped() {
    for (offer, stripped) in [(PLUS_OFFER, true), (&["SCRAM-SHA-256"][..], false)] {
        let mut relay = AuthRelay::new(false);
        relay.feed_database(&sasl(offer));
        assert!(matches!(relay.poll(), Some(Action::ToClient(_))));
        assert_eq!(relay.stripped_channel_binding(), stripped, "{offer:?}");
    }
}

#[test]
fn a_smaller_limit_applies_to_both_sides() {
    let mut relay = AuthRelay::new(false).with_max_message_len(8);
    relay.feed_database(&auth(3, b"1234"));
    let Some(Action::Failed(AuthError::Framing { side, .. })) = relay.poll() else {
        panic!("the limit was not applied");
    };
    assert_eq!(side, Side::Database);
    assert_eq!(relay.wants(), None);
}

#[test]
fn nothing_is_fed_after_the_end() {
    let mut relay = AuthRelay::new(false);
    relay.feed_database(&ok());
    assert!(matches!(relay.poll(), Some(Action::ToClient(_))));
    relay.feed_database(b"late");
    relay.feed_client(b"late");
    assert_eq!(
        relay.poll(),
        Some(Action::Authenticated {
            to_client: Bytes::new(),
            to_database: Bytes::new(),
        })
    );
    assert_eq!(relay.poll(), None);
}

#[test]
fn error_responses_carry_the_sentence_and_sqlstate() {
    let cases = [
        (AuthError::Refused(ErrorFields::default()), None),
        (
            AuthError::ChannelBinding,
            Some(sqlstate::INVALID_AUTHORIZATION),
        ),
        (
            AuthError::Closed {
                side: Side::Database,
            },
            Some(sqlstate::CONNECTION_FAILURE),
        ),
        (AuthError::Closed { side: Side::Client }, None),
        (
            AuthError::ShortAuthentication { len: 0 },
            Some(sqlstate::PROTOCOL_VIOLATION),
        ),
        (
            AuthError::Framing {
                side: Side::Client,
                error: MessageError::BadLength { tag: b'p', len: 0 },
            },
            Some(sqlstate::PROTOCOL_VIOLATION),
        ),
    ];
    for (e, code) in cases {
        assert_eq!(e.sqlstate(), code, "{e}");
        match e.error_response() {
            Some(m) => {
                let f = parse_fields(&m).unwrap();
                assert_eq!((f.severity(), f.sqlstate()), (Some("FATAL"), code));
                assert_eq!(f.message(), Some(e.to_string().as_str()));
            }
            None => assert_eq!(code, None, "{e}"),
        }
    }
    assert_eq!(
        AuthError::Refused(ErrorFields::default()).to_string(),
        "the database refused the session: no reason given"
    );
}
