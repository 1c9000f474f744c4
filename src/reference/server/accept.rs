//! The accept loop: one task per TCP connection, each an IO tap around the
//! stream under hyper's HTTP/2 server, serving the routes through the
//! per-call layer. Connection management (A9) and shutdown live here.

use super::conn::ConnState;
use super::hook::{Recorded, Scripted};
use super::layer::CallLayer;
use super::tap::Tap;
use crate::reference::{CallRegistry, ReferenceConfig};
use crate::wire::frame;
use futures::{stream::FuturesUnordered, FutureExt, StreamExt};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
    time::Instant,
};
use tonic::service::Routes;
use tower::Layer;

/// How long a stopping server lets calls in flight end before it drops them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a client gets to finish the TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// GOAWAY debug data for A9's max age and max idle, as grpc-go sends it.
const MAX_AGE: &[u8] = b"max_age";
const MAX_IDLE: &[u8] = b"max_idle";
/// GOAWAY debug data of a connection refused over the cap.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"too_many_connections";
/// How long a refused connection, or one closed for never starting a call,
/// is given to take its GOAWAY before it is dropped.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Serves `listener` until `stop` resolves, then drains every connection
/// (bounded by [`SHUTDOWN_GRACE`]). At most `config.max_connections` are
/// served at once (see [`Admission`]).
pub async fn serve(
    listener: TcpListener,
    config: Arc<ReferenceConfig>,
    routes: Routes,
    registry: CallRegistry,
    stop: impl Future<Output = ()>,
) {
    let (stopping, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut admission = Admission::default();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let Some((id, state)) = admission.admit(&config) else {
                        connections.spawn(refuse(stream));
                        continue;
                    };
                    connections.spawn(connection(
                        stream,
                        config.clone(),
                        routes.clone(),
                        registry.clone(),
                        state,
                        stop_rx.clone(),
                    ).map(move |()| Some(id)));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Ok(Some(id)) = ended {
                    admission.ended(id);
                }
            }
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.abort_all();
    }
}

/// The connections being served, by the order they were accepted, for the
/// connection cap: a connection that never started a call is the first to
/// go when the cap is reached, so silent connections cannot lock out
/// clients that have calls to make.
#[derive(Default)]
struct Admission {
    /// Served connections by id (ids rise with acceptance).
    served: BTreeMap<u64, Arc<ConnState>>,
    /// The next id.
    next: u64,
}

impl Admission {
    /// Makes room for one more connection under the cap: the state of the new
    /// connection and its id, or `None` when every served connection has
    /// started a call (the new one is refused).
    fn admit(&mut self, config: &ReferenceConfig) -> Option<(u64, Arc<ConnState>)> {
        if self.served.len() >= config.max_connections {
            let silent = self
                .served
                .iter()
                .find(|(_, state)| !state.ever_called())
                .map(|(id, _)| *id)?;
            if let Some(state) = self.served.remove(&silent) {
                state.request_close();
            }
        }
        let id = self.next;
        self.next += 1;
        let state = ConnState::new(config.ping_policy.clone());
        self.served.insert(id, state.clone());
        Some((id, state))
    }

    /// Connection `id` ended.
    fn ended(&mut self, id: u64) {
        self.served.remove(&id);
    }
}

/// Refuses a connection over the cap: the server preface (empty SETTINGS),
/// then GOAWAY(0, REFUSED_STREAM, `too_many_connections`), so an HTTP/2
/// client reports why, and closes it; bounded by [`REFUSAL_TIME`].
async fn refuse(mut stream: TcpStream) -> Option<u64> {
    let mut bytes = frame::frame(frame::kind::SETTINGS, 0, 0, &[]);
    bytes.extend(frame::goaway(
        0,
        frame::error_code::REFUSED_STREAM,
        TOO_MANY_CONNECTIONS,
    ));
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
    None
}

/// Why a connection is being drained.
#[derive(Clone, Copy)]
struct Draining {
    /// When the connection is dropped even with calls in flight.
    until: Option<Instant>,
}

/// Serves one TCP connection, after the TLS handshake when the server has
/// TLS (a failed or slow handshake just ends the connection).
async fn connection(
    stream: TcpStream,
    config: Arc<ReferenceConfig>,
    routes: Routes,
    registry: CallRegistry,
    state: Arc<ConnState>,
    stopping: watch::Receiver<bool>,
) {
    // Small gRPC messages must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    match config.tls.clone() {
        None => serve_connection(stream, config, routes, registry, state, stopping).await,
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            if let Ok(Ok(stream)) =
                tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await
            {
                serve_connection(stream, config, routes, registry, state, stopping).await;
            }
        }
    }
}

