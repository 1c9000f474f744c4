//! The data model of a conformance run, in one place: what a fixture asks
//! (deserialised from JSON, see `docs/fixtures.md`) and what a conversation
//! yielded (the events a transcript is rendered from).
//!
//! Issue 4 (wire level) grows both sides here: raw steps become new [`Step`]
//! variants and frame facts new [`Event`] variants, so the driver and the
//! renderer keep one shape.

use crate::limits;
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
    /// The rules checked: ids of `docs/rules.toml` separated by `;`
    /// (e.g. `http2/client-cancel; status/cancelled`).
    pub rule: String,
    /// How binding the rule is; a SHOULD failure is still a failure, the level
    /// only tells the reader how much to worry.
    pub level: Level,
    /// Bound on the whole conversation in milliseconds (before `--time-scale`);
    /// default [`DEFAULT_TIMEOUT_MS`], at most [`limits::MAX_TIMEOUT_MS`].
    /// Every wait inside is bounded by it.
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, u64, { limits::MAX_TIMEOUT_MS }>"
    )]
    pub timeout_ms: Option<u64>,
    /// The calls, run one after the other on the same connection (empty
    /// for a raw conversation).
    #[serde(default)]
    pub calls: Vec<Call>,
    /// Run all calls at once on the connection instead of one after the
    /// other; the transcript still lists each call's events together, in
    /// call order, so it does not depend on how they interleaved.
    #[serde(default)]
    pub concurrent: bool,
    /// Run with no other fixture in flight. For a conversation that takes a
    /// limit the target may share between connections to its edge (its
    /// concurrent streams, its tolerance of resets): a proxy carries every
    /// client connection's calls on a few backend connections, so another
    /// fixture's call in flight at the same time would meet that limit too
    /// and be refused. A raw script with an `open_many` or `reset_many`
    /// step runs alone whatever this says.
    #[serde(default)]
    pub alone: bool,
    /// Frame-level script (raw driver) instead of `calls`; see [`RawStep`].
    #[serde(default)]
    pub raw: Vec<RawStep>,
    /// Record the connection's frames and add the server's wire facts per
    /// stream (headers shape, END_STREAM, message flags, resets, GOAWAY) to
    /// the transcript of an h2-driver conversation.
    #[serde(default)]
    pub wire: bool,
    /// Reference settings the fixture needs (A9 connection management, a
    /// short ping policy). The golden comes from a reference started with
    /// them; against an external target the fixture is skipped, because
    /// nothing says the target was started with them.
    #[serde(default)]
    pub reference: Option<ReferenceNeeds>,
    /// Capabilities the target must have for the conversation to mean
    /// anything, beyond those derived from the steps (the Observer for an
    /// `observe` step, `control:<header>` for control metadata,
    /// `method:<path>`, `encoding:<name>`, `reference`): see
    /// `docs/fixtures.md`. A target without one gets "not applicable".
    #[serde(default)]
    pub needs: Vec<String>,
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
    /// server did about it. At most [`limits::MAX_DEADLINE_MS`] (8 digits,
    /// as `grpc-timeout` carries); a scaled value beyond that is sent in a
    /// coarser unit.
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, u64, { limits::MAX_DEADLINE_MS }>"
    )]
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
    /// Pad the message's one string field with `x` so the encoded message
    /// (before compression) is exactly this many bytes (message size limits).
    #[serde(default)]
    pub size: Option<usize>,
}

