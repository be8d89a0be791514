use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::message::{error_response, ready_for_query, tag, Message, Severity};
use crate::startup::{parse_first, FirstMessage};

fn msg(tag: u8, body: &[u8]) -> Bytes {
    Message::new(tag, Bytes::copy_from_slice(body)).encode()
}

fn q(sql: &str) -> Bytes {
    query(sql)
}

fn parse(name: &str, sql: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(name.as_bytes());
    b.put_u8(0);
    b.put_slice(sql.as_bytes());
    b.put_u8(0);
    b.put_u16(0);
    msg(b'P', &b)
}

fn rfq(s: TransactionStatus) -> Bytes {
    ready_for_query(s).encode()
}

fn cat(parts: &[Bytes]) -> Vec<u8> {
    parts.iter().flat_map(|b| b.iter().copied()).collect()
}

const IDLE: TransactionStatus = TransactionStatus::Idle;
const IN_TX: TransactionStatus = TransactionStatus::InTransaction;

#[test]
fn a_simple_query_releases_at_its_ready_for_query() {
    let mut f = Flow::new(false);
    assert!(f.releasable());
    let c = f.from_client(&q("SELECT 1")).unwrap();
    assert_eq!(c.forward, q("SELECT 1").len());
    assert!(!c.terminated);
    assert!(!f.releasable() && f.busy());
    let answer = cat(&[msg(b'T', b"\0\0"), msg(b'C', b"SELECT 1\0"), rfq(IDLE)]);
    // Byte by byte: the scanner keeps its place.
    for b in &answer[..answer.len() - 1] {
        f.from_server(std::slice::from_ref(b)).unwrap();
        assert!(!f.releasable());
    }
    f.from_server(&answer[answer.len() - 1..]).unwrap();
    assert!(f.releasable() && !f.busy());
    assert_eq!(f.cleanup(), Cleanup::Reuse);
}

#[test]
fn a_transaction_keeps_its_connection_until_it_ends() {
    let mut f = Flow::new(false);
    f.from_client(&q("BEGIN")).unwrap();
    f.from_server(&rfq(IN_TX)).unwrap();
    assert!(!f.releasable());
    assert_eq!(
        f.cleanup(),
        Cleanup::Reset {
            rollback: true,
            discard: false
        }
    );
    f.from_client(&q("COMMIT")).unwrap();
    f.from_server(&rfq(IDLE)).unwrap();
    assert!(f.releasable());
}

#[test]
fn pipelined_queries_wait_for_every_answer() {
    let mut f = Flow::new(false);
    f.from_client(&cat(&[q("SELECT 1"), q("SELECT 2")]))
        .unwrap();
    f.from_server(&rfq(IDLE)).unwrap();
    assert!(!f.releasable(), "one answer is still to come");
    f.from_server(&rfq(IDLE)).unwrap();
    assert!(f.releasable());
    assert_eq!(f.from_server(&rfq(IDLE)), Err(FlowError::UnexpectedReady));
}

#[test]
fn an_extended_batch_is_open_until_its_sync() {
    let mut f = Flow::new(false);
    let bind = msg(b'B', b"\0\0\0\0\0\0\0\0");
    let exec = msg(b'E', b"\0\0\0\0\0");
    f.from_client(&cat(&[parse("", "SELECT $1"), bind]))
        .unwrap();
    assert!(!f.releasable());
    assert_eq!(f.cleanup(), Cleanup::Close, "a batch without its Sync");
    f.from_client(&exec).unwrap();
    f.from_client(&msg(b'S', b"")).unwrap();
    f.from_server(&cat(&[msg(b'1', b""), msg(b'2', b""), rfq(IDLE)]))
        .unwrap();
    assert!(f.releasable());
    assert!(f.pins().is_empty(), "the unnamed statement pins nothing");
}

#[test]
fn a_flush_without_sync_keeps_the_connection() {
    let mut f = Flow::new(false);
    f.from_client(&cat(&[parse("", "SELECT 1"), msg(b'H', b"")]))
        .unwrap();
    f.from_server(&msg(b'1', b"")).unwrap();
    assert!(!f.releasable());
}

