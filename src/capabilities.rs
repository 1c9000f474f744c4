//! What the target offers, found by a few bounded probes before any fixture
//! runs: its transport, the contract's methods, the Observer, each control
//! header, each encoding. A fixture whose needs the target lacks is "not
//! applicable" rather than failed, so a verdict never depends on what the
//! target chose not to implement.
//!
//! A control header is `honoured` when the call behaved as the contract
//! says, `ignored` when it behaved as without the header, and `wrong` when it
//! did something else: a wrong header counts as present, so its fixtures run
//! and fail.

use crate::{
    contract,
    drive::{self, codec, Conn, Connector, DriveError},
    proto::{
        contract::{HelloReply, HelloRequest, StreamRequestData, WatchRequest},
        observer::{CallQuery, CallRecord},
    },
};
use futures::future::join_all;
use http::{HeaderName, HeaderValue};
use prost::Message as _;
use serde::Serialize;
use std::{collections::BTreeMap, time::Duration};
use tokio::time::{timeout_at, Instant};

mod transport;
pub use transport::{check_transport, TransportError};

/// How the target answered a control header's probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// It behaved as the contract says.
    Honoured,
    /// It behaved as if the header were absent.
    Ignored,
    /// It did something else: counted as present, so fixtures show it.
    Wrong,
}

/// The target's profile.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Capabilities {
    /// Contract methods and whether each exists (anything but UNIMPLEMENTED).
    pub methods: BTreeMap<String, bool>,
    /// Whether `Observer.GetCall` returns the record of a call.
    pub observer: bool,
    /// Each control header and how it was answered.
    pub control: BTreeMap<String, Support>,
    /// Request encodings and whether each is accepted.
    pub encodings: BTreeMap<String, bool>,
    /// Whether fixtures that need the reference's own settings can run (only
    /// against the embedded reference, which is started with them).
    pub reference_settings: bool,
    /// Names whose value came from `--assume`, not from a probe.
    pub assumed: Vec<String>,
}

/// A `--assume` value that is not `NAME=yes|no` with a known name.
#[derive(Debug, thiserror::Error)]
#[error("--assume `{given}`: {reason}")]
pub struct AssumeError {
    /// What was given.
    pub given: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Capabilities {
    /// Everything present: the embedded reference.
    pub fn everything() -> Capabilities {
        Capabilities {
            methods: contract::METHODS
                .iter()
                .map(|m| (m.to_string(), true))
                .collect(),
            observer: true,
            control: contract::CONTROL_HEADERS
                .iter()
                .map(|h| (h.to_string(), Support::Honoured))
                .collect(),
            encodings: contract::ENCODINGS
                .iter()
                .map(|e| (e.to_string(), true))
                .collect(),
            reference_settings: true,
            assumed: Vec::new(),
        }
    }

    /// Whether the target has capability `name` (`observer`, `reference`,
    /// `method:/S/M`, `control:x-...`, `encoding:gzip`); `None` for a name
    /// this profile knows nothing of (a method of the user's own service).
    pub fn has(&self, name: &str) -> Option<bool> {
        match name.split_once(':') {
            None if name == "observer" => Some(self.observer),
            None if name == "reference" => Some(self.reference_settings),
            Some(("method", m)) => self.methods.get(m).copied(),
            Some(("control", h)) => self.control.get(h).map(|s| *s != Support::Ignored),
            Some(("encoding", e)) => self.encodings.get(e).copied(),
            _ => None,
        }
    }

    /// Applies one `--assume NAME=yes|no`.
    pub fn assume(&mut self, given: &str) -> Result<(), AssumeError> {
        let error = |reason: &str| AssumeError {
            given: given.to_string(),
            reason: reason.to_string(),
        };
        let (name, value) = given
            .split_once('=')
            .ok_or_else(|| error("expected NAME=yes or NAME=no"))?;
        let value = match value {
            "yes" | "true" => true,
            "no" | "false" => false,
            _ => return Err(error("the value must be yes or no")),
        };
        if self.has(name).is_none() {
            return Err(error(
                "unknown capability; names: observer, reference, method:/Service/Method, \
                 control:x-conform-..., encoding:gzip|deflate|zstd",
            ));
        }
        match name.split_once(':') {
            None if name == "observer" => self.observer = value,
            None => self.reference_settings = value,
            Some(("method", m)) => _ = self.methods.insert(m.to_string(), value),
            Some(("control", h)) => {
                let support = if value {
                    Support::Honoured
                } else {
                    Support::Ignored
                };
                self.control.insert(h.to_string(), support);
            }
            Some((_, e)) => _ = self.encodings.insert(e.to_string(), value),
        }
        self.assumed.push(name.to_string());
        Ok(())
    }

    /// The profile as short lines for a person: what is missing is named.
    pub fn summary(&self) -> Vec<String> {
        let missing = |map: &BTreeMap<String, bool>| -> Vec<String> {
            map.iter()
                .filter(|(_, v)| !**v)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "all".to_string()
            } else {
                format!("missing {}", v.join(", "))
            }
        };
        let by = |s: Support| -> Vec<String> {
            let names: Vec<String> = self
                .control
                .iter()
                .filter(|(_, v)| **v == s)
                .map(|(k, _)| k.clone())
                .collect();
            names
        };
        let mut control = format!("{} honoured", by(Support::Honoured).len());
        for (label, s) in [("ignored", Support::Ignored), ("wrong", Support::Wrong)] {
            if !by(s).is_empty() {
                control.push_str(&format!(", {label}: {}", by(s).join(", ")));
            }
        }
        vec![
            format!("methods: {}", list(missing(&self.methods))),
            format!("observer: {}", if self.observer { "yes" } else { "no" }),
            format!("control headers: {control}"),
            format!("encodings: {}", list(missing(&self.encodings))),
        ]
    }
}