/// Serves one connection until it ends, is closed by the tap, or its drain
/// runs out of time.
async fn serve_connection<IO>(
    stream: IO,
    config: Arc<ReferenceConfig>,
    routes: Routes,
    registry: CallRegistry,
    state: Arc<ConnState>,
    stopping: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let born = Instant::now();
    let service = Scripted::new(
        CallLayer::new(config.clone(), registry, state.clone()).layer(routes),
        config.hook.clone(),
        state.clone(),
    );
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    if let Some(n) = config.max_concurrent_streams {
        builder.max_concurrent_streams(n);
    }
    if let Some(keepalive) = &config.keepalive {
        builder
            .keep_alive_interval(keepalive.interval)
            .keep_alive_timeout(keepalive.timeout);
    }
    let conn = builder.serve_connection(
        TokioIo::new(Tap::new(
            Recorded::new(stream, config.hook.clone()),
            state.clone(),
        )),
        TowerToHyperService::new(service),
    );
    tokio::pin!(conn);
    let deadlines = Deadlines {
        handshake_by: born + config.handshake_timeout,
        first_call_by: born + config.first_call_timeout,
        max_age: config.max_connection_age.map(|age| born + age),
        max_idle: config.max_connection_idle,
    };
    // The rare events are watched in a future of their own, polled only
    // when one of them woke it: every read and write wakes this task, and
    // polling eight timers and signals each time cost a tenth of the CPU a
    // small echo takes.
    let mut draining: Option<Draining> = None;
    let mut events = FuturesUnordered::new();
    loop {
        if events.is_empty() {
            let watch = next_event(state.clone(), stopping.clone(), deadlines, draining);
            events.push(watch.boxed());
        }
        let event = tokio::select! {
            biased;
            // Errors here are the peer's doing (reset, garbage, timeout);
            // the connection is over either way.
            _ = std::future::poll_fn(|cx| {
                state.polling();
                conn.as_mut().poll(cx)
            }) => break,
            Some(event) = events.next() => event,
        };
        let (debug, until) = match event {
            ConnEvent::Close => break,
            // A silent peer never acknowledges the graceful close's PING.
            ConnEvent::NoFirstCall => (Some(MAX_IDLE), Some(Instant::now() + REFUSAL_TIME)),
            ConnEvent::GoawayAsked | ConnEvent::Stopping => (None, None),
            ConnEvent::MaxAge => (
                Some(MAX_AGE),
                config.max_connection_age_grace.map(|g| Instant::now() + g),
            ),
            ConnEvent::Idle => (Some(MAX_IDLE), None),
        };
        if let Some(debug) = debug {
            state.set_goaway_debug(debug);
        }
        conn.as_mut().graceful_shutdown();
        if let ConnEvent::GoawayAsked = event {
            // Whoever asked waits for this, after the shutdown began.
            state.goaway_begins();
        }
        draining = Some(Draining { until });
    }
}

/// What ends or drains a connection, besides the connection itself ending.
enum ConnEvent {
    /// Drop it now: the tap asked, the handshake took too long, or the
    /// drain ran out of time.
    Close,
    /// It never started a call in time (GOAWAY `max_idle`).
    NoFirstCall,
    /// A scripted answer asked for a graceful GOAWAY.
    GoawayAsked,
    /// The server is stopping.
    Stopping,
    /// It lived its A9 max age.
    MaxAge,
    /// It had no call open for the A9 max idle time.
    Idle,
}

/// A connection's fixed deadlines.
#[derive(Clone, Copy)]
struct Deadlines {
    handshake_by: Instant,
    first_call_by: Instant,
    max_age: Option<Instant>,
    max_idle: Option<Duration>,
}

/// The next event of a connection draining (or not) as `draining` says;
/// those that only start a drain are not watched once it began.
async fn next_event(
    state: Arc<ConnState>,
    mut stopping: watch::Receiver<bool>,
    deadlines: Deadlines,
    draining: Option<Draining>,
) -> ConnEvent {
    let draining_now = draining.is_some();
    let drain_deadline = draining.and_then(|d| d.until);
    tokio::select! {
        _ = state.close_requested() => ConnEvent::Close,
        // A peer that has not even sent its preface gets no GOAWAY.
        _ = unless_by(deadlines.handshake_by, || state.handshake_is_done()) => ConnEvent::Close,
        _ = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => ConnEvent::Close,
        _ = unless_by(deadlines.first_call_by, || state.ever_called()), if !draining_now => {
            ConnEvent::NoFirstCall
        }
        _ = state.goaway_requested(), if !draining_now => ConnEvent::GoawayAsked,
        _ = stopping.wait_for(|stop| *stop), if !draining_now => ConnEvent::Stopping,
        _ = sleep_until_opt(deadlines.max_age), if deadlines.max_age.is_some() && !draining_now => {
            ConnEvent::MaxAge
        }
        _ = idle(&state, deadlines.max_idle), if deadlines.max_idle.is_some() && !draining_now => {
            ConnEvent::Idle
        }
    }
}

/// Resolves at `at` unless `done` holds by then; otherwise never.
async fn unless_by(at: Instant, done: impl Fn() -> bool) {
    tokio::time::sleep_until(at).await;
    if done() {
        std::future::pending::<()>().await;
    }
}

/// Sleeps until `at`; never resolves for `None`.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves once the connection had no call open for `max_idle`.
async fn idle(state: &ConnState, max_idle: Option<Duration>) {
    match max_idle {
        Some(max_idle) => state.idle_for(max_idle).await,
        None => std::future::pending().await,
    }
}
