//! Tests of the first-message parser, encoders and reader.

use super::*;
use crate::{PROTOCOL_3_0, PROTOCOL_3_2};

/// A first message with a correct length field.
fn msg(code: u32, body: &[u8]) -> Vec<u8> {
    with_len((HEADER_LEN + body.len()) as u32, code, body)
}

/// A first message with whatever length field the test wants.
fn with_len(len: u32, code: u32, body: &[u8]) -> Vec<u8> {
    let mut v = len.to_be_bytes().to_vec();
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// What psql 15 sends for `psql -h db -U alice shop` in a UTF-8 locale.
const PSQL15: &[u8] = b"\x00\x00\x00\x4d\x00\x03\x00\x00\
    user\0alice\0\
    database\0shop\0\
    application_name\0psql\0\
    client_encoding\0UTF8\0\
    \0";

fn parse_ok(buf: &[u8]) -> (FirstMessage, usize) {
    parse_first(buf).unwrap().expect("a complete message")
}

fn startup_of(m: FirstMessage) -> Startup {
    match m {
        FirstMessage::Startup(s) => s,
        other => panic!("expected a startup message, got {other:?}"),
    }
}

/// Every malformed first message, with the sentence it must produce.
fn bad_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let big = with_len(10_001, PROTOCOL_3_0, b"");
    vec![
        (
            "length 0",
            with_len(0, PROTOCOL_3_0, b"user\0a\0\0"),
            "the client's first message has length 0, which no PostgreSQL client sends",
        ),
        (
            "length below the header",
            with_len(7, PROTOCOL_3_0, b""),
            "the client's first message claims 7 bytes, fewer than the 8 every first message has",
        ),
        (
            "startup over 10 KB, refused from its length alone",
            big[..4].to_vec(),
            "the startup message claims 10001 bytes, more than the 10000 Warren accepts: \
             send fewer or shorter parameters",
        ),
        (
            "random bytes: an HTTP request on the PostgreSQL port",
            b"GET / HTTP/1.1\r\nHost: db\r\n\r\n".to_vec(),
            "the startup message claims 1195725856 bytes, more than the 10000 Warren accepts: \
             send fewer or shorter parameters",
        ),
        (
            "unknown protocol version",
            msg(0x0004_0007, b"user\0a\0\0"),
            "unsupported frontend protocol 4.7: Warren speaks 3.0 and 3.2",
        ),
        (
            "protocol 2.0",
            msg(0x0002_0000, b"user\0a\0\0"),
            "unsupported frontend protocol 2.0: Warren speaks 3.0 and 3.2",
        ),
        (
            "protocol 3.1, which no server ever spoke",
            msg(0x0003_0001, b"user\0a\0\0"),
            "unsupported frontend protocol 3.1: Warren speaks 3.0 and 3.2",
        ),
        (
            "unknown request code",
            msg(80_877_105, b""),
            "unsupported frontend protocol 1234.5681: Warren speaks 3.0 and 3.2",
        ),
        (
            "SSLRequest with a body",
            msg(SSL_REQUEST_CODE, b"abcd"),
            "the client's SSLRequest is 12 bytes long instead of 8",
        ),
        (
            "GSSENCRequest with a body",
            msg(GSSENC_REQUEST_CODE, b"a"),
            "the client's GSSENCRequest is 9 bytes long instead of 8",
        ),
        (
            "CancelRequest without a key",
            msg(CANCEL_REQUEST_CODE, &[0, 0, 0, 1]),
            "the client's CancelRequest is 12 bytes long, but one with a 4- to 256-byte \
             secret key is 16 to 268",
        ),
        (
            "CancelRequest with a 3-byte key",
            msg(CANCEL_REQUEST_CODE, &[0, 0, 0, 1, 9, 9, 9]),
            "the client's CancelRequest is 15 bytes long, but one with a 4- to 256-byte \
             secret key is 16 to 268",
        ),
        (
            "CancelRequest with a 257-byte key",
            msg(CANCEL_REQUEST_CODE, &[7; 4 + 257]),
            "the client's CancelRequest is 269 bytes long, but one with a 4- to 256-byte \
             secret key is 16 to 268",
        ),
        (
            "no user",
            msg(PROTOCOL_3_0, b"database\0shop\0\0"),
            "the startup message names no user: set the PostgreSQL user (psql -U NAME, or PGUSER)",
        ),
        (
            "empty user",
            msg(PROTOCOL_3_2, b"user\0\0\0"),
            "the startup message names no user: set the PostgreSQL user (psql -U NAME, or PGUSER)",
        ),
        (
            "no parameters at all",
            msg(PROTOCOL_3_0, b""),
            "the startup parameters are not NUL-terminated name/value pairs followed by a final NUL",
        ),
        (
            "no final NUL",
            msg(PROTOCOL_3_0, b"user\0alice\0"),
            "the startup parameters are not NUL-terminated name/value pairs followed by a final NUL",
        ),
        (
            "a name without a value",
            msg(PROTOCOL_3_0, b"user\0alice\0database\0"),
            "the startup parameters are not NUL-terminated name/value pairs followed by a final NUL",
        ),
        (
            "a value without its NUL",
            msg(PROTOCOL_3_0, b"user\0alice"),
            "the startup parameters are not NUL-terminated name/value pairs followed by a final NUL",
        ),
        (
            "bytes after the terminator",
            msg(PROTOCOL_3_0, b"user\0alice\0\0xy"),
            "the startup message has 2 bytes after the NUL that ends its parameters",
        ),
        (
            "a value that is not UTF-8",
            msg(PROTOCOL_3_0, b"user\0\xffalice\0\0"),
            "a startup parameter is not valid UTF-8: Warren needs parameter names and values in UTF-8",
        ),
        (
            "a name that is not UTF-8",
            msg(PROTOCOL_3_0, b"user\0alice\0\xc3\x28\0x\0\0"),
            "a startup parameter is not valid UTF-8: Warren needs parameter names and values in UTF-8",
        ),
    ]
}

