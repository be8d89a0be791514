//! Arbitrary bytes as a client's first PostgreSQL message: parsing must
//! never panic, a message that parses must encode back to exactly the bytes
//! it came from, and a prefix of it must not parse as a whole message.
//! (The negotiation built on it is fuzzed by `pg_core`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_pg::{parse_first, FirstMessage, Startup, TLS_HANDSHAKE_BYTE};

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
});
