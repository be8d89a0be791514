//! Arbitrary text as a tunnel token: decoding must never panic, and a
//! token that decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_proto::token::TunnelToken;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = TunnelToken::decode(text) {
            assert_eq!(TunnelToken::decode(&t.encode()).unwrap(), t);
        }
    }
});
