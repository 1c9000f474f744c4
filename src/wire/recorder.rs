//! The wire recorder: wraps a connection's byte stream and logs every frame
//! in both directions while passing the bytes through untouched. It reads a
//! copy of what was actually read or written (never what was offered), so
//! the log is exactly the conversation, and the stream is exactly the one
//! it wraps.

use super::log::{Dir, Frame, FrameDecoder};
use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
    /// Every frame, in the order its last byte passed.
    frames: Vec<Frame>,
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
            })),
        }
    }

    /// Logs bytes that went `dir`; returns the frames they completed.
    pub fn feed(&self, dir: Dir, bytes: &[u8]) -> Vec<Frame> {
        let mut r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let at = r.started.elapsed().as_millis() as u64;
        let Recording {
            out,
            incoming,
            frames,
            ..
        } = &mut *r;
        let decoder = if dir == Dir::Out { out } else { incoming };
        let mut new = Vec::new();
        decoder.feed(bytes, at, &mut |f| new.push(f));
        frames.extend(new.iter().cloned());
        new
    }

    /// A copy of the frames so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .frames
            .clone()
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
