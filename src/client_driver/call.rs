//! One call on an h2 stream as a client library runs it: the request head
//! goes out when a streaming call starts (unary and server streaming: when
//! it is invoked, with its one request and END_STREAM on that DATA frame),
//! every wait ends at the deadline (then RST_STREAM(CANCEL) and
//! DEADLINE_EXCEEDED) or at the plan's time, a cancel is RST_STREAM(CANCEL),
//! and what arrives is judged as a client must: the receive size limit,
//! only announced encodings, `grpc-status` or the HTTP mapping.

use super::channel::{ActiveGuard, Channel, Live};
use super::prepare::{PreparedCall, Step};
use super::request::{self, ACCEPTED};
use super::status::{self, code, Ending};
use crate::client::plan::{Mode, ReportCall};
use crate::drive::codec;
use bytes::Bytes;
use h2::{client::ResponseFuture, RecvStream, SendStream};
use http::StatusCode;
use std::{sync::Arc, time::Duration};
use tokio::time::{timeout_at, Instant};

/// gRPC's default maximum receive message size.
pub const DEFAULT_MAX_RECEIVE: u64 = 4 * 1024 * 1024;

/// Where the response stands.
enum Response {
    /// Its head has not come.
    Pending(ResponseFuture),
    /// Headers came; messages and trailers may follow.
    Open(RecvStream),
}

/// An open stream of a call.
struct Stream {
    /// Keeps the connection open while the call runs.
    _live: Arc<Live>,
    /// Counts the stream for the keepalive.
    _active: ActiveGuard,
    send: SendStream<Bytes>,
    response: Response,
    deframer: codec::Deframer,
    /// The response's `grpc-encoding`.
    encoding: Option<String>,
    /// END_STREAM was sent.
    half_closed: bool,
}

/// A call in progress.
pub struct Call<'a> {
    channel: &'a Channel,
    call: &'a PreparedCall,
    /// When the call's deadline passes.
    deadline: Option<Instant>,
    /// When the plan's time runs out.
    bound: Instant,
    /// The largest response message accepted.
    max_receive: usize,
    /// The request of a unary or server-streaming call, until invoked.
    held: Vec<Bytes>,
    stream: Option<Stream>,
    /// What the application saw so far (status aside).
    report: ReportCall,
    ending: Option<Ending>,
}

