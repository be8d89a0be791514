//! Tests of the scanner: boundaries at every chunk split, bodies never
//! collected unless watched, limits, and lengths that cannot be framed.

use super::*;
use crate::message::Message;

fn wire(tag: u8, body: &[u8]) -> Vec<u8> {
    Message::new(tag, body.to_vec()).encode().to_vec()
}

/// An event with its body copied out, and where in the stream it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Message { tag: u8, body: Vec<u8>, end: usize },
    TooLong { tag: u8, len: usize, end: usize },
    Noted { tag: u8, len: usize, end: usize },
    Error(MessageError),
}

/// Scans `stream` cut at `cuts` (offsets), collecting every event.
fn scan_cut(scanner: &mut Scanner, stream: &[u8], cuts: &[usize]) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&stream.len()]) {
        let chunk = &stream[start..end];
        let mut input = chunk;
        loop {
            let event = scanner.scan(&mut input);
            let at = end - input.len();
            match event {
                Ok(None) => break,
                Ok(Some(Event::Message { tag, body })) => seen.push(Seen::Message {
                    tag,
                    body: body.to_vec(),
                    end: at,
                }),
                Ok(Some(Event::TooLong { tag, len })) => {
                    seen.push(Seen::TooLong { tag, len, end: at })
                }
                Ok(Some(Event::Seen { tag, len })) => seen.push(Seen::Noted { tag, len, end: at }),
                Err(e) => seen.push(Seen::Error(e)),
            }
        }
        assert!(input.is_empty(), "a chunk was not used up");
        start = end;
    }
    seen
}

const WATCH: TagSet = TagSet::of(b"QXZ");

#[test]
fn tag_sets_hold_exactly_their_tags() {
    let set = TagSet::of(&[0, 63, 64, b'Q', 255]);
    for t in 0..=255u8 {
        assert_eq!(set.contains(t), [0, 63, 64, b'Q', 255].contains(&t), "{t}");
    }
    assert!(!TagSet::default().contains(0));
}

#[test]
fn finds_the_same_events_however_the_stream_is_cut() {
    let stream = [
        wire(b'Q', b"select 1\0"),
        wire(b'D', &[7; 300]),
        wire(b'X', b""),
        wire(b'Q', &[b'x'; 40]),
        wire(b'Z', b"I"),
        wire(b'C', b"SELECT 1\0"),
    ]
    .concat();
    let want = scan_cut(&mut Scanner::new(WATCH, 32), &stream, &[]);
    let q = wire(b'Q', b"select 1\0").len();
    let d = q + 305;
    assert_eq!(
        want,
        vec![
            Seen::Message {
                tag: b'Q',
                body: b"select 1\0".to_vec(),
                end: q
            },
            Seen::Message {
                tag: b'X',
                body: vec![],
                end: d + 5
            },
            Seen::TooLong {
                tag: b'Q',
                len: 40,
                end: d + 10
            },
            Seen::Message {
                tag: b'Z',
                body: b"I".to_vec(),
                end: d + 10 + 40 + 6
            },
        ]
    );
    for cut in 0..=stream.len() {
        for second in cut..=stream.len() {
            let mut s = Scanner::new(WATCH, 32);
            assert_eq!(
                scan_cut(&mut s, &stream, &[cut, second]),
                want,
                "cut at {cut} and {second}"
            );
            assert!(s.at_boundary());
        }
    }
    let bytewise: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(
        scan_cut(&mut Scanner::new(WATCH, 32), &stream, &bytewise),
        want
    );
}

#[test]
fn an_empty_watched_body_is_reported_with_its_header() {
    let mut s = Scanner::new(WATCH, 0);
    let x = wire(b'X', b"");
    let mut input = &x[..];
    assert_eq!(
        s.scan(&mut input),
        Ok(Some(Event::Message {
            tag: b'X',
            body: &[]
        }))
    );
    assert!(input.is_empty() && s.at_boundary());
}

#[test]
fn unwatched_bodies_are_counted_past_never_copied() {
    let mut s = Scanner::new(WATCH, 1024);
    // A 100 MB CopyData, fed 64 KiB at a time.
    let len = 100 << 20;
    let mut header = vec![b'd'];
    header.extend_from_slice(&(len as u32 + 4).to_be_bytes());
    let piece = vec![0u8; 64 * 1024];
    let mut input = &header[..];
    assert_eq!(s.scan(&mut input), Ok(None));
    let mut left = len;
    while left > 0 {
        let n = left.min(piece.len());
        let mut input = &piece[..n];
        assert_eq!(s.scan(&mut input), Ok(None));
        assert!(input.is_empty());
        left -= n;
        assert_eq!(s.at_boundary(), left == 0);
    }
    assert!(s.at_boundary());
    assert_eq!(s.body.capacity(), 0, "nothing was collected");
}

#[test]
fn a_long_body_does_not_stay_allocated() {
    let mut s = Scanner::new(WATCH, 1 << 20);
    let stream = [wire(b'Q', &[b'x'; 100_000]), wire(b'Z', b"I")].concat();
    let seen = scan_cut(&mut s, &stream, &[]);
    assert_eq!(seen.len(), 2);
    assert!(s.body.capacity() <= KEEP_CAPACITY, "{}", s.body.capacity());
}

#[test]
fn lengths_that_cannot_be_framed_break_the_scanner_once() {
    let cases = [
        (
            vec![b'Q', 0, 0, 0, 3],
            MessageError::BadLength { tag: b'Q', len: 3 },
        ),
        (
            vec![b'D', 0, 0, 0, 0],
            MessageError::BadLength { tag: b'D', len: 0 },
        ),
        (
            vec![b'D', 0x80, 0, 0, 0],
            MessageError::TooLong {
                tag: b'D',
                len: 1 << 31,
                max: MAX_WIRE_LEN,
            },
        ),
    ];
    for (header, error) in cases {
        let stream = [wire(b'Z', b"I"), header, wire(b'Z', b"T")].concat();
        let cuts: Vec<usize> = (1..stream.len()).collect();
        for cuts in [&[][..], &cuts[..]] {
            let mut s = Scanner::new(WATCH, 32);
            let seen = scan_cut(&mut s, &stream, cuts);
            assert_eq!(
                seen,
                vec![
                    Seen::Message {
                        tag: b'Z',
                        body: b"I".to_vec(),
                        end: 6
                    },
                    Seen::Error(error.clone())
                ]
            );
            assert!(s.is_broken() && !s.at_boundary());
        }
    }
}

#[test]
fn noted_headers_are_reported_without_their_bodies() {
    let stream = [
        wire(b'B', b"0123456789"),
        wire(b'Q', b"SELECT\0"),
        wire(b'S', b""),
    ]
    .concat();
    let watched = TagSet::of(b"Q");
    let noted = TagSet::of(b"BS");
    for cut in 0..=stream.len() {
        let mut s = Scanner::noting(watched, noted, 64);
        let seen = scan_cut(&mut s, &stream, &[cut]);
        assert_eq!(
            seen,
            vec![
                // A noted message is reported once its header is in.
                Seen::Noted {
                    tag: b'B',
                    len: 10,
                    end: 5
                },
                Seen::Message {
                    tag: b'Q',
                    body: b"SELECT\0".to_vec(),
                    end: 27
                },
                Seen::Noted {
                    tag: b'S',
                    len: 0,
                    end: 32
                },
            ],
            "cut at {cut}"
        );
        assert!(s.collected_capacity() < 64);
    }
}
