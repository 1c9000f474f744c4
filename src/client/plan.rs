//! The interface between grpc-conform and a client under test (see
//! `docs/clients.md`): the plan it reads on stdin and the report it prints on
//! stdout. Both are JSON so any stack can implement them with what it has;
//! messages inside are proto3 JSON of the contract's types.

use serde::{Deserialize, Serialize};

/// The version of the plan and report documents this build speaks.
pub const INTERFACE_VERSION: u32 = 1;

/// What the client under test is asked to do: one fixture's calls, with every
/// time already multiplied by `--time-scale`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// [`INTERFACE_VERSION`]; a client should refuse a version it does not know.
    pub version: u32,
    /// The fixture's name, for the client's own logs.
    pub fixture: String,
    /// The server to call, as `host:port` (also in `GRPC_CONFORM_TARGET`).
    pub target: String,
    /// Everything must be over within this many milliseconds; the kit kills
    /// the client a little after it.
    pub timeout_ms: u64,
    /// How the client's one channel is configured.
    #[serde(default)]
    pub channel: ChannelOptions,
    /// Start every call at once instead of one after the other.
    #[serde(default)]
    pub concurrent: bool,
    /// The calls, in order, all on one channel.
    pub calls: Vec<PlanCall>,
}

/// Channel settings a fixture fixes; absent ones are the stack's defaults.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelOptions {
    /// Client keepalive (HTTP/2 PINGs), as every stack's keepalive options.
    #[serde(default)]
    pub keepalive: Option<Keepalive>,
    /// The largest response message the client accepts, in bytes.
    #[serde(default)]
    pub max_receive_message_bytes: Option<u64>,
}

/// Client keepalive parameters, as grpc-go's `keepalive.ClientParameters`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    /// Send a PING after this many milliseconds without activity.
    pub time_ms: u64,
    /// Close the connection when a PING is not acknowledged within this.
    pub timeout_ms: u64,
    /// Ping even when no call is open.
    pub permit_without_stream: bool,
}

/// The four RPC modes, as the method's proto declares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Both ways streams.
    Bidi,
}

/// One call of a plan.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanCall {
    /// `/Service/Method`.
    pub method: String,
    /// The method's mode, so the client picks the right API.
    pub mode: Mode,
    /// Request metadata in order, names lower case; `-bin` values base64.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    /// The call's deadline in milliseconds from its start; none: no deadline.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Request compression (`gzip`); none: uncompressed.
    #[serde(default)]
    pub compression: Option<String>,
    /// What to do, in order.
    pub steps: Vec<PlanStep>,
}

/// One step of a planned call; in JSON an object tagged by `op`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlanStep {
    /// Send one request message.
    Send {
        /// Proto3 JSON of the method's input type.
        message: serde_json::Value,
    },
    /// Send `count` messages built from `template`.
    SendMany {
        /// How many.
        count: u32,
        /// Proto3 JSON where `{i}` in any string is the message's number from 1.
        template: serde_json::Value,
    },
    /// End the request stream (for unary and server streaming: invoke the call).
    HalfClose,
    /// Wait for the response headers, or the end of the call.
    ReceiveHeaders,
    /// Wait for one response message.
    Receive,
    /// Read every remaining message and the status.
    ReceiveAll,
    /// Cancel the call through the stack's API.
    Cancel,
    /// Sleep.
    Pause {
        /// Milliseconds (already scaled).
        ms: u64,
    },
}

/// What the client under test saw, printed on stdout.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Report {
    /// [`INTERFACE_VERSION`].
    pub version: u32,
    /// The stack's name and version, when the client knows it.
    #[serde(default)]
    pub client: Option<String>,
    /// One entry per planned call, in plan order.
    pub calls: Vec<ReportCall>,
}

/// What the client's API surfaced of one call.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct ReportCall {
    /// Response headers as the API gives them; none when none arrived.
    #[serde(default)]
    pub headers: Option<Vec<(String, String)>>,
    /// Response messages in order, proto3 JSON of the output type.
    #[serde(default)]
    pub messages: Vec<serde_json::Value>,
    /// Trailers as the API gives them; `-bin` values base64.
    #[serde(default)]
    pub trailers: Vec<(String, String)>,
    /// The status the API gave the application.
    pub status: ReportStatus,
    /// The error as the stack surfaced it (its text); shown, never compared.
    #[serde(default)]
    pub error: Option<String>,
}

/// A status as a client's API gives it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct ReportStatus {
    /// The numeric code (0 OK ... 16 UNAUTHENTICATED).
    pub code: u32,
    /// The status message, decoded.
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_plan_parses_and_round_trips() {
        let text = r#"{
          "version": 1, "fixture": "unary/say-hello", "target": "127.0.0.1:40123",
          "timeout_ms": 5000,
          "channel": {"keepalive": {"time_ms": 30000, "timeout_ms": 10000,
                      "permit_without_stream": true},
                      "max_receive_message_bytes": 4194304},
          "concurrent": false,
          "calls": [{"method": "/Greeter/SayHello", "mode": "unary",
            "metadata": [["x-conform-call-id", "c1"]], "deadline_ms": 1000,
            "compression": "gzip",
            "steps": [{"op": "send", "message": {"name": "world"}},
                      {"op": "send_many", "count": 2, "template": {"data": "m{i}"}},
                      {"op": "half_close"}, {"op": "receive_headers"},
                      {"op": "receive"}, {"op": "receive_all"},
                      {"op": "cancel"}, {"op": "pause", "ms": 100}]}]
        }"#;
        let plan: Plan = serde_json::from_str(text).unwrap();
        assert_eq!(plan.calls[0].mode, Mode::Unary);
        assert_eq!(plan.calls[0].steps.len(), 8);
        assert_eq!(plan.calls[0].steps[7], PlanStep::Pause { ms: 100 });
        let again: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn a_report_with_nulls_and_missing_optionals_parses() {
        let text = r#"{"version": 1, "calls": [
          {"headers": null, "messages": [], "trailers": [],
           "status": {"code": 13, "message": "bad"}, "error": "rpc error"},
          {"status": {"code": 0}}]}"#;
        let report: Report = serde_json::from_str(text).unwrap();
        assert_eq!(report.calls[0].headers, None);
        assert_eq!(report.calls[0].status.code, 13);
        assert_eq!(report.calls[1].status.message, "");
    }
}
