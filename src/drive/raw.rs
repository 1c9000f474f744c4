//! The raw driver: a small HTTP/2 client that writes its frames itself, for
//! what h2's client refuses or hides (chosen RST_STREAM codes, PINGs with
//! chosen payloads, malformed messages and headers, rapid resets). Header
//! blocks are encoded with `loona-hpack`; a reader task decodes the server's
//! frames into the connection's [`FrameLog`] and answers SETTINGS and PING.
//! It grants the server the largest windows at once and never sends more
//! than the server's initial window, so it needs no flow control of its own.

use super::{facts, DriveError, DriveOptions, Stop};
use crate::{
    descriptors::Descriptors,
    message,
    model::{Event, RawStep},
    wire::{
        frame::{flag, kind, FrameHeader, CLIENT_PREFACE},
        log::{error_name, setting_name, Body, Dir, Frame, END_HEADERS},
        recorder::FrameLog,
    },
};
use prost_reflect::MethodDescriptor;
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, WriteHalf},
    sync::{mpsc, Mutex},
    task::JoinHandle,
    time::{sleep, timeout_at, Instant},
};

/// Largest frame payload we send (the minimum every peer accepts).
const MAX_FRAME: usize = 16_384;

/// Writes frames, logging each as sent.
#[derive(Clone)]
struct Writer {
    /// The write half.
    io: Arc<Mutex<WriteHalf<Box<dyn super::connect::Io>>>>,
    /// Where sent frames are logged.
    log: FrameLog,
}

impl Writer {
    /// Writes `bytes` (whole frames) at once.
    async fn write(&self, bytes: &[u8]) -> Result<(), Stop> {
        self.log.feed(Dir::Out, bytes);
        let mut io = self.io.lock().await;
        io.write_all(bytes)
            .await
            .map_err(|_| Stop::Failed("connection lost while sending".into()))?;
        io.flush()
            .await
            .map_err(|_| Stop::Failed("connection lost while sending".into()))
    }
}

/// One frame's bytes.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        length: payload.len() as u32,
        kind,
        flags,
        stream_id: stream,
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(payload);
    out
}

/// The raw connection and what the script has read of it.
struct RawConn {
    /// Sends frames.
    writer: Writer,
    /// Server frames as the reader task decodes them.
    incoming: mpsc::UnboundedReceiver<Frame>,
    /// HPACK state of our header blocks.
    encoder: loona_hpack::Encoder<'static>,
    /// Every server frame taken from `incoming`, in order.
    seen: Vec<Frame>,
    /// GOAWAYs already put in the transcript.
    goaways_reported: usize,
    /// The reader task hit EOF or an error.
    closed: bool,
    /// Reads the socket; aborted on drop.
    reader: JoinHandle<()>,
}

