//! The bench's bidi engine against an echo server written frame by frame,
//! that does what h2 (the reference) never does: a stream window smaller
//! than a message (which goes out in parts as the window is given back),
//! padded DATA, header blocks split over CONTINUATION frames, a PING after
//! every DATA frame. Every message must still come back, every PING be
//! acknowledged, and the calls end OK; and a target that stops giving
//! window back, however much it pings, ends the run as stalled.

use grpc_conform::wire::frame::{flag, frame, kind, FrameHeader, CLIENT_PREFACE, HEADER_LEN};
use serde_json::Value;
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// How the echo server treats flow control.
#[derive(Clone, Copy)]
struct Windows {
    /// Its SETTINGS_INITIAL_WINDOW_SIZE.
    stream: u32,
    /// Whether it gives back the window of what it received.
    give_back: bool,
}

/// PINGs the server sent, and the ACKs it got.
type Pings = Arc<(AtomicU64, AtomicU64)>;

/// A header block in two frames: a padded HEADERS without END_HEADERS, then
/// a CONTINUATION that ends it.
fn split_headers(stream: u32, fields: &[(&[u8], &[u8])], end_stream: bool) -> Vec<u8> {
    let block = loona_hpack::Encoder::new().encode(fields.iter().copied());
    let (first, rest) = block.split_at(block.len() / 2);
    let padded = [&[2u8][..], first, &[0, 0]].concat();
    let end = if end_stream { flag::END_STREAM } else { 0 };
    [
        frame(kind::HEADERS, flag::PADDED | end, stream, &padded),
        frame(kind::CONTINUATION, flag::END_HEADERS, stream, rest),
    ]
    .concat()
}

fn window_update(stream: u32, increment: usize) -> Vec<u8> {
    frame(
        kind::WINDOW_UPDATE,
        0,
        stream,
        &(increment as u32).to_be_bytes(),
    )
}

/// Serves one connection: echoes every DATA payload back padded, gives the
/// window back (or not), pings; counts the PINGs sent and acknowledged.
async fn echo(mut socket: TcpStream, windows: Windows, pings: Pings) {
    let mut preface = [0u8; 24];
    if socket.read_exact(&mut preface).await.is_err() || preface != *CLIENT_PREFACE {
        return;
    }
    let settings = [&0x4u16.to_be_bytes()[..], &windows.stream.to_be_bytes()].concat();
    let mut out = frame(kind::SETTINGS, 0, 0, &settings);
    loop {
        if socket.write_all(&std::mem::take(&mut out)).await.is_err() {
            return;
        }
        let mut head = [0u8; HEADER_LEN];
        if socket.read_exact(&mut head).await.is_err() {
            return;
        }
        let header = FrameHeader::parse(&head);
        let mut payload = vec![0; header.length as usize];
        if socket.read_exact(&mut payload).await.is_err() {
            return;
        }
        let id = header.stream_id;
        match header.kind {
            kind::SETTINGS if !header.has(flag::ACK) => {
                out = frame(kind::SETTINGS, flag::ACK, 0, &[])
            }
            kind::PING if header.has(flag::ACK) => {
                let n = pings.1.fetch_add(1, Ordering::SeqCst);
                // One that keeps its window pings on and on.
                if !windows.give_back {
                    pings.0.fetch_add(1, Ordering::SeqCst);
                    out = frame(kind::PING, 0, 0, &n.to_be_bytes());
                }
            }
            kind::HEADERS => {
                let fields: [(&[u8], &[u8]); 2] =
                    [(b":status", b"200"), (b"content-type", b"application/grpc")];
                out = split_headers(id, &fields, false);
            }
            kind::DATA => {
                if !payload.is_empty() {
                    let padded = [&[3u8][..], &payload, &[0, 0, 0]].concat();
                    let n = pings.0.fetch_add(1, Ordering::SeqCst);
                    out = frame(kind::DATA, flag::PADDED, id, &padded);
                    if windows.give_back {
                        out.extend(window_update(id, payload.len()));
                        out.extend(window_update(0, payload.len()));
                    }
                    out.extend(frame(kind::PING, 0, 0, &n.to_be_bytes()));
                }
                if header.has(flag::END_STREAM) {
                    out.extend(split_headers(id, &[(b"grpc-status", b"0")], true));
                }
            }
            _ => {}
        }
    }
}

