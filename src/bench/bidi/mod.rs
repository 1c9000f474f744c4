//! Bidi echo load on the kit's own HTTP/2 frames: one state machine per
//! connection holds all its streams, reads every frame the target sent in
//! one pass, lets each stream send what its window allows, and writes it
//! all out in one write. No stream store, lock or waker per message, as a
//! general HTTP/2 library needs: what the load generator spends per
//! message is the work of the message itself (docs/bench.md, the load
//! generator's own cost).
//!
//! Every buffer is bounded: the read buffer by the frame size it
//! advertises, a header block by [`MAX_HEADER_BLOCK`] and the header table
//! by the default size, what the streams queue by `WRITE_BUFFER` and
//! what reading queues (acknowledgements) by `MAX_QUEUED`, what the
//! target may send by the windows it gives. Every wait is bounded by the
//! stall timeout.

mod frames;

use super::load::{Cause, Ledger, RoundCtx, StreamSlot};
use super::stats::StreamTally;
use crate::drive::connect::{Io, LOAD_CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW};
use crate::wire::bounds::MAX_HEADER_BLOCK;
use crate::wire::frame::{error_code, flag, kind, setting, CLIENT_PREFACE, HEADER_LEN};
use crate::wire::message::MessageReader;
use bytes::{Buf, BufMut, BytesMut};
use frames::{header_block, put_data, put_header, put_rst_stream};
use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Bytes queued before the streams stop sending until the socket takes them.
const WRITE_BUFFER: usize = 256 * 1024;
/// Bytes queued before the connection stops reading until the socket takes
/// them (what reading adds: acknowledgements, window updates).
const MAX_QUEUED: usize = 2 * WRITE_BUFFER;

/// Runs one connection's bidi streams (`slots`) until each has ended; their
/// tallies, in slot order. `io` is connected; nothing was sent on it yet.
pub async fn run_connection(
    io: Box<dyn Io>,
    scheme: &str,
    authority: String,
    ctx: Arc<RoundCtx>,
    slots: Vec<StreamSlot>,
) -> Vec<StreamTally> {
    let mut conn = Conn::new(io, ctx, slots);
    conn.start(scheme, &authority);
    let mut timers = Timers {
        due: Box::pin(tokio::time::sleep_until(conn.last_progress)),
        stall: Box::pin(tokio::time::sleep_until(conn.last_progress + conn.stall)),
    };
    std::future::poll_fn(|cx| conn.poll(cx, &mut timers)).await;
    conn.calls
        .into_iter()
        .map(|mut call| {
            call.book.tally.flush();
            call.book.tally
        })
        .collect()
}

/// One bidi call of the connection.
struct Call {
    /// Its HTTP/2 stream id.
    id: u32,
    book: Ledger,
    /// Bytes it may still send (the target's window for it).
    send_window: i64,
    /// Bytes received and not yet given back with WINDOW_UPDATE.
    received: u32,
    /// Messages sent (or being sent) and not yet echoed: intended send
    /// time, counted.
    in_flight: VecDeque<(Instant, bool)>,
    /// Bytes of the last message the flow-control windows held back.
    unsent: usize,
    /// It has a message to start and no flow-control window to send it in.
    blocked: bool,
    reader: MessageReader,
    half_closed: bool,
    /// The response headers came: with the status they ended the call with.
    head: Option<Option<Cause>>,
    ended: bool,
}

/// The two timers of a connection: the next intended send of the open
/// loop, and the stall bound.
struct Timers {
    due: Pin<Box<Sleep>>,
    stall: Pin<Box<Sleep>>,
}

/// A header block being received (HEADERS, then CONTINUATION frames).
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

struct Conn {
    io: Box<dyn Io>,
    ctx: Arc<RoundCtx>,
    calls: Vec<Call>,
    out: BytesMut,
    input: BytesMut,
    hpack: loona_hpack::Decoder<'static>,
    block: Option<Block>,
    /// Bytes the connection may still send.
    send_window: i64,
    /// The target's SETTINGS_INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE.
    peer_stream_window: i64,
    peer_max_frame: usize,
    /// Bytes received on the connection, not yet given back (of
    /// `LOAD_CONNECTION_WINDOW`).
    received: u32,
    /// The last stream id the target's GOAWAY said it would process.
    goaway: Option<u32>,
    last_progress: Instant,
    /// When the last read returned (the receive time of what it brought).
    read_at: Instant,
    stall: std::time::Duration,
    window_per_stream: usize,
}

