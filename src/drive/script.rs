//! Running one call's script: opening it with its metadata, each step in
//! order, and the Observer; everything it does or sees becomes an event.
//! The checks a step asks for are evaluated by the judge on what was read.

use super::{
    call::ActiveCall, call::Read, codec, observer, open_call, Conn, Connector, DriveOptions, Stop,
    OBSERVE_WAIT_MS,
};
use crate::{
    contract::CALL_ID as CALL_ID_HEADER,
    judge, message,
    model::{Event, Step},
};
use http::{HeaderName, HeaderValue};
use prost_reflect::MethodDescriptor;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};
use tokio::time::Instant;

/// One call of a conversation being run.
pub(super) struct CallRun<'a> {
    /// 1-based position.
    pub(super) index: usize,
    /// The fixture's call.
    pub(super) call: &'a crate::model::Call,
    /// Its method.
    pub(super) method: MethodDescriptor,
    /// Its `x-conform-call-id`.
    pub(super) call_id: String,
    /// Run settings.
    pub(super) options: &'a DriveOptions,
    /// End of the fixture's time.
    pub(super) deadline: Instant,
    /// What the conversation records of received messages.
    pub(super) budget: &'a super::budget::Budget,
}

impl CallRun<'_> {
    /// Opens the call and runs its steps; `Err(TimedOut)` ends the conversation.
    pub(super) async fn run(
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
                Step::Observe if !self.options.observer => ev.push(Event::NotObservable {
                    reason: "the target has no Observer".into(),
                }),
                Step::Observe => {
                    let received = ev
                        .iter()
                        .rev()
                        .take_while(|e| !matches!(e, Event::CallStart { .. }))
                        .filter(|e| matches!(e, Event::Received { .. }))
                        .count();
                    let ctx = observer::ObserveContext {
                        call_id: &self.call_id,
                        deadline_sent_ms: self.call.deadline_ms.map(|d| self.options.scale(d)),
                        sent_metadata: sent_metadata.clone(),
                        wait_ms: self.options.scale(OBSERVE_WAIT_MS) as u32,
                        cancelled,
                        received,
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
            let value =
                crate::normalise::scaled_metadata(name, written, |ms| self.options.scale(ms));
            sent_metadata.insert(name.clone(), (value.clone(), written.clone()));
            shown.push((name.clone(), written.clone()));
            send.push((name.clone(), value));
        }
        if let Some(d) = self.call.deadline_ms {
            shown.push(("grpc-timeout".into(), format!("{d}m")));
            send.push((
                "grpc-timeout".into(),
                super::grpc_timeout(self.options.scale(d).max(1)),
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
        crate::normalise::volatile_fields(&mut json, &self.call.volatile_fields);
        Ok(json)
    }

    /// Records a received message; an undecodable one is a failure event.
    fn record(
        &self,
        compressed: bool,
        bytes: &[u8],
        ev: &mut Vec<Event>,
    ) -> Option<serde_json::Value> {
        if !self.budget.admit(bytes.len()) {
            return None;
        }
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
                let sized;
                let message = match s.size {
                    None => &s.message,
                    Some(size) => {
                        sized = message::sized(&self.method.input(), &s.message, size)
                            .map_err(Stop::Failed)?;
                        &sized
                    }
                };
                let compressed = self.send_one(call, message, s.compressed)?;
                let json =
                    message::canonical(&self.method.input(), message).map_err(Stop::Failed)?;
                ev.push(Event::Sent {
                    json: message::one_line(&json),
                    compressed,
                });
            }
            Step::SendMany(m) => {
                let mut compressed = false;
                for i in 1..=m.count {
                    // Sending never waits (h2 queues the data), so without
                    // this a long loop would starve the fixture's timeout.
                    tokio::task::consume_budget().await;
                    if Instant::now() >= self.deadline {
                        return Err(Stop::TimedOut(format!("send_many to send message {i}")));
                    }
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
                        ev.push(judge::check_message(&expected, &actual, r.partial));
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
                ev.extend(judge::check_fields(
                    "header",
                    expected,
                    call.headers.as_ref(),
                ));
            }
            Step::ExpectTrailers(expected) => {
                self.drain(call, ev).await?;
                ev.extend(judge::check_fields(
                    "trailer",
                    expected,
                    call.trailers.as_ref(),
                ));
            }
            Step::ExpectStatus(expected) => {
                self.drain(call, ev).await?;
                ev.push(judge::check_status(expected, call.status.as_ref()));
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
