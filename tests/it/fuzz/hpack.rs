//! The HPACK path of the frame decoder: header lists encoded by an HPACK
//! encoder and split into HEADERS and CONTINUATION frames anywhere decode to
//! the same fields, across blocks sharing the dynamic table; arbitrary header
//! blocks are decoded or reported as undecodable, never a panic.

use super::fuzz;
use grpc_conform::wire::{
    frame::{flag::END_HEADERS, frame, kind},
    log::{Body, Dir, FrameDecoder},
};
use proptest::prelude::*;

fn field() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just(":status".to_string()),
            Just("content-type".to_string()),
            Just("grpc-status".to_string()),
            "[a-z][a-z0-9-]{0,20}",
        ],
        ".{0,40}",
    )
}

/// A header block as HEADERS plus CONTINUATIONs of `piece` bytes each.
fn frames_of(block: &[u8], stream: u32, piece: usize) -> Vec<u8> {
    let parts: Vec<&[u8]> = if block.is_empty() {
        vec![&[][..]]
    } else {
        block.chunks(piece).collect()
    };
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = if i + 1 == parts.len() { END_HEADERS } else { 0 };
        let kind = if i == 0 {
            kind::HEADERS
        } else {
            kind::CONTINUATION
        };
        out.extend(frame(kind, last, stream, part));
    }
    out
}

#[test]
fn encoded_header_lists_decode_to_the_same_fields() {
    let lists = prop::collection::vec(prop::collection::vec(field(), 0..12), 1..4);
    fuzz(
        file!(),
        "hpack round trip",
        (lists, 1usize..64),
        |(lists, piece)| {
            let mut encoder = loona_hpack::Encoder::new();
            let mut decoder = FrameDecoder::new(Dir::In);
            for (i, fields) in lists.iter().enumerate() {
                let block =
                    encoder.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
                // Within the decoder's CONTINUATION limit.
                let piece = piece.max(block.len() / 60 + 1);
                let mut got = Vec::new();
                decoder.feed(&frames_of(&block, 2 * i as u32 + 1, piece), 0, &mut |f| {
                    got.push(f)
                });
                prop_assert_eq!(got.len(), 1);
                match &got[0].body {
                    Body::Headers {
                        fields: decoded, ..
                    } => prop_assert_eq!(decoded, fields),
                    other => prop_assert!(false, "decoded as {:?}", other),
                }
            }
            Ok(())
        },
    );
}

#[test]
fn arbitrary_header_blocks_never_panic() {
    let blocks = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..256), 1..4);
    fuzz(
        file!(),
        "hpack (any block)",
        (blocks, 1usize..64),
        |(blocks, piece)| {
            let mut decoder = FrameDecoder::new(Dir::In);
            for (i, block) in blocks.iter().enumerate() {
                let mut got = Vec::new();
                decoder.feed(&frames_of(block, 2 * i as u32 + 1, piece), 0, &mut |f| {
                    got.push(f)
                });
                prop_assert!(got.len() <= block.len() / piece + 2);
            }
            Ok(())
        },
    );
}
