//! Table tests of the negotiator: every path, fed whole, one byte at a time
//! (polling after each byte), and one byte at a time without polling until
//! all is fed.

mod harness;

use super::*;
use crate::TLS_HANDSHAKE_BYTE;
use harness::*;

/// Every path: the same steps however the bytes are cut into reads.
fn cases() -> Vec<(&'static str, Script, Vec<Step>)> {
    let (edge, conn) = (Policy::EDGE, Policy::CONNECTOR);
    let big = {
        let mut v = 10_001u32.to_be_bytes().to_vec();
        v.extend_from_slice(&crate::PROTOCOL_3_0.to_be_bytes());
        v
    };
    vec![
        (
            "edge: SSLRequest accepted, startup inside TLS",
            Script::new(edge, ssl()).tls(startup()),
            vec![sent(b'S'), Step::StartTls(vec![]), started(true, vec![])],
        ),
        (
            "connector: SSL accepted after the driver's decision",
            Script::new(conn, ssl()).tls(startup()).decide(&[true]),
            vec![
                Step::Asked { direct: false },
                sent(b'S'),
                Step::StartTls(vec![]),
                started(true, vec![]),
            ],
        ),
        (
            "connector: SSL refused (no certificate), plaintext startup",
            Script::new(conn, cat(&[ssl(), startup()])).decide(&[false]),
            vec![
                Step::Asked { direct: false },
                sent(b'N'),
                started(false, vec![]),
            ],
        ),
        (
            "edge: GSSENCRequest refused, then SSLRequest",
            Script::new(edge, cat(&[gssenc(), ssl()])).tls(startup()),
            vec![
                sent(b'N'),
                sent(b'S'),
                Step::StartTls(vec![]),
                started(true, vec![]),
            ],
        ),
        (
            "edge: a third encryption request",
            Script::new(edge, cat(&[gssenc(), gssenc(), ssl()])),
            vec![sent(b'N'), sent(b'N'), closed(TOO_MANY, VIOLATION)],
        ),
        (
            "connector: SSL refused twice, then a third request",
            Script::new(conn, cat(&[ssl(), ssl(), gssenc()])).decide(&[false, false]),
            vec![
                Step::Asked { direct: false },
                sent(b'N'),
                Step::Asked { direct: false },
                sent(b'N'),
                closed(TOO_MANY, VIOLATION),
            ],
        ),
        (
            "edge: direct TLS, every byte replayed",
            Script::new(edge, client_hello()).tls(startup()),
            vec![Step::StartTls(client_hello()), started(true, vec![])],
        ),
        (
            "connector: direct TLS accepted",
            Script::new(conn, client_hello())
                .tls(startup())
                .decide(&[true]),
            vec![
                Step::Asked { direct: true },
                Step::StartTls(client_hello()),
                started(true, vec![]),
            ],
        ),
        (
            "connector: direct TLS without a certificate closes silently",
            Script::new(conn, client_hello()).decide(&[false]),
            vec![
                Step::Asked { direct: true },
                closed(
                    "the client started TLS directly, but TLS is not available",
                    None,
                ),
            ],
        ),
        (
            "edge: GSSENCRequest refused, then direct TLS",
            Script::new(edge, cat(&[gssenc(), client_hello()])).tls(startup()),
            vec![
                sent(b'N'),
                Step::StartTls(client_hello()),
                started(true, vec![]),
            ],
        ),
        (
            "edge: direct TLS after two refused requests is not a third request",
            Script::new(edge, cat(&[gssenc(), gssenc(), client_hello()])).tls(startup()),
            vec![
                sent(b'N'),
                sent(b'N'),
                Step::StartTls(client_hello()),
                started(true, vec![]),
            ],
        ),
        (
            "connector: plaintext startup accepted",
            Script::new(conn, startup()),
            vec![started(false, vec![])],
        ),
        (
            "edge: plaintext startup refused",
            Script::new(edge, startup()),
            vec![closed(
                "this server accepts PostgreSQL connections only over TLS: \
                 connect with sslmode=verify-full",
                Some(sqlstate::INVALID_AUTHORIZATION),
            )],
        ),
        (
            "edge: plaintext cancel (psql 16 and older)",
            Script::new(edge, cancel()),
            vec![cancelled(false)],
        ),
        (
            "connector: plaintext cancel",
            Script::new(conn, cancel()),
            vec![cancelled(false)],
        ),
        (
            "edge: cancel inside TLS",
            Script::new(edge, ssl()).tls(cancel()),
            vec![sent(b'S'), Step::StartTls(vec![]), cancelled(true)],
        ),
        (
            "edge: bytes after a cancel are not read",
            Script::new(edge, cat(&[cancel(), query()])),
            vec![cancelled(false)],
        ),
        (
            "garbage: an HTTP request on the PostgreSQL port",
            Script::new(conn, b"GET / HTTP/1.1\r\nHost: db\r\n\r\n".to_vec()),
            vec![closed(
                "the startup message claims 1195725856 bytes, more than the 10000 Warren \
                 accepts: send fewer or shorter parameters",
                VIOLATION,
            )],
        ),
        (
            "oversized: refused from the length field alone",
            Script::new(edge, big[..4].to_vec()),
            vec![closed(
                "the startup message claims 10001 bytes, more than the 10000 Warren \
                 accepts: send fewer or shorter parameters",
                VIOLATION,
            )],
        ),
        (
            "connector: a plaintext startup without a user",
            Script::new(conn, encode_startup_unchecked(&[("database", "shop")])),
            vec![closed(
                "the startup message names no user: set the PostgreSQL user \
                 (psql -U NAME, or PGUSER)",
                VIOLATION,
            )],
        ),
        (
            "EOF before the first byte",
            Script::new(conn, vec![]).eof(),
            vec![closed(
                "the client closed the connection before sending its first message",
                None,
            )],
        ),
        (
            "EOF in the length field",
            Script::new(conn, startup()[..2].to_vec()).eof(),
            vec![closed(
                "the client closed the connection after 2 bytes of a first message that \
                 needs 8",
                None,
            )],
        ),
        (
            "EOF in the middle of the startup",
            Script::new(conn, startup()[..20].to_vec()).eof(),
            vec![closed(
                &format!(
                    "the client closed the connection after 20 bytes of a first message \
                     that needs {}",
                    startup().len()
                ),
                None,
            )],
        ),
        (
            "EOF after a refused GSSENCRequest",
            Script::new(edge, gssenc()).eof(),
            vec![
                sent(b'N'),
                closed(
                    "the client closed the connection before sending its first message",
                    None,
                ),
            ],
        ),
        (
            "EOF inside TLS in the middle of the startup",
            Script::new(edge, ssl()).tls(startup()[..9].to_vec()).eof(),
            vec![
                sent(b'S'),
                Step::StartTls(vec![]),
                closed(
                    &format!(
                        "the client closed the connection after 9 bytes of a first message \
                         that needs {}",
                        startup().len()
                    ),
                    None,
                ),
            ],
        ),
        (
            "a partial message waits for more",
            Script::new(conn, startup()[..9].to_vec()),
            vec![Step::Waiting],
        ),
        (
            "inside TLS: another SSLRequest",
            Script::new(edge, ssl()).tls(ssl()),
            vec![
                sent(b'S'),
                Step::StartTls(vec![]),
                closed(
                    "expected a startup message inside TLS, got SSLRequest",
                    VIOLATION,
                ),
            ],
        ),
        (
            "inside TLS: a GSSENCRequest",
            Script::new(edge, ssl()).tls(gssenc()),
            vec![
                sent(b'S'),
                Step::StartTls(vec![]),
                closed(
                    "expected a startup message inside TLS, got GSSENCRequest",
                    VIOLATION,
                ),
            ],
        ),
        (
            "inside TLS: TLS again",
            Script::new(edge, client_hello()).tls(client_hello()),
            vec![
                Step::StartTls(client_hello()),
                closed(
                    "expected a startup message inside TLS, got direct TLS",
                    VIOLATION,
                ),
            ],
        ),
        (
            "inside TLS: a startup without a user",
            Script::new(edge, ssl()).tls(encode_startup_unchecked(&[("database", "shop")])),
            vec![
                sent(b'S'),
                Step::StartTls(vec![]),
                closed(
                    "the startup message names no user: set the PostgreSQL user \
                     (psql -U NAME, or PGUSER)",
                    VIOLATION,
                ),
            ],
        ),
        (
            "bytes after the startup are kept (plaintext)",
            Script::new(conn, cat(&[startup(), query()])),
            vec![started(false, query())],
        ),
        (
            "bytes after the startup are kept (inside TLS)",
            Script::new(edge, ssl()).tls(cat(&[startup(), query(), query()])),
            vec![
                sent(b'S'),
                Step::StartTls(vec![]),
                started(true, cat(&[query(), query()])),
            ],
        ),
        (
            "connector: bytes after a refused SSLRequest are the next message",
            Script::new(conn, cat(&[ssl(), startup()])).decide(&[false]),
            vec![
                Step::Asked { direct: false },
                sent(b'N'),
                started(false, vec![]),
            ],
        ),
    ]
}

