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
    /// A connection accepted before ended (its IO was dropped).
    fn closed(&self);
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
    /// Answer only once the request stream ended, as a server of a method
    /// with one request (or one response) does; a client reset means no answer.
    pub after_request: bool,
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
    /// Told when the connection ends.
    hook: Option<Arc<dyn ConnectionHook>>,
}

impl<IO> Recorded<IO> {
    /// Wraps `io`, logging into the hook's log when there is a hook.
    pub fn new(io: IO, hook: Option<Arc<dyn ConnectionHook>>) -> Recorded<IO> {
        let log = hook.as_ref().map(|h| h.accepted());
        Recorded { io, log, hook }
    }
}

impl<IO> Drop for Recorded<IO> {
    fn drop(&mut self) {
        if let Some(hook) = &self.hook {
            hook.closed();
        }
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
pub enum EitherBody<B> {
    /// The reference's body.
    Inner(B),
    /// A script's body.
    Script(ScriptBody),
}

/// The steps of a script still to send.
pub struct ScriptBody {
    /// The steps left.
    steps: VecDeque<ScriptStep>,
    /// The connection, for GOAWAY steps.
    conn: Arc<ConnState>,
    /// A GOAWAY asked for and not yet begun: nothing more is sent before it,
    /// so the client sees it before the frames that follow in the script.
    goaway: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
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
        let (ended, request_ended) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                    Some(Ok(_)) => continue,
                    // A reset is no end: `ended` is dropped unsent.
                    Some(Err(_)) => return,
                    None => break,
                }
            }
            let _ = ended.send(());
        });
        let body = ScriptBody {
            steps: script.steps.into(),
            conn: self.conn.clone(),
            goaway: None,
            _guard: self.conn.open_call(),
        };
        let (head, delay, after_request) = (script.head, script.delay, script.after_request);
        ScriptedFuture::Script(Box::pin(async move {
            let delay = tokio::time::sleep(delay);
            if after_request && request_ended.await.is_err() {
                // Reset by the client: hyper drops this future with the stream.
                std::future::pending::<()>().await;
            }
            delay.await;
            head.map(|()| body)
        }))
    }
}

/// The response of [`Scripted`]: the reference's, or a script's.
pub enum ScriptedFuture<F> {
    /// The reference answers.
    Inner(F),
    /// The script answers once its request ended (when it waits for that)
    /// and its delay is over.
    Script(Pin<Box<dyn Future<Output = Response<ScriptBody>> + Send>>),
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
            ScriptedFuture::Script(script) => script
                .as_mut()
                .poll(cx)
                .map(|response| Ok(response.map(EitherBody::Script))),
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
            EitherBody::Script(ScriptBody {
                steps,
                conn,
                goaway,
                ..
            }) => loop {
                if let Some(begun) = goaway {
                    std::task::ready!(begun.as_mut().poll(cx));
                    *goaway = None;
                }
                return Poll::Ready(match steps.pop_front() {
                    None => None,
                    Some(ScriptStep::Data(bytes)) => Some(Ok(Frame::data(bytes))),
                    Some(ScriptStep::Trailers(trailers)) => Some(Ok(Frame::trailers(trailers))),
                    Some(ScriptStep::Reset(code)) => {
                        Some(Err(Box::new(h2::Error::from(h2::Reason::from(code)))))
                    }
                    Some(ScriptStep::GoAway) => {
                        conn.request_goaway();
                        let conn = conn.clone();
                        *goaway = Some(Box::pin(async move { conn.goaway_begun().await }));
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
