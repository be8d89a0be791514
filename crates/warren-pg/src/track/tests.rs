//! Tests of the session trackers: a session's streams cut at every offset,
//! transaction statuses, cancel keys, statements and their limit.

use super::*;
use crate::message::{backend_key_data, ready_for_query, Message, Severity};

fn wire(tag: u8, body: &[u8]) -> Vec<u8> {
    Message::new(tag, body.to_vec()).encode().to_vec()
}

fn key(bytes: &[u8]) -> CancelKey {
    CancelKey::new(bytes.to_vec()).unwrap()
}

fn ready(status: TransactionStatus) -> Vec<u8> {
    ready_for_query(status).encode().to_vec()
}

fn error() -> Vec<u8> {
    ErrorFields::new(Severity::Error, "42P01", "relation \"nope\" does not exist")
        .to_error()
        .encode()
        .to_vec()
}

/// A session as the database sends it: authentication, startup
/// parameters, key, then a few queries.
fn backend_stream() -> Vec<u8> {
    [
        wire(b'R', &0u32.to_be_bytes()),
        wire(b'S', b"application_name\0psql\0"),
        wire(b'S', b"TimeZone\0UTC\0"),
        backend_key_data(4242, &key(b"\x01\x02\x03\x04"))
            .encode()
            .to_vec(),
        ready(TransactionStatus::Idle),
        wire(b'C', b"BEGIN\0"),
        ready(TransactionStatus::InTransaction),
        wire(b'T', &[0; 30]),
        wire(b'D', &[1; 200]),
        error(),
        ready(TransactionStatus::Failed),
        wire(b'S', b"TimeZone\0Europe/Paris\0"),
        ready(TransactionStatus::Idle),
    ]
    .concat()
}

fn backend_events() -> Vec<BackendEvent> {
    use BackendEvent::*;
    let p = |n: &str, v: &str| Parameter {
        name: n.into(),
        value: v.into(),
    };
    vec![
        p("application_name", "psql"),
        p("TimeZone", "UTC"),
        KeyData {
            pid: 4242,
            key: key(b"\x01\x02\x03\x04"),
        },
        Ready(TransactionStatus::Idle),
        Ready(TransactionStatus::InTransaction),
        Error(crate::message::parse_fields(&Message::new(b'E', error()[5..].to_vec())).unwrap()),
        Ready(TransactionStatus::Failed),
        p("TimeZone", "Europe/Paris"),
        Ready(TransactionStatus::Idle),
    ]
}

type Seen<E> = Vec<(usize, Result<E, TrackError>)>;

/// Observes `stream` cut at `cuts`; every event with the stream offset it
/// ended at.
fn backend_cut(t: &mut BackendTracker, stream: &[u8], cuts: &[usize]) -> Seen<BackendEvent> {
    let mut seen = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&stream.len()]) {
        let mut events = t.observe(&stream[start..end]);
        while let Some(e) = events.next() {
            seen.push((start + events.consumed(), e));
        }
        assert_eq!(events.consumed(), end - start);
        start = end;
    }
    seen
}

fn frontend_cut(t: &mut FrontendTracker, stream: &[u8], cuts: &[usize]) -> Seen<FrontendEvent> {
    let mut seen = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&stream.len()]) {
        let mut events = t.observe(&stream[start..end]);
        while let Some(e) = events.next() {
            seen.push((start + events.consumed(), e));
        }
        start = end;
    }
    seen
}

#[test]
fn backend_events_do_not_depend_on_chunk_boundaries() {
    let stream = backend_stream();
    let mut t = BackendTracker::new();
    let whole = backend_cut(&mut t, &stream, &[]);
    let events: Vec<BackendEvent> = whole.iter().map(|(_, e)| e.clone().unwrap()).collect();
    assert_eq!(events, backend_events());
    // Each event ends exactly where its message ends.
    let ready_end = stream.len();
    assert_eq!(whole.last().unwrap().0, ready_end);
    assert_eq!(
        &stream[whole[3].0 - 6..whole[3].0],
        &ready(TransactionStatus::Idle)[..]
    );
    for cut in 0..=stream.len() {
        let mut t = BackendTracker::new();
        assert_eq!(backend_cut(&mut t, &stream, &[cut]), whole, "cut at {cut}");
    }
    let bytewise: Vec<usize> = (1..stream.len()).collect();
    let mut t = BackendTracker::new();
    assert_eq!(backend_cut(&mut t, &stream, &bytewise), whole);
    assert_eq!(t.transaction_status(), Some(TransactionStatus::Idle));
    assert_eq!(t.key_data(), Some((4242, &key(b"\x01\x02\x03\x04"))));
    assert_eq!(t.parameter("TimeZone"), Some("Europe/Paris"));
    assert_eq!(
        t.parameters(),
        &[
            ("application_name".to_owned(), "psql".to_owned()),
            ("TimeZone".to_owned(), "Europe/Paris".to_owned())
        ]
    );
    assert!(t.at_boundary() && !t.is_lost());
}

