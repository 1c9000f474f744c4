//! Hostile servers written for the tests: each speaks just enough HTTP/2 to
//! be reached, then misbehaves without end (streams forever, floods PING,
//! SETTINGS, CONTINUATION or RST_STREAM, or never answers). Every
//! connection reads and drops what the client sends, so the client is never
//! held up by its own writes.

use bytes::Bytes;
use grpc_conform::wire::frame::{frame, kind, FrameReader};
use std::net::SocketAddr;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

/// How the server misbehaves on every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostility {
    /// Answers every stream the client opens with headers, then gRPC
    /// messages as fast as it can, never ending.
    StreamForever,
    /// PING frames without end.
    PingFlood,
    /// SETTINGS frames without end.
    SettingsFlood,
    /// A HEADERS frame on the client's stream without END_HEADERS, then
    /// CONTINUATION frames without end.
    ContinuationFlood,
    /// RST_STREAM frames without end.
    ResetFlood,
    /// Its SETTINGS, then silence; reads everything.
    NeverAnswers,
}

/// Starts a server with `hostility` on 127.0.0.1; its address.
pub async fn start(hostility: Hostility) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(misbehave(socket, hostility));
        }
    });
    addr
}

/// A header block (HPACK, literals without indexing, no Huffman) of `fields`.
fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x00);
        for s in [name, value] {
            assert!(s.len() < 127, "short strings only");
            block.push(s.len() as u8);
            block.extend_from_slice(s.as_bytes());
        }
    }
    block
}

/// One gRPC message (flag 0) of `HelloReply { message }` / `StreamResponseData
/// { data }`: field 1, a string.
fn grpc_message(text: &str) -> Vec<u8> {
    let mut body = vec![0x0a, text.len() as u8];
    body.extend_from_slice(text.as_bytes());
    let mut out = vec![0];
    out.extend((body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

async fn misbehave(socket: TcpStream, hostility: Hostility) {
    let _ = socket.set_nodelay(true);
    if hostility == Hostility::StreamForever {
        return stream_forever(socket).await;
    }
    let (mut read, mut write) = socket.into_split();
    // Client streams as they open, from the reader to the writer.
    let (opened, mut streams) = mpsc::unbounded_channel::<u32>();
    tokio::spawn(async move {
        let mut reader = FrameReader::from_client();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                return;
            }
            reader.feed(&buf[..n], |h| {
                if h.kind == kind::HEADERS {
                    let _ = opened.send(h.stream_id);
                }
            });
        }
    });
    if write
        .write_all(&frame(kind::SETTINGS, 0, 0, &[]))
        .await
        .is_err()
    {
        return;
    }
    let mut burst = Vec::new();
    match hostility {
        Hostility::NeverAnswers => {
            // Hold the connection open until the client goes.
            while streams.recv().await.is_some() {}
            return;
        }
        Hostility::PingFlood => {
            for i in 0u64..64 {
                burst.extend(frame(kind::PING, 0, 0, &i.to_be_bytes()));
            }
        }
        Hostility::SettingsFlood => {
            for _ in 0..64 {
                burst.extend(frame(kind::SETTINGS, 0, 0, &[]));
            }
        }
        Hostility::ResetFlood => {
            for i in 0..64u32 {
                burst.extend(frame(kind::RST_STREAM, 0, 2 * i + 1, &8u32.to_be_bytes()));
            }
        }
        Hostility::StreamForever => unreachable!("served by h2"),
        Hostility::ContinuationFlood => {
            let Some(stream) = streams.recv().await else {
                return;
            };
            let head = header_block(&[(":status", "200"), ("content-type", "application/grpc")]);
            let _ = write
                .write_all(&frame(kind::HEADERS, 0, stream, &head))
                .await;
            for _ in 0..4 {
                // Literal fields without indexing, each a 1-byte name and
                // value: a header block that is valid as far as it goes.
                let fields: Vec<u8> = [0x00, 0x01, b'a', 0x01, b'b'].repeat(800);
                burst.extend(frame(kind::CONTINUATION, 0, stream, &fields));
            }
        }
    }
    // Without end, as fast as the client takes it.
    while write.write_all(&burst).await.is_ok() {
        tokio::task::yield_now().await;
    }
}

/// A well-formed HTTP/2 server (h2, flow control kept) that answers every
/// call with headers and then messages without end.
async fn stream_forever(socket: TcpStream) {
    let Ok(mut conn) = h2::server::handshake(socket).await else {
        return;
    };
    let mut data = Vec::new();
    for _ in 0..200 {
        data.extend(grpc_message("forever and ever"));
    }
    let data = Bytes::from(data);
    while let Some(Ok((_request, mut respond))) = conn.accept().await {
        let data = data.clone();
        tokio::spawn(async move {
            let head = http::Response::builder()
                .header("content-type", "application/grpc")
                .body(())
                .expect("valid response head");
            let Ok(mut send) = respond.send_response(head, false) else {
                return;
            };
            // Where the next bytes start in `data`, which repeats without end.
            let mut at = 0;
            loop {
                send.reserve_capacity(data.len());
                match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
                    Some(Ok(n)) if n > 0 => {
                        let end = (at + n).min(data.len());
                        if send.send_data(data.slice(at..end), false).is_err() {
                            return;
                        }
                        at = end % data.len();
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
        });
    }
}