impl<'a> Call<'a> {
    /// Starts `call`: its deadline runs from now; a streaming request sends
    /// its head now.
    pub async fn start(
        channel: &'a Channel,
        call: &'a PreparedCall,
        max_receive: u64,
        bound: Instant,
    ) -> Call<'a> {
        let now = Instant::now();
        let mut out = Call {
            channel,
            call,
            deadline: call.deadline.map(|d| now + d),
            bound,
            max_receive: usize::try_from(max_receive).unwrap_or(usize::MAX),
            held: Vec::new(),
            stream: None,
            report: ReportCall::default(),
            ending: None,
        };
        if matches!(call.mode, Mode::ClientStreaming | Mode::Bidi) {
            out.open().await;
        }
        out
    }

    /// Whether the call has its status.
    pub fn ended(&self) -> bool {
        self.ending.is_some()
    }

    /// Sends `messages` (held until invocation for unary and server streaming).
    pub fn send(&mut self, messages: &[Bytes]) {
        if self.check_deadline() {
            return;
        }
        let Some(stream) = self.stream.as_mut() else {
            self.held.extend_from_slice(messages);
            return;
        };
        for message in messages {
            stream.send.reserve_capacity(message.len());
            // A stream the server ended or reset refuses data; its
            // response says what happened.
            if stream.send.send_data(message.clone(), false).is_err() {
                return;
            }
        }
    }

    /// Ends the request stream; invokes a unary or server-streaming call
    /// with END_STREAM on its request's DATA frame.
    pub async fn half_close(&mut self) {
        if self.check_deadline() {
            return;
        }
        if self.stream.is_none() {
            self.open().await;
            let held = std::mem::take(&mut self.held);
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            let last = held.len().saturating_sub(1);
            for (i, message) in held.into_iter().enumerate() {
                let _ = stream.send.send_data(message, i == last);
            }
            stream.half_closed = true;
            return;
        }
        if let Some(stream) = self.stream.as_mut().filter(|s| !s.half_closed) {
            let _ = stream.send.send_data(Bytes::new(), true);
            stream.half_closed = true;
        }
    }

    /// Cancels the call: RST_STREAM(CANCEL) and CANCELLED (with the fault:
    /// END_STREAM instead, the stream left open).
    pub fn cancel(&mut self) {
        if self.ended() {
            return;
        }
        let ending = Ending::new(code::CANCELLED, "cancelled by the application");
        if !self.channel.faults().half_close_on_cancel {
            return self.fail(ending);
        }
        if let Some(mut stream) = self.stream.take() {
            if !stream.half_closed {
                let _ = stream.send.send_data(Bytes::new(), true);
            }
            self.channel.park(Box::new(stream));
        }
        self.set_ending(ending);
    }

    /// Waits for the response headers, or the end of the call.
    pub async fn receive_headers(&mut self) {
        let limit = self.limit();
        let Some(Stream {
            response: Response::Pending(future),
            ..
        }) = self.stream.as_mut()
        else {
            return;
        };
        match timeout_at(limit, future).await {
            Err(_) => self.expire(),
            Ok(Err(e)) => self.fail(status::from_h2(&e)),
            Ok(Ok(head)) => self.on_head(head),
        }
    }

    /// Reads one response message; false when the call ended instead.
    pub async fn receive(&mut self) -> bool {
        loop {
            self.receive_headers().await;
            if self.ended() || self.stream.is_none() || self.check_deadline() {
                return false;
            }
            match self.next_buffered() {
                Some(true) => return true,
                Some(false) => return false,
                None => self.read_more().await,
            }
        }
    }

    /// Reads every remaining message and the status.
    pub async fn receive_all(&mut self) {
        while self.receive().await {}
    }

    /// Sleeps `pause`; a deadline passing meanwhile ends the call then.
    pub async fn pause(&mut self, pause: Duration) {
        let until = (Instant::now() + pause).min(self.bound);
        if let Some(deadline) = self.deadline.filter(|d| *d < until && !self.ended()) {
            tokio::time::sleep_until(deadline).await;
            self.check_deadline();
        }
        tokio::time::sleep_until(until).await;
    }

    /// Drains the call to its end and gives what the application saw.
    pub async fn finish(mut self) -> ReportCall {
        self.receive_all().await;
        let ending = self.ending.take().unwrap_or_else(|| {
            Ending::new(
                code::CANCELLED,
                "the call was never invoked (no half_close)",
            )
        });
        self.report.status = ending.status;
        self.report.error = ending.error;
        self.report
    }

    /// Opens the stream; a failure ends the call.
    async fn open(&mut self) {
        let timeout = match self.deadline {
            None => None,
            Some(_) if self.channel.faults().no_grpc_timeout => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return self.expire();
                }
                Some(left)
            }
        };
        let head = match request::head(self.call, self.channel.authority(), timeout) {
            Ok(head) => head,
            Err(e) => return self.fail(Ending::new(code::INTERNAL, e.to_string())),
        };
        match self.channel.open(head, self.limit()).await {
            Err(ending) => self.fail(ending),
            Ok(opened) => {
                self.stream = Some(Stream {
                    _live: opened.live,
                    _active: opened.active,
                    send: opened.send,
                    response: Response::Pending(opened.response),
                    deframer: codec::Deframer::with_limit(self.max_receive),
                    encoding: None,
                    half_closed: false,
                })
            }
        }
    }

    /// Takes in the response head: trailers-only, not gRPC, or headers.
    fn on_head(&mut self, head: http::Response<RecvStream>) {
        let (parts, body) = head.into_parts();
        let grpc = status::is_grpc_content_type(&parts.headers);
        let ending = match status::from_fields(&parts.headers) {
            Some(ending) if grpc => Some(ending),
            _ if !grpc || parts.status != StatusCode::OK => {
                Some(status::not_grpc(parts.status, &parts.headers))
            }
            _ => None,
        };
        if let Some(ending) = ending {
            // Trailers-only (or an answer that is no gRPC at all).
            self.report.trailers = request::metadata_pairs(&parts.headers);
            return if body.is_end_stream() {
                self.end(ending)
            } else {
                self.fail(ending)
            };
        }
        self.report.headers = Some(request::metadata_pairs(&parts.headers));
        if let Some(stream) = self.stream.as_mut() {
            stream.encoding = parts.headers.get("grpc-encoding").map(request::text);
            stream.response = Response::Open(body);
        }
    }

    /// The next message already buffered: Some(true) when one was recorded,
    /// Some(false) when the call ended on it, None when more must be read.
    fn next_buffered(&mut self) -> Option<bool> {
        let stream = self.stream.as_mut()?;
        let (flag, payload) = match stream.deframer.next_message() {
            Ok(Some(message)) => message,
            Ok(None) => return None,
            Err(e) => {
                let ending = Ending::new(code::RESOURCE_EXHAUSTED, format!("received {e}"));
                self.fail(ending);
                return Some(false);
            }
        };
        let encoding = stream.encoding.clone();
        match self.unpack(flag, &payload, encoding.as_deref()) {
            Ok(json) => {
                self.report.messages.push(json);
                Some(true)
            }
            Err(ending) => {
                self.fail(ending);
                Some(false)
            }
        }
    }

    /// Decompresses and decodes one message, as a client must judge it.
    fn unpack(
        &self,
        flag: u8,
        payload: &[u8],
        encoding: Option<&str>,
    ) -> Result<serde_json::Value, Ending> {
        let bytes = match (flag, encoding) {
            (0, _) => payload.to_vec(),
            (1, None | Some("identity")) => {
                return Err(Ending::new(
                    code::INTERNAL,
                    "compressed message without grpc-encoding",
                ))
            }
            (1, Some(enc)) if !ACCEPTED.contains(&enc) => {
                return Err(Ending::new(
                    code::INTERNAL,
                    format!("message compressed with {enc}, which the client did not announce"),
                ))
            }
            (1, Some(enc)) => {
                codec::decompress(enc, payload).map_err(|e| Ending::new(code::INTERNAL, e))?
            }
            (other, _) => {
                return Err(Ending::new(
                    code::INTERNAL,
                    format!("message with compressed flag {other}"),
                ))
            }
        };
        if bytes.len() > self.max_receive {
            return Err(Ending::new(
                code::RESOURCE_EXHAUSTED,
                format!(
                    "message of {} bytes decompressed exceeds {}",
                    bytes.len(),
                    self.max_receive
                ),
            ));
        }
        crate::message::decode_to_json(&self.call.output, &bytes)
            .map_err(|e| Ending::new(code::INTERNAL, format!("unparsable response message: {e}")))
    }

    /// Reads the next DATA frame, or the trailers at the end.
    async fn read_more(&mut self) {
        let limit = self.limit();
        let Some(Stream {
            response: Response::Open(body),
            deframer,
            ..
        }) = self.stream.as_mut()
        else {
            return self.end(Ending::new(code::INTERNAL, "the response ended unread"));
        };
        match timeout_at(limit, body.data()).await {
            Err(_) => self.expire(),
            Ok(Some(Ok(data))) => {
                let _ = body.flow_control().release_capacity(data.len());
                deframer.push(&data);
            }
            Ok(Some(Err(e))) => self.fail(status::from_h2(&e)),
            Ok(None) => match timeout_at(limit, body.trailers()).await {
                Err(_) => self.expire(),
                Ok(Err(e)) => self.fail(status::from_h2(&e)),
                Ok(Ok(None)) => self.end(Ending::new(
                    code::INTERNAL,
                    "the stream ended without trailers",
                )),
                Ok(Ok(Some(trailers))) => {
                    let leftover = deframer.leftover();
                    self.report.trailers = request::metadata_pairs(&trailers);
                    let ending =
                        status::from_fields(&trailers).unwrap_or_else(status::missing_status);
                    self.end(self.checked(ending, leftover));
                }
            },
        }
    }

    /// An OK ending checked against what came: a partial message or the
    /// wrong number of responses for a single-response method.
    fn checked(&self, ending: Ending, leftover: usize) -> Ending {
        if ending.status.code != code::OK {
            return ending;
        }
        if leftover > 0 {
            return Ending::new(
                code::INTERNAL,
                format!("{leftover} bytes of an incomplete message"),
            );
        }
        let count = self.report.messages.len();
        if matches!(self.call.mode, Mode::Unary | Mode::ClientStreaming) && count != 1 {
            return Ending::new(
                code::UNIMPLEMENTED,
                format!("{count} responses for a method of one response"),
            );
        }
        ending
    }

    /// The earlier of the deadline and the plan's bound.
    fn limit(&self) -> Instant {
        self.deadline.map_or(self.bound, |d| d.min(self.bound))
    }

    /// Ends the call when its deadline or the plan's time has passed.
    fn check_deadline(&mut self) -> bool {
        if !self.ended() && Instant::now() >= self.limit() {
            self.expire();
        }
        self.ended()
    }

    /// The deadline (DEADLINE_EXCEEDED) or the plan's time (CANCELLED) ran out.
    fn expire(&mut self) {
        let ending = match self.deadline {
            Some(deadline) if Instant::now() >= deadline => {
                Ending::new(code::DEADLINE_EXCEEDED, "deadline exceeded")
            }
            _ => Ending::new(code::CANCELLED, "the plan's timeout_ms ran out"),
        };
        self.fail(ending);
    }

    /// Ends the call with `ending`, resetting the stream with CANCEL when it
    /// is still open (RST_STREAM is how a client abandons a call).
    fn fail(&mut self, ending: Ending) {
        self.close_stream(h2::Reason::CANCEL, true);
        self.set_ending(ending);
    }

    /// Ends the call with `ending` as the response ended; a request stream
    /// still open is closed with RST_STREAM(NO_ERROR), as grpc-go does, since
    /// the call is complete.
    fn end(&mut self, ending: Ending) {
        self.close_stream(h2::Reason::NO_ERROR, false);
        self.set_ending(ending);
    }

    /// Drops the stream (the keepalive then counts it closed), resetting it
    /// with `reason` first when `always` or while its request is open.
    fn close_stream(&mut self, reason: h2::Reason, always: bool) {
        if let Some(mut stream) = self.stream.take() {
            if always || !stream.half_closed {
                stream.send.send_reset(reason);
            }
        }
    }

    /// Records the first ending.
    fn set_ending(&mut self, ending: Ending) {
        if self.ending.is_none() {
            self.ending = Some(ending);
        }
    }
}

/// Runs `call`'s steps in order on `channel` and drains it.
pub async fn run(
    channel: &Channel,
    call: &PreparedCall,
    max_receive: u64,
    bound: Instant,
) -> ReportCall {
    let mut active = Call::start(channel, call, max_receive, bound).await;
    for step in &call.steps {
        if active.ended() && !matches!(step, Step::Pause(_)) {
            continue;
        }
        match step {
            Step::Send(messages) => active.send(messages),
            Step::HalfClose => active.half_close().await,
            Step::ReceiveHeaders => active.receive_headers().await,
            Step::Receive => {
                active.receive().await;
            }
            Step::ReceiveAll => active.receive_all().await,
            Step::Cancel => active.cancel(),
            Step::Pause(pause) => active.pause(*pause).await,
        }
    }
    active.finish().await
}
