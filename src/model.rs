//! The data model of a conformance run, in one place: what a fixture asks
//! (deserialised from JSON, see `docs/fixtures.md`) and what a conversation
//! yielded (the events a transcript is rendered from).
//!
//! Issue 4 (wire level) grows both sides here: raw steps become new [`Step`]
//! variants and frame facts new [`Event`] variants, so the driver and the
//! renderer keep one shape.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One fixture file: a conversation on one connection, with the spec rule it
/// checks. Its name comes from its path, not from its content, so moving a
/// file is the only way to rename it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// One sentence: what behaviour the conversation checks. Shown in reports.
    pub description: String,
    /// The spec rule cited, as `DOCUMENT: rule` (e.g. `PROTOCOL-HTTP2.md: ...`).
    pub rule: String,
    /// How binding the rule is; a SHOULD failure is still a failure, the level
    /// only tells the reader how much to worry.
    pub level: Level,
    /// Bound on the whole conversation in milliseconds (before `--time-scale`);
    /// default [`DEFAULT_TIMEOUT_MS`]. Every wait inside is bounded by it.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The calls, run one after the other on the same connection.
    pub calls: Vec<Call>,
    /// Run all calls at once on the connection instead of one after the
    /// other; the transcript still lists each call's events together, in
    /// call order, so it does not depend on how they interleaved.
    #[serde(default)]
    pub concurrent: bool,
}

impl Level {
    /// The word as the spec writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

/// Default bound on a conversation, generous enough for a loaded CI machine.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// RFC 2119 level of the cited rule.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Level {
    /// The spec says MUST: a deviation breaks interop.
    #[serde(rename = "MUST")]
    Must,
    /// The spec says SHOULD: a deviation is legal but surprising.
    #[serde(rename = "SHOULD")]
    Should,
    /// Not a spec rule but a widely relied-on convention (e.g. the interop
    /// echo headers).
    #[serde(rename = "MAY")]
    May,
}

/// One RPC of a conversation.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// The method as `/Service/Method` (`/Greeter/SayHello`,
    /// `/conform.v1.Observer/GetCall`); must exist in the descriptor pool.
    pub method: String,
    /// Request metadata sent with the call's headers (besides the automatic
    /// `x-conform-call-id` and `--header` values). `-bin` values are base64.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Sent as `grpc-timeout` in milliseconds (scaled by `--time-scale`). The
    /// driver does not cancel on its own: the transcript shows what the
    /// server did about it.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// `grpc-encoding` of the requests (`gzip`, `deflate`, `zstd`, or any
    /// name: an unknown one is sent with the message bytes uncompressed under
    /// the compressed flag). Messages are compressed unless a send step says
    /// `"compressed": false`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// `grpc-accept-encoding` sent; absent means the header is not sent.
    #[serde(default)]
    pub accept_encoding: Option<Vec<String>>,
    /// Top-level fields of received messages whose values are volatile (e.g.
    /// `timestamp` of ChatService replies); shown as `<volatile>`.
    #[serde(default)]
    pub volatile_fields: Vec<String>,
    /// The script, in order.
    pub steps: Vec<Step>,
}

/// One step of a call's script. In JSON a step is either a bare string (for
/// steps without arguments: `"half_close"`) or an object with one key.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Send one request message.
    Send(SendStep),
    /// Send `count` messages built from a template.
    SendMany(SendManyStep),
    /// Wait for the response headers (the point to cancel "after headers").
    ReceiveHeaders,
    /// Receive one response message, optionally checking it.
    Receive(ReceiveStep),
    /// Receive every remaining message, then the trailers and status.
    ReceiveAll,
    /// End the request stream (END_STREAM).
    HalfClose,
    /// Reset the stream with RST_STREAM(CANCEL), as a client cancel does.
    Cancel,
    /// Do nothing for a while (scaled by `--time-scale`).
    Pause(PauseStep),
    /// Check response headers: name → expected value, or `null` to record
    /// whatever value (or absence) came.
    ExpectHeaders(BTreeMap<String, Option<String>>),
    /// Check trailers like `expect_headers`; reads to the end of the stream.
    ExpectTrailers(BTreeMap<String, Option<String>>),
    /// Check the final status; reads to the end of the stream first.
    ExpectStatus(ExpectStatusStep),
    /// Ask the target's `conform.v1.Observer/GetCall` what it saw of this call
    /// and put the record in the transcript.
    Observe,
}

