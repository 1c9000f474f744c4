//! The raw driver: a small HTTP/2 client that writes its frames itself, for
//! what h2's client refuses or hides (chosen RST_STREAM codes, PINGs with
//! chosen payloads, malformed messages and headers, rapid resets). Header
//! blocks are encoded with `loona-hpack`; a reader task decodes the server's
//! frames into the connection's [`FrameLog`] and answers SETTINGS and PING.
//! It grants the server a 1 MiB window per stream and for the connection,
//! granted again as the script takes the DATA, and reads the socket only as
//! fast as the script takes frames, so a server streaming without end cannot
//! fill memory; floods of PING, SETTINGS, CONTINUATION or RST_STREAM end the
//! conversation with a failure that names them (see [`crate::wire::bounds`]).
//! It keeps no send window of its own, because fixtures send messages far
//! below any initial window (a script sending more than 64 KiB on a stream
//! could stall).
//!
//! - `conn`: the connection, its writer and reader task.
//! - `connection`: the connection-level steps (PING, GOAWAY, SETTINGS).
//! - `check`: validation of a raw script before anything is sent.
//! - `frames`: frame-level steps (padding, PRIORITY, unknown frames and
//!   settings, CONTINUATION, WINDOW_UPDATE, many streams at once).

mod check;
mod conn;
mod connection;
mod frames;

pub use check::{error_code, ping_payload, validate};

use super::{facts, DriveError, DriveOptions, Stop};
use crate::{
    descriptors::Descriptors,
    message,
    model::{Event, RawStep},
    wire::{
        frame::{flag, frame, kind},
        log::{Body, Frame},
        message::MessagePrefix,
        recorder::FrameLog,
    },
};
use conn::{RawConn, MAX_FRAME};
use prost_reflect::MethodDescriptor;
use std::{collections::HashMap, time::Duration};
use tokio::time::{sleep, timeout_at, Instant};

/// Bytes of a `reset_many` burst written at a time.
const RESET_BURST_WRITE: usize = 64 * 1024;

/// Runs a raw conversation (`fixture.raw`) and returns its events and the
/// frame log.
pub async fn run_raw(
    connector: &super::Connector,
    steps: &[RawStep],
    descriptors: &Descriptors,
    options: &DriveOptions,
    deadline: Instant,
    log: FrameLog,
) -> Result<Vec<Event>, DriveError> {
    let mut ev = Vec::new();
    let (io, scheme) = match timeout_at(deadline, connector.connect_io()).await {
        Ok(r) => r?,
        Err(_) => {
            ev.push(Event::TimedOut {
                waiting_for: "the connection".into(),
            });
            return Ok(ev);
        }
    };
    let mut conn = match timeout_at(deadline, RawConn::open(io, log.clone())).await {
        Ok(Ok(c)) => c,
        Ok(Err(Stop::Failed(what))) | Ok(Err(Stop::TimedOut(what))) => {
            ev.push(Event::Failure { what });
            return Ok(ev);
        }
        Err(_) => {
            ev.push(Event::TimedOut {
                waiting_for: "the connection preface to be sent".into(),
            });
            return Ok(ev);
        }
    };
    let mut script = Script {
        conn: &mut conn,
        descriptors,
        options,
        deadline,
        scheme,
        authority: connector.address().to_string(),
        methods: HashMap::new(),
    };
    for (i, step) in steps.iter().enumerate() {
        // Waits inside a step are bounded already; this also bounds a write
        // to a peer that stopped reading.
        let outcome = timeout_at(deadline, script.step(step, &mut ev))
            .await
            .unwrap_or_else(|_| Err(Stop::TimedOut(format!("step {} to finish", i + 1))));
        match outcome {
            Ok(()) => {}
            Err(Stop::Failed(what)) => {
                ev.push(Event::Failure { what });
                break;
            }
            Err(Stop::TimedOut(waiting_for)) => {
                ev.push(Event::TimedOut { waiting_for });
                break;
            }
        }
        if log.flood().is_some() {
            break;
        }
    }
    if script.conn.not_seen > 0 {
        ev.push(Event::WireNote {
            what: format!(
                "{} more server frames not kept (at most {} a conversation)",
                script.conn.not_seen,
                conn::MAX_SEEN
            ),
        });
    }
    ev.extend(super::log_limits(&log, true));
    Ok(ev)
}

/// A raw script in progress.
struct Script<'a> {
    /// The connection.
    conn: &'a mut RawConn,
    /// Message types.
    descriptors: &'a Descriptors,
    /// Time scale.
    options: &'a DriveOptions,
    /// End of the fixture's time.
    deadline: Instant,
    /// `:scheme`.
    scheme: &'static str,
    /// `:authority`.
    authority: String,
    /// The method of each stream opened.
    methods: HashMap<u32, MethodDescriptor>,
}

