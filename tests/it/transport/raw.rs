//! Clients below tonic, for what tonic cannot do: a frame-level HTTP/2 client
//! (pings, GOAWAY debug data, resets) and an `h2` client for requests tonic
//! would never send (compressed-flag games, unknown methods). Every read is
//! bounded: a server that goes quiet fails the test with a message.

use bytes::Bytes;
use grpc_conform::wire::frame::{flag, kind, FrameHeader, CLIENT_PREFACE, HEADER_LEN};
use http::HeaderMap;
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

/// Bound on every single wait in these clients.
pub const WAIT: Duration = Duration::from_secs(5);

/// One frame as received.
#[derive(Debug)]
pub struct RawFrame {
    /// The frame header.
    pub header: FrameHeader,
    /// The whole payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// For a GOAWAY: (last stream id, error code, debug data).
    pub fn goaway(&self) -> (u32, u32, String) {
        assert_eq!(self.header.kind, kind::GOAWAY, "not a GOAWAY: {self:?}");
        let p = &self.payload;
        (
            u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            String::from_utf8_lossy(&p[8..]).into_owned(),
        )
    }
}

/// A frame-level HTTP/2 client connection.
pub struct RawConn {
    stream: TcpStream,
}

/// One HPACK "literal header field without indexing, new name" (RFC 7541
/// 6.2.2), no Huffman: enough for short test headers without a table.
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    assert!(
        name.len() < 127 && value.len() < 127,
        "test headers stay short"
    );
    out.push(0);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

impl RawConn {
    /// Connects and sends the preface and an empty SETTINGS.
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect within 5 s")
            .expect("connects");
        stream.set_nodelay(true).expect("nodelay");
        let mut conn = RawConn { stream };
        conn.write(CLIENT_PREFACE).await;
        conn.send(kind::SETTINGS, 0, 0, &[]).await;
        conn
    }

    async fn write(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.stream.write_all(bytes))
            .await
            .expect("write within 5 s")
            .expect("write succeeds");
    }

    /// Sends one frame.
    pub async fn send(&mut self, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
        let header = FrameHeader {
            length: payload.len() as u32,
            kind,
            flags,
            stream_id,
        };
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(payload);
        self.write(&bytes).await;
    }

    /// Sends a PING (not an ACK).
    pub async fn ping(&mut self, data: [u8; 8]) {
        self.send(kind::PING, 0, 0, &data).await;
    }

    /// Opens a gRPC call on `stream_id` to `path` and leaves it open (no END_STREAM).
    pub async fn open_call(&mut self, stream_id: u32, path: &str) {
        let mut block = Vec::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ] {
            hpack_literal(&mut block, name, value);
        }
        self.send(kind::HEADERS, flag::END_HEADERS, stream_id, &block)
            .await;
    }

    /// The next frame, or `None` when the server closed the connection.
    pub async fn next(&mut self) -> Option<RawFrame> {
        let mut head = [0u8; HEADER_LEN];
        match timeout(WAIT, self.stream.read_exact(&mut head)).await {
            Err(_) => panic!("no frame from the server within {WAIT:?}"),
            Ok(Err(_)) => return None,
            Ok(Ok(_)) => {}
        }
        let header = FrameHeader::parse(&head);
        let mut payload = vec![0; header.length as usize];
        timeout(WAIT, self.stream.read_exact(&mut payload))
            .await
            .expect("frame payload within 5 s")
            .ok()?;
        Some(RawFrame { header, payload })
    }

    /// The next frame that is not connection housekeeping (SETTINGS, which
    /// are acknowledged, and WINDOW_UPDATE).
    pub async fn next_significant(&mut self) -> Option<RawFrame> {
        loop {
            let frame = self.next().await?;
            match frame.header.kind {
                kind::SETTINGS => {
                    if !frame.header.has(flag::ACK) {
                        self.send(kind::SETTINGS, flag::ACK, 0, &[]).await;
                    }
                }
                kind::WINDOW_UPDATE => {}
                _ => return Some(frame),
            }
        }
    }

    /// Whether the server closed the connection (EOF or reset) within the wait.
    pub async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        loop {
            match timeout(WAIT, self.stream.read(&mut byte)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Pings `conn` with `data` and expects its ACK, with no GOAWAY or other
/// connection frame before it (frames of calls are passed over).
pub async fn ping_acked(conn: &mut RawConn, data: [u8; 8]) {
    conn.ping(data).await;
    let frame = loop {
        let frame = conn
            .next_significant()
            .await
            .expect("connection stays open");
        if frame.header.stream_id == 0 {
            break frame;
        }
    };
    assert_eq!(
        frame.header.kind,
        kind::PING,
        "expected the PING ACK, got {frame:?}"
    );
    assert!(frame.header.has(flag::ACK));
    assert_eq!(frame.payload, data, "the ACK carries the same 8 bytes");
}

/// A gRPC length-prefixed message.
pub fn grpc_message(compressed: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![compressed];
    m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// What an `h2` request got back.
#[derive(Debug)]
pub struct H2Reply {
    /// HTTP status.
    pub status: http::StatusCode,
    /// Response headers (for trailers-only, the status is here).
    pub headers: HeaderMap,
    /// Response trailers, when the response had a body part.
    pub trailers: Option<HeaderMap>,
}

impl H2Reply {
    /// The `grpc-status`, from the trailers or a trailers-only response.
    pub fn grpc_status(&self) -> Option<&str> {
        self.trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
    }
}

/// One unary-shaped gRPC request over a fresh `h2` connection: `headers`
/// besides the required ones, then `body` with END_STREAM.
pub async fn h2_call(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> H2Reply {
    let mut call = H2Call::open(addr, path, headers).await;
    let exchange = async {
        call.send
            .send_data(Bytes::from(body), true)
            .expect("body sent");
        let response = (&mut call.response).await.expect("response headers");
        let (parts, mut recv) = response.into_parts();
        while let Some(chunk) = recv.data().await {
            chunk.expect("response data");
        }
        let trailers = recv.trailers().await.expect("response trailers");
        H2Reply {
            status: parts.status,
            headers: parts.headers,
            trailers,
        }
    };
    timeout(WAIT, exchange).await.expect("h2 call within 5 s")
}

/// A gRPC call opened over a fresh `h2` connection, its request half left
/// open for the test to stream, half-close or reset.
pub struct H2Call {
    /// The request half.
    pub send: h2::SendStream<Bytes>,
    /// The response, once the server answers.
    pub response: h2::client::ResponseFuture,
    connection: tokio::task::JoinHandle<Result<(), h2::Error>>,
}

impl H2Call {
    /// Opens `path` on `addr` with `headers` besides the required ones.
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> H2Call {
        let opening = async {
            let tcp = TcpStream::connect(addr).await.expect("connects");
            let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
            let connection = tokio::spawn(connection);
            let mut client = client.ready().await.expect("h2 ready");
            let mut request = http::Request::post(format!("http://{addr}{path}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let (response, send) = client
                .send_request(request.body(()).expect("valid request"), false)
                .expect("request sent");
            H2Call {
                send,
                response,
                connection,
            }
        };
        timeout(WAIT, opening)
            .await
            .expect("call opened within 5 s")
    }

    /// Sends one uncompressed message, the stream left open.
    pub fn send_message(&mut self, payload: &[u8]) {
        self.send
            .send_data(Bytes::from(grpc_message(0, payload)), false)
            .expect("message sent");
    }
}

impl Drop for H2Call {
    fn drop(&mut self) {
        self.connection.abort();
    }
}