/// Arguments of [`Step::SendMany`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendManyStep {
    /// How many messages, at most [`limits::MAX_SEND_MANY`].
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_SEND_MANY }>")]
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
    /// Milliseconds, before `--time-scale`; at most [`limits::MAX_PAUSE_MS`].
    #[serde(deserialize_with = "limits::at_most::<_, u64, { limits::MAX_PAUSE_MS }>")]
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
    /// The raw driver sent something (a frame or a group of frames).
    WireSent {
        /// What, as a person reads it (`s1 HEADERS ...`).
        what: String,
    },
    /// Server HEADERS on a stream.
    WireHeaders {
        /// Stream id.
        stream: u32,
        /// `headers`, `trailers`, or `trailers-only` (shown only where the
        /// fixture asks for the shape; otherwise split into the other two).
        shape: String,
        /// Filtered fields, sorted.
        fields: Vec<(String, String)>,
    },
    /// A server message on a stream, whatever DATA frames carried it.
    WireMessage {
        /// Stream id.
        stream: u32,
        /// The compressed-flag byte.
        flag: u8,
        /// Proto JSON when the flag is 0 and the type is known; otherwise
        /// the stream's `grpc-encoding` (or `no grpc-encoding`).
        content: String,
    },
    /// RST_STREAM from the server.
    WireReset {
        /// Stream id.
        stream: u32,
        /// Error code name.
        code: String,
        /// Whether it came after the server's END_STREAM.
        after_end: bool,
    },
    /// A PING ACK and whether it echoed the payload sent.
    PingAck {
        /// Hex payload of the ACK.
        payload: String,
        /// Whether it equals the PING's.
        same: bool,
    },
    /// A GOAWAY from the server.
    GoAway {
        /// `max` for 2^31-1 (the first GOAWAY of a graceful close), else the id.
        last_stream_id: String,
        /// Error code name.
        code: String,
        /// Debug data as text.
        debug: String,
    },
    /// The server's SETTINGS that the fixture asked to see.
    ServerSettings {
        /// Name and value (`absent` when not sent).
        fields: Vec<(String, String)>,
    },
    /// Any other wire-level fact: an absence, a closed connection.
    WireNote {
        /// The fact.
        what: String,
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

/// Reference settings a fixture needs (milliseconds before `--time-scale`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReferenceNeeds {
    /// Proposal A9 MAX_CONNECTION_AGE.
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, u64, { limits::MAX_PAUSE_MS }>"
    )]
    pub max_connection_age_ms: Option<u64>,
    /// Proposal A9 MAX_CONNECTION_AGE_GRACE.
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, u64, { limits::MAX_PAUSE_MS }>"
    )]
    pub max_connection_age_grace_ms: Option<u64>,
    /// Proposal A9 MAX_CONNECTION_IDLE.
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, u64, { limits::MAX_PAUSE_MS }>"
    )]
    pub max_connection_idle_ms: Option<u64>,
    /// Proposal A8 minimum ping interval (default 5 minutes).
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, u64, { limits::MAX_PAUSE_MS }>"
    )]
    pub ping_min_interval_ms: Option<u64>,
    /// Proposal A8 permit-without-calls.
    #[serde(default)]
    pub permit_without_calls: Option<bool>,
    /// Proposal A8 strikes tolerated before GOAWAY `too_many_pings`
    /// (default 2, as grpc-go); 0 sends it at the first PING too soon, which
    /// keeps a keepalive fixture with real times short.
    #[serde(default)]
    pub ping_max_strikes: Option<u32>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS the server advertises and enforces.
    #[serde(default)]
    pub max_concurrent_streams: Option<u32>,
}

/// One step of a raw (frame-level) conversation. Streams are named by their
/// id (odd, increasing: 1, 3, 5, ...), chosen by the fixture.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawStep {
    /// HEADERS opening a stream.
    Open(OpenStep),
    /// One gRPC message in DATA, possibly malformed or split.
    Message(RawMessageStep),
    /// Several messages in one DATA frame.
    Messages(RawMessagesStep),
    /// An empty DATA frame with END_STREAM.
    EndStream(StreamRef),
    /// RST_STREAM with a chosen code.
    Reset(ResetStep),
    /// One PING; waits for its ACK.
    Ping(PingStep),
    /// PINGs at an interval until a GOAWAY or `max` pings.
    PingFlood(PingFloodStep),
    /// Do nothing for a while (scaled).
    Pause(PauseStep),
    /// Read a stream to its end and record the server's frames on it.
    Await(AwaitStep),
    /// Wait for a GOAWAY (or the connection's end) for a while.
    AwaitGoaway(AwaitGoawayStep),
    /// Open `count` streams and reset each at once (rapid reset).
    ResetMany(ResetManyStep),
    /// Record these of the server's first SETTINGS (names as RFC 9113).
    ServerSettings(Vec<String>),
    /// HEADERS opening a stream, framed as asked: padded, with a priority,
    /// split into CONTINUATION frames (frame-level tolerance).
    OpenFramed(OpenFramedStep),
    /// Open `count` streams at once with HEADERS only (they stay open).
    OpenMany(OpenManyStep),
    /// One message in a DATA frame with the PADDED flag.
    PaddedMessage(PaddedMessageStep),
    /// A message whose bytes are given in hex (a malformed protobuf).
    MessageBytes(MessageBytesStep),
    /// A PRIORITY frame (RFC 9113 6.3).
    Priority(PriorityStep),
    /// A frame of a type RFC 9113 does not define, to be ignored.
    UnknownFrame(UnknownFrameStep),
    /// A SETTINGS frame from the client: `[name or id, value]` pairs (an
    /// unknown id must be ignored; INITIAL_WINDOW_SIZE 0 withholds window).
    Settings(Vec<(String, u32)>),
    /// A WINDOW_UPDATE granting `increment` bytes on a stream (0: the connection).
    WindowUpdate(WindowUpdateStep),
}

