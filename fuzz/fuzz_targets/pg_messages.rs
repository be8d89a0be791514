//! Arbitrary bytes through the PostgreSQL regular-phase framer, fed in
//! chunks: it must never panic nor yield a message over its limit, chunking
//! must not change what it yields, what it yields must re-encode to the
//! bytes it took, and no message helper may panic on what it yields.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_pg::message::{
    backend_key_data, parse_backend_key_data, parse_fields, parse_parse, parse_query,
    parse_ready_for_query, ready_for_query, Message, MessageDecoder, MessageError,
};

/// Decodes `input` fed `chunk` bytes at a time, up to the first error.
fn decode(max_len: usize, input: &[u8], chunk: usize) -> (Vec<Message>, Option<MessageError>) {
    let mut dec = MessageDecoder::new(max_len);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn inspect(m: &Message) {
    let _ = parse_query(m);
    let _ = parse_parse(m);
    if let Ok((pid, key)) = parse_backend_key_data(m) {
        assert_eq!(&backend_key_data(pid, &key), m);
    }
    if let Ok(status) = parse_ready_for_query(m) {
        assert_eq!(&ready_for_query(status), m);
    }
    if let Ok(fields) = parse_fields(m) {
        assert_eq!(parse_fields(&fields.to_error()).unwrap(), fields);
    }
}

fuzz_target!(|data: &[u8]| {
    let [l0, l1, c, input @ ..] = data else {
        return;
    };
    let max_len = 4 + usize::from(u16::from_be_bytes([*l0, *l1]));
    let chunk = usize::from(*c).max(1);

    let (msgs, err) = decode(max_len, input, chunk);
    for m in &msgs {
        assert!(m.body.len() + 4 <= max_len, "a message over the limit");
        inspect(m);
    }
    let (whole, whole_err) = decode(max_len, input, input.len().max(1));
    assert_eq!(msgs, whole, "chunking changed the messages");
    assert_eq!(err, whole_err, "chunking changed the error");

    let encoded: Vec<u8> = msgs.iter().flat_map(|m| m.encode()).collect();
    assert_eq!(&encoded[..], &input[..encoded.len()]);
});
