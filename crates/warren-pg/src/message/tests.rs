//! Tests of the regular-phase framer and message helpers.

use super::*;

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    Message::new(tag, body.to_vec()).encode().to_vec()
}

fn with_len(tag: u8, len: u32) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(tag);
    b.put_u32(len);
    b
}

fn drain(dec: &mut MessageDecoder, buf: &mut BytesMut) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(m) = dec.decode(buf).unwrap() {
        out.push(m);
    }
    out
}

#[test]
fn decodes_messages_split_anywhere() {
    let mut all = frame(b'Q', b"select 1\0");
    all.extend(frame(b'S', b""));
    all.extend(frame(b'X', b""));
    for split in 0..=all.len() {
        let mut dec = MessageDecoder::default();
        let mut buf = BytesMut::from(&all[..split]);
        let mut got = drain(&mut dec, &mut buf);
        buf.extend_from_slice(&all[split..]);
        got.extend(drain(&mut dec, &mut buf));
        let tags: Vec<u8> = got.iter().map(|m| m.tag).collect();
        assert_eq!(tags, b"QSX", "split at {split}");
        assert_eq!(&got[0].body[..], b"select 1\0");
        assert!(got[1].body.is_empty());
        assert!(buf.is_empty());
    }
}

#[test]
fn refuses_bad_lengths_from_the_header_alone() {
    for len in [0, 3] {
        let mut buf = with_len(b'Q', len);
        assert_eq!(
            MessageDecoder::default().decode(&mut buf),
            Err(MessageError::BadLength {
                tag: b'Q',
                len: len as usize
            })
        );
    }
    let mut dec = MessageDecoder::new(100);
    assert_eq!(dec.decode(&mut with_len(b'D', 100)), Ok(None));
    let err = dec.decode(&mut with_len(b'D', 101)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a 'D' message claims 101 bytes, more than the 100 allowed"
    );
    let err = MessageDecoder::default()
        .decode(&mut with_len(0, u32::MAX))
        .unwrap_err();
    assert_eq!(
        err,
        MessageError::TooLong {
            tag: 0,
            len: u32::MAX as usize,
            max: DEFAULT_MAX_MESSAGE_LEN
        }
    );
    assert!(err.to_string().starts_with("a '\\x00' message"), "{err}");
}

#[test]
fn a_message_at_the_limit_is_accepted() {
    let mut dec = MessageDecoder::new(4 + 10);
    let mut buf = BytesMut::from(&frame(b'd', &[7; 10])[..]);
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap().body.len(), 10);
}

#[test]
fn limits_are_kept_within_the_protocol() {
    assert_eq!(MessageDecoder::new(0).max_len(), 4);
    assert_eq!(MessageDecoder::new(usize::MAX).max_len(), MAX_WIRE_LEN);
    let mut buf = BytesMut::from(&frame(b'S', b"")[..]);
    assert!(MessageDecoder::new(0).decode(&mut buf).unwrap().is_some());
}

#[test]
fn a_huge_announced_message_does_not_allocate_up_front() {
    let mut buf = with_len(b'd', DEFAULT_MAX_MESSAGE_LEN as u32);
    assert_eq!(MessageDecoder::default().decode(&mut buf), Ok(None));
    assert!(buf.capacity() <= HEADER_LEN + RESERVE_CHUNK + 64);
}

#[test]
fn query_text() {
    let m = Message::new(b'Q', &b"select now()\0"[..]);
    assert_eq!(parse_query(&m).unwrap(), "select now()");
    let latin1 = Message::new(b'Q', &b"select 'caf\xe9'\0"[..]);
    assert_eq!(parse_query(&latin1).unwrap(), "select 'caf\u{fffd}'");
    let bad = [
        (
            Message::new(b'Q', &b"select 1"[..]),
            "a string lacks its NUL terminator",
        ),
        (
            Message::new(b'Q', &b"select 1\0x"[..]),
            "bytes follow its last field",
        ),
    ];
    for (m, reason) in bad {
        assert_eq!(
            parse_query(&m),
            Err(MessageError::Malformed {
                what: "Query",
                reason
            })
        );
    }
    assert_eq!(
        parse_query(&Message::new(b'P', &b"\0"[..])),
        Err(MessageError::WrongTag {
            expected: b'Q',
            got: b'P'
        })
    );
}

#[test]
fn parse_statement_and_query() {
    let m = Message::new(
        b'P',
        &b"s1\0select $1::int + $2\0\x00\x02\0\0\0\x17\0\0\0\x17"[..],
    );
    let p = parse_parse(&m).unwrap();
    assert_eq!(p.statement, "s1");
    assert_eq!(p.query, "select $1::int + $2");
    assert_eq!(p.param_types, 2);

    let unnamed = Message::new(b'P', &b"\0select 1\0\0\0"[..]);
    let p = parse_parse(&unnamed).unwrap();
    assert_eq!(
        (&*p.statement, &*p.query, p.param_types),
        ("", "select 1", 0)
    );

    for body in [
        &b"\0select 1\0"[..],
        b"\0select 1\0\0",
        b"\0select 1\0\0\x01",
        b"\0select 1\0\0\x01\0\0\0\x17\0",
        b"\0select 1",
        b"",
    ] {
        assert!(
            matches!(
                parse_parse(&Message::new(b'P', body.to_vec())),
                Err(MessageError::Malformed { what: "Parse", .. })
            ),
            "{body:?}"
        );
    }
}

