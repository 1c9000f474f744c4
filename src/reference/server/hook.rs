//! A hook for embedders that test clients against the reference (client
//! conformance, `crate::client`): each connection's frames are logged both
//! ways as they pass the socket, and a call the hook scripts is answered
//! with that script instead of the service, byte for byte as written (no
//! deadline, echo or encoding rules of the reference apply to it).
//!
//! Without a hook ([`crate::reference::ReferenceConfig::hook`] `None`) the
//! wrappers here pass everything through untouched.

use super::conn::{CallGuard, ConnState};
use crate::wire::{log::Dir, recorder::FrameLog};
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use std::{
    collections::VecDeque,
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What an embedder watches and scripts.
pub trait ConnectionHook: Send + Sync + std::fmt::Debug + 'static {
    /// A connection was accepted: the log its frames go to (client frames
    /// as [`Dir::Out`], the server's as [`Dir::In`]).
    fn accepted(&self) -> FrameLog;
    /// The scripted answer to a request with these headers, if any.
    fn script(&self, request_headers: &HeaderMap) -> Option<Script>;
}

/// A scripted response: its head after a delay, then its steps in order.
#[derive(Debug)]
pub struct Script {
    /// Wait this long before the response headers.
    pub delay: Duration,
    /// The response headers (`:status` and fields).
    pub head: Response<()>,
    /// What follows the headers; an empty list ends the stream on the
    /// HEADERS frame (trailers-only).
    pub steps: Vec<ScriptStep>,
}

/// One step of a scripted response body.
#[derive(Clone, Debug)]
pub enum ScriptStep {
    /// A DATA frame with these bytes.
    Data(Bytes),
    /// GOAWAY on the call's connection (graceful: hyper's two GOAWAYs); the
    /// call goes on.
    GoAway,
    /// The trailers HEADERS frame, ending the stream.
    Trailers(HeaderMap),
    /// RST_STREAM with this HTTP/2 error code instead of an end.
    Reset(u32),
}

/// A connection's IO, logged into the hook's log when there is one.
pub struct Recorded<IO> {
    /// The socket (or TLS stream).
    io: IO,
    /// Where frames go; `None`: pass through.
    log: Option<FrameLog>,
}

impl<IO> Recorded<IO> {
    /// Wraps `io`, logging into `log` when given.
    pub fn new(io: IO, log: Option<FrameLog>) -> Recorded<IO> {
        Recorded { io, log }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Recorded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(log)) = (&polled, &self.log) {
            log.feed(Dir::Out, &buf.filled()[before..]);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Recorded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if let (Poll::Ready(Ok(n)), Some(log)) = (&polled, &self.log) {
            log.feed(Dir::In, &data[..*n]);
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

/// The service of a connection: scripted calls answered by their script,
/// the others by `inner` (the reference's layered routes).
#[derive(Clone, Debug)]
pub struct Scripted<S> {
    /// The reference's service.
    inner: S,
    /// The hook, when there is one.
    hook: Option<Arc<dyn ConnectionHook>>,
    /// The connection, for scripted GOAWAYs.
    conn: Arc<ConnState>,
}

impl<S> Scripted<S> {
    /// `inner` for connection `conn`, scripted by `hook`.
    pub fn new(inner: S, hook: Option<Arc<dyn ConnectionHook>>, conn: Arc<ConnState>) -> Self {
        Scripted { inner, hook, conn }
    }
}

/// A response body: the reference's, or a script's.
#[derive(Debug)]
pub enum EitherBody<B> {
    /// The reference's body.
    Inner(B),
    /// A script's body.
    Script(ScriptBody),
}

/// The steps of a script still to send.
#[derive(Debug)]
pub struct ScriptBody {
    /// The steps left.
    steps: VecDeque<ScriptStep>,
    /// The connection, for GOAWAY steps.
    conn: Arc<ConnState>,
    /// Counts the call as open (ping policy, idleness) until the body ends.
    _guard: CallGuard,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B, RB> tower::Service<Request<B>> for Scripted<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>, Error = Infallible>,
    S::Future: Send + Unpin + 'static,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
{
    type Response = Response<EitherBody<RB>>;
    type Error = Infallible;
    type Future = ScriptedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let script = self.hook.as_ref().and_then(|h| h.script(request.headers()));
        let Some(script) = script else {
            return ScriptedFuture::Inner(self.inner.call(request));
        };
        // The request is read to its end (or reset) so the client's frames
        // all reach the log; what it says does not matter to a script.
        let mut body = request.into_body();
        tokio::spawn(async move {
            while let Some(Ok(_)) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {}
        });
        let body = ScriptBody {
            steps: script.steps.into(),
            conn: self.conn.clone(),
            _guard: self.conn.open_call(),
        };
        ScriptedFuture::Script {
            delay: Box::pin(tokio::time::sleep(script.delay)),
            response: Some(script.head.map(|()| body)),
        }
    }
}

/// The response of [`Scripted`]: the reference's, or a script's after its delay.
pub enum ScriptedFuture<F> {
    /// The reference answers.
    Inner(F),
    /// The script answers once `delay` is over.
    Script {
        /// The script's delay.
        delay: Pin<Box<tokio::time::Sleep>>,
        /// The response, taken when ready.
        response: Option<Response<ScriptBody>>,
    },
}

impl<F, RB> Future for ScriptedFuture<F>
where
    F: Future<Output = Result<Response<RB>, Infallible>> + Unpin,
{
    type Output = Result<Response<EitherBody<RB>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ScriptedFuture::Inner(inner) => Pin::new(inner)
                .poll(cx)
                .map(|r| r.map(|response| response.map(EitherBody::Inner))),
            ScriptedFuture::Script { delay, response } => {
                std::task::ready!(delay.as_mut().poll(cx));
                let response = response.take().expect("a scripted response is given once");
                Poll::Ready(Ok(response.map(EitherBody::Script)))
            }
        }
    }
}

impl<B> Body for EitherBody<B>
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
        match self.get_mut() {
            EitherBody::Inner(inner) => Pin::new(inner)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(Into::into))),
            EitherBody::Script(ScriptBody { steps, conn, .. }) => loop {
                return Poll::Ready(match steps.pop_front() {
                    None => None,
                    Some(ScriptStep::Data(bytes)) => Some(Ok(Frame::data(bytes))),
                    Some(ScriptStep::Trailers(trailers)) => Some(Ok(Frame::trailers(trailers))),
                    Some(ScriptStep::Reset(code)) => {
                        Some(Err(Box::new(h2::Error::from(h2::Reason::from(code)))))
                    }
                    Some(ScriptStep::GoAway) => {
                        conn.request_goaway();
                        continue;
                    }
                });
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            EitherBody::Inner(inner) => inner.is_end_stream(),
            EitherBody::Script(script) => script.steps.is_empty(),
        }
    }
}
