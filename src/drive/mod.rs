//! Talking to the target: runs a fixture's conversation on one HTTP/2
//! connection built on the `h2` crate (not tonic's client, which hides
//! resets, trailers-only answers, per-message flags and GOAWAY) and returns
//! the events a transcript is rendered from.
//!
//! - [`connect`]: TCP or TLS, HTTP/2 handshake.
//! - [`codec`]: the 5-byte message prefix and compression.
//! - [`call`]: one stream: send, read head, messages, trailers.
//! - [`observer`]: `Observer.GetCall` on a side connection.

pub mod call;
pub mod codec;
pub mod connect;
pub mod observer;

pub use connect::{Conn, Connector, Target, TlsOptions};

use crate::{
    descriptors::Descriptors,
    message,
    model::{Event, Fixture, Step, DEFAULT_TIMEOUT_MS},
    reference::call::CALL_ID_HEADER,
};
use call::{ActiveCall, Read};
use http::{HeaderName, HeaderValue};
use prost_reflect::MethodDescriptor;
use std::{
    collections::{BTreeMap, BTreeSet},
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
}

impl Default for DriveOptions {
    fn default() -> Self {
        DriveOptions {
            extra_headers: Vec::new(),
            time_scale: 1.0,
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
const OBSERVE_WAIT_MS: u64 = 2_000;

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
fn next_call_id() -> String {
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
    let budget =
        Duration::from_millis(options.scale(fixture.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)));
    let deadline = Instant::now() + budget;
    let mut ev = Vec::new();
    let conn = match timeout_at(deadline, connector.connect()).await {
        Ok(conn) => conn?,
        Err(_) => {
            ev.push(Event::TimedOut {
                waiting_for: "the connection".into(),
            });
            return Ok(ev);
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
        return Ok(ev);
    }
    let mut observer_conn = None;
    for run in &runs {
        let outcome = run.run(&conn, connector, &mut observer_conn, &mut ev).await;
        if record_end(outcome, &mut ev) {
            break;
        }
    }
    Ok(ev)
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

/// One call of a conversation being run.
struct CallRun<'a> {
    /// 1-based position.
    index: usize,
    /// The fixture's call.
    call: &'a crate::model::Call,
    /// Its method.
    method: MethodDescriptor,
    /// Its `x-conform-call-id`.
    call_id: String,
    /// Run settings.
    options: &'a DriveOptions,
    /// End of the fixture's time.
    deadline: Instant,
}

impl CallRun<'_> {
    /// Opens the call and runs its steps; `Err(TimedOut)` ends the conversation.
    async fn run(
        &self,
        conn: &Conn,
        connector: &Connector,
        observer_conn: &mut Option<Conn>,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let (headers, shown_headers, sent_metadata) = self.request_headers()?;
        ev.push(Event::CallStart {
            index: self.index,
            method: self.call.method.clone(),
            headers: shown_headers,
        });
        let shown: BTreeSet<String> = self
            .call
            .steps
            .iter()
            .flat_map(|s| match s {
                Step::ExpectHeaders(m) | Step::ExpectTrailers(m) => m.keys().cloned().collect(),
                _ => Vec::new(),
            })
            .collect();
        let checks_message = self
            .call
            .steps
            .iter()
            .any(|s| matches!(s, Step::ExpectStatus(e) if e.message.is_some()));
        let mut active = match open_call(
            conn,
            &self.call.method,
            &headers,
            shown,
            checks_message,
            self.deadline,
        )
        .await
        {
            Ok(a) => Some(a),
            Err(Stop::Failed(what)) => {
                ev.push(Event::Failure { what });
                None
            }
            Err(timeout) => return Err(timeout),
        };
        let mut cancelled = false;
        for step in &self.call.steps {
            match step {
                Step::Pause(p) => {
                    let until = (Instant::now() + Duration::from_millis(self.options.scale(p.ms)))
                        .min(self.deadline);
                    tokio::time::sleep_until(until).await;
                    ev.push(Event::Paused { ms: p.ms });
                }
                Step::Observe => {
                    let ctx = observer::ObserveContext {
                        call_id: &self.call_id,
                        deadline_sent_ms: self.call.deadline_ms.map(|d| self.options.scale(d)),
                        sent_metadata: sent_metadata.clone(),
                        wait_ms: self.options.scale(OBSERVE_WAIT_MS) as u32,
                    };
                    match observer::observe(connector, observer_conn, &ctx, self.deadline).await {
                        Ok(event) => ev.push(event),
                        Err(Stop::Failed(why)) => ev.push(Event::NotObservable { reason: why }),
                        Err(timeout) => return Err(timeout),
                    }
                }
                _ => {
                    // A broken stream skips the rest of its script but not
                    // pauses and observations, which may explain the break.
                    let Some(call) = active.as_mut() else {
                        continue;
                    };
                    cancelled |= matches!(step, Step::Cancel);
                    match self.step(call, step, ev).await {
                        Ok(()) => {}
                        Err(Stop::Failed(what)) => {
                            ev.push(Event::Failure { what });
                            active = None;
                        }
                        Err(timeout) => {
                            call.cancel();
                            return Err(timeout);
                        }
                    }
                }
            }
        }
        if let Some(call) = active.as_mut() {
            if !call.is_done() && !cancelled {
                call.cancel();
                ev.push(Event::Failure {
                    what: "the script ended before the status; the driver cancelled the call"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// The request metadata to send, what of it to show, and the
    /// sent→written map of fixture metadata for the Observer's echo.
    #[allow(clippy::type_complexity)]
    fn request_headers(
        &self,
    ) -> Result<
        (
            Vec<(HeaderName, HeaderValue)>,
            Vec<(String, String)>,
            BTreeMap<String, (String, String)>,
        ),
        Stop,
    > {
        let mut send: Vec<(String, String)> = Vec::new();
        let mut shown = Vec::new();
        let mut sent_metadata = BTreeMap::new();
        for (name, written) in &self.call.metadata {
            let value = match (
                name.starts_with("x-conform-") && name.ends_with("-ms"),
                written.parse::<u64>(),
            ) {
                (true, Ok(ms)) => self.options.scale(ms).to_string(),
                _ => written.clone(),
            };
            sent_metadata.insert(name.clone(), (value.clone(), written.clone()));
            shown.push((name.clone(), written.clone()));
            send.push((name.clone(), value));
        }
        if let Some(d) = self.call.deadline_ms {
            shown.push(("grpc-timeout".into(), format!("{d}m")));
            send.push((
                "grpc-timeout".into(),
                format!("{}m", self.options.scale(d).max(1)),
            ));
        }
        if let Some(enc) = &self.call.encoding {
            shown.push(("grpc-encoding".into(), enc.clone()));
            send.push(("grpc-encoding".into(), enc.clone()));
        }
        if let Some(accept) = &self.call.accept_encoding {
            shown.push(("grpc-accept-encoding".into(), accept.join(",")));
            send.push(("grpc-accept-encoding".into(), accept.join(",")));
        }
        send.push((CALL_ID_HEADER.into(), self.call_id.clone()));
        shown.sort();
        let mut headers = Vec::new();
        for (name, value) in send {
            let bad = |what: String| Stop::Failed(format!("metadata `{name}`: {what}"));
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let v = HeaderValue::from_str(&value).map_err(|e| bad(e.to_string()))?;
            headers.push((n, v));
        }
        headers.extend(self.options.extra_headers.iter().cloned());
        Ok((headers, shown, sent_metadata))
    }

    /// Encodes, compresses as asked, frames and sends one message.
    fn send_one(
        &self,
        call: &mut ActiveCall,
        json: &serde_json::Value,
        compressed: Option<bool>,
    ) -> Result<bool, Stop> {
        let bytes = message::encode_json(&self.method.input(), json)
            .map_err(|e| Stop::Failed(format!("bad message: {e}")))?;
        let flag = compressed.unwrap_or(
            self.call
                .encoding
                .as_deref()
                .is_some_and(|e| e != "identity"),
        );
        let payload = match (flag, self.call.encoding.as_deref()) {
            (true, Some(enc)) => codec::compress(enc, &bytes).unwrap_or(bytes),
            _ => bytes,
        };
        call.send_message(codec::frame(flag, &payload))?;
        Ok(flag)
    }

    /// A response message as shown: canonical JSON, volatile fields redacted.
    fn render(&self, bytes: &[u8]) -> Result<serde_json::Value, String> {
        let mut json = message::decode_to_json(&self.method.output(), bytes)?;
        message::redact(&mut json, &self.call.volatile_fields);
        Ok(json)
    }

    /// Records a received message; an undecodable one is a failure event.
    fn record(
        &self,
        compressed: bool,
        bytes: &[u8],
        ev: &mut Vec<Event>,
    ) -> Option<serde_json::Value> {
        match self.render(bytes) {
            Ok(json) => {
                ev.push(Event::Received {
                    json: message::one_line(&json),
                    compressed,
                });
                Some(json)
            }
            Err(e) => {
                ev.push(Event::Failure {
                    what: format!("undecodable response message ({} bytes): {e}", bytes.len()),
                });
                None
            }
        }
    }

    /// Runs one stream step.
    async fn step(
        &self,
        call: &mut ActiveCall,
        step: &Step,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        match step {
            Step::Send(s) => {
                let compressed = self.send_one(call, &s.message, s.compressed)?;
                let json =
                    message::canonical(&self.method.input(), &s.message).map_err(Stop::Failed)?;
                ev.push(Event::Sent {
                    json: message::one_line(&json),
                    compressed,
                });
            }
            Step::SendMany(m) => {
                let mut compressed = false;
                for i in 1..=m.count {
                    compressed = self.send_one(
                        call,
                        &message::expand_template(&m.template, i),
                        m.compressed,
                    )?;
                }
                ev.push(Event::SentMany {
                    count: m.count,
                    template: message::one_line(&m.template),
                    compressed,
                });
            }
            Step::HalfClose => {
                call.half_close();
                ev.push(Event::HalfClosed);
            }
            Step::Cancel => {
                call.cancel();
                ev.push(Event::Cancelled);
            }
            Step::ReceiveHeaders => call.await_headers(ev).await?,
            Step::Receive(r) => match call.next(ev).await? {
                Read::Message(compressed, bytes) => {
                    let actual = self.record(compressed, &bytes, ev);
                    if let (Some(expected), Some(actual)) = (&r.message, actual) {
                        let expected = message::canonical(&self.method.output(), expected)
                            .map_err(Stop::Failed)?;
                        let ok = if r.partial {
                            message::partial_match(&expected, &actual)
                        } else {
                            expected == actual
                        };
                        let kind = if r.partial { "message with" } else { "message" };
                        ev.push(Event::Check {
                            ok,
                            what: format!("{kind} {}", message::one_line(&expected)),
                        });
                    }
                }
                Read::End => ev.push(Event::Check {
                    ok: false,
                    what: "a message, but the response ended".into(),
                }),
            },
            Step::ReceiveAll => self.drain(call, ev).await?,
            Step::ExpectHeaders(expected) => {
                call.await_headers(ev).await?;
                check_fields("header", expected, call.headers.as_ref(), ev);
            }
            Step::ExpectTrailers(expected) => {
                self.drain(call, ev).await?;
                check_fields("trailer", expected, call.trailers.as_ref(), ev);
            }
            Step::ExpectStatus(expected) => {
                self.drain(call, ev).await?;
                let (code, message) = call
                    .status
                    .clone()
                    .unwrap_or_else(|| ("<none>".into(), String::new()));
                let ok = code == expected.code
                    && expected.message.as_ref().is_none_or(|m| *m == message);
                let what = match &expected.message {
                    Some(m) => format!("status {} {m:?}", expected.code),
                    None => format!("status {}", expected.code),
                };
                ev.push(Event::Check { ok, what });
            }
            Step::Pause(_) | Step::Observe => unreachable!("handled by the caller"),
        }
        Ok(())
    }

    /// Reads every remaining message and the status.
    async fn drain(&self, call: &mut ActiveCall, ev: &mut Vec<Event>) -> Result<(), Stop> {
        call.drain(ev, |compressed, bytes, ev| {
            self.record(compressed, bytes, ev);
        })
        .await
    }
}

/// Checks named header or trailer fields; `None` expectations only record.
fn check_fields(
    kind: &str,
    expected: &BTreeMap<String, Option<String>>,
    map: Option<&http::HeaderMap>,
    ev: &mut Vec<Event>,
) {
    for (name, want) in expected {
        let got = map
            .and_then(|m| m.get(name.as_str()))
            .map(|v| call::shown_value(name, v.as_bytes()));
        let shown = got
            .as_deref()
            .map_or("<absent>".to_string(), |g| format!("{g:?}"));
        let (ok, what) = match want {
            None => (true, format!("{kind} {name}: {shown}")),
            Some(w) if got.as_deref() == Some(w.as_str()) => {
                (true, format!("{kind} {name} = {w:?}"))
            }
            Some(w) => (false, format!("{kind} {name} = {w:?}, got {shown}")),
        };
        ev.push(Event::Check { ok, what });
    }
}