impl Conn {
    fn new(io: Box<dyn Io>, ctx: Arc<RoundCtx>, slots: Vec<StreamSlot>) -> Conn {
        let calls = slots
            .into_iter()
            .enumerate()
            .map(|(i, slot)| Call {
                id: 1 + 2 * i as u32,
                book: Ledger::new(ctx.clone(), slot),
                send_window: 65_535,
                received: 0,
                in_flight: VecDeque::new(),
                unsent: 0,
                blocked: false,
                reader: MessageReader::new(),
                half_closed: false,
                head: None,
                ended: false,
            })
            .collect();
        let shape = &ctx.workload.shape;
        Conn {
            io,
            calls,
            out: BytesMut::with_capacity(64 * 1024),
            input: BytesMut::with_capacity(2 * MAX_FRAME as usize),
            hpack: {
                // The table size our SETTINGS leave at its default: a target
                // that asks for more is refused, not given the memory.
                let mut hpack = loona_hpack::Decoder::new();
                hpack.set_max_allowed_table_size(4096);
                hpack
            },
            block: None,
            send_window: 65_535,
            peer_stream_window: 65_535,
            peer_max_frame: MAX_FRAME as usize,
            received: 0,
            goaway: None,
            last_progress: Instant::now(),
            read_at: Instant::now(),
            stall: shape.stall_timeout,
            window_per_stream: shape.window.max(1),
            ctx,
        }
    }