#[test]
fn ready_for_query_statuses() {
    let cases: [(&[u8], Result<TransactionStatus, ()>); 5] = [
        (b"I", Ok(TransactionStatus::Idle)),
        (b"T", Ok(TransactionStatus::InTransaction)),
        (b"E", Ok(TransactionStatus::Failed)),
        (b"X", Err(())),
        (b"II", Err(())),
    ];
    for (body, want) in cases {
        let mut t = BackendTracker::new();
        let seen = backend_cut(&mut t, &wire(b'Z', body), &[]);
        match want {
            Ok(status) => {
                assert_eq!(seen, vec![(6, Ok(BackendEvent::Ready(status)))]);
                assert_eq!(t.transaction_status(), Some(status));
            }
            Err(()) => {
                assert!(
                    matches!(&seen[..], [(_, Err(TrackError::Malformed(_)))]),
                    "{seen:?}"
                );
                assert_eq!(t.transaction_status(), None);
            }
        }
    }
}

#[test]
fn key_data_of_both_protocol_versions() {
    for k in [&b"\x01\x02\x03\x04"[..], &[9u8; 32][..], &[1u8; 256][..]] {
        let mut t = BackendTracker::new();
        let m = backend_key_data(7, &key(k)).encode();
        let seen = backend_cut(&mut t, &m, &[]);
        assert_eq!(
            seen,
            vec![(
                m.len(),
                Ok(BackendEvent::KeyData {
                    pid: 7,
                    key: key(k)
                })
            )]
        );
        assert_eq!(t.key_data(), Some((7, &key(k))));
    }
    let mut t = BackendTracker::new();
    let seen = backend_cut(&mut t, &wire(b'K', b"\0\0\0\x07ab"), &[]);
    assert!(matches!(&seen[..], [(_, Err(TrackError::Malformed(_)))]));
    assert_eq!(t.key_data(), None);
}

#[test]
fn a_long_backend_message_is_passed_not_read() {
    let mut t = BackendTracker::with_max_body(16);
    let stream = [error(), ready(TransactionStatus::Idle)].concat();
    let seen = backend_cut(&mut t, &stream, &[]);
    assert_eq!(
        seen,
        vec![
            (
                5,
                Ok(BackendEvent::TooLong {
                    tag: b'E',
                    len: error().len() - 5
                })
            ),
            (
                stream.len(),
                Ok(BackendEvent::Ready(TransactionStatus::Idle))
            ),
        ]
    );
}

#[test]
fn a_lost_stream_is_reported_once() {
    let mut t = BackendTracker::new();
    let stream = [
        ready(TransactionStatus::Idle),
        vec![b'Z', 0, 0, 0, 1],
        ready(TransactionStatus::Failed),
    ]
    .concat();
    let seen = backend_cut(&mut t, &stream, &[8]);
    assert_eq!(
        seen,
        vec![
            (6, Ok(BackendEvent::Ready(TransactionStatus::Idle))),
            (
                11,
                Err(TrackError::Framing(MessageError::BadLength {
                    tag: b'Z',
                    len: 1
                }))
            ),
        ]
    );
    assert!(t.is_lost());
    assert_eq!(t.transaction_status(), Some(TransactionStatus::Idle));
    assert_eq!(t.observe(&ready(TransactionStatus::Idle)).count(), 0);
}

#[test]
fn dropping_the_events_early_still_follows_the_chunk() {
    let stream = backend_stream();
    let mut t = BackendTracker::new();
    assert!(t.observe(&stream).next().is_some());
    assert_eq!(t.transaction_status(), Some(TransactionStatus::Idle));
    assert_eq!(t.parameter("TimeZone"), Some("Europe/Paris"));
    assert!(t.at_boundary());
}

fn parse(statement: &str, query: &str, types: &[u32]) -> Vec<u8> {
    let mut body = Vec::new();
    for s in [statement, query] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&(types.len() as u16).to_be_bytes());
    for t in types {
        body.extend_from_slice(&t.to_be_bytes());
    }
    wire(b'P', &body)
}