#[test]
fn malformed_first_messages_are_refused_with_a_sentence() {
    for (name, bytes, want) in bad_cases() {
        let err = parse_first(&bytes).expect_err(name);
        assert_eq!(err.to_string(), want, "{name}");
    }
}

#[test]
fn psql_15_startup() {
    let (m, n) = parse_ok(PSQL15);
    assert_eq!(n, PSQL15.len());
    let s = startup_of(m);
    assert_eq!(s.version(), ProtocolVersion::V3_0);
    assert_eq!(s.user(), "alice");
    assert_eq!(s.database(), "shop");
    assert_eq!(s.application_name(), Some("psql"));
    assert_eq!(s.options(), None);
    assert_eq!(s.param("client_encoding"), Some("UTF8"));
    let names: Vec<_> = s.params().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["user", "database", "application_name", "client_encoding"]
    );
    assert_eq!(&s.encode()[..], PSQL15, "forwarded byte for byte");
}

#[test]
fn database_defaults_to_user_and_last_repeat_wins() {
    let s = startup_of(parse_ok(&msg(PROTOCOL_3_2, b"user\0bob\0\0")).0);
    assert_eq!((s.user(), s.database()), ("bob", "bob"));
    assert_eq!(s.version(), ProtocolVersion::V3_2);

    let s = startup_of(parse_ok(&msg(PROTOCOL_3_0, b"database\0\0user\0bob\0\0")).0);
    assert_eq!(s.database(), "bob", "an empty database means the user's");

    let s = startup_of(
        parse_ok(&msg(
            PROTOCOL_3_0,
            b"user\0mallory\0options\0-c geqo=off\0user\0bob\0\0",
        ))
        .0,
    );
    assert_eq!(s.user(), "bob", "the server uses the last one too");
    assert_eq!(s.options(), Some("-c geqo=off"));
    assert_eq!(s.params().len(), 3, "all kept for forwarding");
}

#[test]
fn every_prefix_of_a_valid_message_needs_more() {
    let mut key32 = vec![0, 0, 0x30, 0x39];
    key32.extend_from_slice(&[0xab; 32]);
    for whole in [
        PSQL15.to_vec(),
        encode_ssl_request().to_vec(),
        msg(CANCEL_REQUEST_CODE, &key32),
    ] {
        for cut in 0..whole.len() {
            assert!(
                parse_first(&whole[..cut]).unwrap().is_none(),
                "cut at {cut} of {whole:?}"
            );
        }
    }
}

#[test]
fn takes_only_its_own_bytes() {
    let mut buf = encode_ssl_request().to_vec();
    buf.extend_from_slice(&[TLS_HANDSHAKE_BYTE, 3, 1]);
    assert_eq!(parse_ok(&buf), (FirstMessage::SslRequest, 8));
}

#[test]
fn direct_tls_consumes_nothing() {
    assert_eq!(
        parse_ok(&[TLS_HANDSHAKE_BYTE]),
        (FirstMessage::DirectTls, 0)
    );
    assert_eq!(
        parse_ok(&[TLS_HANDSHAKE_BYTE, 3, 1, 2, 0]),
        (FirstMessage::DirectTls, 0)
    );
    assert!(FirstMessage::DirectTls.encode().is_empty());
}

