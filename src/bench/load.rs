//! The load of server streaming, client streaming and unary calls:
//! connections on the h2 crate, one future per stream, the
//! request framed once and sent as a shared `Bytes` (no encoding, no
//! allocation per message), responses counted by their length prefixes
//! without being copied or decoded.
//!
//! Every wait is bounded by the stall timeout; what a stream keeps in flight
//! is bounded by the messages of one call.

use super::{
    config::{Mode, Workload},
    schedule::{Phases, Schedule},
    stats::{SharedHistogram, StreamTally},
};
use crate::{model::STATUS_NAMES, wire::message::MessageReader};
use bytes::Bytes;
use h2::{
    client::{ResponseFuture, SendRequest},
    Reason, RecvStream, SendStream,
};
use http::{HeaderMap, Request, Uri};
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::time::{sleep_until, timeout, Instant};

/// What every stream of a round shares.
pub struct RoundCtx {
    /// What to send.
    pub workload: Arc<Workload>,
    /// `scheme://authority/path` of the method.
    pub uri: Uri,
    /// Warm-up, measured part, end.
    pub phases: Phases,
    /// The round's latency histogram.
    pub histogram: SharedHistogram,
    /// Messages received so far (all phases), for the progress line.
    pub progress: Arc<AtomicU64>,
}

/// Which stream of the round this is, and its share of a message count.
#[derive(Clone, Copy, Debug)]
pub struct StreamSlot {
    /// Index over all streams of the round.
    pub index: usize,
    /// Streams in the round.
    pub of: usize,
    /// Counted messages this stream may send (or receive, server streaming).
    pub quota: Option<u64>,
}

/// Runs one stream until its share is done, the round is over, or it fails;
/// its counts, with its latencies flushed to the round's histogram.
pub async fn run_stream(
    sender: SendRequest<Bytes>,
    ctx: Arc<RoundCtx>,
    slot: StreamSlot,
) -> StreamTally {
    let mut stream = Stream {
        sender,
        stall: ctx.workload.shape.stall_timeout,
        book: Ledger::new(ctx, slot),
    };
    let outcome = match stream.book.ctx.workload.shape.mode {
        // Bidi runs on its own engine (`super::bidi`); here it would be a
        // misrouted round, shown as such rather than a panic.
        Mode::Bidi => Err("misrouted_bidi"),
        Mode::ServerStreaming => stream.server_streaming().await,
        Mode::ClientStreaming | Mode::Unary => stream.calls().await,
    };
    if let Err(cause) = outcome {
        stream.book.tally.counts.error(cause);
    }
    stream.book.tally.flush();
    stream.book.tally
}

/// A client-side reason a call did not end with a status.
pub(super) type Cause = &'static str;

/// What one stream counts and when it may send: shared by the h2 streams
/// here and the bidi engine's ([`super::bidi`]).
pub(super) struct Ledger {
    pub(super) ctx: Arc<RoundCtx>,
    pub(super) tally: StreamTally,
    pub(super) quota: Option<u64>,
    pub(super) schedule: Option<Schedule>,
}

impl Ledger {
    /// The ledger of stream `slot` of a round.
    pub(super) fn new(ctx: Arc<RoundCtx>, slot: StreamSlot) -> Ledger {
        Ledger {
            tally: StreamTally::new(ctx.histogram.clone()),
            quota: slot.quota,
            schedule: ctx
                .workload
                .shape
                .rate
                .map(|rate| Schedule::new(ctx.phases.start, rate, slot.index, slot.of)),
            ctx,
        }
    }

    /// Whether a message meant for `at` may still be sent.
    pub(super) fn may_send(&self, at: Instant) -> bool {
        !self.ctx.phases.over(at) && self.quota != Some(0)
    }

    /// Counts a message sent at `at` (against the quota when `quota`:
    /// a server stream's quota is of responses); whether it counted.
    pub(super) fn count_sent(&mut self, at: Instant, quota: bool) -> bool {
        let counted = self.ctx.phases.counts(at);
        if counted {
            self.tally.counts.sent += 1;
            self.tally.counts.bytes_sent += self.ctx.workload.request.len() as u64;
            if let (true, Some(q)) = (quota, &mut self.quota) {
                *q = q.saturating_sub(1);
            }
        }
        counted
    }

