//! Servers that break a wire rule, each failing the fixture written to
//! catch it while fixtures it does not touch still pass (so the harness
//! around the fault is not what fails them): a reference with no ping
//! policy, and a frame-rewriting proxy in front of the reference that turns
//! a RST_STREAM(NO_ERROR) after an early close into CANCEL, or reads a
//! compressed flag without `grpc-encoding` as identity, or scrambles PING
//! ACK payloads.

use super::{corpus, failing, run_against};
use crate::support;
use grpc_conform::{
    reference::{config::PingPolicy, ReferenceConfig},
    wire::{
        frame::{error_code, kind, FrameHeader, CLIENT_PREFACE, HEADER_LEN},
        log::{Body, Dir, FrameDecoder},
    },
};
use std::{collections::HashMap, net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What the proxy changes.
#[derive(Clone, Copy, Debug)]
enum Rewrite {
    /// Server RST_STREAM(NO_ERROR) becomes CANCEL (h2 before h2#634).
    ResetCancel,
    /// A client message with flag 1 on a stream without `grpc-encoding`
    /// reaches the server with flag 0 (grpc-js's server reads it as identity).
    FlagOneAsIdentity,
    /// A PING ACK comes back with its payload bytes reversed.
    PingAckScrambled,
}

/// A proxy on 127.0.0.1 relaying frames to `upstream`, applying `rewrite`.
async fn start_proxy(upstream: SocketAddr, rewrite: Rewrite) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(
                    relay(cr, sw, Dir::Out, rewrite),
                    relay(sr, cw, Dir::In, rewrite)
                );
            });
        }
    });
    addr
}

/// Copies frames one way, decoding each (for the HPACK state and stream
/// encodings) and rewriting as told. Ends when either side closes.
async fn relay(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    dir: Dir,
    rewrite: Rewrite,
) {
    let mut decoder = FrameDecoder::new(dir);
    let mut encoded: HashMap<u32, bool> = HashMap::new();
    if dir == Dir::Out {
        let mut preface = [0u8; 24];
        if from.read_exact(&mut preface).await.is_err() || preface != *CLIENT_PREFACE {
            return;
        }
        decoder.feed(&preface, 0, &mut |_| {});
        if to.write_all(&preface).await.is_err() {
            return;
        }
    }
    loop {
        let mut header = [0u8; HEADER_LEN];
        if from.read_exact(&mut header).await.is_err() {
            return;
        }
        let h = FrameHeader::parse(&header);
        let mut payload = vec![0u8; h.length as usize];
        if from.read_exact(&mut payload).await.is_err() {
            return;
        }
        let mut decoded = None;
        decoder.feed(&header, 0, &mut |_| {});
        decoder.feed(&payload, 0, &mut |f| decoded = Some(f));
        match (rewrite, dir, decoded.map(|f| f.body)) {
            (Rewrite::ResetCancel, Dir::In, Some(Body::Reset { code: 0 })) => {
                payload = error_code::CANCEL.to_be_bytes().to_vec();
            }
            (Rewrite::PingAckScrambled, Dir::In, Some(Body::Ping { ack: true, .. })) => {
                payload.reverse();
            }
            (Rewrite::FlagOneAsIdentity, Dir::Out, Some(Body::Headers { fields, .. })) => {
                encoded.insert(
                    h.stream_id,
                    fields.iter().any(|(n, _)| n == "grpc-encoding"),
                );
            }
            // The fixtures this proxy serves start each message in a frame
            // of its own, so a message prefix opens the payload.
            (Rewrite::FlagOneAsIdentity, Dir::Out, Some(Body::Data { .. }))
                if h.kind == kind::DATA
                    && h.flags & 0x8 == 0
                    && payload.len() >= 5
                    && payload[0] == 1
                    && encoded.get(&h.stream_id) == Some(&false) =>
            {
                payload[0] = 0;
            }
            _ => {}
        }
        if to.write_all(&header).await.is_err() || to.write_all(&payload).await.is_err() {
            return;
        }
    }
}

/// Asserts `caught` failed and `untouched` passed when run against `addr`.
async fn assert_caught(addr: SocketAddr, caught: &[&str], untouched: &[&str]) {
    let mut names: Vec<&str> = caught.to_vec();
    names.extend(untouched);
    let report = run_against(addr, corpus(&names)).await;
    assert_eq!(report.results.len(), names.len(), "fixtures missing");
    let (failed, text) = failing(&report);
    for name in caught {
        assert!(
            failed.contains(*name),
            "{name} did not catch the fault:\n{text}"
        );
    }
    for name in untouched {
        assert!(
            !failed.contains(*name),
            "{name} failed through the fault harness:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_server_with_no_ping_policy_is_caught() {
    let server = support::start_reference_with(ReferenceConfig {
        ping_policy: PingPolicy {
            min_interval: Duration::ZERO,
            idle_interval: Duration::ZERO,
            ..PingPolicy::default()
        },
        ..ReferenceConfig::default()
    })
    .await;
    assert_caught(
        server.local_addr(),
        &[
            "keepalive/ping/flood-on-idle-call",
            "keepalive/ping/flood-without-calls",
        ],
        &[
            "keepalive/ping/echo",
            "keepalive/ping/strikes-reset-by-data",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_server_that_resets_with_cancel_after_an_early_close_is_caught() {
    let server = support::start_reference().await;
    let proxy = start_proxy(server.local_addr(), Rewrite::ResetCancel).await;
    assert_caught(
        proxy,
        &[
            "wire/reset/early-close-no-cancel",
            "wire/recorded/early-close-through-h2",
        ],
        &[
            "wire/framing/one-byte-frames",
            "wire/half-close/empty-data-end-stream",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_server_that_reads_flag_one_without_encoding_as_identity_is_caught() {
    let server = support::start_reference().await;
    let proxy = start_proxy(server.local_addr(), Rewrite::FlagOneAsIdentity).await;
    assert_caught(
        proxy,
        &["wire/compression/flag-one-without-encoding"],
        &[
            "wire/compression/gzip-flag-one",
            "wire/compression/flag-two",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_server_whose_ping_acks_do_not_echo_the_payload_is_caught() {
    let server = support::start_reference().await;
    let proxy = start_proxy(server.local_addr(), Rewrite::PingAckScrambled).await;
    assert_caught(
        proxy,
        &["keepalive/ping/echo", "keepalive/ping/echo-during-call"],
        &["wire/framing/several-in-one-frame"],
    )
    .await;
}