#[test]
fn every_path_gives_the_same_steps_however_it_is_read() {
    for (name, script, want) in cases() {
        for feeding in [Feeding::Whole, Feeding::Bytewise, Feeding::BytewiseLazy] {
            assert_eq!(run(&script, feeding), want, "{name}, fed {feeding:?}");
        }
    }
}

/// Plaintext after an accepted `SSLRequest`: refused when it is there
/// before `S` goes out, whoever decides.
fn pipelined_cases() -> Vec<(&'static str, Script, Vec<Step>)> {
    let refused = closed(
        &format!(
            "received {} bytes of unencrypted data after the SSL request",
            startup().len()
        ),
        VIOLATION,
    );
    vec![
        (
            "edge: startup pipelined after the SSLRequest",
            Script::new(Policy::EDGE, cat(&[ssl(), startup()])),
            vec![refused.clone()],
        ),
        (
            "connector: startup pipelined after an SSLRequest it accepts",
            Script::new(Policy::CONNECTOR, cat(&[ssl(), startup()])).decide(&[true]),
            vec![Step::Asked { direct: false }, refused],
        ),
    ]
}

#[test]
fn plaintext_pipelined_after_an_accepted_ssl_request_is_refused() {
    for (name, script, want) in pipelined_cases() {
        for feeding in [Feeding::Whole, Feeding::BytewiseLazy] {
            assert_eq!(run(&script, feeding), want, "{name}, fed {feeding:?}");
        }
        // Read a byte at a time, the bytes come after `S`: they are the
        // client's TLS handshake, and go to the acceptor unread.
        let got = run(&script, Feeding::Bytewise);
        assert!(
            matches!(&got[..], [.., Step::Sent(s), Step::StartTls(tls), Step::Waiting]
                if s == b"S" && *tls == startup()),
            "{name}: {got:?}"
        );
    }
}