/// Arguments of [`RawStep::Open`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenStep {
    /// Stream id (odd, higher than any before).
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_STREAM_ID }>")]
    pub stream: u32,
    /// `/Service/Method`: its types encode the stream's messages.
    pub method: String,
    /// `:path` to send instead of `method` (an unknown method).
    #[serde(default)]
    pub path: Option<String>,
    /// Extra header fields, sent in this order after the standard ones.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    /// `content-type`; `application/grpc` when absent.
    #[serde(default)]
    pub content_type: Option<String>,
    /// `grpc-timeout` exactly as written (malformed values welcome).
    #[serde(default)]
    pub timeout: Option<String>,
    /// `grpc-encoding`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// END_STREAM on the HEADERS (a request with no messages).
    #[serde(default)]
    pub end_stream: bool,
    /// Adds a header `x-conform-filler` of this many bytes (large header
    /// lists), at most [`limits::MAX_FILLER_BYTES`].
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, usize, { limits::MAX_FILLER_BYTES }>"
    )]
    pub filler_bytes: Option<usize>,
}

/// A stream id.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRef {
    /// Stream id.
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_STREAM_ID }>")]
    pub stream: u32,
}

/// Arguments of [`RawStep::Message`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessageStep {
    /// Stream id.
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_STREAM_ID }>")]
    pub stream: u32,
    /// Proto JSON of the method's input type.
    pub message: serde_json::Value,
    /// The compressed-flag byte (0, 1, or anything else to test rejection).
    #[serde(default)]
    pub flag: u8,
    /// Gzip the bytes (with `flag` 1 and an `encoding` of gzip, a legal message).
    #[serde(default)]
    pub gzip: bool,
    /// The length prefix claims this many bytes more than follow; at most
    /// [`limits::MAX_EXTRA_LENGTH`].
    #[serde(
        default,
        deserialize_with = "limits::at_most::<_, u32, { limits::MAX_EXTRA_LENGTH }>"
    )]
    pub extra_length: u32,
    /// Send in DATA frames of this many bytes (1: one byte per frame), 1 to
    /// [`limits::MAX_FRAME_BYTES`].
    #[serde(
        default,
        deserialize_with = "limits::opt_from_one_to::<_, usize, { limits::MAX_FRAME_BYTES }>"
    )]
    pub frame_bytes: Option<usize>,
    /// END_STREAM on the last DATA frame.
    #[serde(default)]
    pub end_stream: bool,
}

/// Arguments of [`RawStep::Messages`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessagesStep {
    /// Stream id.
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_STREAM_ID }>")]
    pub stream: u32,
    /// Proto JSON of each message.
    pub messages: Vec<serde_json::Value>,
    /// END_STREAM on the frame.
    #[serde(default)]
    pub end_stream: bool,
}

/// Arguments of [`RawStep::Reset`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResetStep {
    /// Stream id.
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_STREAM_ID }>")]
    pub stream: u32,
    /// Error code name (`CANCEL`, `NO_ERROR`, ...).
    pub code: String,
}

/// Arguments of [`RawStep::Ping`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PingStep {
    /// 16 hex digits.
    pub payload: String,
}

/// Arguments of [`RawStep::PingFlood`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PingFloodStep {
    /// Pings at most; the transcript says whether a GOAWAY came by then,
    /// never after which ping (implementations differ within the tolerance).
    /// At most [`limits::MAX_PING_FLOOD`].
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_PING_FLOOD }>")]
    pub max: u32,
    /// Milliseconds between pings (scaled).
    #[serde(deserialize_with = "limits::at_most::<_, u64, { limits::MAX_PAUSE_MS }>")]
    pub interval_ms: u64,
}

/// Arguments of [`RawStep::Await`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwaitStep {
    /// Stream id.
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_STREAM_ID }>")]
    pub stream: u32,
    /// Show trailers-only apart from headers-then-trailers (only where the
    /// spec fixes which one).
    #[serde(default)]
    pub shape: bool,
    /// After the end, keep listening this long (scaled) for a reset.
    #[serde(
        default,
        deserialize_with = "limits::at_most::<_, u64, { limits::MAX_PAUSE_MS }>"
    )]
    pub linger_ms: u64,
}

