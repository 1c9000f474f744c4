//! The plan the kit writes on stdin and the report printed on stdout
//! (docs/clients.md). This peer is a cargo project of its own, so it reads
//! the JSON with serde types of its own rather than the kit's crate.

use serde::{Deserialize, Serialize};

/// The interface version this client speaks.
pub const INTERFACE_VERSION: u32 = 1;

/// One fixture's calls, every time already scaled.
#[derive(Debug, Deserialize)]
pub struct Plan {
    /// Must be [`INTERFACE_VERSION`].
    pub version: u32,
    /// The fixture's name, for stderr.
    pub fixture: String,
    /// `host:port` of the server.
    pub target: String,
    /// Every wait of the whole plan ends within this many milliseconds.
    pub timeout_ms: u64,
    /// The channel's settings.
    #[serde(default)]
    pub channel: ChannelOptions,
    /// Start every call at once.
    #[serde(default)]
    pub concurrent: bool,
    /// The calls, in order.
    pub calls: Vec<PlanCall>,
}

/// Channel settings; `None` keeps tonic's default.
#[derive(Debug, Default, Deserialize)]
pub struct ChannelOptions {
    /// Client keepalive.
    #[serde(default)]
    pub keepalive: Option<Keepalive>,
    /// The largest response message accepted.
    #[serde(default)]
    pub max_receive_message_bytes: Option<u64>,
}

/// grpc-go's `keepalive.ClientParameters`, in milliseconds.
#[derive(Debug, Deserialize)]
pub struct Keepalive {
    /// PING after this long without activity.
    pub time_ms: u64,
    /// Close the connection when a PING is not acknowledged within this.
    pub timeout_ms: u64,
    /// PING also when no call is open.
    pub permit_without_stream: bool,
}

/// The four RPC modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    Bidi,
}

/// One call of the plan.
#[derive(Debug, Deserialize)]
pub struct PlanCall {
    /// `/Service/Method`.
    pub method: String,
    /// The method's mode.
    pub mode: Mode,
    /// Request metadata in order; `-bin` values are base64.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    /// The call's deadline from its start.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Request compression (`gzip`).
    #[serde(default)]
    pub compression: Option<String>,
    /// What to do, in order.
    pub steps: Vec<PlanStep>,
}

/// One step of a call, tagged by `op`.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PlanStep {
    /// Send one request.
    Send {
        /// Proto3 JSON of the input type.
        message: serde_json::Value,
    },
    /// Send `count` requests built from `template` (`{i}` = 1, 2, ...).
    SendMany {
        /// How many.
        count: u32,
        /// Proto3 JSON with `{i}` in its strings.
        template: serde_json::Value,
    },
    /// End the request stream (unary-request modes: invoke the call).
    HalfClose,
    /// Wait for the response headers or the end.
    ReceiveHeaders,
    /// Wait for one response.
    Receive,
    /// Read everything left and the status.
    ReceiveAll,
    /// Cancel the call.
    Cancel,
    /// Sleep.
    Pause {
        /// Milliseconds.
        ms: u64,
    },
}

/// What the client saw, printed on stdout.
#[derive(Debug, Serialize)]
pub struct Report {
    /// [`INTERFACE_VERSION`].
    pub version: u32,
    /// `tonic/<version>`.
    pub client: String,
    /// One per planned call, in plan order.
    pub calls: Vec<ReportCall>,
}

/// What tonic's API surfaced of one call.
#[derive(Debug, Default, Serialize)]
pub struct ReportCall {
    /// Response metadata as tonic gives it; `None` when none arrived.
    pub headers: Option<Vec<(String, String)>>,
    /// Responses in order, proto3 JSON.
    pub messages: Vec<serde_json::Value>,
    /// Trailers as tonic gives them.
    pub trailers: Vec<(String, String)>,
    /// The status.
    pub status: ReportStatus,
    /// The error's text (`Status`'s Display); `None` on OK.
    pub error: Option<String>,
}

/// A status code and message.
#[derive(Debug, Default, Serialize)]
pub struct ReportStatus {
    /// Numeric code.
    pub code: u32,
    /// The message, decoded.
    pub message: String,
}