/// Arguments of [`Step::Send`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// The message as proto JSON of the method's input type.
    pub message: serde_json::Value,
    /// Overrides the call's compression for this message (`false`: flag 0
    /// under a `grpc-encoding`; `true`: flag 1).
    #[serde(default)]
    pub compressed: Option<bool>,
}

/// Arguments of [`Step::SendMany`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendManyStep {
    /// How many messages.
    pub count: u32,
    /// Proto JSON where `{i}` in any string is replaced by the message's
    /// number, counting from 1.
    pub template: serde_json::Value,
    /// As [`SendStep::compressed`], for every message.
    #[serde(default)]
    pub compressed: Option<bool>,
}

/// Arguments of [`Step::Receive`].
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveStep {
    /// The expected message as proto JSON of the output type; absent: any
    /// message (it is recorded all the same).
    #[serde(default)]
    pub message: Option<serde_json::Value>,
    /// Only the fields given in `message` are compared.
    #[serde(default)]
    pub partial: bool,
}

/// Arguments of [`Step::Pause`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PauseStep {
    /// Milliseconds, before `--time-scale`.
    pub ms: u64,
}

/// Arguments of [`Step::ExpectStatus`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectStatusStep {
    /// The code by name as in statuscodes.md (`OK`, `CANCELLED`, ...).
    pub code: String,
    /// The decoded `grpc-message`, where the contract fixes it.
    #[serde(default)]
    pub message: Option<String>,
}

/// Something the driver did or saw, in the order it happened. A transcript
/// is the rendering of these; nothing volatile is stored in them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// A call was opened.
    CallStart {
        /// 1-based position in the conversation.
        index: usize,
        /// `/Service/Method`.
        method: String,
        /// The fixture's metadata (not `--header` values, which may be secrets),
        /// plus `grpc-timeout`, `grpc-encoding`, `grpc-accept-encoding` when sent.
        headers: Vec<(String, String)>,
    },
    /// A request message went out.
    Sent {
        /// Proto JSON of what was sent.
        json: String,
        /// Whether the compressed flag was set.
        compressed: bool,
    },
    /// A `send_many` step's messages went out.
    SentMany {
        /// How many.
        count: u32,
        /// The template, as proto-JSON-ish text.
        template: String,
        /// Whether the compressed flag was set on each.
        compressed: bool,
    },
    /// END_STREAM was sent.
    HalfClosed,
    /// RST_STREAM(CANCEL) was sent.
    Cancelled,
    /// A pause step ran.
    Paused {
        /// Milliseconds before scaling.
        ms: u64,
    },
    /// Response headers, filtered to what is meaningful (see transcript.rs).
    Headers {
        /// Name and value pairs, names lower case, sorted.
        fields: Vec<(String, String)>,
    },
    /// A response message.
    Received {
        /// Proto JSON, volatile fields redacted.
        json: String,
        /// Whether the compressed flag was set.
        compressed: bool,
    },
    /// The response stream ended; `fields` are the trailers besides status.
    Trailers {
        /// Name and value pairs, names lower case, sorted.
        fields: Vec<(String, String)>,
    },
    /// The call's status (from trailers or a trailers-only response).
    Status {
        /// Status code name.
        code: String,
        /// Decoded `grpc-message`, "" when absent.
        message: String,
    },
    /// A check a step asked for.
    Check {
        /// Whether it held.
        ok: bool,
        /// What was expected and, on a miss, what came instead.
        what: String,
    },
    /// What the target's Observer recorded of the call.
    Observed {
        /// `key=value` facts, volatile values bucketed.
        facts: Vec<(String, String)>,
    },
    /// The target has no Observer (or it failed); not a failure by itself.
    NotObservable {
        /// Why, e.g. `UNIMPLEMENTED`.
        reason: String,
    },
    /// The stream or connection failed under the driver: a reset from the
    /// peer, a GOAWAY, a protocol error, a bad message.
    Failure {
        /// What failed, normalised (no addresses or timings).
        what: String,
    },
    /// A wait hit the fixture's timeout; the rest of the script was skipped.
    TimedOut {
        /// What the driver was waiting for.
        waiting_for: String,
    },
}

/// Status code names by number, as statuscodes.md lists them.
pub const STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The name of status `code`, or the number for codes outside the table.
pub fn status_name(code: u32) -> String {
    STATUS_NAMES
        .get(code as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| code.to_string())
}