    /// The preface, our SETTINGS, the connection window, and every call's
    /// HEADERS (one header block for all: literals without indexing, so it
    /// means the same on every stream).
    fn start(&mut self, scheme: &str, authority: &str) {
        self.out.put_slice(CLIENT_PREFACE);
        let settings = [
            (setting::ENABLE_PUSH, 0),
            (setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
            (setting::MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK as u32),
        ];
        put_header(&mut self.out, 6 * settings.len(), kind::SETTINGS, 0, 0);
        for (id, value) in settings {
            self.out.put_u16(id);
            self.out.put_u32(value);
        }
        self.put_window_update(0, LOAD_CONNECTION_WINDOW - 65_535);
        let block = header_block(
            scheme,
            authority,
            self.ctx.uri.path(),
            &self.ctx.workload.headers,
        );
        for i in 0..self.calls.len() {
            let id = self.calls[i].id;
            self.put_header_block(id, &block);
        }
    }

    /// One pass: reads and handles what came, lets the calls send, writes;
    /// ready once every call has ended and what was queued is written.
    fn poll(&mut self, cx: &mut Context<'_>, timers: &mut Timers) -> Poll<()> {
        loop {
            let (read, throttled) = match self.poll_read(cx) {
                Ok(read) => read,
                Err(cause) => {
                    self.end_all(cause);
                    return Poll::Ready(());
                }
            };
            let now = if read { self.read_at } else { Instant::now() };
            let next_due = self.send(now);
            // The calls stopped at a full buffer, or reading did: once the
            // socket takes the buffer, nothing else would wake them.
            let held_back = throttled || self.out.len() >= WRITE_BUFFER;
            if let Err(()) = self.poll_write(cx) {
                self.end_all("transport");
                return Poll::Ready(());
            }
            if self.calls.iter().all(|c| c.ended) && self.out.is_empty() {
                return Poll::Ready(());
            }
            if held_back && self.out.len() < WRITE_BUFFER {
                continue;
            }
            if let Some(due) = next_due {
                if timers.due.deadline() != due {
                    timers.due.as_mut().reset(due);
                }
                if timers.due.as_mut().poll(cx).is_ready() {
                    continue;
                }
            }
            if self.waiting() && timers.stall.as_mut().poll(cx).is_ready() {
                if now >= self.last_progress + self.stall {
                    self.stalled();
                    let _ = self.poll_write(cx);
                    return Poll::Ready(());
                }
                timers.stall.as_mut().reset(self.last_progress + self.stall);
                continue;
            }
            if !read {
                return Poll::Pending;
            }
        }
    }

    /// Reads what the socket has and handles every whole frame; whether
    /// anything came, and whether reading stopped because what the frames
    /// asked to send (PING and SETTINGS acknowledgements) is more than the
    /// target takes: a target that floods and never reads is not given
    /// memory for it. Err: the connection is over, with why.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<(bool, bool), Cause> {
        let mut any = false;
        loop {
            if self.out.len() >= MAX_QUEUED {
                return Ok((any, true));
            }
            self.input.reserve(MAX_FRAME as usize + HEADER_LEN);
            let spare = self.input.spare_capacity_mut();
            let mut buf = ReadBuf::uninit(spare);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => return Ok((any, false)),
                Poll::Ready(Err(_)) => return Err(self.closed_cause()),
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    if n == 0 {
                        return Err(self.closed_cause());
                    }
                    // SAFETY: poll_read initialised the first n spare bytes.
                    unsafe { self.input.set_len(self.input.len() + n) };
                    any = true;
                    self.read_at = Instant::now();
                    self.frames()?;
                }
            }
        }
    }

    /// Why the calls still open end when the connection does.
    fn closed_cause(&self) -> Cause {
        if self.goaway.is_some() {
            "goaway"
        } else {
            "transport"
        }
    }

    /// Lets every call send what its window, the flow-control windows, the
    /// open loop's schedule and the write buffer allow (a message larger
    /// than a flow-control window goes out in parts as the target gives
    /// window); when the next scheduled send is due, if one waits for its
    /// time.
    fn send(&mut self, now: Instant) -> Option<Instant> {
        let request = self.ctx.workload.request.clone();
        let window = self.window_per_stream;
        let Conn {
            calls,
            out,
            send_window,
            peer_max_frame,
            last_progress,
            ..
        } = self;
        let mut next_due: Option<Instant> = None;
        for call in calls.iter_mut() {
            let waited = call.waits();
            while !call.ended && !call.half_closed && out.len() < WRITE_BUFFER {
                if call.unsent > 0 {
                    let n = (call.unsent as i64).min(*send_window).min(call.send_window);
                    if n <= 0 {
                        break;
                    }
                    let from = request.len() - call.unsent;
                    put_data(
                        out,
                        call.id,
                        &request[from..from + n as usize],
                        *peer_max_frame,
                    );
                    *send_window -= n;
                    call.send_window -= n;
                    call.unsent -= n as usize;
                    continue;
                }
                if call.in_flight.len() >= window {
                    break;
                }
                let intended = match &call.book.schedule {
                    // Its next send is ahead, and the round not over by now
                    // (once it is, the call half-closes below).
                    Some(s) if s.next_due() > now && call.book.may_send(now) => {
                        next_due = Some(next_due.map_or(s.next_due(), |d| d.min(s.next_due())));
                        break;
                    }
                    Some(s) => s.next_due(),
                    None => now,
                };
                if !call.book.may_send(intended) {
                    put_header(out, 0, kind::DATA, flag::END_STREAM, call.id);
                    call.half_closed = true;
                    break;
                }
                if *send_window <= 0 || call.send_window <= 0 {
                    call.blocked = true;
                    break;
                }
                call.blocked = false;
                let counted = call.book.count_sent(intended, true);
                call.in_flight.push_back((intended, counted));
                call.unsent = request.len();
                if let Some(s) = &mut call.book.schedule {
                    s.advance();
                }
            }
            // The stall bound counts from when a call starts waiting on
            // the target (an echo, window, or the end of the call).
            if !waited && call.waits() {
                *last_progress = now;
            }
        }
        // A call held back by a window still half-closes when the round
        // is over, whatever else wakes the connection or not (with the
        // write buffer full, `poll` goes on once the socket takes it).
        let stop_at = (self.out.len() < WRITE_BUFFER)
            .then_some(self.ctx.phases.stop_at)
            .flatten()
            .filter(|stop| *stop > now);
        let may_close =
            |c: &Call| !c.ended && !c.half_closed && c.unsent == 0 && c.in_flight.len() < window;
        if let Some(stop) = stop_at.filter(|_| self.calls.iter().any(may_close)) {
            next_due = Some(next_due.map_or(stop, |d| d.min(stop)));
        }
        next_due
    }

    /// Writes out what is queued, as much as the socket takes. Err: the
    /// socket failed.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<(), ()> {
        while !self.out.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(()),
                Poll::Ready(Ok(n)) => self.out.advance(n),
            }
        }
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Err(_)) => Err(()),
            _ => Ok(()),
        }
    }

    /// Whether the connection waits on the target: a call on an echo,
    /// window to send in, or its end; or the target on taking what is
    /// queued for it.
    fn waiting(&self) -> bool {
        !self.out.is_empty() || self.calls.iter().any(Call::waits)
    }

    /// The stall bound passed with no progress: the waiting calls are
    /// cancelled and counted as stalled, the others end with the connection.
    fn stalled(&mut self) {
        for index in 0..self.calls.len() {
            if !self.calls[index].ended {
                let id = self.calls[index].id;
                self.calls[index].end(Err("stalled"));
                put_rst_stream(&mut self.out, id, error_code::CANCEL);
            }
        }
    }

    /// Ends every call still open with `cause`.
    fn end_all(&mut self, cause: Cause) {
        for call in &mut self.calls {
            call.end(Err(cause));
        }
    }

    /// A call the target ended before we half-closed is reset, so the
    /// target can forget it.
    fn reset_if_open(&mut self, index: usize) {
        let call = &mut self.calls[index];
        if call.ended && !call.half_closed {
            call.half_closed = true;
            put_rst_stream(&mut self.out, call.id, error_code::CANCEL);
        }
    }

    fn index(&self, stream: u32) -> Option<usize> {
        let index = (stream.checked_sub(1)? / 2) as usize;
        (stream % 2 == 1 && index < self.calls.len() && !self.calls[index].ended).then_some(index)
    }

    fn call(&mut self, stream: u32) -> Option<&mut Call> {
        let index = self.index(stream)?;
        Some(&mut self.calls[index])
    }

    fn put_window_update(&mut self, stream: u32, increment: u32) {
        put_header(&mut self.out, 4, kind::WINDOW_UPDATE, 0, stream);
        self.out.put_u32(increment);
    }

    /// HEADERS for `stream` carrying `block`, with CONTINUATION frames when
    /// it is larger than a frame.
    fn put_header_block(&mut self, stream: u32, block: &[u8]) {
        let mut chunks = block.chunks(self.peer_max_frame).peekable();
        let mut frame_kind = kind::HEADERS;
        while let Some(chunk) = chunks.next() {
            let flags = if chunks.peek().is_none() {
                flag::END_HEADERS
            } else {
                0
            };
            put_header(&mut self.out, chunk.len(), frame_kind, flags, stream);
            self.out.put_slice(chunk);
            frame_kind = kind::CONTINUATION;
        }
    }
}

impl Call {
    /// Whether it waits on the target: an echo, window to send in, or its
    /// end.
    fn waits(&self) -> bool {
        !self.ended && (!self.in_flight.is_empty() || self.half_closed || self.blocked)
    }

    /// The call ended with the target's `status`: counted as the echo
    /// server's end when it came after our half-close and the last echo.
    fn finish(&mut self, status: Cause) {
        let early = !self.half_closed || !self.in_flight.is_empty();
        if early && status == "OK" {
            // An echo server ends the call only after the client's half-close.
            self.end(Err("ended_early"));
        } else {
            self.end(Ok(status));
        }
    }

    /// Ends the call once: a status (counted as a call, or as an error when
    /// not OK) or a client-side cause.
    fn end(&mut self, outcome: Result<Cause, Cause>) {
        if self.ended {
            return;
        }
        self.ended = true;
        match outcome {
            Ok(status) => {
                self.book.count_call(status, true);
            }
            Err(cause) => self.book.tally.counts.error(cause),
        }
    }
}
