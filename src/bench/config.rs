//! What a bench run does, checked before anything is sent: the method and
//! its mode, the load's shape, and the one request every call sends,
//! encoded and framed once.

use super::BenchError;
use crate::{descriptors::Descriptors, drive::codec, message};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost_reflect::MethodDescriptor;
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// How a method streams, which decides what a message and its latency are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Both ways: latency from a request to its echo.
    Bidi,
    /// Responses only: latency between consecutive responses.
    ServerStreaming,
    /// Requests only: latency from the half-close to the response.
    ClientStreaming,
    /// One each way: latency of the call.
    Unary,
}

impl Mode {
    /// The mode of `method`.
    pub fn of(method: &MethodDescriptor) -> Mode {
        match (method.is_client_streaming(), method.is_server_streaming()) {
            (true, true) => Mode::Bidi,
            (false, true) => Mode::ServerStreaming,
            (true, false) => Mode::ClientStreaming,
            (false, false) => Mode::Unary,
        }
    }
}

/// When the measured part of a round ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    /// After this long (sends stop, messages in flight are awaited).
    Duration(#[serde(with = "seconds")] Duration),
    /// After this many messages of the method's streaming side in all.
    Messages(u64),
}

/// The shape of the load, as given on the command line.
#[derive(Clone, Debug, Serialize)]
pub struct LoadShape {
    /// gRPC path of the method, `/package.Service/Method`.
    pub method: String,
    /// How the method streams.
    pub mode: Mode,
    /// HTTP/2 connections per target.
    pub connections: usize,
    /// Concurrent calls on each connection.
    pub streams: usize,
    /// Encoded size of each request (before compression), in bytes.
    pub size: Option<usize>,
    /// Encoding of the requests (`gzip`, `deflate`, `zstd`); none when absent.
    pub compression: Option<String>,
    /// When the measured part ends.
    pub until: Until,
    /// Load sent before measuring starts, not counted.
    #[serde(with = "seconds")]
    pub warmup: Duration,
    /// Messages per second over all streams on an open-loop schedule;
    /// closed loop when absent.
    pub rate: Option<f64>,
    /// Messages a stream keeps in flight: the closed loop's window, the
    /// open loop's bound before sends wait (bidi only).
    pub window: usize,
    /// Messages of the streaming side per call (client and server
    /// streaming; bidi: one call per stream for the whole round).
    pub call_messages: u32,
    /// A stream that waits this long for the target ends with `stalled`.
    #[serde(with = "seconds")]
    pub stall_timeout: Duration,
    /// Rounds per target.
    pub rounds: u32,
}

/// Durations as fractional seconds in JSON.
mod seconds {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// What every call sends, prepared once.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The load's shape.
    pub shape: LoadShape,
    /// The request, encoded, compressed when asked, and length-prefixed.
    pub request: Bytes,
    /// Headers of every call besides the pseudo-headers.
    pub headers: HeaderMap,
}

/// Whether `method` is one of the contract's, whose control headers the
/// reference (and any target of the contract) honours.
fn is_contract(method: &str) -> bool {
    method.starts_with("/ChatService/")
        || method.starts_with("/Greeter/")
        || method.starts_with("/SensorService/")
}

/// The request sent when `--request` is absent, for the contract's methods.
fn default_request(method: &str) -> Option<Value> {
    Some(match method {
        "/ChatService/ChatStream" => json!({"content": ""}),
        "/Greeter/SayHello" => json!({"name": ""}),
        "/Greeter/ServerStream" | "/Greeter/ClientStream" | "/Greeter/AllStream" => {
            json!({"data": ""})
        }
        "/SensorService/Record" => json!({"timestamp": 1, "temperature": 20.5, "deviceId": ""}),
        "/SensorService/Watch" => json!({"deviceId": "bench"}),
        _ => return None,
    })
}

/// Default request size for the contract's methods (the seed table's 1 KB).
pub const DEFAULT_SIZE: usize = 1024;

impl Workload {
    /// Checks `shape` against the method's descriptor and prepares the
    /// request: `request` (proto JSON) or the contract's default, padded to
    /// `shape.size`, compressed, framed.
    pub fn prepare(
        descriptors: &Descriptors,
        mut shape: LoadShape,
        request: Option<&Value>,
        extra_headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Workload, BenchError> {
        let usage = BenchError::Usage;
        let method = descriptors.method(&shape.method).ok_or_else(|| {
            usage(format!(
                "--method {}: no such method in the contract, --proto or --reflect \
                 (write /package.Service/Method)",
                shape.method
            ))
        })?;
        shape.mode = Mode::of(&method);
        if shape.rate.is_some() && shape.mode == Mode::ServerStreaming {
            return Err(usage(format!(
                "--rate paces the messages the client sends; {} streams responses at the \
                 server's pace: leave --rate out (closed loop)",
                shape.method
            )));
        }
        let contract = is_contract(&shape.method);
        let json = match request {
            Some(json) => json.clone(),
            None => default_request(&shape.method).ok_or_else(|| {
                usage(format!(
                    "--request: give a JSON request for {}",
                    shape.method
                ))
            })?,
        };
        if contract && shape.size.is_none() && request.is_none() {
            shape.size = Some(DEFAULT_SIZE);
        }
        let input = method.input();
        let json = match shape.size {
            Some(size) if shape.mode != Mode::ServerStreaming || !contract => {
                message::sized(&input, &json, size)
                    .map_err(|e| usage(format!("--size {size}: {e}")))?
            }
            _ => json,
        };
        let encoded =
            message::encode_json(&input, &json).map_err(|e| usage(format!("--request: {e}")))?;
        let request = match &shape.compression {
            None => codec::frame(false, &encoded),
            Some(encoding) => {
                let packed = codec::compress(encoding, &encoded).ok_or_else(|| {
                    usage(format!(
                        "--compression {encoding}: known: {}",
                        codec::KNOWN.join(", ")
                    ))
                })?;
                codec::frame(true, &packed)
            }
        };
        let headers = call_headers(&shape, contract, extra_headers);
        Ok(Workload {
            shape,
            request,
            headers,
        })
    }
}

/// The headers of every call: gRPC's, the compression asked for, the
/// contract's control headers (response count and size of server streams,
/// response compression), then `--header` values.
fn call_headers(
    shape: &LoadShape,
    contract: bool,
    extra: &[(HeaderName, HeaderValue)],
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let stat = HeaderValue::from_static;
    headers.insert("content-type", stat("application/grpc"));
    headers.insert("te", stat("trailers"));
    headers.insert(
        "user-agent",
        stat(concat!("grpc-conform-bench/", env!("CARGO_PKG_VERSION"))),
    );
    let number = |n: usize| HeaderValue::from(n);
    if let Some(encoding) = &shape.compression {
        if let Ok(value) = HeaderValue::from_str(encoding) {
            headers.insert("grpc-encoding", value.clone());
            headers.insert("grpc-accept-encoding", value.clone());
            if contract {
                headers.insert("x-conform-response-encoding", value);
            }
        }
    }
    if contract && shape.mode == Mode::ServerStreaming {
        headers.insert(
            "x-conform-response-count",
            number(shape.call_messages as usize),
        );
        if let Some(size) = shape.size {
            headers.insert("x-conform-response-size", number(size));
        }
    }
    for (name, value) in extra {
        headers.append(name.clone(), value.clone());
    }
    headers
}
