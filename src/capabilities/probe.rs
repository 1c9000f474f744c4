//! The probe calls: each a real call of the contract on the probe
//! connection, and how its answer tells what the target offers.

use super::{Capabilities, Support};
use crate::{
    contract,
    drive::{self, codec, Conn, Connector, DriveError},
    proto::{
        contract::{
            DeviceQuery, HelloReply, HelloRequest, StreamRequestData, StreamResponseData,
            WatchRequest,
        },
        observer::{CallQuery, CallRecord},
    },
};
use futures::future::join_all;
use http::{HeaderName, HeaderValue};
use prost::Message as _;
use std::{collections::BTreeMap, time::Duration};
use tokio::time::{timeout_at, Instant};

/// Response messages a probe keeps: its checks count up to 3, so any
/// number past this reads the same.
const MAX_PROBE_MESSAGES: usize = 16;

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
        let answer = Ask::new(m).requests(method_probe_request(m));
        let answer = answer.on(conn, deadline).await;
        (m.to_string(), answer.code != Some(12))
    }));
    // Accepted means answered as the contract says: a server that hands the
    // compressed bytes to its handler undecoded also answers OK.
    let encodings = join_all(contract::ENCODINGS.iter().map(|e| async move {
        let answer = Ask::new("/Greeter/SayHello")
            .header("grpc-encoding", e)
            .requests(hello())
            .encoded(e)
            .on(conn, deadline)
            .await;
        (e.to_string(), answer.code == Some(0) && answer.says_hello())
    }));
    let control = join_all(CONTROL_PROBES.iter().map(|probe| async move {
        let answer = (probe.ask)().on(conn, deadline).await;
        let support = match ((probe.honoured)(&answer), (probe.ignored)(&answer)) {
            (true, _) => Support::Honoured,
            (false, true) => Support::Ignored,
            (false, false) => Support::Wrong,
        };
        (probe.header.to_string(), support)
    }));
    let (methods, encodings, observer, control) =
        futures::join!(methods, encodings, probe_observer(conn, deadline), control);
    Ok(Capabilities {
        methods: methods.into_iter().collect(),
        observer,
        control: control.into_iter().collect(),
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
        "/Greeter/ServerStream" => stream_request(&["p"]),
        "/SensorService/Watch" => vec![WatchRequest {
            device_id: "probe".into(),
            limit: 1,
        }
        .encode_to_vec()],
        "/SensorService/Latest" => vec![DeviceQuery {
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

fn stream_request(data: &[&str]) -> Vec<Vec<u8>> {
    data.iter()
        .map(|d| {
            StreamRequestData {
                data: d.to_string(),
            }
            .encode_to_vec()
        })
        .collect()
}

/// A SayHello with a call id, then GetCall for it.
async fn probe_observer(conn: &Conn, deadline: Instant) -> bool {
    let id = drive::next_call_id();
    let call = Ask::new("/Greeter/SayHello")
        .header(contract::CALL_ID, &id)
        .requests(hello())
        .on(conn, deadline)
        .await;
    if call.code.is_none() {
        return false;
    }
    let query = CallQuery {
        call_id: id,
        wait_ms: 1_000,
    };
    let answer = Ask::new(contract::GET_CALL)
        .requests(vec![query.encode_to_vec()])
        .on(conn, deadline)
        .await;
    answer.code == Some(0)
        && answer
            .messages
            .first()
            .and_then(|m| CallRecord::decode(m.1.as_slice()).ok())
            .is_some_and(|r| r.method == "/Greeter/SayHello")
}

/// One control header's probe: the call, and what in its answer says the
/// header was honoured, or ignored (the answer without the header).
struct ControlProbe {
    header: &'static str,
    ask: fn() -> Ask,
    honoured: fn(&Answer) -> bool,
    ignored: fn(&Answer) -> bool,
}

/// A pause the probes ask for, and the least elapsed time that shows it.
const PAUSE: &str = "300";
const PAUSE_SEEN: Duration = Duration::from_millis(250);

/// Every control header, each on a call of its own.
const CONTROL_PROBES: [ControlProbe; 12] = [
    ControlProbe {
        header: contract::FAIL_AFTER,
        ask: fail_probe,
        honoured: |a| a.code.is_some_and(|c| c != 0),
        ignored: |a| a.code == Some(0),
    },
    ControlProbe {
        header: contract::FAIL_CODE,
        ask: fail_probe,
        honoured: |a| a.code == Some(9),
        ignored: |a| matches!(a.code, Some(0) | Some(2)),
    },
    ControlProbe {
        header: contract::FAIL_MESSAGE,
        ask: fail_probe,
        honoured: |a| a.message == "probe",
        ignored: |a| a.message.is_empty() || a.code == Some(0),
    },
    ControlProbe {
        header: contract::RESPONSE_COUNT,
        ask: || {
            Ask::new("/Greeter/ServerStream")
                .header(contract::RESPONSE_COUNT, "1")
                .requests(stream_request(&["p"]))
        },
        honoured: |a| a.messages.len() == 1,
        ignored: |a| a.messages.len() == 3,
    },
    ControlProbe {
        header: contract::RESPONSE_INTERVAL_MS,
        ask: || {
            Ask::new("/Greeter/ServerStream")
                .header(contract::RESPONSE_COUNT, "2")
                .header(contract::RESPONSE_INTERVAL_MS, PAUSE)
                .requests(stream_request(&["p"]))
        },
        honoured: |a| a.elapsed >= PAUSE_SEEN,
        ignored: |a| a.elapsed < PAUSE_SEEN,
    },
    ControlProbe {
        header: contract::DELAY_MS,
        ask: || {
            Ask::new("/Greeter/SayHello")
                .header(contract::DELAY_MS, PAUSE)
                .requests(hello())
        },
        honoured: |a| a.elapsed >= PAUSE_SEEN,
        ignored: |a| a.elapsed < PAUSE_SEEN,
    },
    ControlProbe {
        header: contract::CLOSE_AFTER_REQUESTS,
        ask: || {
            Ask::new("/Greeter/ClientStream")
                .header(contract::CLOSE_AFTER_REQUESTS, "1")
                .requests(stream_request(&["a", "b"]))
        },
        honoured: |a| a.reply_data().as_deref() == Some("a"),
        ignored: |a| a.reply_data().as_deref() == Some("a,b"),
    },
    ControlProbe {
        header: contract::RESPONSE_ENCODING,
        // Some stacks (grpc-go 1.33) compress a response only in the
        // request's encoding, so the request is gzip too.
        ask: || {
            Ask::new("/Greeter/SayHello")
                .header(contract::RESPONSE_ENCODING, "gzip")
                .header("grpc-accept-encoding", "gzip")
                .header("grpc-encoding", "gzip")
                .requests(hello())
                .encoded("gzip")
        },
        // The response's grpc-encoding is what the header asks for; a stack
        // may still send a small message uncompressed (flag 0).
        honoured: |a| {
            a.headers.get("grpc-encoding").map(String::as_str) == Some("gzip")
                || a.messages.first().is_some_and(|m| m.0)
        },
        ignored: |a| {
            !a.headers.contains_key("grpc-encoding") && a.messages.first().is_some_and(|m| !m.0)
        },
    },
    ControlProbe {
        header: contract::ECHO_INITIAL,
        ask: echo_probe,
        honoured: |a| a.headers.get(contract::ECHO_INITIAL).map(String::as_str) == Some("probe"),
        ignored: |a| !a.headers.contains_key(contract::ECHO_INITIAL),
    },
    ControlProbe {
        header: contract::ECHO_TRAILING,
        ask: echo_probe,
        // "probe" in base64, padded or not.
        honoured: |a| {
            a.trailers
                .get(contract::ECHO_TRAILING)
                .is_some_and(|v| v.trim_end_matches('=') == "cHJvYmU")
        },
        ignored: |a| !a.trailers.contains_key(contract::ECHO_TRAILING),
    },
    ControlProbe {
        header: contract::RESPONSE_SIZE,
        ask: || {
            Ask::new("/Greeter/SayHello")
                .header(contract::RESPONSE_SIZE, "64")
                .requests(hello())
        },
        honoured: |a| {
            a.hello_reply()
                .is_some_and(|m| m.len() == 64 && m.starts_with("Hello probe"))
        },
        ignored: |a| a.hello_reply().as_deref() == Some("Hello probe"),
    },
    ControlProbe {
        header: contract::FAIL_DETAILS_BIN,
        ask: || {
            Ask::new("/Greeter/SayHello")
                .header(contract::FAIL_AFTER, "0")
                .header(contract::FAIL_CODE, "3")
                .header(contract::FAIL_DETAILS_BIN, STATUS_DETAILS)
                .requests(hello())
        },
        // The same bytes back, whichever base64 padding the stack emits.
        honoured: |a| {
            a.trailers
                .get("grpc-status-details-bin")
                .is_some_and(|v| v.trim_end_matches('=') == STATUS_DETAILS)
        },
        ignored: |a| !a.trailers.contains_key("grpc-status-details-bin"),
    },
];

/// A `google.rpc.Status` (INVALID_ARGUMENT, "bad requests") with a
/// BadRequest detail, in base64: some stacks (grpc-go) send
/// `grpc-status-details-bin` only for a status that carries details.
const STATUS_DETAILS: &str = "CAMSDGJhZCByZXF1ZXN0cxpICil0eXBlLmdvb2dsZWFwaXMuY29tL2dvb2dsZS5ycGMuQmFkUmVxdWVzdBIbChkKBG5hbWUSEW11c3Qgbm90IGJlIGVtcHR5";

fn fail_probe() -> Ask {
    Ask::new("/Greeter/SayHello")
        .header(contract::FAIL_AFTER, "0")
        .header(contract::FAIL_CODE, "9")
        .header(contract::FAIL_MESSAGE, "probe")
        .requests(hello())
}

fn echo_probe() -> Ask {
    Ask::new("/Greeter/SayHello")
        .header(contract::ECHO_INITIAL, "probe")
        .header(contract::ECHO_TRAILING, "cHJvYmU")
        .requests(hello())
}

/// One probe call: the requests are sent, then the half-close, then
/// everything is read; any failure is an answer without a status.
struct Ask {
    path: &'static str,
    metadata: Vec<(String, String)>,
    requests: Vec<Vec<u8>>,
    encoding: Option<&'static str>,
}

impl Ask {
    fn new(path: &'static str) -> Ask {
        Ask {
            path,
            metadata: Vec::new(),
            requests: Vec::new(),
            encoding: None,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Ask {
        self.metadata.push((name.to_string(), value.to_string()));
        self
    }

    fn requests(mut self, requests: Vec<Vec<u8>>) -> Ask {
        self.requests = requests;
        self
    }

    /// The requests compressed with `encoding`.
    fn encoded(mut self, encoding: &'static str) -> Ask {
        self.encoding = Some(encoding);
        self
    }

    async fn on(self, conn: &Conn, deadline: Instant) -> Answer {
        let started = Instant::now();
        let extra: Vec<(HeaderName, HeaderValue)> = self
            .metadata
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    HeaderName::from_bytes(n.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        let mut answer = Answer::default();
        let opened =
            drive::open_call(conn, self.path, &extra, Default::default(), true, deadline).await;
        let Ok(mut call) = opened else {
            return answer;
        };
        for request in self.requests {
            let framed = match self.encoding.and_then(|e| codec::compress(e, &request)) {
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
                // A probe reads at most a few; a target that streams without
                // end must not fill memory for the whole probe budget.
                if messages.len() < MAX_PROBE_MESSAGES {
                    messages.push((compressed, bytes.to_vec()))
                }
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
    /// The text of the one SayHello reply.
    fn hello_reply(&self) -> Option<String> {
        self.messages
            .first()
            .and_then(|m| HelloReply::decode(m.1.as_slice()).ok())
            .map(|r| r.message)
    }

    /// Whether the one reply is SayHello's to the probe's request.
    fn says_hello(&self) -> bool {
        self.hello_reply().as_deref() == Some("Hello probe")
    }

    /// The `data` of a ClientStream reply.
    fn reply_data(&self) -> Option<String> {
        self.messages
            .first()
            .and_then(|m| StreamResponseData::decode(m.1.as_slice()).ok())
            .map(|r| r.data)
    }
}