#[test]
fn bytes_fed_during_the_tls_handshake_are_refused() {
    for direct in [false, true] {
        let mut n = Negotiator::new(Policy::EDGE);
        n.feed(&if direct {
            vec![TLS_HANDSHAKE_BYTE]
        } else {
            ssl()
        });
        if !direct {
            assert!(matches!(n.poll(), Some(Action::Send(b)) if b[..] == [SSL_ACCEPTED]));
        }
        assert!(matches!(n.poll(), Some(Action::StartTls { .. })));
        assert!(n.poll().is_none());
        // A driver bug: plaintext fed before the handshake is done must not
        // be read as if TLS had decrypted it.
        n.feed(&startup());
        n.tls_established();
        let Some(Action::Close(e)) = n.poll() else {
            panic!("plaintext fed during the handshake was not refused");
        };
        assert!(matches!(
            e,
            NegotiationError::UnencryptedAfterSslRequest { count } if count == startup().len()
        ));
        assert!(n.poll().is_none());
    }
}

#[test]
fn bytes_fed_during_the_handshake_are_refused_at_the_next_poll() {
    let mut n = Negotiator::new(Policy::EDGE);
    n.feed(&ssl());
    assert!(matches!(n.poll(), Some(Action::Send(_))));
    n.feed(b"x");
    assert!(matches!(
        n.poll(),
        Some(Action::Close(
            NegotiationError::UnencryptedAfterSslRequest { count: 1 }
        ))
    ));
}

#[test]
fn decisions_and_tls_out_of_turn_are_ignored() {
    let mut n = Negotiator::new(Policy::CONNECTOR);
    n.decide_tls(true);
    n.tls_established();
    n.feed(&startup());
    let Some(Action::Startup(s)) = n.poll() else {
        panic!("a stray decision changed the path");
    };
    assert!(!s.tls);
    assert!(n.is_finished());
    n.feed(&query());
    n.eof();
    assert!(n.poll().is_none());
}

#[test]
fn waits_while_the_driver_decides() {
    let mut n = Negotiator::new(Policy::CONNECTOR);
    n.feed(&ssl());
    assert!(matches!(
        n.poll(),
        Some(Action::DecideTls { direct: false })
    ));
    assert!(n.poll().is_none());
    assert!(n.poll().is_none());
    n.decide_tls(true);
    assert!(matches!(n.poll(), Some(Action::Send(_))));
}

#[test]
fn error_responses_carry_the_sentence_and_sqlstate() {
    let cases: Vec<(NegotiationError, Option<&str>)> = vec![
        (StartupError::Closed.into(), None),
        (
            StartupError::Truncated {
                got: 3,
                expected: 8,
            }
            .into(),
            None,
        ),
        (StartupError::MissingUser.into(), VIOLATION),
        (NegotiationError::TooManyEncryptionRequests, VIOLATION),
        (
            NegotiationError::PlaintextRefused,
            Some(sqlstate::INVALID_AUTHORIZATION),
        ),
        (
            NegotiationError::UnexpectedInsideTls { got: "SSLRequest" },
            VIOLATION,
        ),
        (
            NegotiationError::UnencryptedAfterSslRequest { count: 1 },
            VIOLATION,
        ),
        (NegotiationError::DirectTlsDeclined, None),
    ];
    for (e, code) in cases {
        assert_eq!(e.sqlstate(), code, "{e}");
        let m = e.error_response();
        assert_eq!(m.is_some(), code.is_some(), "{e}");
        if let Some(m) = m {
            let f = crate::message::parse_fields(&m).unwrap();
            assert_eq!(f.severity(), Some("FATAL"));
            assert_eq!(f.sqlstate(), code);
            assert_eq!(f.message(), Some(e.to_string().as_str()));
        }
    }
}
