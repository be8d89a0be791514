//! Arbitrary bytes as a client's first PostgreSQL message: parsing must
//! never panic, a message that parses must encode back to exactly the bytes
//! it came from, and reading it from a stream must agree with parsing it
//! and leave every byte after it unread.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use warren_pg::startup::StartupError;
use warren_pg::{
    parse_first, read_first, FirstMessage, Startup, MAX_STARTUP_LEN, TLS_HANDSHAKE_BYTE,
};

/// Runs a future that cannot wait (it reads from a slice) to completion.
fn now<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("reading from a slice never waits"),
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_first(data);
    if let Ok(Some((m, n))) = &parsed {
        match m {
            FirstMessage::DirectTls => {
                assert_eq!(*n, 0);
                assert_eq!(data.first(), Some(&TLS_HANDSHAKE_BYTE));
            }
            _ => {
                assert_eq!(&m.encode()[..], &data[..*n], "re-encodes exactly");
                assert!(parse_first(&data[..*n - 1]).unwrap().is_none());
            }
        }
        if let FirstMessage::Startup(s) = m {
            assert!(!s.user().is_empty() && !s.database().is_empty());
            let rebuilt = Startup::new(s.version(), s.params().to_vec()).unwrap();
            assert_eq!(&rebuilt, s, "the builder accepts what the parser does");
        }
    }

    let mut rest = data;
    let read = now(read_first(&mut rest, MAX_STARTUP_LEN));
    match (parsed, read) {
        (Ok(Some((m, n))), Ok(first)) => {
            let taken = n.max(1);
            assert_eq!(first.message, m);
            assert_eq!(&first.raw[..], &data[..taken]);
            assert_eq!(rest, &data[taken..], "read nothing past the message");
        }
        (Ok(None), Err(StartupError::Closed | StartupError::Truncated { .. })) => {}
        (Err(p), Err(r)) => assert_eq!(p.to_string(), r.to_string()),
        (p, r) => panic!("parse_first gave {p:?} but read_first {r:?}"),
    }
});