impl Drop for RawConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RawConn {
    /// Opens the connection: preface, SETTINGS with the largest stream window
    /// and no push, and the largest connection window.
    async fn open(io: Box<dyn super::connect::Io>, log: FrameLog) -> Result<RawConn, Stop> {
        let (mut read, write) = tokio::io::split(io);
        let writer = Writer {
            io: Arc::new(Mutex::new(write)),
            log: log.clone(),
        };
        // The preface goes first: the reader's answers must not overtake it.
        let mut start = CLIENT_PREFACE.to_vec();
        let mut settings = Vec::new();
        for (id, value) in [(2u16, 0u32), (4, 0x7fff_ffff)] {
            settings.extend(id.to_be_bytes());
            settings.extend(value.to_be_bytes());
        }
        start.extend(frame(kind::SETTINGS, 0, 0, &settings));
        start.extend(frame(
            kind::WINDOW_UPDATE,
            0,
            0,
            &(0x7fff_ffffu32 - 65_535).to_be_bytes(),
        ));
        writer.write(&start).await?;
        let (tx, incoming) = mpsc::unbounded_channel();
        let answer = writer.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = read.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                for f in log.feed(Dir::In, &buf[..n]) {
                    // A peer waits for these; answering is not the script's business.
                    let reply = match &f.body {
                        Body::Settings { ack: false, .. } => {
                            Some(frame(kind::SETTINGS, flag::ACK, 0, &[]))
                        }
                        Body::Ping {
                            ack: false,
                            payload,
                        } => Some(frame(kind::PING, flag::ACK, 0, payload)),
                        _ => None,
                    };
                    if let Some(reply) = reply {
                        let _ = answer.write(&reply).await;
                    }
                    if tx.send(f).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(RawConn {
            writer,
            incoming,
            encoder: loona_hpack::Encoder::new(),
            seen: Vec::new(),
            goaways_reported: 0,
            closed: false,
            reader,
        })
    }

    /// Takes server frames until `done` holds, the connection closes, or `until`.
    /// Whether `done` held.
    async fn pump(&mut self, until: Instant, done: impl Fn(&[Frame]) -> bool) -> bool {
        loop {
            if done(&self.seen) {
                return true;
            }
            if self.closed {
                return false;
            }
            match timeout_at(until, self.incoming.recv()).await {
                Ok(Some(f)) => self.seen.push(f),
                Ok(None) => self.closed = true,
                Err(_) => return false,
            }
        }
    }

    /// Sends a header block as HEADERS plus CONTINUATIONs.
    async fn headers(
        &mut self,
        stream: u32,
        fields: &[(String, String)],
        end: bool,
    ) -> Result<Vec<u8>, Stop> {
        let block = self
            .encoder
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME).collect();
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() {
                END_HEADERS
            } else {
                0
            };
            if i == 0 {
                let es = if end { flag::END_STREAM } else { 0 };
                out.extend(frame(kind::HEADERS, es | last, stream, chunk));
            } else {
                out.extend(frame(kind::CONTINUATION, last, stream, chunk));
            }
        }
        Ok(out)
    }
}

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
    let mut conn = match RawConn::open(io, log).await {
        Ok(c) => c,
        Err(Stop::Failed(what)) | Err(Stop::TimedOut(what)) => {
            ev.push(Event::Failure { what });
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
    for step in steps {
        match script.step(step, &mut ev).await {
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
    }
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
            let sent = match value.parse::<u64>() {
                Ok(ms) if name.starts_with("x-conform-") && name.ends_with("-ms") => {
                    self.options.scale(ms).to_string()
                }
                _ => value.clone(),
            };
            fields.push((name.clone(), sent));
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
                let mut msg = vec![m.flag];
                msg.extend((body.len() as u32 + m.extra_length).to_be_bytes());
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
                    payload.push(0);
                    payload.extend((body.len() as u32).to_be_bytes());
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
            RawStep::Ping(p) => {
                let payload = ping_payload(&p.payload)?;
                ev.push(Event::WireSent {
                    what: format!("PING {}", p.payload),
                });
                self.ping(payload, self.deadline, ev).await?;
            }
            RawStep::PingFlood(p) => {
                ev.push(Event::WireSent {
                    what: format!("up to {} PINGs {} ms apart", p.max, p.interval_ms),
                });
                let before = self.goaways();
                for i in 1..=p.max {
                    let next = Instant::now() + self.scaled(p.interval_ms);
                    self.conn
                        .writer
                        .write(&frame(kind::PING, 0, 0, &u64::from(i).to_be_bytes()))
                        .await?;
                    let got = self
                        .conn
                        .pump(next.min(self.deadline), |s| count_goaways(s) > before)
                        .await;
                    if got || self.conn.closed {
                        break;
                    }
                    if Instant::now() >= self.deadline {
                        return Err(Stop::TimedOut("the end of the PING flood".into()));
                    }
                }
                if !self.report_goaway(ev) {
                    ev.push(Event::WireNote {
                        what: if self.conn.closed {
                            format!("connection closed without GOAWAY within {} PINGs", p.max)
                        } else {
                            format!("no GOAWAY after {} PINGs", p.max)
                        },
                    });
                }
            }
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
            RawStep::AwaitGoaway(a) => {
                let before = self.conn.goaways_reported;
                let until = (Instant::now() + self.scaled(a.within_ms)).min(self.deadline);
                self.conn.pump(until, |s| count_goaways(s) > before).await;
                if !self.report_goaway(ev) {
                    ev.push(Event::WireNote {
                        what: if self.conn.closed {
                            "connection closed without GOAWAY".into()
                        } else {
                            format!("no GOAWAY within {} ms", a.within_ms)
                        },
                    });
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
                    let id = r.first_stream + 2 * i;
                    out.extend(self.conn.headers(id, &fields, false).await?);
                    out.extend(frame(kind::RST_STREAM, 0, id, &8u32.to_be_bytes()));
                }
                self.conn.writer.write(&out).await?;
                ev.push(Event::WireSent {
                    what: format!(
                        "{} streams of {} opened and reset (CANCEL) at once",
                        r.count, r.method
                    ),
                });
            }
            RawStep::ServerSettings(names) => {
                let found = self
                    .conn
                    .pump(self.deadline, |s| {
                        s.iter()
                            .any(|f| matches!(f.body, Body::Settings { ack: false, .. }))
                    })
                    .await;
                if !found {
                    return Err(Stop::TimedOut("the server's SETTINGS".into()));
                }
                let values = self
                    .conn
                    .seen
                    .iter()
                    .find_map(|f| match &f.body {
                        Body::Settings { ack: false, values } => Some(values.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let fields = names
                    .iter()
                    .map(|name| {
                        let v = values
                            .iter()
                            .rev()
                            .find(|(id, _)| setting_name(*id) == *name)
                            .map_or("absent".to_string(), |(_, v)| v.to_string());
                        (name.clone(), v)
                    })
                    .collect();
                ev.push(Event::ServerSettings { fields });
            }
        }
        Ok(())
    }

    /// Sends a PING and records its ACK.
    async fn ping(
        &mut self,
        payload: [u8; 8],
        until: Instant,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let acks = |s: &[Frame]| {
            s.iter()
                .filter(|f| matches!(f.body, Body::Ping { ack: true, .. }))
                .count()
        };
        let before = acks(&self.conn.seen);
        self.conn
            .writer
            .write(&frame(kind::PING, 0, 0, &payload))
            .await?;
        if !self.conn.pump(until, |s| acks(s) > before).await {
            return Err(if self.conn.closed {
                Stop::Failed("connection closed before the PING ACK".into())
            } else {
                Stop::TimedOut("the PING ACK".into())
            });
        }
        let ack = self
            .conn
            .seen
            .iter()
            .filter_map(|f| match f.body {
                Body::Ping { ack: true, payload } => Some(payload),
                _ => None,
            })
            .nth(before)
            .expect("counted");
        ev.push(Event::PingAck {
            payload: crate::wire::log::hex(&ack),
            same: ack == payload,
        });
        Ok(())
    }

    /// GOAWAYs seen so far.
    fn goaways(&self) -> usize {
        count_goaways(&self.conn.seen)
    }

    /// Puts the next unreported GOAWAY in the transcript; whether there was one.
    fn report_goaway(&mut self, ev: &mut Vec<Event>) -> bool {
        let next = self
            .conn
            .seen
            .iter()
            .filter(|f| matches!(f.body, Body::GoAway { .. }))
            .nth(self.conn.goaways_reported);
        match next.and_then(facts::goaway_event) {
            Some(e) => {
                ev.push(e);
                self.conn.goaways_reported += 1;
                true
            }
            None => false,
        }
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

/// GOAWAY frames among `seen`.
fn count_goaways(seen: &[Frame]) -> usize {
    seen.iter()
        .filter(|f| matches!(f.body, Body::GoAway { .. }))
        .count()
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

/// The error code named `name` (RFC 9113 7).
pub fn error_code(name: &str) -> Result<u32, Stop> {
    (0..14)
        .find(|c| error_name(*c) == name)
        .ok_or_else(|| Stop::Failed(format!("fixture: no HTTP/2 error code {name}")))
}

/// 8 bytes from 16 hex digits.
pub fn ping_payload(text: &str) -> Result<[u8; 8], Stop> {
    let bad = || {
        Stop::Failed(format!(
            "fixture: PING payload {text:?} is not 16 hex digits"
        ))
    };
    if text.len() != 16 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Checks a raw script before anything is sent: methods exist, messages fit
/// their stream's input type, streams are opened before use with rising odd
/// ids, codes and payloads parse. The error is (field path, what is wrong).
pub fn validate(steps: &[RawStep], descriptors: &Descriptors) -> Result<(), (String, String)> {
    let mut methods: HashMap<u32, MethodDescriptor> = HashMap::new();
    let mut last = 0;
    for (i, step) in steps.iter().enumerate() {
        let at = |rest: &str| format!("raw[{i}]{rest}");
        let stop = |rest: &str, e: Stop| match e {
            Stop::Failed(m) | Stop::TimedOut(m) => (at(rest), m),
        };
        let mut open = |s: u32, path: &str| -> Result<(), (String, String)> {
            let m = descriptors.method(path).ok_or_else(|| {
                (
                    at(".method"),
                    format!("no method {path} in the descriptors"),
                )
            })?;
            if s % 2 == 0 || s <= last {
                return Err((
                    at(".stream"),
                    format!("s{s}: client streams are odd and rising"),
                ));
            }
            last = s;
            methods.insert(s, m);
            Ok(())
        };
        match step {
            RawStep::Open(o) => open(o.stream, &o.method)?,
            RawStep::ResetMany(r) => {
                for k in 0..r.count {
                    open(r.first_stream + 2 * k, &r.method)?;
                }
            }
            _ => {}
        }
        let opened = |s: u32| {
            methods
                .get(&s)
                .cloned()
                .ok_or_else(|| (at(".stream"), format!("s{s} is not opened before")))
        };
        match step {
            RawStep::Message(m) => {
                message::from_json(&opened(m.stream)?.input(), &m.message)
                    .map_err(|e| (at(".message.message"), e))?;
            }
            RawStep::Messages(m) => {
                let input = opened(m.stream)?.input();
                for json in &m.messages {
                    message::from_json(&input, json).map_err(|e| (at(".messages.messages"), e))?;
                }
            }
            RawStep::EndStream(s) => drop(opened(s.stream)?),
            RawStep::Await(a) => drop(opened(a.stream)?),
            RawStep::Reset(r) => {
                opened(r.stream)?;
                error_code(&r.code).map_err(|e| stop(".reset.code", e))?;
            }
            RawStep::Ping(p) => {
                ping_payload(&p.payload).map_err(|e| stop(".ping.payload", e))?;
            }
            RawStep::ServerSettings(names) => {
                if let Some(n) = names
                    .iter()
                    .find(|n| !(1..=8).any(|id| setting_name(id) == **n))
                {
                    return Err((at(".server_settings"), format!("no setting named {n}")));
                }
            }
            RawStep::Open(_)
            | RawStep::ResetMany(_)
            | RawStep::PingFlood(_)
            | RawStep::Pause(_)
            | RawStep::AwaitGoaway(_) => {}
        }
    }
    Ok(())
}
