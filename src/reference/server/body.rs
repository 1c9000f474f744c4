//! The two bodies of a call as the per-call layer sees them. The request body
//! refuses oversized messages and tells a reset from a half-close; the
//! response body counts messages, settles the call's outcome from the
//! trailers, and ends the stream with DEADLINE_EXCEEDED when the deadline
//! passes after the headers went out.

use super::conn::CallGuard;
use crate::proto::observer::Outcome;
use crate::reference::CallCtx;
use crate::wire::message::MessageReader;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use std::{
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};
use tokio::time::Sleep;
use tonic::{Code, Status};

/// Boxed errors, as hyper and tonic take them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use crate::contract::ECHO_TRAILING;

/// A request body on its way to tonic.
#[derive(Debug)]
pub struct RequestBody<B> {
    /// hyper's body.
    inner: B,
    /// The call a reset is recorded on.
    ctx: CallCtx,
    /// Finds each message's length prefix across DATA frames.
    messages: MessageReader,
    /// Longer messages are refused before tonic reads them.
    max_message_size: usize,
    /// The method takes exactly one request message (unary, server
    /// streaming): zero or two are a cardinality violation.
    single: bool,
    /// Request messages whose prefix arrived.
    seen: u32,
    /// A message was refused: the body reads as ended after the error.
    refused: bool,
}

impl<B> RequestBody<B> {
    /// Wraps `inner` for the call `ctx`; `single` when the method takes
    /// exactly one request message.
    pub fn new(inner: B, ctx: CallCtx, max_message_size: usize, single: bool) -> Self {
        RequestBody {
            inner,
            ctx,
            messages: MessageReader::new(),
            max_message_size,
            single,
            seen: 0,
            refused: false,
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let max = this.max_message_size;
                    let (single, seen) = (this.single, &mut this.seen);
                    let checked = this.messages.feed(data, |prefix| {
                        *seen += 1;
                        if single && *seen > 1 {
                            // tonic would drop the extra message and answer OK.
                            Err(Status::unimplemented(
                                "request cardinality violation: this method takes one request message, got more",
                            ))
                        } else if prefix.length as usize > max {
                            // tonic would say OUT_OF_RANGE; the spec says RESOURCE_EXHAUSTED.
                            Err(Status::resource_exhausted(format!(
                                "request message of {} bytes is larger than the limit of {max} bytes",
                                prefix.length
                            )))
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(status) = checked {
                        this.refused = true;
                        return Poll::Ready(Some(Err(Box::new(status))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                // hyper reports RST_STREAM (other than NO_ERROR) and a lost
                // connection as an error. tonic would turn a CANCELLED error
                // into a clean end of stream, which a handler takes for a
                // half-close: record the cancel first and hand tonic a code
                // it passes on as an error.
                this.ctx.finish(Outcome::Cancelled, Code::Cancelled as u32);
                let status =
                    Status::unavailable(format!("the client reset the stream or went away: {e}"));
                Poll::Ready(Some(Err(Box::new(status))))
            }
            None if this.single && this.seen == 0 => {
                // tonic would say INTERNAL "Missing request message".
                this.refused = true;
                let status = Status::unimplemented(
                    "request cardinality violation: this method takes one request message, got none",
                );
                Poll::Ready(Some(Err(Box::new(status))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        // An empty unary request still has its violation to report.
        self.refused || (self.inner.is_end_stream() && !(self.single && self.seen == 0))
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body on its way to hyper.
#[derive(Debug)]
pub struct ResponseBody<B> {
    /// `None` once the body ended, or for a trailers-only response.
    inner: Option<B>,
    /// The call whose outcome the end of this body settles.
    ctx: CallCtx,
    /// Counts response messages across DATA frames.
    messages: MessageReader,
    /// The call's deadline, still enforced after the headers.
    deadline: Option<Pin<Box<Sleep>>>,
    /// `x-grpc-test-echo-trailing-bin` to add to the trailers.
    echo_trailing: Vec<HeaderValue>,
    /// The trailers went out (or never will): a drop is no cancel.
    ended: bool,
    /// Keeps the call counted as open until the body is done with.
    _guard: Option<CallGuard>,
}

impl<B> ResponseBody<B> {
    /// A streaming body for the call `ctx`, stopped at `deadline`.
    pub(super) fn new(
        inner: B,
        ctx: CallCtx,
        deadline: Option<Pin<Box<Sleep>>>,
        echo_trailing: Vec<HeaderValue>,
        guard: Option<CallGuard>,
    ) -> Self {
        ResponseBody {
            inner: Some(inner),
            ctx,
            messages: MessageReader::new(),
            deadline,
            echo_trailing,
            ended: false,
            _guard: guard,
        }
    }

    /// No body: the headers were the trailers, and the call is settled.
    pub(super) fn trailers_only(ctx: CallCtx) -> Self {
        ResponseBody {
            inner: None,
            ctx,
            messages: MessageReader::new(),
            deadline: None,
            echo_trailing: Vec::new(),
            ended: true,
            _guard: None,
        }
    }

    fn end(&mut self, outcome: Outcome, code: u32) {
        self.ended = true;
        self.inner = None;
        self.deadline = None;
        self.ctx.finish(outcome, code);
    }
}

/// The `grpc-status` in `headers`, if any; an unparsable one reads as UNKNOWN.
pub fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    let value = headers.get("grpc-status")?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(Code::Unknown as u32),
    )
}

/// Appends every value of an echo header under `name`, in order: duplicate
/// names keep their order (PROTOCOL-HTTP2.md).
pub fn add_echo(headers: &mut HeaderMap, name: &'static str, echo: &[HeaderValue]) {
    for value in echo {
        headers.append(name, value.clone());
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(deadline) = &mut this.deadline {
            if deadline.as_mut().poll(cx).is_ready() {
                // The handler's stream is dropped with the body; the client
                // gets the status instead of more messages.
                let mut trailers = HeaderMap::new();
                let status = Status::deadline_exceeded("Deadline Exceeded");
                if status.add_header(&mut trailers).is_err() {
                    trailers.insert("grpc-status", HeaderValue::from_static("4"));
                }
                add_echo(&mut trailers, ECHO_TRAILING, &this.echo_trailing);
                this.end(Outcome::DeadlineExceeded, Code::DeadlineExceeded as u32);
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
        }
        let Some(inner) = &mut this.inner else {
            this.ended = true;
            return Poll::Ready(None);
        };
        match ready!(Pin::new(inner).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    add_echo(&mut trailers, ECHO_TRAILING, &this.echo_trailing);
                    let code = grpc_status(&trailers).unwrap_or(Code::Unknown as u32);
                    this.end(Outcome::Completed, code);
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => {
                    if let Some(data) = frame.data_ref() {
                        let ctx = &this.ctx;
                        let _ = this.messages.feed(data, |_| {
                            ctx.response_sent();
                            Ok::<_, std::convert::Infallible>(())
                        });
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
            },
            Some(Err(e)) => {
                // hyper resets the stream; the client sees no status of ours.
                this.end(Outcome::Completed, Code::Internal as u32);
                Poll::Ready(Some(Err(e.into())))
            }
            None => {
                // Ended without trailers: a client reads UNKNOWN (no grpc-status).
                this.end(Outcome::Completed, Code::Unknown as u32);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

impl<B> Drop for ResponseBody<B> {
    fn drop(&mut self) {
        if !self.ended {
            // hyper drops the body when the client reset the stream or the
            // connection went away before the end.
            self.ctx.finish(Outcome::Cancelled, Code::Cancelled as u32);
        }
    }
}