#[test]
fn named_statements_pass_and_session_state_pins() {
    let mut f = Flow::new(false);
    let c = f
        .from_client(&cat(&[parse("s1", "SELECT 1"), msg(b'S', b"")]))
        .unwrap();
    assert!(
        c.new_pins.is_empty(),
        "the pool's statement cache carries it"
    );
    assert!(!c.drops_prepared);
    f.from_server(&rfq(IDLE)).unwrap();
    assert!(f.releasable());
    let c = f.from_client(&q("LISTEN x")).unwrap();
    assert_eq!(c.new_pins, Pin::Listen.into());
    f.from_server(&rfq(IDLE)).unwrap();
    assert_eq!(
        f.cleanup(),
        Cleanup::Reset {
            rollback: false,
            discard: true
        }
    );
    assert_eq!(f.pins().to_string(), "LISTEN");
    let c = f.from_client(&q("DISCARD ALL")).unwrap();
    assert!(c.drops_prepared);
}

#[test]
fn settings_changes_are_tracked_not_pinned() {
    let mut f = Flow::new(false);
    let c = f
        .from_client(&q(
            "SET search_path = a; SELECT set_config('x.y', '1', false)",
        ))
        .unwrap();
    assert!(c.new_pins.is_empty());
    assert!(f.settings_touched());
    f.from_server(&rfq(IDLE)).unwrap();
    assert!(
        f.releasable(),
        "at rest: the driver reads the settings back"
    );
    assert_eq!(
        f.cleanup(),
        Cleanup::Reset {
            rollback: false,
            discard: true
        },
        "a client gone before they were read leaves them to be discarded"
    );
    f.settings_read();
    assert!(!f.settings_touched());
    assert_eq!(f.cleanup(), Cleanup::Reuse);
    // SET LOCAL never outlives its transaction.
    f.from_client(&q("BEGIN; SET LOCAL work_mem = '1MB'; COMMIT"))
        .unwrap();
    assert!(!f.settings_touched());
}

#[test]
fn session_mode_never_releases() {
    let mut f = Flow::new(true);
    f.from_client(&q("SELECT 1")).unwrap();
    f.from_server(&rfq(IDLE)).unwrap();
    assert!(!f.releasable());
    assert_eq!(
        f.cleanup(),
        Cleanup::Reset {
            rollback: false,
            discard: true
        }
    );
}

#[test]
fn a_too_long_statement_pins() {
    let mut f = Flow::new(false);
    let long = format!("SELECT '{}'", "x".repeat(MAX_INSPECTED + 1));
    let c = f.from_client(&q(&long)).unwrap();
    assert_eq!(c.new_pins, Pin::Uninspected.into());
    assert!(f.busy());
}

#[test]
fn terminate_is_not_forwarded() {
    let mut f = Flow::new(false);
    let x = msg(tag::TERMINATE, b"");
    let chunk = cat(&[q("SELECT 1"), x.clone()]);
    let c = f.from_client(&chunk).unwrap();
    assert!(c.terminated);
    assert_eq!(c.forward, q("SELECT 1").len());
    assert_eq!(f.cleanup(), Cleanup::Close, "its query is still running");

    // A Terminate split across reads: its first bytes went already.
    let mut f = Flow::new(false);
    let c = f.from_client(&x[..2]).unwrap();
    assert!(!c.terminated && c.forward == 2);
    let c = f.from_client(&x[2..]).unwrap();
    assert!(c.terminated);
    assert_eq!(c.forward, 0);
    assert_eq!(f.cleanup(), Cleanup::Close);

    let mut f = Flow::new(false);
    let c = f.from_client(&x).unwrap();
    assert!(c.terminated && c.forward == 0);
    assert_eq!(f.cleanup(), Cleanup::Reuse);
}

#[test]
fn copy_in_keeps_the_connection_until_its_answer() {
    let mut f = Flow::new(false);
    f.from_client(&q("COPY t FROM STDIN")).unwrap();
    f.from_server(&msg(b'G', b"\0\0\0")).unwrap();
    f.from_client(&cat(&[msg(b'd', b"1\n"), msg(b'c', b"")]))
        .unwrap();
    assert!(!f.releasable());
    f.from_server(&cat(&[msg(b'C', b"COPY 1\0"), rfq(IDLE)]))
        .unwrap();
    assert!(f.releasable());
}