#[test]
fn frontend_events_do_not_depend_on_chunk_boundaries() {
    let stream = [
        wire(b'Q', b"select 1\0"),
        parse("s1", "select $1", &[23]),
        wire(b'B', &[0; 20]),
        wire(b'E', b"\0\0\0\0\0"),
        wire(b'S', b""),
        parse("", "insert into t values ($1)", &[]),
        wire(b'p', b"not a password, but never read\0"),
        wire(b'Q', b"\0"),
        wire(b'X', b""),
    ]
    .concat();
    let mut t = FrontendTracker::new();
    let whole = frontend_cut(&mut t, &stream, &[]);
    let events: Vec<FrontendEvent> = whole.iter().map(|(_, e)| e.clone().unwrap()).collect();
    assert_eq!(
        events,
        vec![
            FrontendEvent::Query("select 1".into()),
            FrontendEvent::Parse {
                statement: "s1".into(),
                query: "select $1".into()
            },
            FrontendEvent::Parse {
                statement: "".into(),
                query: "insert into t values ($1)".into()
            },
            FrontendEvent::Query("".into()),
            FrontendEvent::Terminate,
        ]
    );
    assert_eq!(whole.last().unwrap().0, stream.len());
    assert!(t.terminated());
    for cut in 0..=stream.len() {
        let mut t = FrontendTracker::new();
        assert_eq!(frontend_cut(&mut t, &stream, &[cut]), whole, "cut at {cut}");
    }
    let bytewise: Vec<usize> = (1..stream.len()).collect();
    let mut t = FrontendTracker::new();
    assert_eq!(frontend_cut(&mut t, &stream, &bytewise), whole);
}

#[test]
fn statements_over_the_limit_are_too_long_to_log() {
    let long = format!("select '{}'", "x".repeat(100));
    let stream = [
        wire(b'Q', format!("{long}\0").as_bytes()),
        parse("big", &long, &[]),
        wire(b'Q', b"select 2\0"),
    ]
    .concat();
    let mut t = FrontendTracker::with_max_statement(64);
    let events: Vec<_> = frontend_cut(&mut t, &stream, &[])
        .into_iter()
        .map(|(_, e)| e.unwrap())
        .collect();
    assert_eq!(
        events,
        vec![
            FrontendEvent::TooLong {
                kind: StatementKind::Query,
                len: long.len() + 1
            },
            FrontendEvent::TooLong {
                kind: StatementKind::Parse,
                len: long.len() + 7
            },
            FrontendEvent::Query("select 2".into()),
        ]
    );
    assert!(
        t.scanner.collected_capacity() < 64,
        "a long statement was buffered"
    );
}

#[test]
fn malformed_statements_are_reported_and_passed() {
    let stream = [
        wire(b'Q', b"no terminator"),
        wire(b'P', b"s\0select 1\0\0\x01"),
        wire(b'Q', b"select 3\0"),
    ]
    .concat();
    let seen = frontend_cut(&mut FrontendTracker::new(), &stream, &[]);
    assert!(matches!(seen[0].1, Err(TrackError::Malformed(_))));
    assert!(matches!(seen[1].1, Err(TrackError::Malformed(_))));
    assert_eq!(seen[2].1, Ok(FrontendEvent::Query("select 3".into())));
}

#[test]
fn unwatched_messages_allocate_nothing() {
    let stream = [
        wire(b'p', b"secret\0"),
        wire(b'd', &[0; 10_000]),
        wire(b'c', b""),
        wire(b'S', b""),
    ]
    .concat();
    let mut t = FrontendTracker::new();
    assert!(frontend_cut(&mut t, &stream, &[3, 700]).is_empty());
    assert_eq!(t.scanner.collected_capacity(), 0);
    let mut b = BackendTracker::new();
    let rows = [wire(b'D', &[1; 500]), wire(b'C', b"SELECT 1\0")].concat();
    assert!(backend_cut(&mut b, &rows, &[17]).is_empty());
    assert_eq!(b.scanner.collected_capacity(), 0);
}

#[test]
fn a_huge_terminate_is_still_a_terminate() {
    let mut t = FrontendTracker::with_max_statement(2);
    let seen = frontend_cut(&mut t, &wire(b'X', b"abc"), &[]);
    assert_eq!(seen, vec![(5, Ok(FrontendEvent::Terminate))]);
    assert!(t.terminated());
}
