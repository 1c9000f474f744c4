//! What one connection's parts share: the per-call layer counts open calls,
//! the IO tap judges pings and rewrites GOAWAYs, the accept loop decides when
//! to drain or drop the connection.

use super::ping_policy::{PingEnforcer, PingVerdict};
use crate::reference::PingPolicy;
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Instant,
};
use tokio::sync::{watch, Notify};

/// The state of one HTTP/2 connection, shared by its tap, layer and task.
#[derive(Debug)]
pub struct ConnState {
    /// Calls whose response has not ended; the ping policy and max idle need it.
    open_calls: watch::Sender<usize>,
    /// The tap's state, also set by the connection task (GOAWAY debug data).
    tap: Mutex<TapShared>,
    /// Woken once the tap flushed a GOAWAY that ends the connection, or
    /// the accept loop evicts it.
    close: Notify,
    /// The client sent its preface and a whole first frame.
    handshaken: watch::Sender<bool>,
    /// Calls ever started on the connection.
    calls_started: AtomicU64,
    /// Woken when a scripted answer asks for a graceful GOAWAY.
    goaway: Notify,
    /// The graceful GOAWAY began (hyper queued it).
    goaway_begun: watch::Sender<bool>,
    /// Polls of hyper's connection so far: the tap puts a flush off to the
    /// next one.
    polls: AtomicU64,
}

/// The tap's part, under one lock because pings, frames sent and GOAWAYs
/// interleave.
#[derive(Debug)]
pub(super) struct TapShared {
    /// The A8 bookkeeping.
    pub(super) enforcer: PingEnforcer,
    /// Highest client stream id seen in a HEADERS frame.
    pub(super) last_stream_id: u32,
    /// A ping flood was seen: GOAWAY too_many_pings after the next PING ACK.
    pub(super) goaway_after_ack: bool,
    /// Debug data to add to GOAWAY frames h2 writes (h2 cannot send any).
    pub(super) goaway_debug: Option<&'static [u8]>,
}

impl ConnState {
    /// A fresh connection under `policy`.
    pub fn new(policy: PingPolicy) -> Arc<ConnState> {
        Arc::new(ConnState {
            open_calls: watch::channel(0).0,
            tap: Mutex::new(TapShared {
                enforcer: PingEnforcer::new(policy),
                last_stream_id: 0,
                goaway_after_ack: false,
                goaway_debug: None,
            }),
            close: Notify::new(),
            handshaken: watch::channel(false).0,
            calls_started: AtomicU64::new(0),
            goaway: Notify::new(),
            goaway_begun: watch::channel(false).0,
            polls: AtomicU64::new(0),
        })
    }

    pub(super) fn tap(&self) -> MutexGuard<'_, TapShared> {
        // The lock guards plain counters: a panic cannot leave them torn.
        self.tap
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Judges a client PING received now.
    pub(super) fn client_ping(&self) -> PingVerdict {
        let calls_open = *self.open_calls.borrow() > 0;
        let mut tap = self.tap();
        let verdict = tap.enforcer.on_ping(Instant::now(), calls_open);
        if verdict == PingVerdict::TooMany {
            tap.goaway_after_ack = true;
        }
        verdict
    }

    /// Every GOAWAY h2 writes from now on carries `debug`.
    pub fn set_goaway_debug(&self, debug: &'static [u8]) {
        self.tap().goaway_debug = Some(debug);
    }

    /// A call opened; it counts until the guard is dropped.
    pub fn open_call(self: &Arc<Self>) -> CallGuard {
        self.calls_started.fetch_add(1, Ordering::Relaxed);
        self.open_calls.send_modify(|n| *n += 1);
        CallGuard(self.clone())
    }

    /// Open calls now.
    pub fn calls_open(&self) -> usize {
        *self.open_calls.borrow()
    }

    /// Resolves once no call has been open for `idle` (A9 max idle).
    pub async fn idle_for(&self, idle: std::time::Duration) {
        let mut changes = self.open_calls.subscribe();
        loop {
            // The sender lives in self, so waiting cannot fail.
            let _ = changes.wait_for(|n| *n == 0).await;
            tokio::select! {
                _ = tokio::time::sleep(idle) => return,
                _ = changes.changed() => {}
            }
        }
    }

    /// The connection task is about to poll hyper's connection.
    pub(super) fn polling(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
    }

    /// Which poll of hyper's connection runs now.
    pub(super) fn poll_number(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// Whether a call was ever started on the connection.
    pub fn ever_called(&self) -> bool {
        self.calls_started.load(Ordering::Relaxed) > 0
    }

    /// The tap saw the client's preface and a whole first frame.
    pub(super) fn handshake_seen(&self) {
        self.handshaken
            .send_if_modified(|seen| !std::mem::replace(seen, true));
    }

    /// Whether the client's preface and first frame arrived.
    pub fn handshake_is_done(&self) -> bool {
        *self.handshaken.borrow()
    }

    /// Asks for the connection to be dropped: the tap once its GOAWAY is
    /// out, the accept loop to evict it.
    pub(super) fn request_close(&self) {
        self.close.notify_one();
    }

    /// Asks the accept loop for a graceful GOAWAY (a scripted answer's).
    pub(super) fn request_goaway(&self) {
        self.goaway.notify_one();
    }

    /// Resolves once a graceful GOAWAY was asked for.
    pub async fn goaway_requested(&self) {
        self.goaway.notified().await;
    }

    /// The accept loop began the graceful close.
    pub fn goaway_begins(&self) {
        self.goaway_begun.send_replace(true);
    }

    /// Resolves once the graceful close began.
    pub async fn goaway_begun(&self) {
        let mut begun = self.goaway_begun.subscribe();
        // The sender lives in self, so waiting cannot fail.
        let _ = begun.wait_for(|b| *b).await;
    }

    /// Resolves once the tap asked for the connection to be dropped.
    pub async fn close_requested(&self) {
        self.close.notified().await;
    }
}

/// One open call on a connection; dropping it closes the call.
#[derive(Debug)]
pub struct CallGuard(
    /// The connection whose open-call count this guard holds.
    Arc<ConnState>,
);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.open_calls.send_modify(|n| *n = n.saturating_sub(1));
    }
}
