//! The recorder never changes what it carries: bytes in equal bytes out in
//! both directions, with large and many messages, however the reads split.

use super::{corpus, run_against};
use crate::support;
use grpc_conform::wire::{
    frame::{kind, FrameHeader, CLIENT_PREFACE},
    log::{Body, Dir},
    recorder::{FrameLog, Recorder},
};
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::timeout,
};

/// A DATA frame on stream 1 carrying `payload`.
fn data(payload: &[u8]) -> Vec<u8> {
    let mut out = FrameHeader {
        length: payload.len() as u32,
        kind: kind::DATA,
        flags: 0,
        stream_id: 1,
    }
    .encode()
    .to_vec();
    out.extend_from_slice(payload);
    out
}

/// `n` gRPC messages of `size` bytes each, packed into DATA frames of at
/// most 16 KiB (so messages span frames and frames hold several messages).
fn stream_of_messages(n: usize, size: usize) -> Vec<u8> {
    let mut messages = Vec::new();
    for i in 0..n {
        messages.push(0);
        messages.extend((size as u32).to_be_bytes());
        messages.extend((0..size).map(|j| (i * 31 + j) as u8));
    }
    messages.chunks(16_384).flat_map(data).collect()
}

#[tokio::test]
async fn bytes_in_equal_bytes_out_with_large_and_many_messages() {
    // Client side: preface then 1000 small messages; server side: four
    // messages of 1 MiB. Both go through one recorder at once.
    let mut upstream = CLIENT_PREFACE.to_vec();
    upstream.extend(stream_of_messages(1000, 37));
    let downstream = stream_of_messages(4, 1024 * 1024);
    let (near, mut far) = tokio::io::duplex(7_919);
    let log = FrameLog::new();
    let mut recorder = Recorder::new(near, log.clone());
    let (up, down) = (upstream.clone(), downstream.clone());
    let far_side = tokio::spawn(async move {
        let mut got = vec![0; up.len()];
        let (mut far_read, mut far_write) = tokio::io::split(&mut far);
        let (read, write) = tokio::join!(far_read.read_exact(&mut got), far_write.write_all(&down));
        read.unwrap();
        write.unwrap();
        got
    });
    let mut received = vec![0; downstream.len()];
    let (w, r) = {
        let (mut rd, mut wr) = tokio::io::split(&mut recorder);
        // Odd-sized writes: the recorder must log only what was taken.
        let write = async {
            for chunk in upstream.chunks(1_021) {
                wr.write_all(chunk).await?;
            }
            wr.flush().await
        };
        let read = rd.read_exact(&mut received);
        timeout(Duration::from_secs(30), async { tokio::join!(write, read) })
            .await
            .expect("the copy finishes")
    };
    w.unwrap();
    r.unwrap();
    let sent_through = timeout(Duration::from_secs(30), far_side)
        .await
        .unwrap()
        .unwrap();
    assert!(sent_through == upstream, "client bytes changed in transit");
    assert!(received == downstream, "server bytes changed in transit");
    let frames = log.frames();
    let total = |dir: Dir| -> usize {
        frames
            .iter()
            .filter(|f| f.dir == dir)
            .map(|f| match &f.body {
                // Past the log's DATA budget a frame keeps only its length.
                Body::Data {
                    payload, not_kept, ..
                } => payload.len() + not_kept,
                other => panic!("only DATA was sent, logged {other:?}"),
            })
            .sum()
    };
    assert_eq!(total(Dir::Out), 1000 * (5 + 37));
    assert_eq!(total(Dir::In), 4 * (5 + 1024 * 1024));
    let sent = 1000 * (5 + 37) + 4 * (5 + 1024 * 1024);
    let not_kept = log.not_kept().data_bytes as usize;
    let budget = grpc_conform::wire::bounds::MAX_KEPT_DATA_BYTES;
    // Whole frames at a time, up to the budget: at most one frame short of it.
    let kept = sent - not_kept;
    assert!(
        kept <= budget && kept + 16_384 > budget,
        "kept {kept} of {sent} bytes under a budget of {budget}"
    );
}

#[tokio::test]
async fn recorded_conversations_still_match_their_goldens() {
    // The h2 driver runs every conversation through the recorder: the
    // burst of a hundred and the gzip fixtures pass through it unchanged.
    let server = support::start_reference().await;
    let report = run_against(
        server.local_addr(),
        corpus(&[
            "greeter/client-stream/burst-of-hundred",
            "chat/bidi/burst-order",
            "compression/gzip-both-ways",
            "wire/recorded/",
        ]),
    )
    .await;
    assert!(report.results.len() >= 8, "{}", report.results.len());
    let (names, text) = super::failing(&report);
    assert!(names.is_empty(), "{text}");
}
