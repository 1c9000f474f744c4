//! Talking to the target: runs a fixture's conversation on one HTTP/2
//! connection built on the `h2` crate (not tonic's client, which hides
//! resets, trailers-only answers, per-message flags and GOAWAY) and returns
//! the events a transcript is rendered from.
//!
//! - [`connect`]: TCP or TLS, HTTP/2 handshake.
//! - [`codec`]: the 5-byte message prefix and compression.
//! - [`call`]: one stream: send, read head, messages, trailers.
//! - [`observer`]: `Observer.GetCall` on a side connection.
//! - [`facts`]: a frame log's wire facts as events.
//! - [`raw`]: the frame-level driver for what h2's client cannot send.
//! - `script`: one call's steps, in order, as events.

pub mod call;
pub mod codec;
pub mod connect;
pub mod facts;
pub mod observer;
pub mod raw;
mod script;

pub use connect::{Conn, Connector, Target, TlsOptions};

use crate::{
    descriptors::Descriptors,
    model::{Event, Fixture, DEFAULT_TIMEOUT_MS},
    wire::{log::Frame, recorder::FrameLog},
};
use call::ActiveCall;
use http::{HeaderName, HeaderValue};
use script::CallRun;
use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};
use tokio::time::{timeout_at, Instant};

/// A harness problem: the conversation could not be held at all.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// No TCP connection to the target.
    #[error("target {target} unreachable: {reason}")]
    Unreachable {
        /// `host:port`.
        target: String,
        /// What the OS said, or that it took too long.
        reason: String,
    },
    /// TLS setup or handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTTP/2 handshake failed.
    #[error("HTTP/2 handshake: {0}")]
    Handshake(String),
    /// The fixture names something the descriptors lack (validation missed it).
    #[error("fixture: {0}")]
    Fixture(String),
}

/// Why a step could not go on; becomes an event, not an error.
#[derive(Debug)]
pub enum Stop {
    /// The fixture's time ran out waiting for the named thing.
    TimedOut(String),
    /// The stream or connection failed as described.
    Failed(String),
}

/// Settings of a run that apply to every conversation.
#[derive(Clone, Debug)]
pub struct DriveOptions {
    /// `--header` values: sent on every call, never shown in transcripts
    /// (they may be credentials).
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
    /// Multiplies every time in a fixture (timeouts, deadlines, pauses,
    /// `x-conform-*-ms` metadata) for slow machines; transcripts show the
    /// unscaled values.
    pub time_scale: f64,
    /// Keep each conversation's frame log as text (`--trace`).
    pub trace: bool,
    /// Ask the target's Observer at `observe` steps; off for a target
    /// without one (the transcript then leaves the server's view out).
    pub observer: bool,
}

impl Default for DriveOptions {
    fn default() -> Self {
        DriveOptions {
            extra_headers: Vec::new(),
            time_scale: 1.0,
            trace: false,
            observer: true,
        }
    }
}

impl DriveOptions {
    /// `ms` scaled by `time_scale`.
    pub fn scale(&self, ms: u64) -> u64 {
        (ms as f64 * self.time_scale).round() as u64
    }
}

/// How long the server may wait for a call to end before answering GetCall.
pub(crate) const OBSERVE_WAIT_MS: u64 = 2_000;

/// A short, readable description of an h2 error without addresses.
pub fn describe_h2(e: &h2::Error) -> String {
    if e.is_go_away() {
        let reason = e.reason().map_or("?".to_string(), |r| format!("{r:?}"));
        let side = if e.is_remote() {
            "the server sent"
        } else {
            "the client sent"
        };
        format!("connection closed: {side} GOAWAY {reason}")
    } else if e.is_reset() {
        let reason = e.reason().map_or("?".to_string(), |r| format!("{r:?}"));
        if e.is_remote() {
            format!("stream reset by the server: {reason}")
        } else {
            format!("stream reset by the client: {reason}")
        }
    } else if e.is_io() {
        // The OS's word for it (reset, broken pipe, EOF) depends on timing.
        "connection lost".to_string()
    } else if let Some(reason) = e.reason() {
        format!("HTTP/2 protocol error: {reason:?}")
    } else {
        format!("HTTP/2 error: {e}")
    }
}

