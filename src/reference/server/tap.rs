//! The IO tap between the TCP stream and hyper: it reads the HTTP/2 frames
//! both ways without touching their bytes, except where h2 cannot do what
//! gRPC needs:
//!
//! - client PINGs are judged by the A8 policy (h2 answers every PING and
//!   enforces nothing); on a flood, a GOAWAY(last stream, ENHANCE_YOUR_CALM,
//!   `too_many_pings`) is injected right after h2's PING ACK, and the
//!   connection is dropped once it is flushed;
//! - HEADERS and DATA the server sends clear the strikes;
//! - GOAWAY frames h2 writes get debug data (`max_age`, `max_idle`) once the
//!   accept loop asked for it, since h2 cannot send any.
//!
//! Outbound bytes go through a bounded queue so frames can be replaced whole
//! and leave in as few writes as possible; a full queue is drained before
//! more bytes are accepted, which keeps hyper's back-pressure intact.

use super::conn::ConnState;
use crate::wire::frame::{self, error_code, flag, kind, FrameHeader, FrameReader, HEADER_LEN};
use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Outbound bytes gathered before they are written without waiting for a
/// flush: a few of h2's largest frames.
const QUEUE_LIMIT: usize = 64 * 1024;

/// Debug data of the GOAWAY sent on a ping flood, as grpc-go and C-core send it.
pub const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// An IO stream whose HTTP/2 frames are watched (and a few rewritten).
#[derive(Debug)]
pub struct Tap<IO> {
    /// The TCP stream.
    io: IO,
    /// Shared with the per-call layer and the connection task.
    conn: Arc<ConnState>,
    /// Follows the client's frames (after the preface).
    inbound: FrameReader,
    /// Follows the server's frames, to rewrite and inject at boundaries.
    outbound: Outbound,
    /// Bytes accepted from hyper, not yet written to `io`.
    queue: Vec<u8>,
    /// How much of `queue` already went to `io`.
    written: usize,
    /// The flood GOAWAY is queued: ask for the close once it is flushed.
    close_after_flush: bool,
    /// The queue holds a frame other than PING and WINDOW_UPDATE.
    urgent: bool,
    /// The poll of the connection during which a flush was put off: the
    /// flushes of a later poll write.
    put_off_at: Option<u64>,
}

/// Where the outbound byte stream stands within its current frame.
#[derive(Debug)]
struct Outbound {
    /// The current frame's header, complete once `header_len` is 9.
    header: [u8; HEADER_LEN],
    /// Header bytes seen so far.
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: usize,
    /// A GOAWAY being held back whole, to be rewritten with debug data.
    held: Option<Vec<u8>>,
}

impl<IO> Tap<IO> {
    /// Watches `io` for the connection `conn`.
    pub fn new(io: IO, conn: Arc<ConnState>) -> Tap<IO> {
        Tap {
            io,
            conn,
            inbound: FrameReader::from_client(),
            outbound: Outbound {
                header: [0; HEADER_LEN],
                header_len: 0,
                payload_left: 0,
                held: None,
            },
            queue: Vec::new(),
            written: 0,
            close_after_flush: false,
            urgent: false,
            put_off_at: None,
        }
    }