#[test]
fn backend_key_data_of_both_key_lengths() {
    for len in [4, 32, 256] {
        let key = CancelKey::new(vec![0xa5; len]).unwrap();
        let m = backend_key_data(31337, &key);
        assert_eq!(m.body.len(), 4 + len);
        assert_eq!(parse_backend_key_data(&m).unwrap(), (31337, key));
    }
    // No pid, a short pid, a 3-byte key, a 257-byte key.
    for len in [0, 3, 4 + 3, 4 + 257] {
        let got = parse_backend_key_data(&Message::new(b'K', vec![1; len]));
        assert!(matches!(got, Err(MessageError::Malformed { .. })), "{len}");
    }
}

#[test]
fn ready_for_query_round_trips() {
    for s in [
        TransactionStatus::Idle,
        TransactionStatus::InTransaction,
        TransactionStatus::Failed,
    ] {
        let m = ready_for_query(s);
        assert_eq!(m.encode().to_vec(), frame(b'Z', &[s.as_byte()]));
        assert_eq!(parse_ready_for_query(&m), Ok(s));
    }
    for body in [&b""[..], b"IT", b"x"] {
        assert!(parse_ready_for_query(&Message::new(b'Z', body.to_vec())).is_err());
    }
}

#[test]
fn error_response_bytes() {
    let m = error_response(
        Severity::Fatal,
        sqlstate::INVALID_AUTHORIZATION,
        "no client certificate",
    );
    let want: &[u8] = b"E\x00\x00\x00\x31\
        SFATAL\0VFATAL\0C28000\0Mno client certificate\0\0";
    assert_eq!(&m.encode()[..], want);
}

#[test]
fn error_fields_round_trip_through_the_wire() {
    let fields = ErrorFields::new(
        Severity::Fatal,
        sqlstate::UNABLE_TO_CONNECT,
        "server certificate for db.example.com is not trusted: unknown issuer",
    )
    .detail("the database at 10.0.0.5:5432 sent a self-signed certificate")
    .hint("set caPool to the CA that signed it");
    for m in [fields.to_error(), fields.to_notice()] {
        let mut buf = BytesMut::from(&m.encode()[..]);
        let back = MessageDecoder::default().decode(&mut buf).unwrap().unwrap();
        let got = parse_fields(&back).unwrap();
        assert_eq!(got, fields);
        assert_eq!(got.severity(), Some("FATAL"));
        assert_eq!(got.sqlstate(), Some("08001"));
        assert_eq!(
            got.message(),
            Some("server certificate for db.example.com is not trusted: unknown issuer")
        );
        assert!(got.detail_text().unwrap().contains("self-signed"));
        assert_eq!(got.hint_text(), Some("set caPool to the CA that signed it"));
    }
}

#[test]
fn nul_in_a_field_is_dropped() {
    let m = error_response(Severity::Error, "08P01", "user \0mallory\0 refused");
    assert_eq!(
        parse_fields(&m).unwrap().message(),
        Some("user mallory refused")
    );
}

#[test]
fn fields_of_an_older_server_and_malformed_ones() {
    let old = Message::new(b'E', &b"SERREUR\0C42P01\0Mla relation n'existe pas\0\0"[..]);
    let f = parse_fields(&old).unwrap();
    assert_eq!(f.severity(), Some("ERREUR"));
    assert_eq!(f.fields().len(), 3);
    for body in [&b""[..], b"Mx\0", b"Mx", b"Mx\0\0\0"] {
        assert!(
            matches!(
                parse_fields(&Message::new(b'N', body.to_vec())),
                Err(MessageError::Malformed {
                    what: "NoticeResponse",
                    ..
                })
            ),
            "{body:?}"
        );
    }
    assert!(matches!(
        parse_fields(&Message::new(b'Q', &b"\0"[..])),
        Err(MessageError::WrongTag { got: b'Q', .. })
    ));
}

#[test]
fn encryption_answers() {
    assert_eq!(
        EncryptionAnswer::from_byte(b'S'),
        Some(EncryptionAnswer::SslAccepted)
    );
    assert_eq!(
        EncryptionAnswer::from_byte(b'G'),
        Some(EncryptionAnswer::GssEncAccepted)
    );
    assert_eq!(
        EncryptionAnswer::from_byte(b'N'),
        Some(EncryptionAnswer::Refused)
    );
    assert_eq!(
        EncryptionAnswer::from_byte(b'E'),
        Some(EncryptionAnswer::Error)
    );
    assert_eq!(EncryptionAnswer::from_byte(b'H'), None);
}

#[test]
fn debug_never_shows_a_body() {
    let m = Message::new(tag::PASSWORD, &b"hunter2\0"[..]);
    assert_eq!(format!("{m:?}"), "Message { tag: 'p', body: <8 bytes> }");
}

#[test]
fn reads_parameter_status() {
    let m = Message::new(tag::PARAMETER_STATUS, &b"TimeZone\0UTC\0"[..]);
    let (name, value) = parse_parameter_status(&m).unwrap();
    assert_eq!((&*name, &*value), ("TimeZone", "UTC"));
    for bad in [&b"TimeZone\0UTC"[..], b"TimeZone\0", b"a\0b\0c"] {
        let m = Message::new(tag::PARAMETER_STATUS, bad);
        assert!(
            matches!(
                parse_parameter_status(&m),
                Err(MessageError::Malformed {
                    what: "ParameterStatus",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse_parameter_status(&Message::new(b'Z', &b"I"[..])),
        Err(MessageError::WrongTag {
            expected: b'S',
            got: b'Z'
        })
    );
}
