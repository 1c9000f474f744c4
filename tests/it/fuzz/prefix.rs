//! The gRPC message-prefix reader: messages split anywhere are read back
//! with the same prefixes by `MessageReader` and the same bodies by the
//! driver's `Deframer`; arbitrary bytes never make either panic.

use super::fuzz;
use grpc_conform::{
    drive::codec::{Deframer, MAX_RECEIVED},
    wire::message::{MessagePrefix, MessageReader, PREFIX_LEN},
};
use proptest::prelude::*;

/// Cuts `bytes` at the given fractions.
fn split(bytes: &[u8], cuts: &[f64]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| (bytes.len() as f64 * c) as usize)
        .collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

#[test]
fn messages_split_anywhere_read_back_whole() {
    let messages = prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)),
        0..8,
    );
    let cuts = prop::collection::vec(0.0..1.0f64, 0..12);
    fuzz(
        file!(),
        "message prefix round trip",
        (messages, cuts),
        |(messages, cuts)| {
            let mut wire = Vec::new();
            for (flag, body) in &messages {
                let prefix = MessagePrefix {
                    compressed: *flag,
                    length: body.len() as u32,
                };
                prop_assert_eq!(MessagePrefix::parse(prefix.encode()), prefix);
                wire.extend(prefix.encode());
                wire.extend(body);
            }
            let mut reader = MessageReader::new();
            let mut deframer = Deframer::default();
            let (mut prefixes, mut bodies) = (Vec::new(), Vec::new());
            for chunk in split(&wire, &cuts) {
                reader
                    .feed(&chunk, |p| {
                        prefixes.push((p.compressed, p.length as usize));
                        Ok::<_, ()>(())
                    })
                    .unwrap();
                deframer.push(&chunk);
                while let Some((flag, body)) = deframer.next_message().unwrap() {
                    bodies.push((flag, body.to_vec()));
                }
            }
            let want: Vec<(u8, usize)> = messages.iter().map(|(f, b)| (*f, b.len())).collect();
            prop_assert_eq!(prefixes, want);
            prop_assert_eq!(bodies, messages);
            prop_assert!(reader.at_boundary());
            prop_assert_eq!(deframer.leftover(), 0);
            Ok(())
        },
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let input = (
        prop::collection::vec(any::<u8>(), 0..2048),
        prop::collection::vec(0.0..1.0f64, 0..8),
    );
    fuzz(
        file!(),
        "message prefix (any bytes)",
        input,
        |(bytes, cuts)| {
            let mut reader = MessageReader::new();
            let mut deframer = Deframer::default();
            for chunk in split(&bytes, &cuts) {
                let _ = reader.feed(&chunk, |_| Ok::<_, ()>(()));
                deframer.push(&chunk);
                loop {
                    match deframer.next_message() {
                        Ok(Some((_, body))) => prop_assert!(body.len() <= MAX_RECEIVED),
                        Ok(None) => break,
                        Err(e) => {
                            prop_assert!(e.contains("exceeds"), "{}", e);
                            break;
                        }
                    }
                }
            }
            prop_assert!(deframer.leftover() <= bytes.len() + PREFIX_LEN);
            Ok(())
        },
    );
}