    /// Counts a call that ended with `status` (an OK one only when it was
    /// `measured`; failures always, a failing warm-up shows); whether it was OK.
    pub(super) fn count_call(&mut self, status: Cause, measured: bool) -> bool {
        if status == "OK" {
            self.tally.counts.calls += u64::from(measured);
            true
        } else {
            self.tally.counts.error(status);
            false
        }
    }

    /// Counts the echoes completed by `chunk`, received at `now`: each
    /// takes the oldest message in flight, whose latency it records.
    pub(super) fn echoes(
        &mut self,
        chunk: &[u8],
        reader: &mut MessageReader,
        in_flight: &mut VecDeque<(Instant, bool)>,
        now: Instant,
    ) {
        let mut messages = 0;
        let _ = reader.feed(chunk, |prefix| {
            messages += 1;
            let counted = match in_flight.pop_front() {
                Some((sent, counted)) => {
                    if counted {
                        self.tally.latency(now - sent);
                    }
                    counted
                }
                // More responses than requests: counted, with no latency.
                None => self.ctx.phases.counts(now),
            };
            if counted {
                self.tally.counts.received += 1;
                self.tally.counts.bytes_received += 5 + u64::from(prefix.length);
            }
            Ok::<_, ()>(())
        });
        self.ctx.progress.fetch_add(messages, Ordering::Relaxed);
    }
}

/// One h2 stream's state.
struct Stream {
    sender: SendRequest<Bytes>,
    book: Ledger,
    stall: Duration,
}

impl Stream {
    /// Opens a call: waits (bounded) for the connection to take a stream.
    async fn open(&mut self) -> Result<(ResponseFuture, SendStream<Bytes>), Cause> {
        let ready = timeout(self.stall, self.sender.clone().ready())
            .await
            .map_err(|_| "stalled")?
            .map_err(|e| cause(&e))?;
        self.sender = ready;
        let mut request = Request::new(());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.book.ctx.uri.clone();
        *request.headers_mut() = self.book.ctx.workload.headers.clone();
        self.sender
            .send_request(request, false)
            .map_err(|e| cause(&e))
    }

    /// Waits (bounded) for the response headers; their status when they end
    /// the call (trailers-only).
    async fn response(
        &self,
        response: ResponseFuture,
    ) -> Result<(RecvStream, Option<Cause>), Cause> {
        let response = timeout(self.stall, response)
            .await
            .map_err(|_| "stalled")?
            .map_err(|e| cause(&e))?;
        if response.status() != http::StatusCode::OK {
            return Err("http_status");
        }
        let status = status_of(response.headers());
        Ok((response.into_body(), status))
    }

    /// Reads what is left of a call (bounded); how it ended: the status
    /// name, or `no_status`.
    async fn ending(
        &self,
        recv: &mut RecvStream,
        head_status: Option<Cause>,
    ) -> Result<Cause, Cause> {
        while let Some(chunk) = timeout(self.stall, recv.data())
            .await
            .map_err(|_| "stalled")?
        {
            let chunk = chunk.map_err(|e| cause(&e))?;
            let _ = recv.flow_control().release_capacity(chunk.len());
        }
        let trailers = timeout(self.stall, recv.trailers())
            .await
            .map_err(|_| "stalled")?
            .map_err(|e| cause(&e))?;
        Ok(trailers
            .as_ref()
            .and_then(status_of)
            .or(head_status)
            .unwrap_or("no_status"))
    }

