//! The HTTP/2 frame decoders: frames split anywhere are found again by the
//! header-only `FrameReader` and the decoding `FrameDecoder` alike; arbitrary
//! bytes never make either (or the bounded `FrameLog`) panic.

use super::fuzz;
use grpc_conform::wire::{
    frame::{FrameHeader, FrameReader, CLIENT_PREFACE, HEADER_LEN},
    log::{Dir, FrameDecoder},
    recorder::FrameLog,
};
use proptest::prelude::*;

/// A frame of any type 0-10, flags, stream and a short payload.
fn any_frame() -> impl Strategy<Value = (u8, u8, u32, Vec<u8>)> {
    (
        0u8..=10,
        any::<u8>(),
        0u32..0x8000_0000,
        prop::collection::vec(any::<u8>(), 0..64),
    )
}

fn chunks(bytes: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    out
}

#[test]
fn frames_split_anywhere_are_found_again() {
    let input = (
        prop::collection::vec(any_frame(), 0..16),
        prop::collection::vec(1usize..50, 1..8),
    );
    fuzz(
        file!(),
        "frame reader round trip",
        input,
        |(frames, sizes)| {
            let mut wire = CLIENT_PREFACE.to_vec();
            let mut want = Vec::new();
            for (kind, flags, stream_id, payload) in &frames {
                let header = FrameHeader {
                    length: payload.len() as u32,
                    kind: *kind,
                    flags: *flags,
                    stream_id: *stream_id,
                };
                prop_assert_eq!(FrameHeader::parse(&header.encode()), header);
                wire.extend(grpc_conform::wire::frame::frame(
                    *kind, *flags, *stream_id, payload,
                ));
                want.push(header);
            }
            let mut reader = FrameReader::from_client();
            let mut decoder = FrameDecoder::new(Dir::Out);
            let (mut seen, mut decoded) = (Vec::new(), 0usize);
            for chunk in chunks(&wire, &sizes) {
                reader.feed(&chunk, |h| seen.push(*h));
                decoder.feed(&chunk, 0, &mut |_| decoded += 1);
            }
            prop_assert_eq!(seen, want);
            prop_assert!(reader.at_boundary());
            // A header block waiting for CONTINUATION yields no frame of its own.
            prop_assert!(decoded <= frames.len());
            Ok(())
        },
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let input = (
        prop::collection::vec(any::<u8>(), 0..4096),
        prop::collection::vec(1usize..600, 1..8),
        any::<bool>(),
    );
    fuzz(
        file!(),
        "frame decoder (any bytes)",
        input,
        |(bytes, sizes, inbound)| {
            let dir = if inbound { Dir::In } else { Dir::Out };
            let log = FrameLog::new();
            let mut reader = FrameReader::from_server();
            for chunk in chunks(&bytes, &sizes) {
                log.feed(dir, &chunk);
                reader.feed(&chunk, |h| assert!(h.length < 1 << 24));
            }
            // Every frame decoded is whole: at most one per 9 bytes of input.
            prop_assert!(log.frames().len() <= bytes.len() / HEADER_LEN);
            let _ = grpc_conform::wire::log::render_trace(&log.frames(), &[]);
            Ok(())
        },
    );
}