#[test]
fn bad_framing_is_an_error() {
    let mut f = Flow::new(false);
    assert!(matches!(
        f.from_client(&[b'Q', 0, 0, 0, 1]),
        Err(FlowError::Client(_))
    ));
    assert_eq!(f.cleanup(), Cleanup::Close, "its state is unknown");
    assert!(!f.releasable());
    let mut f = Flow::new(false);
    f.from_client(&q("SELECT 1")).unwrap();
    assert!(matches!(
        f.from_server(&msg(b'Z', b"IX")),
        Err(FlowError::Server(_))
    ));
    let mut f = Flow::new(false);
    assert!(matches!(
        f.from_client(&msg(b'Q', b"no terminator")),
        Err(FlowError::Client(_))
    ));
}

// ---- startup settings ----

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn client_settings_carry_gucs_and_options() {
    let s = client_settings(&params(&[
        ("user", "alice"),
        ("database", "orders"),
        ("application_name", "psql"),
        ("client_encoding", "UTF8"),
        (
            "options",
            "-c search_path=a,b --statement-timeout=5s -cwork_mem=64MB",
        ),
        ("DateStyle", "ISO"),
        ("replication", "false"),
    ]))
    .unwrap();
    assert_eq!(
        s,
        params(&[
            ("application_name", "psql"),
            ("client_encoding", "UTF8"),
            ("search_path", "a,b"),
            ("statement_timeout", "5s"),
            ("work_mem", "64MB"),
            ("datestyle", "ISO"),
        ])
    );
    assert_eq!(
        set_statements(&s[1..3]).unwrap(),
        "SELECT set_config('client_encoding', 'UTF8', false), set_config('search_path', 'a,b', false)"
    );
    assert_eq!(set_statements(&[]), None);
    assert_eq!(
        set_statements(&params(&[("application_name", "it's")])).unwrap(),
        "SELECT set_config('application_name', 'it''s', false)"
    );
}

#[test]
fn client_settings_refuse_what_cannot_be_carried() {
    assert_eq!(
        client_settings(&params(&[("replication", "database")])),
        Err(StartupParamError::Replication)
    );
    assert!(matches!(
        client_settings(&params(&[("x; drop", "1")])),
        Err(StartupParamError::BadName(_))
    ));
    assert!(matches!(
        client_settings(&params(&[("options", "-d 5")])),
        Err(StartupParamError::Options(_))
    ));
    assert!(matches!(
        client_settings(&params(&[("options", "-c nothing")])),
        Err(StartupParamError::Options(_))
    ));
}

#[test]
fn the_greeting_is_a_login_a_client_accepts() {
    let key = crate::startup::CancelKey::new(Bytes::from_static(b"abcd")).unwrap();
    let g = greeting(&params(&[("server_version", "15.0")]), 7, &key);
    let mut buf = BytesMut::from(&g[..]);
    let mut d = crate::MessageDecoder::default();
    let tags: Vec<u8> = std::iter::from_fn(|| d.decode(&mut buf).unwrap())
        .map(|m| m.tag)
        .collect();
    assert_eq!(tags, b"RSKZ");
}

// ---- login ----

fn auth(code: u32, data: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32(code);
    b.put_slice(data);
    msg(b'R', &b)
}

fn drain(l: &mut ServerLogin) -> Vec<Login> {
    std::iter::from_fn(|| l.poll()).collect()
}

fn after_auth() -> Vec<u8> {
    cat(&[
        auth(0, b""),
        msg(b'S', b"server_version\x0015.4\0"),
        msg(b'K', b"\0\0\0\x2aKEY!"),
        msg(b'N', b"SNOTICE\0\0"),
        rfq(IDLE),
    ])
}

#[test]
fn login_startup_names_the_role_and_database() {
    let (_, startup) = ServerLogin::new(
        "app",
        "orders",
        "pw",
        &params(&[("application_name", "warren")]),
    )
    .unwrap();
    let Some((FirstMessage::Startup(s), _)) = parse_first(&startup).unwrap() else {
        panic!("a startup")
    };
    assert_eq!(s.user(), "app");
    assert_eq!(s.database(), "orders");
    assert_eq!(s.application_name(), Some("warren"));
}

