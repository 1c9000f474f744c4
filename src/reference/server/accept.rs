//! The accept loop: one task per TCP connection, each an IO tap around the
//! stream under hyper's HTTP/2 server, serving the routes through the
//! per-call layer. Connection management (A9) and shutdown live here.

use super::conn::ConnState;
use super::layer::CallLayer;
use super::tap::Tap;
use crate::reference::{CallRegistry, ReferenceConfig};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
    time::Instant,
};
use tonic::service::Routes;
use tower::Layer;

/// How long a stopping server lets calls in flight end before it drops them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// GOAWAY debug data for A9's max age and max idle, as grpc-go sends it.
const MAX_AGE: &[u8] = b"max_age";
const MAX_IDLE: &[u8] = b"max_idle";

/// Serves `listener` until `stop` resolves, then drains every connection
/// (bounded by [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    config: Arc<ReferenceConfig>,
    routes: Routes,
    registry: CallRegistry,
    stop: impl Future<Output = ()>,
) {
    let (stopping, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(connection(
                        stream,
                        config.clone(),
                        routes.clone(),
                        registry.clone(),
                        stop_rx.clone(),
                    ));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
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

/// Why a connection is being drained.
struct Draining {
    /// When the connection is dropped even with calls in flight.
    until: Option<Instant>,
}

/// Serves one connection until it ends, is closed by the tap, or its drain
/// runs out of time.
async fn connection(
    stream: TcpStream,
    config: Arc<ReferenceConfig>,
    routes: Routes,
    registry: CallRegistry,
    mut stopping: watch::Receiver<bool>,
) {
    // Small gRPC messages must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let born = Instant::now();
    let state = ConnState::new(config.ping_policy.clone());
    let service = CallLayer::new(config.clone(), registry, state.clone()).layer(routes);
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
        TokioIo::new(Tap::new(stream, state.clone())),
        TowerToHyperService::new(service),
    );
    tokio::pin!(conn);
    let max_age = config.max_connection_age.map(|age| born + age);
    let mut draining: Option<Draining> = None;
    loop {
        let draining_now = draining.is_some();
        let drain_deadline = draining.as_ref().and_then(|d| d.until);
        tokio::select! {
            // Errors here are the peer's doing (reset, garbage, timeout);
            // the connection is over either way.
            _ = conn.as_mut() => break,
            _ = state.close_requested() => break,
            _ = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => break,
            _ = stopping.wait_for(|stop| *stop), if !draining_now => {
                conn.as_mut().graceful_shutdown();
                draining = Some(Draining { until: None });
            }
            _ = sleep_until_opt(max_age), if max_age.is_some() && !draining_now => {
                state.set_goaway_debug(MAX_AGE);
                conn.as_mut().graceful_shutdown();
                let grace = config.max_connection_age_grace;
                draining = Some(Draining { until: grace.map(|g| Instant::now() + g) });
            }
            _ = idle(&state, config.max_connection_idle), if config.max_connection_idle.is_some() && !draining_now => {
                state.set_goaway_debug(MAX_IDLE);
                conn.as_mut().graceful_shutdown();
                draining = Some(Draining { until: None });
            }
        }
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