#[test]
fn round_trips() {
    let key = |n: usize| CancelKey::new(vec![0x5a; n]).unwrap();
    let startup = |v, p: &[(&str, &str)]| {
        FirstMessage::Startup(
            Startup::new(
                v,
                p.iter()
                    .map(|&(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            )
            .unwrap(),
        )
    };
    let cases = [
        FirstMessage::SslRequest,
        FirstMessage::GssEncRequest,
        FirstMessage::Cancel(CancelRequest {
            pid: 4242,
            key: key(4),
        }),
        FirstMessage::Cancel(CancelRequest {
            pid: u32::MAX,
            key: key(32),
        }),
        FirstMessage::Cancel(CancelRequest {
            pid: 1,
            key: key(256),
        }),
        startup(ProtocolVersion::V3_0, &[("user", "a")]),
        startup(
            ProtocolVersion::V3_2,
            &[
                ("user", "ünïcode"),
                ("database", ""),
                ("_pq_.test", "x"),
                ("replication", "database"),
            ],
        ),
    ];
    for m in cases {
        let bytes = m.encode();
        assert_eq!(parse_ok(&bytes), (m.clone(), bytes.len()), "{m:?}");
    }
}

#[test]
fn cancel_requests_of_both_key_lengths() {
    // Protocol 3.0: pid 12345, a 4-byte key.
    let v30 = b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x30\x39\xde\xad\xbe\xef";
    // Protocol 3.2 (PostgreSQL 18 sends 32-byte keys).
    let mut v32 = vec![0, 0, 0, 44, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39];
    v32.extend(0u8..32);
    for (bytes, key) in [
        (&v30[..], &[0xde, 0xad, 0xbe, 0xef][..]),
        (&v32, &v32[12..]),
    ] {
        let (m, n) = parse_ok(bytes);
        assert_eq!(n, bytes.len());
        let FirstMessage::Cancel(c) = m else {
            panic!("expected a CancelRequest, got {m:?}");
        };
        assert_eq!(c.pid, 12345);
        assert_eq!(c.key.as_bytes(), key);
        assert_eq!(&encode_cancel(c.pid, &c.key)[..], bytes);
    }
}

#[test]
fn cancel_keys_are_bounded_and_redacted() {
    assert!(CancelKey::new(vec![1; 3]).is_err());
    assert!(CancelKey::new(vec![1; 4]).is_ok());
    assert!(CancelKey::new(vec![1; 256]).is_ok());
    assert_eq!(
        CancelKey::new(vec![1; 257]).unwrap_err().to_string(),
        "a cancel secret key is 257 bytes long, outside the 4 to 256 the protocol allows"
    );
    let k = CancelKey::new(&b"s3cr3t"[..]).unwrap();
    assert_eq!(format!("{k:?}"), "CancelKey(<6 bytes>)");
    assert_ne!(k, CancelKey::new(&b"s3cr3u"[..]).unwrap());
    assert_ne!(k, CancelKey::new(&b"s3cr3t!"[..]).unwrap());
    assert_eq!(k, CancelKey::new(&b"s3cr3t"[..]).unwrap());
}

#[test]
fn building_a_startup_refuses_what_cannot_travel() {
    let build = |p: &[(&str, &str)]| encode_startup(ProtocolVersion::V3_0, p);
    assert!(matches!(
        build(&[("user", "a"), ("", "x")]),
        Err(StartupError::EmptyParamName)
    ));
    assert!(matches!(
        build(&[("user", "a\0b")]),
        Err(StartupError::NulInParam { .. })
    ));
    assert!(matches!(
        build(&[("database", "x")]),
        Err(StartupError::MissingUser)
    ));
    let long = "x".repeat(MAX_STARTUP_LEN);
    assert!(matches!(
        build(&[("user", "a"), ("options", &long)]),
        Err(StartupError::TooLong { .. })
    ));
    assert!(matches!(
        encode_startup(ProtocolVersion { major: 3, minor: 1 }, &[("user", "a")]),
        Err(StartupError::UnsupportedProtocol { major: 3, minor: 1 })
    ));
    // The largest message that fits is accepted both ways.
    let fill = "x".repeat(MAX_STARTUP_LEN - 8 - "user\0a\0options\0\0\0".len());
    let b = build(&[("user", "a"), ("options", &fill)]).unwrap();
    assert_eq!(b.len(), MAX_STARTUP_LEN);
    assert_eq!(parse_ok(&b).1, MAX_STARTUP_LEN);
}

#[test]
fn version_codes() {
    assert_eq!(ProtocolVersion::V3_0.code(), PROTOCOL_3_0);
    assert_eq!(ProtocolVersion::V3_2.code(), PROTOCOL_3_2);
    assert_eq!(
        ProtocolVersion::from_code(SSL_REQUEST_CODE).to_string(),
        "1234.5679"
    );
}