    /// Server streaming: calls one after another, each asking for the
    /// configured number of responses; latency between consecutive
    /// responses (the first: from the request).
    async fn server_streaming(&mut self) -> Result<(), Cause> {
        let mut reader = MessageReader::new();
        while self.book.may_send(Instant::now()) {
            let (response, mut send) = self.open().await?;
            send.send_data(self.book.ctx.workload.request.clone(), true)
                .map_err(|e| cause(&e))?;
            let mut last = Instant::now();
            let measured = self.book.count_sent(last, false);
            let (mut recv, head_status) = self.response(response).await?;
            let mut cancelled = false;
            while !cancelled {
                let Some(chunk) = timeout(self.stall, recv.data())
                    .await
                    .map_err(|_| "stalled")?
                else {
                    break;
                };
                let chunk = chunk.map_err(|e| cause(&e))?;
                let _ = recv.flow_control().release_capacity(chunk.len());
                let now = Instant::now();
                let mut messages = 0;
                let _ = reader.feed(&chunk, |prefix| {
                    messages += 1;
                    if self.book.ctx.phases.counts(now) && !cancelled {
                        self.book.tally.latency(now - last);
                        self.book.tally.counts.received += 1;
                        self.book.tally.counts.bytes_received += 5 + u64::from(prefix.length);
                        if let Some(q) = &mut self.book.quota {
                            *q = q.saturating_sub(1);
                        }
                    }
                    last = now;
                    cancelled =
                        cancelled || self.book.ctx.phases.over(now) || self.book.quota == Some(0);
                    Ok::<_, ()>(())
                });
                self.book
                    .ctx
                    .progress
                    .fetch_add(messages, Ordering::Relaxed);
            }
            if cancelled {
                // Our own end of the round, not the target's failure.
                send.send_reset(Reason::CANCEL);
                return Ok(());
            }
            reader = MessageReader::new();
            let status = self.ending(&mut recv, head_status).await?;
            self.book.count_call(status, measured);
        }
        Ok(())
    }

    /// Unary and client streaming: calls one after another, each sending
    /// the configured number of requests; latency from the half-close (its
    /// intended time on the open loop) to the end of the call.
    async fn calls(&mut self) -> Result<(), Cause> {
        let per_call = match self.book.ctx.workload.shape.mode {
            Mode::Unary => 1,
            Mode::Bidi | Mode::ServerStreaming | Mode::ClientStreaming => {
                self.book.ctx.workload.shape.call_messages.max(1)
            }
        };
        loop {
            let first = self
                .book
                .schedule
                .as_ref()
                .map_or_else(Instant::now, Schedule::next_due);
            if !self.book.may_send(first) {
                return Ok(());
            }
            let (response, mut send) = self.open().await?;
            let mut last_intended = first;
            for i in 0..per_call {
                let intended = match &self.book.schedule {
                    Some(s) => {
                        sleep_until(s.next_due()).await;
                        s.next_due()
                    }
                    None => Instant::now(),
                };
                if !self.book.may_send(intended) {
                    send.send_data(Bytes::new(), true).map_err(|e| cause(&e))?;
                    break;
                }
                let last = i + 1 == per_call;
                send.send_data(self.book.ctx.workload.request.clone(), last)
                    .map_err(|e| cause(&e))?;
                self.book.count_sent(intended, true);
                last_intended = intended;
                if let Some(s) = &mut self.book.schedule {
                    s.advance();
                }
            }
            let (mut recv, head_status) = self.response(response).await?;
            let counted = self.book.ctx.phases.counts(last_intended);
            self.call_responses(&mut recv, counted).await?;
            let status = self.ending(&mut recv, head_status).await?;
            if self.book.count_call(status, counted) && counted {
                self.book.tally.latency(Instant::now() - last_intended);
            }
        }
    }

    /// Reads a unary or client-streaming call's response messages.
    async fn call_responses(&mut self, recv: &mut RecvStream, counted: bool) -> Result<(), Cause> {
        let mut reader = MessageReader::new();
        while let Some(chunk) = timeout(self.stall, recv.data())
            .await
            .map_err(|_| "stalled")?
        {
            let chunk = chunk.map_err(|e| cause(&e))?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            let mut messages = 0;
            let _ = reader.feed(&chunk, |prefix| {
                messages += 1;
                if counted {
                    self.book.tally.counts.received += 1;
                    self.book.tally.counts.bytes_received += 5 + u64::from(prefix.length);
                }
                Ok::<_, ()>(())
            });
            self.book
                .ctx
                .progress
                .fetch_add(messages, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The name of the `grpc-status` in `headers`, when there is one.
fn status_of(headers: &HeaderMap) -> Option<Cause> {
    status_name(headers.get("grpc-status")?.as_bytes())
}

/// The name of the status a `grpc-status` value gives, when it is a number.
pub(super) fn status_name(value: &[u8]) -> Option<Cause> {
    let code: usize = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    Some(STATUS_NAMES.get(code).copied().unwrap_or("OTHER_CODE"))
}

/// The client-side cause of an h2 error.
fn cause(e: &h2::Error) -> Cause {
    if e.is_go_away() {
        "goaway"
    } else if e.is_reset() {
        "reset"
    } else {
        "transport"
    }
}