/// How long all the probes together may take.
pub const PROBE_BUDGET: Duration = Duration::from_secs(5);

/// Probes the target on one connection, every probe at once, within
/// [`PROBE_BUDGET`] (scaled by `time_scale`).
pub async fn probe(connector: &Connector, time_scale: f64) -> Result<Capabilities, DriveError> {
    let deadline = Instant::now() + PROBE_BUDGET.mul_f64(time_scale);
    let conn = timeout_at(deadline, connector.connect())
        .await
        .map_err(|_| {
            DriveError::Handshake("no HTTP/2 connection within the probe budget".into())
        })??;
    let conn = &conn;
    let methods = join_all(contract::METHODS[..8].iter().map(|m| async move {
        let answer = ask(conn, m, &[], method_probe_request(m), deadline).await;
        (m.to_string(), answer.status_code() != Some(12))
    }));
    // Accepted means answered as the contract says: a server that hands the
    // compressed bytes to its handler undecoded also answers OK.
    let encodings = join_all(contract::ENCODINGS.iter().map(|e| async move {
        let enc = [("grpc-encoding", *e)];
        let answer = ask_encoded(conn, "/Greeter/SayHello", &enc, hello(), Some(e), deadline).await;
        (
            e.to_string(),
            answer.status_code() == Some(0) && answer.says_hello(),
        )
    }));
    let (methods, encodings, observer, control) = futures::join!(
        methods,
        encodings,
        probe_observer(conn, deadline),
        control_probes(conn, deadline)
    );
    Ok(Capabilities {
        methods: methods.into_iter().collect(),
        observer,
        control,
        encodings: encodings.into_iter().collect(),
        reference_settings: false,
        assumed: Vec::new(),
    })
}

/// A valid request for each contract method: none for the client- and
/// bidi-streaming ones, so they end OK at once.
fn method_probe_request(method: &str) -> Vec<Vec<u8>> {
    match method {
        "/Greeter/SayHello" => hello(),
        "/Greeter/ServerStream" => vec![StreamRequestData { data: "p".into() }.encode_to_vec()],
        "/SensorService/Watch" => vec![WatchRequest {
            device_id: "probe".into(),
            limit: 1,
        }
        .encode_to_vec()],
        "/SensorService/Latest" => vec![crate::proto::contract::DeviceQuery {
            device_id: "probe".into(),
        }
        .encode_to_vec()],
        _ => Vec::new(),
    }
}

fn hello() -> Vec<Vec<u8>> {
    vec![HelloRequest {
        name: "probe".into(),
    }
    .encode_to_vec()]
}

