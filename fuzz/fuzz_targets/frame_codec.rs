//! Arbitrary bytes through the frame decoder and every message decoder a
//! peer can reach: none may panic, and whatever decodes must re-encode to
//! something that decodes to the same value.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_proto::control::ControlMessage;
use warren_proto::frame::{FrameDecoder, FrameType};
use warren_proto::stream::{BodyFrame, StreamRequest, StreamResponse};

fuzz_target!(|data: &[u8]| {
    // Keep-alive messages carry any u64: take one from the input, so Ping
    // and Pong are exercised even before the fuzzer finds their tags.
    if let Some(id) = data.get(..8) {
        let id = u64::from_be_bytes(id.try_into().unwrap());
        for m in [ControlMessage::Ping(id), ControlMessage::Pong(id)] {
            let mut b = BytesMut::from(&m.encode()[..]);
            let f = FrameDecoder::new().decode(&mut b).unwrap().unwrap();
            assert!(b.is_empty());
            assert_eq!(ControlMessage::decode(&f.payload).unwrap(), m);
        }
    }
    let mut buf = BytesMut::from(data);
    let mut dec = FrameDecoder::new();
    while let Ok(Some(frame)) = dec.decode(&mut buf) {
        match frame.kind {
            FrameType::Control => {
                if let Ok(m) = ControlMessage::decode(&frame.payload) {
                    let enc = m.encode();
                    let mut b = BytesMut::from(&enc[..]);
                    let f = FrameDecoder::new().decode(&mut b).unwrap().unwrap();
                    assert_eq!(ControlMessage::decode(&f.payload).unwrap(), m);
                }
            }
            FrameType::Request => {
                if let Ok(r) = StreamRequest::decode(&frame) {
                    let mut b = BytesMut::from(&r.encode()[..]);
                    let f = FrameDecoder::new().decode(&mut b).unwrap().unwrap();
                    assert_eq!(StreamRequest::decode(&f).unwrap(), r);
                }
            }
            FrameType::Response => {
                if let Ok(r) = StreamResponse::decode(&frame) {
                    let mut b = BytesMut::from(&r.encode()[..]);
                    let f = FrameDecoder::new().decode(&mut b).unwrap().unwrap();
                    assert_eq!(StreamResponse::decode(&f).unwrap(), r);
                }
            }
            _ => {
                let _ = BodyFrame::decode(frame);
            }
        }
    }
});