/// Arguments of [`RawStep::AwaitGoaway`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwaitGoawayStep {
    /// How long to wait (scaled).
    #[serde(deserialize_with = "limits::at_most::<_, u64, { limits::MAX_PAUSE_MS }>")]
    pub within_ms: u64,
    /// Show only the error code: the last stream id and debug data are the
    /// implementation's own (e.g. how many rapid resets it tolerates).
    #[serde(default)]
    pub code_only: bool,
}

/// Arguments of [`RawStep::ResetMany`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResetManyStep {
    /// First stream id; the next ones follow by 2.
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_STREAM_ID }>")]
    pub first_stream: u32,
    /// How many streams, at most [`limits::MAX_RESET_MANY`].
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_RESET_MANY }>")]
    pub count: u32,
    /// `/Service/Method` they open.
    pub method: String,
}

/// Arguments of [`RawStep::OpenFramed`]: an [`OpenStep`]'s fields plus framing.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenFramedStep {
    /// Stream id (odd, higher than any before).
    pub stream: u32,
    /// `/Service/Method`: its types encode the stream's messages.
    pub method: String,
    /// Extra header fields, sent in this order after the standard ones.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    /// END_STREAM on the HEADERS.
    #[serde(default)]
    pub end_stream: bool,
    /// PADDED flag with this many bytes of padding.
    #[serde(default)]
    pub padding: Option<u8>,
    /// PRIORITY flag with this dependency and weight.
    #[serde(default)]
    pub priority: Option<PriorityFields>,
    /// Split the header block: HEADERS then CONTINUATIONs of this many bytes.
    #[serde(default)]
    pub continuation_bytes: Option<usize>,
    /// `:method` instead of POST (a request gRPC does not define).
    #[serde(default)]
    pub http_method: Option<String>,
    /// Leave out `te: trailers` (which gRPC uses to detect incompatible proxies).
    #[serde(default)]
    pub without_te: bool,
    /// A message (proto JSON) sent with END_STREAM in the same write as the
    /// HEADERS: a server that closes the connection on the headers then
    /// cannot race a second write.
    #[serde(default)]
    pub message: Option<serde_json::Value>,
}

/// Stream dependency and weight (RFC 9113 5.3, 6.3).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityFields {
    /// The stream depended on (0: the root).
    pub depends_on: u32,
    /// 1 to 256.
    pub weight: u16,
    /// The exclusive bit.
    #[serde(default)]
    pub exclusive: bool,
}

/// Arguments of [`RawStep::OpenMany`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenManyStep {
    /// First stream id; the next ones follow by 2.
    pub first_stream: u32,
    /// How many streams.
    pub count: u32,
    /// `/Service/Method` they open.
    pub method: String,
    /// Extra header fields of each (`x-conform-*-ms` scaled).
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
}

/// Arguments of [`RawStep::PaddedMessage`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaddedMessageStep {
    /// Stream id.
    pub stream: u32,
    /// Proto JSON of the method's input type.
    pub message: serde_json::Value,
    /// Bytes of padding (0 to 255; 0 still sets the flag and the length byte).
    pub padding: u8,
    /// END_STREAM on the frame.
    #[serde(default)]
    pub end_stream: bool,
}

/// Arguments of [`RawStep::MessageBytes`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBytesStep {
    /// Stream id.
    pub stream: u32,
    /// The message's bytes in hex, framed with flag 0 and their length.
    pub hex: String,
    /// END_STREAM on the frame.
    #[serde(default)]
    pub end_stream: bool,
}

/// Arguments of [`RawStep::Priority`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityStep {
    /// The stream it is about (may be idle, never opened yet).
    pub stream: u32,
    /// The stream depended on (0: the root).
    pub depends_on: u32,
    /// 1 to 256.
    pub weight: u16,
    /// The exclusive bit.
    #[serde(default)]
    pub exclusive: bool,
}

/// Arguments of [`RawStep::UnknownFrame`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnknownFrameStep {
    /// Frame type, above 0x9 (RFC 9113 defines 0x0 to 0x9).
    #[serde(rename = "type")]
    pub kind: u8,
    /// Stream id (0: the connection).
    pub stream: u32,
    /// Flag bits.
    #[serde(default)]
    pub flags: u8,
    /// Payload in hex.
    #[serde(default)]
    pub payload: String,
}

/// Arguments of [`RawStep::WindowUpdate`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowUpdateStep {
    /// Stream id (0: the connection).
    pub stream: u32,
    /// Window increment in bytes (0 is a protocol error, which is the point
    /// of sending it).
    pub increment: u32,
}