/// A SayHello with a call id, then GetCall for it.
async fn probe_observer(conn: &Conn, deadline: Instant) -> bool {
    let id = drive::next_call_id();
    let call = ask(
        conn,
        "/Greeter/SayHello",
        &[(contract::CALL_ID, &id)],
        hello(),
        deadline,
    )
    .await;
    if call.status_code().is_none() {
        return false;
    }
    let query = CallQuery {
        call_id: id,
        wait_ms: 1_000,
    };
    let answer = ask(
        conn,
        contract::GET_CALL,
        &[],
        vec![query.encode_to_vec()],
        deadline,
    )
    .await;
    answer.status_code() == Some(0)
        && answer
            .messages
            .first()
            .and_then(|m| CallRecord::decode(m.1.as_slice()).ok())
            .is_some_and(|r| r.method == "/Greeter/SayHello")
}

/// Each control header tried on its own call.
async fn control_probes(conn: &Conn, deadline: Instant) -> BTreeMap<String, Support> {
    let p = |m: &'static str, h: Vec<(&'static str, &'static str)>, r: Vec<Vec<u8>>| async move {
        ask(conn, m, &h, r, deadline).await
    };
    let stream_req = || vec![StreamRequestData { data: "p".into() }.encode_to_vec()];
    let (fail, count, interval, delay, close, encoding, echo) = futures::join!(
        p(
            "/Greeter/SayHello",
            vec![
                (contract::FAIL_AFTER, "0"),
                (contract::FAIL_CODE, "9"),
                (contract::FAIL_MESSAGE, "probe"),
            ],
            hello()
        ),
        p(
            "/Greeter/ServerStream",
            vec![(contract::RESPONSE_COUNT, "1")],
            stream_req()
        ),
        p(
            "/Greeter/ServerStream",
            vec![
                (contract::RESPONSE_COUNT, "2"),
                (contract::RESPONSE_INTERVAL_MS, "300")
            ],
            stream_req()
        ),
        p(
            "/Greeter/SayHello",
            vec![(contract::DELAY_MS, "300")],
            hello()
        ),
        p(
            "/Greeter/ClientStream",
            vec![(contract::CLOSE_AFTER_REQUESTS, "1")],
            ["a", "b"]
                .iter()
                .map(|d| StreamRequestData {
                    data: d.to_string()
                }
                .encode_to_vec())
                .collect()
        ),
        // Some stacks (grpc-go 1.33) compress a response only in the
        // request's encoding, so the request is gzip too.
        async {
            let headers = [
                (contract::RESPONSE_ENCODING, "gzip"),
                ("grpc-accept-encoding", "gzip"),
                ("grpc-encoding", "gzip"),
            ];
            ask_encoded(
                conn,
                "/Greeter/SayHello",
                &headers,
                hello(),
                Some("gzip"),
                deadline,
            )
            .await
        },
        p(
            "/Greeter/SayHello",
            vec![
                (contract::ECHO_INITIAL, "probe"),
                (contract::ECHO_TRAILING, "cHJvYmU")
            ],
            hello()
        ),
    );
    let judge = |honoured: bool, ignored: bool| match (honoured, ignored) {
        (true, _) => Support::Honoured,
        (false, true) => Support::Ignored,
        (false, false) => Support::Wrong,
    };
    let fail_code = fail.status_code();
    let streamed = |a: &Answer| a.messages.len();
    let reply_data = close
        .messages
        .first()
        .and_then(|m| crate::proto::contract::StreamResponseData::decode(m.1.as_slice()).ok())
        .map(|r| r.data);
    let header = |a: &Answer, n: &str| a.headers.get(n).cloned();
    let trailer = |a: &Answer, n: &str| a.trailers.get(n).cloned();
    let entries = [
        (
            contract::FAIL_AFTER,
            judge(
                fail_code != Some(0) && fail_code.is_some(),
                fail_code == Some(0),
            ),
        ),
        (
            contract::FAIL_CODE,
            judge(
                fail_code == Some(9),
                fail_code == Some(0) || fail_code == Some(2),
            ),
        ),
        (
            contract::FAIL_MESSAGE,
            judge(
                fail.message == "probe",
                fail.message.is_empty() || fail_code == Some(0),
            ),
        ),
        (
            contract::RESPONSE_COUNT,
            judge(streamed(&count) == 1, streamed(&count) == 3),
        ),
        (
            contract::RESPONSE_INTERVAL_MS,
            judge(
                interval.elapsed >= Duration::from_millis(250),
                interval.elapsed < Duration::from_millis(250),
            ),
        ),
        (
            contract::DELAY_MS,
            judge(
                delay.elapsed >= Duration::from_millis(250),
                delay.elapsed < Duration::from_millis(250),
            ),
        ),
        (
            contract::CLOSE_AFTER_REQUESTS,
            judge(
                reply_data.as_deref() == Some("a"),
                reply_data.as_deref() == Some("a,b"),
            ),
        ),
        (
            contract::RESPONSE_ENCODING,
            // The response's grpc-encoding is what the header asks for; a
            // stack may still send a small message uncompressed (flag 0).
            judge(
                header(&encoding, "grpc-encoding").as_deref() == Some("gzip")
                    || encoding.messages.first().is_some_and(|m| m.0),
                header(&encoding, "grpc-encoding").is_none()
                    && encoding.messages.first().is_some_and(|m| !m.0),
            ),
        ),
        (
            contract::ECHO_INITIAL,
            judge(
                header(&echo, contract::ECHO_INITIAL).as_deref() == Some("probe"),
                header(&echo, contract::ECHO_INITIAL).is_none(),
            ),
        ),
        (
            contract::ECHO_TRAILING,
            judge(
                trailer(&echo, contract::ECHO_TRAILING)
                    .is_some_and(|v| v.trim_end_matches('=') == "cHJvYmU"),
                trailer(&echo, contract::ECHO_TRAILING).is_none(),
            ),
        ),
    ];
    entries
        .into_iter()
        .map(|(name, support)| (name.to_string(), support))
        .collect()
}

