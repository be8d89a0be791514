//! Arbitrary bytes as the peer's side of an `access tcp` WebSocket, read
//! through `warren_transport::ws` as the edge (server role) or the access
//! client (client role) reads it, with the limits both use
//! (`ws::config()`). Reading must end in an error or end of stream without
//! a panic, never hand on more than `ws::MAX_MESSAGE` bytes at once, and
//! never allocate past what libFuzzer's `-malloc_limit_mb` allows (the
//! script sets it well under a header's claimed sizes). What is read is
//! written back, so the writing half meets every state too.
//!
//! The first byte chooses: bit 7 the mode, bit 6 the role, bits 0..5 how
//! many bytes the peer's pipe holds (so frames arrive cut anywhere). Raw
//! mode sends the rest as is; frame mode reads it as frame descriptions
//! and builds real frames from them, with payloads up to 2 MiB, so
//! messages and fragmented messages cross the 1 MiB bound.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use warren_transport::copy::{ChunkRead, ChunkWrite};
use warren_transport::ws;

/// Most bytes frame mode builds from one input.
const MAX_BUILT: usize = 3 << 20;

/// Frames described by `data`, each as: the first header byte as is (FIN,
/// RSV, opcode); a length and shape (three bytes: with the shape's top
/// nibble 15, a 16-bit length shifted by 0 to 5; with 14, the 16-bit
/// length; otherwise up to 127; the shape's bit 3 flips the mask bit from
/// what the role needs);
/// a masking key (four bytes); up to 16 payload bytes, the rest of the
/// payload filled with the last of them. A description cut short still
/// sends its header, which then claims bytes that never come.
fn frames(mut data: &[u8], role: Role) -> Vec<u8> {
    let mut out = Vec::new();
    let mut take = |n: usize| {
        let (head, tail) = data.split_at(n.min(data.len()));
        data = tail;
        head
    };
    loop {
        let &[first] = take(1) else { break };
        let &[l0, l1, shape] = take(3) else { break };
        // Mostly short frames; large ones (up to 2 MiB) when the top
        // bits are all set, so the time goes to framing, not to copying.
        let len = match shape >> 4 {
            15 => usize::from(u16::from_be_bytes([l0, l1])) << (shape & 7).min(5),
            14 => usize::from(u16::from_be_bytes([l0, l1])),
            _ => usize::from(l0 & 0x7f),
        };
        if out.len() + len > MAX_BUILT {
            break;
        }
        // A client masks its frames; a server does not.
        let masked = (role == Role::Server) != (shape & 8 != 0);
        out.push(first);
        let mask_bit = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => out.push(mask_bit | len as u8),
            126..=0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let key: [u8; 4] = take(4).try_into().unwrap_or([0; 4]);
        if masked {
            out.extend_from_slice(&key);
        }
        let given = take(len.min(16));
        let fill = given.last().copied().unwrap_or(b'a');
        let start = out.len();
        out.extend_from_slice(given);
        out.resize(start + len, fill);
        if masked {
            for (i, b) in out[start..].iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
    }
    out
}

/// Reads the WebSocket on `ours` to its end, writing back what it reads.
async fn read_all(ours: tokio::io::DuplexStream, role: Role) {
    let ws = WebSocketStream::from_raw_socket(ours, role, Some(ws::config())).await;
    let mut side = ws::side(ws);
    loop {
        match side.read.read_chunk().await {
            Ok(Some(chunk)) => {
                assert!(!chunk.is_empty(), "an empty chunk is end of stream");
                assert!(
                    chunk.len() <= ws::MAX_MESSAGE,
                    "{} bytes at once",
                    chunk.len()
                );
                if side.write.write_chunk(chunk).await.is_err() {
                    side.write.abort().await;
                }
            }
            Ok(None) => {
                let _ = side.write.finish().await;
                break;
            }
            Err(_) => {
                side.write.close().await;
                break;
            }
        }
    }
    // Writing after the end must fail or succeed, not panic.
    let _ = side.write.write_chunk(Bytes::from_static(b"x")).await;
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else {
        return;
    };
    let role = if control & 0x40 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let (input, pipe) = if control & 0x80 == 0 {
        (rest.to_vec(), 1 + usize::from(control & 0x3f))
    } else {
        (frames(rest, role), 4096 << (control & 7))
    };
    let (ours, theirs) = tokio::io::duplex(pipe);
    let (mut from_peer, mut to_peer) = tokio::io::split(theirs);
    runtime().block_on(async {
        let send = async {
            // The reader may stop early and drop its end: writes then fail.
            let _ = to_peer.write_all(&input).await;
            let _ = to_peer.shutdown().await;
        };
        // Takes what our side writes back until it drops its end.
        let drain = async {
            let mut buf = vec![0; 64 * 1024];
            while matches!(from_peer.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        tokio::join!(send, drain, read_all(ours, role));
    });
});
