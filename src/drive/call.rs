//! One call on an h2 stream: sending framed messages, reading the response
//! head, messages and trailers, and turning each into transcript events.
//! Nothing is read in the background: the script decides when to read, so
//! the order of events is the order of steps.

use super::{codec, describe_h2, Stop};
use crate::model::{status_name, Event};
use bytes::Bytes;
use h2::{client::ResponseFuture, RecvStream, SendStream};
use http::HeaderMap;
use std::collections::BTreeSet;
use tokio::time::{timeout_at, Instant};

use crate::normalise::{shown_call_field, TRANSPORT_FIELDS as SHOWN_HEADERS};

/// Where the response stands.
enum Response {
    /// Headers not seen yet.
    Pending(ResponseFuture),
    /// Headers seen, messages may follow.
    Open(RecvStream),
    /// A trailers-only response: its fields wait to be reported as trailers
    /// when the script reads past the (empty) body, as for any other response.
    TrailersOnly(HeaderMap),
    /// Status read, or the stream failed or was cancelled.
    Done,
}

/// A call in progress.
pub struct ActiveCall {
    send: SendStream<Bytes>,
    response: Response,
    deframer: codec::Deframer,
    /// `grpc-encoding` of the response, for compressed messages.
    response_encoding: Option<String>,
    /// Response headers as received (kept for `expect_headers`).
    pub headers: Option<HeaderMap>,
    /// Trailers as received (for trailers-only: the whole head).
    pub trailers: Option<HeaderMap>,
    /// Status code name and decoded message, once read.
    pub status: Option<(String, String)>,
    /// Extra header names the script asks about, shown in the transcript.
    shown: BTreeSet<String>,
    /// Whether the status message goes into the transcript: only when the
    /// fixture checks it, since the contract fixes few messages and every
    /// implementation words its own errors differently.
    show_status_message: bool,
    /// When every wait gives up.
    deadline: Instant,
}

/// What a read found.
pub enum Read {
    /// A message: compressed flag and decompressed bytes.
    Message(bool, Vec<u8>),
    /// The end of the response (trailers and status already recorded).
    End,
}

impl ActiveCall {
    /// Wraps a freshly opened stream.
    pub fn new(
        send: SendStream<Bytes>,
        response: ResponseFuture,
        shown: BTreeSet<String>,
        show_status_message: bool,
        deadline: Instant,
    ) -> ActiveCall {
        ActiveCall {
            send,
            response: Response::Pending(response),
            deframer: codec::Deframer::default(),
            response_encoding: None,
            headers: None,
            trailers: None,
            status: None,
            shown,
            show_status_message,
            deadline,
        }
    }

    /// Whether the status was read (or the stream is gone).
    pub fn is_done(&self) -> bool {
        matches!(self.response, Response::Done)
    }

    /// Sends one framed message; errors because the server already ended the
    /// stream are not the driver's business (the response says what happened).
    pub fn send_message(&mut self, bytes: Bytes) -> Result<(), Stop> {
        self.send.reserve_capacity(bytes.len());
        match self.send.send_data(bytes, false) {
            Ok(()) => Ok(()),
            // Only a dead connection is news here; a stream the server
            // already closed or reset shows in what the response says.
            Err(e) if e.is_io() => Err(Stop::Failed(format!("cannot send: {}", describe_h2(&e)))),
            Err(_) => Ok(()),
        }
    }

    /// Sends END_STREAM (an empty DATA frame).
    pub fn half_close(&mut self) {
        let _ = self.send.send_data(Bytes::new(), true);
    }

    /// Resets the stream with CANCEL.
    pub fn cancel(&mut self) {
        self.send.send_reset(h2::Reason::CANCEL);
        self.response = Response::Done;
    }

    /// Waits for the response head; records it once.
    pub async fn await_headers(&mut self, ev: &mut Vec<Event>) -> Result<(), Stop> {
        let Response::Pending(future) = &mut self.response else {
            return Ok(());
        };
        let head = match timeout_at(self.deadline, future).await {
            Err(_) => return Err(Stop::TimedOut("response headers".into())),
            Ok(Err(e)) => {
                self.response = Response::Done;
                return Err(Stop::Failed(describe_h2(&e)));
            }
            Ok(Ok(head)) => head,
        };
        let (parts, body) = head.into_parts();
        let mut fields = Vec::new();
        if parts.status != http::StatusCode::OK {
            fields.push((":status".to_string(), parts.status.as_u16().to_string()));
        }
        self.response_encoding = parts
            .headers
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if parts.headers.contains_key("grpc-status") {
            // Trailers-only: only transport-level fields count as headers, so
            // the transcript is the same as for headers then trailers.
            fields.extend(self.select(&parts.headers, |n| SHOWN_HEADERS.contains(&n)));
            self.headers = Some(parts.headers.clone());
            self.response = Response::TrailersOnly(parts.headers);
        } else {
            fields.extend(self.select(&parts.headers, |_| true));
            self.headers = Some(parts.headers);
            self.response = Response::Open(body);
        }
        ev.push(Event::Headers { fields });
        Ok(())
    }

