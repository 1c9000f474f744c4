//! The wire recorder: wraps a connection's byte stream and logs every frame
//! in both directions while passing the bytes through untouched. It reads a
//! copy of what was actually read or written (never what was offered), so
//! the log is exactly the conversation, and the stream is exactly the one
//! it wraps.

use super::bounds::{
    kind_name, may_keep, FloodMeter, NotKept, MAX_KEPT_DATA_BYTES, MAX_KEPT_FRAMES,
};
use super::frame::kind;
use super::log::{Body, Dir, Frame, FrameDecoder};
use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// CONTINUATION frames of a header block still open at the end that make it
/// a flood: no server needs more than a few for any real header list.
const OPEN_BLOCK_FLOOD: usize = 4;

/// The frames a recorder has seen; cheap to clone and read while the
/// connection runs.
#[derive(Clone)]
pub struct FrameLog {
    /// Shared with the recorder.
    inner: Arc<Mutex<Recording>>,
}

/// The decoders and the frames so far.
struct Recording {
    /// When the log began (times in the trace are relative to it).
    started: Instant,
    /// Client-to-server bytes.
    out: FrameDecoder,
    /// Server-to-client bytes.
    incoming: FrameDecoder,
    /// The frames kept, in the order their last byte passed (see
    /// [`super::bounds`] for which).
    frames: Vec<Frame>,
    /// What was not kept.
    not_kept: NotKept,
    /// DATA payload bytes kept so far.
    data_kept: usize,
    /// The DATA budget ran out: no later payload is kept either, so what
    /// is kept of each stream is a prefix of it.
    data_exhausted: bool,
    /// The server's frames per type and second.
    flood: FloodMeter,
}

impl FrameLog {
    /// An empty log.
    pub fn new() -> FrameLog {
        FrameLog {
            inner: Arc::new(Mutex::new(Recording {
                started: Instant::now(),
                out: FrameDecoder::new(Dir::Out),
                incoming: FrameDecoder::new(Dir::In),
                frames: Vec::new(),
                not_kept: NotKept::default(),
                data_kept: 0,
                data_exhausted: false,
                flood: FloodMeter::default(),
            })),
        }
    }

    /// Logs bytes that went `dir`; returns the frames they completed (DATA
    /// payloads past the log's budget already dropped).
    pub fn feed(&self, dir: Dir, bytes: &[u8]) -> Vec<Frame> {
        let mut r = self.lock();
        let at = r.started.elapsed().as_millis() as u64;
        let decoder = if dir == Dir::Out {
            &mut r.out
        } else {
            &mut r.incoming
        };
        let mut new = Vec::new();
        decoder.feed(bytes, at, &mut |f| new.push(f));
        let now = Instant::now();
        for f in &mut new {
            match (dir, &f.body) {
                (Dir::In, body) => {
                    let (frame_kind, ack) = kind_of(body);
                    r.flood.count(frame_kind, ack, now);
                }
                (Dir::Out, Body::Headers { .. }) => r.flood.allow_reset(),
                (Dir::Out, _) => {}
            }
            r.budget_data(f);
            r.keep(f);
        }
        new
    }

    /// A copy of the frames kept so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.lock().frames.clone()
    }

    /// A copy of the frames kept after the first `from`, for a reader that
    /// follows the log as it grows without copying it whole each time.
    pub fn frames_since(&self, from: usize) -> Vec<Frame> {
        self.lock()
            .frames
            .get(from..)
            .map(<[Frame]>::to_vec)
            .unwrap_or_default()
    }

    /// What was not kept so far.
    pub fn not_kept(&self) -> NotKept {
        self.lock().not_kept.clone()
    }

    /// The flood the server's frames amount to, once they do.
    pub fn flood(&self) -> Option<String> {
        self.lock().flood.tripped().map(str::to_string)
    }

    /// A server header block still open after at least
    /// [`OPEN_BLOCK_FLOOD`] CONTINUATION frames: a CONTINUATION flood that
    /// the HTTP/2 client cut short before the frame limits were reached.
    pub fn open_block_flood(&self) -> Option<String> {
        let (stream, count, bytes) = self.lock().incoming.open_block()?;
        (count >= OPEN_BLOCK_FLOOD).then(|| {
            format!(
                "CONTINUATION flood: the server's header block on s{stream} was still open \
                 after {count} CONTINUATION frames ({bytes} bytes)"
            )
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Recording {
    /// Drops a DATA payload once the budget is spent.
    fn budget_data(&mut self, f: &mut Frame) {
        let Body::Data {
            payload, not_kept, ..
        } = &mut f.body
        else {
            return;
        };
        if !self.data_exhausted && self.data_kept + payload.len() <= MAX_KEPT_DATA_BYTES {
            self.data_kept += payload.len();
            // A copy: a slice would pin the decoder's whole read buffer.
            *payload = bytes::Bytes::copy_from_slice(payload);
            return;
        }
        self.data_exhausted = true;
        *not_kept += payload.len();
        self.not_kept.data_bytes += payload.len() as u64;
        *payload = bytes::Bytes::new();
    }

    /// Keeps `f` in the log if the limits allow, else counts it.
    fn keep(&mut self, f: &Frame) {
        if may_keep(&f.body, self.frames.len(), MAX_KEPT_FRAMES) {
            self.frames.push(f.clone());
        } else {
            let name = kind_name(kind_of(&f.body).0);
            *self.not_kept.frames.entry(name).or_default() += 1;
        }
    }
}

/// The type code of a decoded frame and whether it is an ACK.
pub fn kind_of(body: &Body) -> (u8, bool) {
    match body {
        Body::Data { .. } => (kind::DATA, false),
        Body::Headers { .. } => (kind::HEADERS, false),
        Body::Reset { .. } => (kind::RST_STREAM, false),
        Body::Settings { ack, .. } => (kind::SETTINGS, *ack),
        Body::Ping { ack, .. } => (kind::PING, *ack),
        Body::GoAway { .. } => (kind::GOAWAY, false),
        Body::WindowUpdate { .. } => (kind::WINDOW_UPDATE, false),
        Body::Other { kind, .. } => (*kind, false),
    }
}

impl Default for FrameLog {
    fn default() -> Self {
        FrameLog::new()
    }
}

/// A byte stream whose traffic is logged into a [`FrameLog`].
pub struct Recorder<T> {
    /// The wrapped stream.
    io: T,
    /// Where frames go.
    log: FrameLog,
}

impl<T> Recorder<T> {
    /// Wraps `io`; frames go to `log`.
    pub fn new(io: T, log: FrameLog) -> Recorder<T> {
        Recorder { io, log }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Recorder<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            self.log.feed(Dir::In, &buf.filled()[before..]);
            // A flood ends the connection here, before the client spends
            // the fixture's time answering it; the log says which flood.
            if let Some(flood) = self.log.flood() {
                return Poll::Ready(Err(io::Error::other(flood)));
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recorder<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &polled {
            // Only what the stream took: the rest is offered again later.
            self.log.feed(Dir::Out, &data[..*n]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