/// What a probe call saw.
#[derive(Debug, Default)]
struct Answer {
    /// The numeric status, when one came.
    code: Option<u32>,
    /// The decoded status message.
    message: String,
    /// (compressed, decompressed bytes) of each response message.
    messages: Vec<(bool, Vec<u8>)>,
    /// Response header values as text.
    headers: BTreeMap<String, String>,
    /// Trailer values as text.
    trailers: BTreeMap<String, String>,
    /// From opening the call to its end.
    elapsed: Duration,
}

impl Answer {
    fn status_code(&self) -> Option<u32> {
        self.code
    }

    /// Whether the one reply is SayHello's to the probe's request.
    fn says_hello(&self) -> bool {
        self.messages
            .first()
            .and_then(|m| HelloReply::decode(m.1.as_slice()).ok())
            .is_some_and(|r| r.message == "Hello probe")
    }
}

/// One call: `requests` sent, half-close, everything read; any failure is
/// an answer without a status.
async fn ask(
    conn: &Conn,
    path: &str,
    metadata: &[(&str, &str)],
    requests: Vec<Vec<u8>>,
    deadline: Instant,
) -> Answer {
    ask_encoded(conn, path, metadata, requests, None, deadline).await
}

/// [`ask`] with the requests compressed with `encoding`.
async fn ask_encoded(
    conn: &Conn,
    path: &str,
    metadata: &[(&str, &str)],
    requests: Vec<Vec<u8>>,
    encoding: Option<&str>,
    deadline: Instant,
) -> Answer {
    let started = Instant::now();
    let extra: Vec<(HeaderName, HeaderValue)> = metadata
        .iter()
        .filter_map(|(n, v)| {
            Some((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    let mut answer = Answer::default();
    let Ok(mut call) =
        drive::open_call(conn, path, &extra, Default::default(), true, deadline).await
    else {
        return answer;
    };
    for request in requests {
        let framed = match encoding.and_then(|e| codec::compress(e, &request)) {
            Some(compressed) => codec::frame(true, &compressed),
            None => codec::frame(false, &request),
        };
        if call.send_message(framed).is_err() {
            break;
        }
    }
    call.half_close();
    let mut scratch = Vec::new();
    let mut messages = Vec::new();
    let _ = call
        .drain(&mut scratch, |compressed, bytes, _| {
            messages.push((compressed, bytes.to_vec()))
        })
        .await;
    let text = |map: &Option<http::HeaderMap>| -> BTreeMap<String, String> {
        map.iter()
            .flat_map(|m| m.iter())
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    };
    answer.headers = text(&call.headers);
    answer.trailers = text(&call.trailers);
    answer.code = answer
        .trailers
        .get("grpc-status")
        .and_then(|s| s.parse().ok());
    answer.message = call.status.map(|(_, m)| m).unwrap_or_default();
    answer.messages = messages;
    answer.elapsed = started.elapsed();
    answer
}