    /// Reads the next message, or the end of the response.
    pub async fn next(&mut self, ev: &mut Vec<Event>) -> Result<Read, Stop> {
        self.await_headers(ev).await?;
        loop {
            if let Some((flag, payload)) = self.deframer.next_message().map_err(Stop::Failed)? {
                return self.unpack(flag, payload).map(|(c, m)| Read::Message(c, m));
            }
            let body = match &mut self.response {
                Response::Open(body) => body,
                Response::TrailersOnly(head) => {
                    let head = head.clone();
                    self.finish(&head, ev);
                    return Ok(Read::End);
                }
                Response::Done | Response::Pending(_) => return Ok(Read::End),
            };
            match timeout_at(self.deadline, body.data()).await {
                Err(_) => return Err(Stop::TimedOut("a response message or the trailers".into())),
                Ok(Some(Ok(data))) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    self.deframer.push(&data);
                }
                Ok(Some(Err(e))) => {
                    self.response = Response::Done;
                    return Err(Stop::Failed(describe_h2(&e)));
                }
                Ok(None) => {
                    let trailers = match timeout_at(self.deadline, body.trailers()).await {
                        Err(_) => return Err(Stop::TimedOut("the trailers".into())),
                        Ok(Err(e)) => {
                            self.response = Response::Done;
                            return Err(Stop::Failed(describe_h2(&e)));
                        }
                        Ok(Ok(t)) => t,
                    };
                    if self.deframer.leftover() > 0 {
                        ev.push(Event::Failure {
                            what: format!(
                                "{} bytes of an incomplete message before the end",
                                self.deframer.leftover()
                            ),
                        });
                    }
                    match trailers {
                        Some(t) => self.finish(&t, ev),
                        None => {
                            self.response = Response::Done;
                            return Err(Stop::Failed("the stream ended without trailers".into()));
                        }
                    }
                    return Ok(Read::End);
                }
            }
        }
    }

    /// Reads to the end of the response, recording messages through `on_message`.
    pub async fn drain(
        &mut self,
        ev: &mut Vec<Event>,
        mut on_message: impl FnMut(bool, &[u8], &mut Vec<Event>),
    ) -> Result<(), Stop> {
        loop {
            match self.next(ev).await? {
                Read::Message(compressed, bytes) => on_message(compressed, &bytes, ev),
                Read::End => return Ok(()),
            }
        }
    }

    /// Records trailers and status from `t` and marks the response done.
    fn finish(&mut self, t: &HeaderMap, ev: &mut Vec<Event>) {
        let fields = self.select(t, |n| !SHOWN_HEADERS.contains(&n));
        ev.push(Event::Trailers { fields });
        match t
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.parse::<u32>())
        {
            Some(Ok(code)) => {
                let raw = t
                    .get("grpc-message")
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                let message = percent_encoding::percent_decode(raw)
                    .decode_utf8_lossy()
                    .into_owned();
                self.status = Some((status_name(code), message.clone()));
                ev.push(Event::Status {
                    code: status_name(code),
                    message: if self.show_status_message {
                        message
                    } else {
                        String::new()
                    },
                });
            }
            Some(Err(_)) => ev.push(Event::Failure {
                what: "grpc-status is not a number".into(),
            }),
            None => ev.push(Event::Failure {
                what: "no grpc-status in the trailers".into(),
            }),
        }
        self.trailers = Some(t.clone());
        self.response = Response::Done;
    }

    /// Checks the flag and decompresses.
    fn unpack(&self, flag: u8, payload: Bytes) -> Result<(bool, Vec<u8>), Stop> {
        match flag {
            0 => Ok((false, payload.to_vec())),
            1 => {
                let encoding = self.response_encoding.as_deref().unwrap_or("identity");
                if encoding == "identity" {
                    return Err(Stop::Failed(
                        "compressed message without grpc-encoding".into(),
                    ));
                }
                codec::decompress(encoding, &payload)
                    .map(|m| (true, m))
                    .map_err(Stop::Failed)
            }
            other => Err(Stop::Failed(format!(
                "message with compressed flag {other}"
            ))),
        }
    }

    /// Header fields worth showing, `x-` and named ones plus those `pass`
    /// allows among the always-shown; sorted by name. grpc-status and
    /// grpc-message are reported as the status instead.
    fn select(&self, map: &HeaderMap, pass: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = map
            .iter()
            .filter(|(name, _)| shown_call_field(name.as_str(), &self.shown) && pass(name.as_str()))
            .filter_map(|(n, v)| {
                let value = crate::normalise::response_field(n.as_str(), v.as_bytes())?;
                Some((n.as_str().to_string(), value))
            })
            .collect();
        out.sort();
        out
    }
}