    /// Moves `bytes` from hyper into the queue, frame by frame.
    fn accept_outbound(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.outbound.payload_left > 0 {
                let n = self.outbound.payload_left.min(bytes.len());
                match &mut self.outbound.held {
                    Some(held) => held.extend_from_slice(&bytes[..n]),
                    None => self.queue.extend_from_slice(&bytes[..n]),
                }
                self.outbound.payload_left -= n;
                bytes = &bytes[n..];
                if self.outbound.payload_left == 0 {
                    self.frame_done();
                }
                continue;
            }
            let n = (HEADER_LEN - self.outbound.header_len).min(bytes.len());
            self.outbound.header[self.outbound.header_len..self.outbound.header_len + n]
                .copy_from_slice(&bytes[..n]);
            self.outbound.header_len += n;
            bytes = &bytes[n..];
            if self.outbound.header_len < HEADER_LEN {
                continue;
            }
            self.outbound.header_len = 0;
            let header = FrameHeader::parse(&self.outbound.header);
            let mut tap = self.conn.tap();
            if matches!(header.kind, kind::HEADERS | kind::DATA) {
                tap.enforcer.server_sent_headers_or_data();
            }
            if !matches!(header.kind, kind::PING | kind::WINDOW_UPDATE) {
                self.urgent = true;
            }
            if header.kind == kind::GOAWAY && tap.goaway_debug.is_some() {
                self.outbound.held = Some(self.outbound.header.to_vec());
            } else {
                self.queue.extend_from_slice(&self.outbound.header);
            }
            drop(tap);
            self.outbound.payload_left = header.length as usize;
            if self.outbound.payload_left == 0 {
                self.frame_done();
            }
        }
    }

    /// A whole frame went through `accept_outbound`: release a held GOAWAY
    /// rewritten, and inject the flood GOAWAY after a PING ACK.
    fn frame_done(&mut self) {
        let header = FrameHeader::parse(&self.outbound.header);
        let mut tap = self.conn.tap();
        if let Some(held) = self.outbound.held.take() {
            let payload = &held[HEADER_LEN..];
            match (payload.get(0..4), payload.get(4..8), tap.goaway_debug) {
                (Some(last), Some(code), Some(debug)) => {
                    let last = u32::from_be_bytes(last.try_into().expect("4 bytes"));
                    let code = u32::from_be_bytes(code.try_into().expect("4 bytes"));
                    self.queue.extend(frame::goaway(last, code, debug));
                }
                // A malformed GOAWAY from h2 is passed on as it was.
                _ => self.queue.extend_from_slice(&held),
            }
        }
        if header.kind == kind::PING && header.has(flag::ACK) && tap.goaway_after_ack {
            tap.goaway_after_ack = false;
            let last = tap.last_stream_id;
            self.queue.extend(frame::goaway(
                last,
                error_code::ENHANCE_YOUR_CALM,
                TOO_MANY_PINGS,
            ));
            self.close_after_flush = true;
        }
    }
}

/// Watches what the client sent: PINGs for the policy, HEADERS for the last
/// stream id a GOAWAY must name.
fn observe_inbound(reader: &mut FrameReader, conn: &ConnState, bytes: &[u8]) {
    reader.feed(bytes, |header| {
        conn.handshake_seen();
        observe_frame(conn, header)
    });
}

/// One client frame header: PINGs judged, HEADERS' stream ids kept.
fn observe_frame(conn: &ConnState, header: &FrameHeader) {
    match header.kind {
        // The verdict is kept in the shared state; the GOAWAY follows h2's ACK.
        kind::PING if !header.has(flag::ACK) => drop(conn.client_ping()),
        kind::HEADERS => {
            let mut tap = conn.tap();
            tap.last_stream_id = tap.last_stream_id.max(header.stream_id);
        }
        _ => {}
    }
}