impl Script<'_> {
    /// `ms` scaled, as a duration.
    fn scaled(&self, ms: u64) -> Duration {
        Duration::from_millis(self.options.scale(ms))
    }

    /// The method named `path`.
    fn method(&self, path: &str) -> Result<MethodDescriptor, Stop> {
        self.descriptors
            .method(path)
            .ok_or_else(|| Stop::Failed(format!("fixture: no method {path}")))
    }

    /// Request header fields of a call; `shown` gets the fixture's own.
    fn request_fields(
        &self,
        o: &crate::model::OpenStep,
        shown: &mut Vec<String>,
    ) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = vec![
            (":method".into(), "POST".into()),
            (":scheme".into(), self.scheme.into()),
            (
                ":path".into(),
                o.path.clone().unwrap_or_else(|| o.method.clone()),
            ),
            (":authority".into(), self.authority.clone()),
        ];
        let ct = o
            .content_type
            .clone()
            .unwrap_or_else(|| "application/grpc".into());
        if o.content_type.is_some() {
            shown.push(format!("content-type={ct}"));
        }
        fields.push(("content-type".into(), ct));
        fields.push(("te".into(), "trailers".into()));
        for (name, value) in [("grpc-timeout", &o.timeout), ("grpc-encoding", &o.encoding)] {
            if let Some(v) = value {
                shown.push(format!("{name}={v:?}"));
                fields.push((name.into(), v.clone()));
            }
        }
        for (name, value) in &o.metadata {
            shown.push(format!("{name}={value:?}"));
            let sent = crate::normalise::scaled_metadata(name, value, |ms| self.options.scale(ms));
            fields.push((name.clone(), sent));
        }
        // `--header` values (credentials, say): sent, never shown.
        for (name, value) in &self.options.extra_headers {
            if let Ok(v) = value.to_str() {
                fields.push((name.as_str().to_string(), v.to_string()));
            }
        }
        if let Some(n) = o.filler_bytes {
            shown.push(format!("x-conform-filler=<{n} bytes>"));
            fields.push(("x-conform-filler".into(), "f".repeat(n)));
        }
        fields
    }

    /// One step.
    async fn step(&mut self, step: &RawStep, ev: &mut Vec<Event>) -> Result<(), Stop> {
        match step {
            RawStep::Open(o) => {
                let desc = self.method(&o.method)?;
                let mut shown = Vec::new();
                let fields = self.request_fields(o, &mut shown);
                let bytes = self.conn.headers(o.stream, &fields, o.end_stream).await?;
                self.conn.writer.write(&bytes).await?;
                self.methods.insert(o.stream, desc);
                ev.push(Event::WireSent {
                    what: format!(
                        "s{} HEADERS {}{}{}",
                        o.stream,
                        o.path.as_ref().unwrap_or(&o.method),
                        shown.iter().map(|s| format!(" {s}")).collect::<String>(),
                        if o.end_stream { " END_STREAM" } else { "" }
                    ),
                });
            }
            RawStep::Message(m) => {
                let body = self.encode(m.stream, &m.message)?;
                let body = if m.gzip {
                    super::codec::compress("gzip", &body).expect("gzip is built in")
                } else {
                    body
                };
                let prefix = MessagePrefix {
                    compressed: m.flag,
                    length: body.len() as u32 + m.extra_length,
                };
                let mut msg = prefix.encode().to_vec();
                msg.extend(&body);
                let per = m.frame_bytes.unwrap_or(MAX_FRAME).clamp(1, MAX_FRAME);
                let chunks: Vec<&[u8]> = msg.chunks(per).collect();
                let mut out = Vec::new();
                for (i, c) in chunks.iter().enumerate() {
                    let es = m.end_stream && i + 1 == chunks.len();
                    out.extend(frame(
                        kind::DATA,
                        if es { flag::END_STREAM } else { 0 },
                        m.stream,
                        c,
                    ));
                }
                self.conn.writer.write(&out).await?;
                let mut what = format!(
                    "s{} message flag={} {}",
                    m.stream,
                    m.flag,
                    message::one_line(&m.message)
                );
                if m.gzip {
                    what.push_str(" gzipped");
                }
                if m.extra_length > 0 {
                    what.push_str(&format!(" (prefix claims {} bytes more)", m.extra_length));
                }
                if let Some(n) = m.frame_bytes {
                    what.push_str(&format!(" in {n}-byte DATA frames"));
                }
                if m.end_stream {
                    what.push_str(" END_STREAM");
                }
                ev.push(Event::WireSent { what });
            }
            RawStep::Messages(m) => {
                let mut payload = Vec::new();
                for json in &m.messages {
                    let body = self.encode(m.stream, json)?;
                    let prefix = MessagePrefix {
                        compressed: 0,
                        length: body.len() as u32,
                    };
                    payload.extend(prefix.encode());
                    payload.extend(body);
                }
                let es = if m.end_stream { flag::END_STREAM } else { 0 };
                self.conn
                    .writer
                    .write(&frame(kind::DATA, es, m.stream, &payload))
                    .await?;
                let list: Vec<String> = m.messages.iter().map(message::one_line).collect();
                ev.push(Event::WireSent {
                    what: format!(
                        "s{} {} messages in one DATA frame {}{}",
                        m.stream,
                        m.messages.len(),
                        list.join(" "),
                        if m.end_stream { " END_STREAM" } else { "" }
                    ),
                });
            }
            RawStep::EndStream(s) => {
                self.conn
                    .writer
                    .write(&frame(kind::DATA, flag::END_STREAM, s.stream, &[]))
                    .await?;
                ev.push(Event::WireSent {
                    what: format!("s{} empty DATA END_STREAM", s.stream),
                });
            }
            RawStep::Reset(r) => {
                let code = error_code(&r.code)?;
                self.conn
                    .writer
                    .write(&frame(kind::RST_STREAM, 0, r.stream, &code.to_be_bytes()))
                    .await?;
                ev.push(Event::WireSent {
                    what: format!("s{} RST_STREAM {}", r.stream, r.code),
                });
            }
            RawStep::Ping(p) => self.ping_step(p, ev).await?,
            RawStep::PingFlood(p) => self.ping_flood(p, ev).await?,
            RawStep::AwaitGoaway(a) => self.await_goaway(a, ev).await,
            RawStep::ServerSettings(names) => self.server_settings(names, ev).await?,
            RawStep::OpenFramed(o) => self.open_framed(o, ev).await?,
            RawStep::OpenMany(o) => self.open_many(o, ev).await?,
            RawStep::PaddedMessage(m) => self.padded_message(m, ev).await?,
            RawStep::MessageBytes(m) => self.message_bytes(m, ev).await?,
            RawStep::Priority(p) => self.priority(p, ev).await?,
            RawStep::UnknownFrame(u) => self.unknown_frame(u, ev).await?,
            RawStep::Settings(pairs) => self.settings(pairs, ev).await?,
            RawStep::WindowUpdate(w) => self.window_update(w, ev).await?,
            RawStep::Pause(p) => {
                ev.push(Event::Paused { ms: p.ms });
                sleep(self.scaled(p.ms)).await;
            }
            RawStep::Await(a) => {
                let stream = a.stream;
                let ended = self
                    .conn
                    .pump(self.deadline, |s| s.iter().any(|f| ends(f, stream)))
                    .await;
                if ended && a.linger_ms > 0 {
                    let until = (Instant::now() + self.scaled(a.linger_ms)).min(self.deadline);
                    self.conn.pump(until, |_| false).await;
                }
                let output = self.methods.get(&stream).map(|m| m.output());
                ev.extend(facts::stream_events(
                    stream,
                    &self.conn.seen,
                    output.as_ref(),
                    a.shape,
                ));
                if !ended {
                    if self.conn.closed {
                        ev.push(Event::WireNote {
                            what: format!("connection closed before s{stream} ended"),
                        });
                        // A closed connection says all it will: every GOAWAY is in.
                        while self.report_goaway(ev) {}
                    } else {
                        return Err(Stop::TimedOut(format!("the end of s{stream}")));
                    }
                }
            }
            RawStep::ResetMany(r) => {
                let mut out = Vec::new();
                let o = crate::model::OpenStep {
                    stream: 0,
                    method: r.method.clone(),
                    path: None,
                    metadata: Vec::new(),
                    content_type: None,
                    timeout: None,
                    encoding: None,
                    end_stream: false,
                    filler_bytes: None,
                };
                let fields = self.request_fields(&o, &mut Vec::new());
                for i in 0..r.count {
                    // Encoding never waits: let the fixture's timeout fire.
                    tokio::task::consume_budget().await;
                    let id = r.first_stream + 2 * i;
                    out.extend(self.conn.headers(id, &fields, false).await?);
                    out.extend(frame(kind::RST_STREAM, 0, id, &8u32.to_be_bytes()));
                    // Back to back in writes of 64 KiB, each logged as it goes,
                    // so a long burst stops at the timeout too.
                    if out.len() >= RESET_BURST_WRITE {
                        self.conn.writer.write(&out).await?;
                        out.clear();
                    }
                }
                self.conn.writer.write(&out).await?;
                ev.push(Event::WireSent {
                    what: format!(
                        "{} streams of {} opened and reset (CANCEL) at once",
                        r.count, r.method
                    ),
                });
            }
        }
        Ok(())
    }

    /// Protobuf bytes of `json` as the input of the method on `stream`.
    fn encode(&self, stream: u32, json: &serde_json::Value) -> Result<Vec<u8>, Stop> {
        let method = self
            .methods
            .get(&stream)
            .ok_or_else(|| Stop::Failed(format!("fixture: s{stream} was not opened")))?;
        message::encode_json(&method.input(), json)
            .map_err(|e| Stop::Failed(format!("fixture: s{stream} message: {e}")))
    }
}

/// Whether `f` ends `stream` from the server's side.
fn ends(f: &Frame, stream: u32) -> bool {
    f.stream == stream
        && matches!(
            f.body,
            Body::Reset { .. }
                | Body::Headers {
                    end_stream: true,
                    ..
                }
                | Body::Data {
                    end_stream: true,
                    ..
                }
        )
}