#[test]
fn login_with_a_cleartext_password_then_parameters() {
    let (mut l, _) = ServerLogin::new("app", "orders", "s3cret", &[]).unwrap();
    l.feed(&auth(3, b""));
    assert_eq!(drain(&mut l), vec![Login::Send(msg(b'p', b"s3cret\0"))]);
    let rest = after_auth();
    // Split at every byte boundary of the second half.
    for b in rest.chunks(3) {
        l.feed(b);
    }
    let out = drain(&mut l);
    let [Login::Ready(e)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(e.params, params(&[("server_version", "15.4")]));
    assert_eq!(e.key.as_ref().unwrap().0, 42);
    assert_eq!(e.status, IDLE);
    assert!(e.rest.is_empty());
}

#[test]
fn login_with_md5() {
    let (mut l, _) = ServerLogin::new("app", "orders", "pw", &[]).unwrap();
    l.feed(&auth(5, b"salt"));
    let want = postgres_protocol::authentication::md5_hash(b"app", b"pw", *b"salt");
    let mut body = want.into_bytes();
    body.push(0);
    assert_eq!(drain(&mut l), vec![Login::Send(msg(b'p', &body))]);
}

#[test]
fn login_with_scram_sends_a_client_first_message_without_channel_binding() {
    let (mut l, _) = ServerLogin::new("app", "orders", "pw", &[]).unwrap();
    l.feed(&auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"));
    let out = drain(&mut l);
    let [Login::Send(first)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(first[0], b'p');
    let body = &first[5..];
    assert!(body.starts_with(b"SCRAM-SHA-256\0"));
    assert!(
        body[18..].starts_with(b"n,,n=,r="),
        "gs2 header n: no binding"
    );
    // A server-first message with another nonce is refused.
    l.feed(&auth(11, b"r=other,s=c2FsdA==,i=4096"));
    let out = drain(&mut l);
    assert!(
        matches!(&out[..], [Login::Failed(LoginError::Scram { role, .. })] if role == "app"),
        "{out:?}"
    );
}

#[test]
fn login_refusals_say_what_to_change() {
    let (mut l, _) = ServerLogin::new("app", "orders", "pw", &[]).unwrap();
    l.feed(&auth(10, b"OTHER\0\0"));
    let [Login::Failed(e)] = &drain(&mut l)[..] else {
        panic!()
    };
    assert!(e.to_string().contains("scram-sha-256"), "{e}");
    assert!(!e.retryable());

    let (mut l, _) = ServerLogin::new("app", "orders", "pw", &[]).unwrap();
    l.feed(&auth(7, b""));
    assert!(matches!(
        &drain(&mut l)[..],
        [Login::Failed(LoginError::Unsupported {
            method: "GSSAPI",
            ..
        })]
    ));

    let (mut l, _) = ServerLogin::new("app", "orders", "pw", &[]).unwrap();
    l.feed(&error_response(Severity::Fatal, "28P01", "password authentication failed").encode());
    let [Login::Failed(e)] = &drain(&mut l)[..] else {
        panic!()
    };
    assert_eq!(
        e.to_string(),
        "the database refused Warren's login as role app: password authentication failed"
    );

    let (mut l, _) = ServerLogin::new("app", "orders", "pw", &[]).unwrap();
    l.feed(&error_response(Severity::Fatal, "53300", "too many connections").encode());
    let [Login::Failed(e)] = &drain(&mut l)[..] else {
        panic!()
    };
    assert!(e.retryable());

    let (mut l, _) = ServerLogin::new("app", "orders", "pw", &[]).unwrap();
    l.eof();
    assert!(matches!(
        &drain(&mut l)[..],
        [Login::Failed(LoginError::Closed { .. })]
    ));

    let (mut l, _) = ServerLogin::new("app", "orders", "pw", &[]).unwrap();
    l.feed(&msg(b'D', b""));
    assert!(matches!(
        &drain(&mut l)[..],
        [Login::Failed(LoginError::Unexpected(b'D'))]
    ));
    // Nothing after the failure.
    l.feed(&auth(0, b""));
    assert!(drain(&mut l).is_empty());
}

#[test]
fn the_password_is_not_in_debug_output() {
    let (l, _) = ServerLogin::new("app", "orders", "hunter2", &[]).unwrap();
    assert!(!format!("{l:?}").contains("hunter2"));
}

#[test]
fn data_rows_are_read_with_nulls() {
    let mut b = BytesMut::new();
    b.put_u16(3);
    b.put_i32(2);
    b.put_slice(b"ab");
    b.put_i32(-1);
    b.put_i32(0);
    assert_eq!(
        data_row(&b).unwrap(),
        vec![Some("ab".to_owned()), None, Some(String::new())]
    );
    assert!(data_row(&b[..b.len() - 1]).is_err());
    assert!(data_row(&[0, 1, 0, 0, 0, 9, b'x']).is_err());
    assert!(data_row(&[0]).is_err());
}