/// A unique `x-conform-call-id` (redacted in transcripts).
pub(crate) fn next_call_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "gc-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a stream for `path` with the standard gRPC request headers plus `extra`.
pub(crate) async fn open_call(
    conn: &Conn,
    path: &str,
    extra: &[(HeaderName, HeaderValue)],
    shown: BTreeSet<String>,
    show_status_message: bool,
    deadline: Instant,
) -> Result<ActiveCall, Stop> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("{}://{}{}", conn.scheme, conn.authority, path))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header(
            "user-agent",
            concat!("grpc-conform/", env!("CARGO_PKG_VERSION")),
        )
        .body(())
        .map_err(|e| Stop::Failed(format!("cannot build the request: {e}")))?;
    for (name, value) in extra {
        request.headers_mut().append(name.clone(), value.clone());
    }
    let mut sender = timeout_at(deadline, conn.sender.clone().ready())
        .await
        .map_err(|_| Stop::TimedOut("a stream slot on the connection".into()))?
        .map_err(|e| Stop::Failed(describe_h2(&e)))?;
    let (response, send) = sender
        .send_request(request, false)
        .map_err(|e| Stop::Failed(describe_h2(&e)))?;
    Ok(ActiveCall::new(
        send,
        response,
        shown,
        show_status_message,
        deadline,
    ))
}

/// Runs `fixture` against the target and returns what happened, in order.
/// Only harness problems (no connection at all) are errors; everything the
/// target does, including hanging, is in the events.
pub async fn run_conversation(
    connector: &Connector,
    fixture: &Fixture,
    descriptors: &Descriptors,
    options: &DriveOptions,
) -> Result<Vec<Event>, DriveError> {
    Ok(run_traced(connector, fixture, descriptors, options)
        .await?
        .0)
}

/// As [`run_conversation`], also returning the frame log of the
/// conversation's connection (both directions) for `--trace`.
pub async fn run_traced(
    connector: &Connector,
    fixture: &Fixture,
    descriptors: &Descriptors,
    options: &DriveOptions,
) -> Result<(Vec<Event>, Vec<Frame>), DriveError> {
    let budget =
        Duration::from_millis(options.scale(fixture.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)));
    let deadline = Instant::now() + budget;
    if !fixture.raw.is_empty() {
        let log = FrameLog::new();
        let ev = raw::run_raw(
            connector,
            &fixture.raw,
            descriptors,
            options,
            deadline,
            log.clone(),
        )
        .await?;
        return Ok((ev, log.frames()));
    }
    let mut ev = Vec::new();
    let conn = match timeout_at(deadline, connector.connect()).await {
        Ok(conn) => conn?,
        Err(_) => {
            ev.push(Event::TimedOut {
                waiting_for: "the connection".into(),
            });
            return Ok((ev, Vec::new()));
        }
    };
    let mut runs = Vec::new();
    for (index, call) in fixture.calls.iter().enumerate() {
        let method = descriptors
            .method(&call.method)
            .ok_or_else(|| DriveError::Fixture(format!("no method {}", call.method)))?;
        runs.push(CallRun {
            index: index + 1,
            call,
            method,
            call_id: next_call_id(),
            options,
            deadline,
        });
    }
    if fixture.concurrent {
        // All calls at once on the connection; each keeps its own events so
        // the transcript groups them by call, whatever the interleaving.
        let each = runs.iter().map(|run| {
            let conn = &conn;
            async move {
                let (mut events, mut observer_conn) = (Vec::new(), None);
                let outcome = run
                    .run(conn, connector, &mut observer_conn, &mut events)
                    .await;
                record_end(outcome, &mut events);
                events
            }
        });
        for events in futures::future::join_all(each).await {
            ev.extend(events);
        }
    } else {
        let mut observer_conn = None;
        for run in &runs {
            let outcome = run.run(&conn, connector, &mut observer_conn, &mut ev).await;
            if record_end(outcome, &mut ev) {
                break;
            }
        }
    }
    let frames = conn.log.frames();
    if fixture.wire {
        ev.extend(facts::connection_events(&frames, |path| {
            descriptors.method(path).map(|m| m.output())
        }));
    }
    Ok((ev, frames))
}

/// Records how a call's run ended; whether it timed out (which ends the
/// conversation: its time is spent).
fn record_end(outcome: Result<(), Stop>, ev: &mut Vec<Event>) -> bool {
    match outcome {
        Ok(()) => false,
        Err(Stop::Failed(what)) => {
            ev.push(Event::Failure { what });
            false
        }
        Err(Stop::TimedOut(waiting_for)) => {
            ev.push(Event::TimedOut { waiting_for });
            true
        }
    }
}
