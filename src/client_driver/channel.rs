//! The plan's one channel: connects lazily, gives each call a stream on the
//! current connection, and after the server's GOAWAY opens no new stream on
//! that connection: the next call gets a new one while calls already running
//! finish where they are. A connection h2 finds closed when a stream is
//! opened is replaced once, as gRPC's transparent retry allows for a stream
//! that never left the client.

use super::keepalive::{self, Watch};
use super::status::{self, code, Ending};
use super::{Faults, PlanError};
use crate::client::plan::{ChannelOptions, Keepalive};
use crate::drive::{connect::check_address, Conn, Connector, Target};
use bytes::Bytes;
use h2::{client::ResponseFuture, SendStream};
use http::Request;
use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex,
};
use tokio::{
    task::JoinHandle,
    time::{timeout_at, Instant},
};

/// One HTTP/2 connection of the channel and what watches it.
pub struct Live {
    /// The connection.
    pub conn: Conn,
    /// Its GOAWAY and activity, read from its frame log.
    pub watch: Arc<Watch>,
    /// The keepalive task, when the plan configures one.
    pinger: Option<JoinHandle<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(task) = &self.pinger {
            task.abort();
        }
    }
}

/// A stream just opened on the channel.
pub struct Opened {
    /// The connection it is on (kept open while the call runs).
    pub live: Arc<Live>,
    /// The response head, when it comes.
    pub response: ResponseFuture,
    /// The request body.
    pub send: SendStream<Bytes>,
    /// Counts the stream as open for the keepalive until dropped.
    pub active: ActiveGuard,
}

/// Counts one open stream; the count drops with it.
pub struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The channel every call of a plan uses.
pub struct Channel {
    connector: Connector,
    keepalive: Option<Keepalive>,
    faults: Faults,
    /// The keepalive time new connections use: the plan's, doubled after
    /// each `too_many_pings` GOAWAY (proposal A8).
    keepalive_time_ms: Arc<AtomicU64>,
    /// Streams open now (for `permit_without_stream`).
    active: Arc<AtomicUsize>,
    /// The connection new calls go to.
    current: tokio::sync::Mutex<Option<Arc<Live>>>,
    /// Streams a faulty cancel left open: held until the run ends, as h2
    /// would reset a stream whose handles are dropped.
    parked: Mutex<Vec<Box<dyn Send>>>,
}

impl Channel {
    /// A channel to `target` configured as `options` say; nothing is
    /// connected before the first call.
    pub fn new(
        target: &str,
        options: &ChannelOptions,
        faults: Faults,
    ) -> Result<Channel, PlanError> {
        check_address(target).map_err(|reason| PlanError::Field {
            field: "target".into(),
            reason,
        })?;
        let connector = Connector::new(Target {
            address: target.to_string(),
            tls: None,
        })
        .map_err(|e| PlanError::Field {
            field: "target".into(),
            reason: e.to_string(),
        })?;
        let time = options.keepalive.as_ref().map_or(0, |k| k.time_ms);
        Ok(Channel {
            connector,
            keepalive: options.keepalive.clone(),
            faults,
            keepalive_time_ms: Arc::new(AtomicU64::new(time)),
            active: Arc::new(AtomicUsize::new(0)),
            current: tokio::sync::Mutex::new(None),
            parked: Mutex::new(Vec::new()),
        })
    }

    /// The `:authority` requests carry.
    pub fn authority(&self) -> &str {
        self.connector.address()
    }

    /// The faults this channel's calls have.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// Opens a stream for `request`, connecting first when needed; gives up
    /// at `bound`. The error is the call's ending (UNAVAILABLE).
    pub async fn open(&self, request: Request<()>, bound: Instant) -> Result<Opened, Ending> {
        let mut retried = false;
        loop {
            let live = self.connection(bound).await?;
            let attempt = async {
                let mut sender = live.conn.sender.clone().ready().await?;
                sender.send_request(copy(&request), false)
            };
            match timeout_at(bound, attempt).await {
                Err(_) => {
                    return Err(Ending::new(
                        code::UNAVAILABLE,
                        "no stream within the plan's time",
                    ))
                }
                Ok(Ok((response, send))) => {
                    self.active.fetch_add(1, Ordering::SeqCst);
                    let active = ActiveGuard(self.active.clone());
                    return Ok(Opened {
                        live,
                        response,
                        send,
                        active,
                    });
                }
                Ok(Err(e)) if retried || self.faults.ignore_goaway => {
                    return Err(status::from_h2(&e))
                }
                Ok(Err(_)) => {
                    // Closed or going away before the stream left: a new connection.
                    retried = true;
                    self.retire(&live).await;
                }
            }
        }
    }

    /// Keeps `handles` until the run ends.
    pub fn park(&self, handles: Box<dyn Send>) {
        self.parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handles);
    }

    /// Ends the channel: drops every connection and parked stream.
    pub async fn close(self) {
        self.current.lock().await.take();
        self.parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The connection for a new call: the current one unless the server
    /// sent it GOAWAY or it closed; else a new one.
    async fn connection(&self, bound: Instant) -> Result<Arc<Live>, Ending> {
        let mut current = self.current.lock().await;
        if let Some(live) = current.as_ref() {
            let went_away = live.watch.poll().goaway.is_some();
            let closed = live.conn.closer().is_finished();
            if self.faults.ignore_goaway || !(went_away || closed) {
                return Ok(live.clone());
            }
        }
        let conn = match timeout_at(bound, self.connector.connect()).await {
            Err(_) => {
                return Err(Ending::new(
                    code::UNAVAILABLE,
                    "no connection within the plan's time",
                ))
            }
            Ok(Err(e)) => return Err(Ending::new(code::UNAVAILABLE, e.to_string())),
            Ok(Ok(conn)) => conn,
        };
        let live = Arc::new(self.start(conn));
        *current = Some(live.clone());
        Ok(live)
    }

    /// Stops giving `live` to new calls.
    async fn retire(&self, live: &Arc<Live>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, live)) {
            current.take();
        }
    }

    /// Watches a new connection and starts its keepalive.
    fn start(&self, mut conn: Conn) -> Live {
        let backoff = (!self.faults.ping_too_often).then(|| self.keepalive_time_ms.clone());
        let watch = Arc::new(Watch::new(conn.log.clone(), backoff));
        let pinger = match (&self.keepalive, conn.ping_pong.take()) {
            (Some(k), Some(ping_pong)) => {
                let settings = keepalive::Settings {
                    time: std::time::Duration::from_millis(
                        self.keepalive_time_ms.load(Ordering::SeqCst).max(1),
                    ),
                    timeout: std::time::Duration::from_millis(k.timeout_ms.max(1)),
                    permit_without_stream: k.permit_without_stream,
                    too_often: self.faults.ping_too_often,
                };
                let pinger = keepalive::Pinger {
                    ping_pong,
                    watch: watch.clone(),
                    active: self.active.clone(),
                    closer: conn.closer(),
                    settings,
                };
                Some(tokio::spawn(pinger.run()))
            }
            _ => None,
        };
        Live {
            conn,
            watch,
            pinger,
        }
    }
}

/// A copy of a request head (`http::Request` is not `Clone`: extensions).
fn copy(request: &Request<()>) -> Request<()> {
    let mut out = Request::new(());
    *out.method_mut() = request.method().clone();
    *out.uri_mut() = request.uri().clone();
    *out.headers_mut() = request.headers().clone();
    out
}