/// Starts the echo server; its address and ping counts.
async fn start(windows: Windows) -> (String, Pings) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let pings = Pings::default();
    let counted = pings.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(echo(socket, windows, counted.clone()));
        }
    });
    (address, pings)
}

/// Runs `grpc-conform bench` on two streams against `address` with `args`
/// (off the runtime, whose server it talks to); the exit code and the report.
async fn bench(address: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--target", address, "--streams", "2", "--warmup", "0s"];
    all.extend(args);
    let all: Vec<String> = all.into_iter().map(str::to_string).collect();
    tokio::task::spawn_blocking(move || {
        super::bench::bench_json(&all.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bidi_engine_takes_small_windows_padding_continuations_and_pings() {
    // Under a third of a request.
    let windows = Windows {
        stream: 1100,
        give_back: true,
    };
    let (address, pings) = start(windows).await;
    // 100 requests of 3005 bytes: several times the connection's initial
    // window, each in parts.
    let args = [
        "--size",
        "3000",
        "--messages",
        "100",
        "--stall-timeout",
        "10s",
    ];
    let (code, doc) = bench(&address, &args).await;
    let s = &doc["summary"][0];
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(s["messages_received"], 100, "{s:#}");
    assert_eq!(s["calls"], 2, "{s:#}");
    assert_eq!(s["errors_by_code"], serde_json::json!({}), "{s:#}");
    // The bench has exited; the server may not have read its last ACKs yet.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while pings.1.load(Ordering::SeqCst) < pings.0.load(Ordering::SeqCst)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (sent, acked) = (
        pings.0.load(Ordering::SeqCst),
        pings.1.load(Ordering::SeqCst),
    );
    assert!(
        sent >= 300,
        "each request in three parts or more: {sent} DATA frames"
    );
    assert_eq!(acked, sent, "every PING acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_keeps_its_window_stalls_however_much_it_pings() {
    // Two 1029-byte requests a stream, never given back.
    let windows = Windows {
        stream: 2 * 1029,
        give_back: false,
    };
    let (address, pings) = start(windows).await;
    let args = ["--messages", "100", "--stall-timeout", "2s"];
    let started = std::time::Instant::now();
    let (code, doc) = bench(&address, &args).await;
    let s = &doc["summary"][0];
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(s["messages_received"], 4, "two echoes a stream: {s:#}");
    assert_eq!(s["errors_by_code"]["stalled"], 2, "{s:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(pings.1.load(Ordering::SeqCst) > 100, "it pinged on and on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_floods_pings_and_never_reads_is_given_bounded_memory() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let pings: Vec<u8> = (0..4096u64)
                    .flat_map(|n| frame(kind::PING, 0, 0, &n.to_be_bytes()))
                    .collect();
                let mut out = frame(kind::SETTINGS, 0, 0, &[]);
                // Never reads: the acknowledgements have nowhere to go.
                while socket.write_all(&out).await.is_ok() {
                    out.clone_from(&pings);
                }
            });
        }
    });
    let args = ["--messages", "100", "--stall-timeout", "2s"];
    let (code, doc) = bench(&address, &args).await;
    let s = &doc["summary"][0];
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(s["errors_by_code"]["stalled"], 2, "{s:#}");
    let rss_kb = s["client_peak_rss_kb"].as_u64().unwrap();
    assert!(rss_kb < 100 * 1024, "peak RSS {rss_kb} KiB: {s:#}");
}