impl<IO: AsyncWrite + Unpin> Tap<IO> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.queue.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.queue[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.queue.clear();
        self.written = 0;
        self.urgent = false;
        Poll::Ready(Ok(()))
    }

    /// Whether this flush may be put off to the next poll of the connection,
    /// so that what the calls' tasks send meanwhile leaves in the same write:
    /// - only PING ACKs and WINDOW_UPDATEs are queued: h2 flushes those as
    ///   soon as it read the frames they answer, and the echo the handler
    ///   is about to send follows;
    /// - or other calls are open: h2 flushes before each DATA frame too big
    ///   to copy into its buffer, while the next call's frame is ready.
    fn may_put_off(&self) -> bool {
        self.written < self.queue.len()
            && !self.close_after_flush
            && (!self.urgent || self.conn.calls_open() > 1)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tap<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        // Only the bytes this read added are new to the reader.
        observe_inbound(&mut this.inbound, &this.conn, &buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tap<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Bytes are gathered until hyper flushes, so that what h2 writes
        // apart (a DATA frame's header, then its payload) leaves in one
        // write; only a full queue is written first, which keeps hyper's
        // back-pressure and bounds the queue.
        if this.queue.len() >= QUEUE_LIMIT {
            ready!(this.poll_drain(cx))?;
        }
        this.accept_outbound(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.may_put_off() {
            let poll = this.conn.poll_number();
            match this.put_off_at {
                None => {
                    // The wake makes sure the next poll comes, and h2
                    // flushes on every poll of the connection.
                    this.put_off_at = Some(poll);
                    cx.waker().wake_by_ref();
                    return Poll::Ready(Ok(()));
                }
                Some(at) if at == poll => return Poll::Ready(Ok(())),
                Some(_) => {}
            }
        }
        this.put_off_at = None;
        ready!(this.poll_drain(cx))?;
        ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        if std::mem::take(&mut this.close_after_flush) {
            this.conn.request_close();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::PingPolicy;
    use tokio::io::AsyncWriteExt;

    fn ping(flags: u8) -> Vec<u8> {
        let header = FrameHeader {
            length: 8,
            kind: kind::PING,
            flags,
            stream_id: 0,
        };
        let mut frame = header.encode().to_vec();
        frame.extend([9; 8]);
        frame
    }

    #[tokio::test]
    async fn goaway_frames_get_the_debug_data_asked_for() {
        let conn = ConnState::new(PingPolicy::default());
        let mut tap = Tap::new(Vec::new(), conn.clone());
        tap.write_all(&ping(flag::ACK)).await.unwrap();
        conn.set_goaway_debug(b"max_age");
        // One byte at a time: h2 may split a frame anywhere.
        for byte in frame::goaway(7, error_code::NO_ERROR, b"") {
            tap.write_all(&[byte]).await.unwrap();
        }
        tap.flush().await.unwrap();
        let mut want = ping(flag::ACK);
        want.extend(frame::goaway(7, error_code::NO_ERROR, b"max_age"));
        assert_eq!(tap.io, want);
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl futures::task::ArcWake for Wakes {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn flushes_wait_for_the_next_poll_only_when_more_may_come() {
        let conn = ConnState::new(PingPolicy::default());
        let mut tap = Tap::new(Vec::new(), conn.clone());
        let wakes = Arc::new(Wakes::default());
        let waker = futures::task::waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut flush = |tap: &mut Tap<Vec<u8>>| {
            assert!(Pin::new(tap).poll_flush(&mut cx).is_ready());
        };
        let data = FrameHeader {
            length: 0,
            kind: kind::DATA,
            flags: 0,
            stream_id: 1,
        }
        .encode();

        // A PING ACK waits for the next poll, once woken.
        tap.write_all(&ping(flag::ACK)).await.unwrap();
        flush(&mut tap);
        flush(&mut tap);
        assert!(tap.io.is_empty());
        assert_eq!(wakes.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        conn.polling();
        flush(&mut tap);
        let mut want = ping(flag::ACK);
        assert_eq!(tap.io, want);

        // With two calls open, DATA waits for the other call's frames.
        let first = conn.open_call();
        let _second = conn.open_call();
        tap.write_all(&data).await.unwrap();
        flush(&mut tap);
        tap.write_all(&data).await.unwrap();
        flush(&mut tap);
        assert_eq!(tap.io, want);
        conn.polling();
        flush(&mut tap);
        want.extend(data);
        want.extend(data);
        assert_eq!(tap.io, want, "one write, in order");

        // With one call open, DATA is written at once.
        drop(first);
        tap.write_all(&data).await.unwrap();
        flush(&mut tap);
        want.extend(data);
        assert_eq!(tap.io, want);
    }

    #[tokio::test]
    async fn a_flood_gets_its_goaway_right_after_the_ping_ack() {
        let conn = ConnState::new(PingPolicy::default());
        let mut tap = Tap::new(Vec::new(), conn.clone());
        let mut client = crate::wire::frame::CLIENT_PREFACE.to_vec();
        let headers = FrameHeader {
            length: 0,
            kind: kind::HEADERS,
            flags: 0x4,
            stream_id: 3,
        };
        client.extend(headers.encode());
        for _ in 0..4 {
            client.extend(ping(0));
        }
        observe_inbound(&mut tap.inbound, &conn, &client);
        assert!(
            conn.tap().goaway_after_ack,
            "four pings at once are a flood"
        );
        tap.write_all(&ping(flag::ACK)).await.unwrap();
        tap.flush().await.unwrap();
        let mut want = ping(flag::ACK);
        want.extend(frame::goaway(
            3,
            error_code::ENHANCE_YOUR_CALM,
            TOO_MANY_PINGS,
        ));
        assert_eq!(tap.io, want);
        tokio::time::timeout(std::time::Duration::from_secs(5), conn.close_requested())
            .await
            .expect("the close is asked for once the GOAWAY is flushed");
    }
}
