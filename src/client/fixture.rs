//! The client fixture format (`client-fixtures/**/*.json`, see
//! `docs/clients.md`): what a client under test is asked to do, at the level
//! of any stack's API, and what the reference answers where only a client can
//! be tested (a scripted [`Answer`]). Parsed with the same file, line, column
//! and field errors as the server fixtures; validated against the descriptors.

use crate::{
    descriptors::Descriptors,
    fixture::{self, FixtureError, FixtureText},
    limits, message,
    model::{Level, PauseStep, ReferenceNeeds, SendStep, STATUS_NAMES},
};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, path::Path};

/// One client fixture: the calls a client under test makes on one channel,
/// with the rule they check. Its name is its path under `client-fixtures/`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFixture {
    /// One sentence: what behaviour of a client the fixture checks.
    pub description: String,
    /// The rules checked: ids of `docs/rules.toml` separated by `;`.
    pub rule: String,
    /// How binding the rule is (`MUST`, `SHOULD`, `MAY`).
    pub level: Level,
    /// Bound on the whole fixture in milliseconds (before `--time-scale`);
    /// the client is killed 5 s after it. Default
    /// [`crate::model::DEFAULT_TIMEOUT_MS`], at most [`limits::MAX_TIMEOUT_MS`].
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, u64, { limits::MAX_TIMEOUT_MS }>"
    )]
    pub timeout_ms: Option<u64>,
    /// Start every call at once on the channel instead of one after the
    /// other; the transcript still lists the calls in order.
    #[serde(default)]
    pub concurrent: bool,
    /// How the client's one channel is configured (the plan's `channel`).
    #[serde(default)]
    pub channel: ClientChannel,
    /// Settings of the reference server the client talks to (A8 ping
    /// policy, A9 connection management, stream limit); absent: defaults.
    #[serde(default)]
    pub server: Option<ReferenceNeeds>,
    /// The calls, in order.
    pub calls: Vec<ClientCall>,
}

/// Channel settings of a client fixture (times before `--time-scale`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientChannel {
    /// Client keepalive; absent: the stack's default (usually none).
    #[serde(default)]
    pub keepalive: Option<ClientKeepalive>,
    /// The largest response message the client accepts; absent: the stack's
    /// default (4 MiB in every gRPC stack).
    #[serde(default)]
    pub max_receive_message_bytes: Option<u64>,
}

/// Client keepalive, as grpc-go's `keepalive.ClientParameters`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientKeepalive {
    /// PING after this many milliseconds without activity (scaled); at
    /// most [`limits::MAX_PAUSE_MS`].
    #[serde(deserialize_with = "limits::at_most::<_, u64, { limits::MAX_PAUSE_MS }>")]
    pub time_ms: u64,
    /// Close the connection when a PING is not acknowledged within this
    /// (scaled); at most [`limits::MAX_PAUSE_MS`].
    #[serde(deserialize_with = "limits::at_most::<_, u64, { limits::MAX_PAUSE_MS }>")]
    pub timeout_ms: u64,
    /// PING even when no call is open.
    #[serde(default)]
    pub permit_without_stream: bool,
}

/// One call a client under test makes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCall {
    /// The method as `/Service/Method`; must exist in the descriptor pool,
    /// which also gives the call's mode.
    pub method: String,
    /// Request metadata the client sends (the kit adds `x-conform-call-id`).
    /// Control headers of the contract (`x-conform-delay-ms`, ...) script the
    /// reference's service as for server fixtures. `-bin` values are base64.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The call's deadline in milliseconds (scaled), set through the
    /// client's API; at most [`limits::MAX_DEADLINE_MS`].
    #[serde(
        default,
        deserialize_with = "limits::opt_at_most::<_, u64, { limits::MAX_DEADLINE_MS }>"
    )]
    pub deadline_ms: Option<u64>,
    /// Request compression set through the client's API (`gzip`).
    #[serde(default)]
    pub encoding: Option<String>,
    /// Top-level fields of response messages whose values are volatile;
    /// shown as `<volatile>`.
    #[serde(default)]
    pub volatile_fields: Vec<String>,
    /// A scripted answer of the reference to this call, replacing the
    /// service; absent: the contract's service answers.
    #[serde(default)]
    pub answer: Option<Answer>,
    /// What the client does, in order. Unary and server-streaming calls
    /// start with exactly one `send` then `half_close`.
    pub steps: Vec<ClientStep>,
}

/// One step of a client call, at the level of a stack's API. In JSON a bare
/// string for steps without arguments (`"half_close"`), else an object with
/// one key.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientStep {
    /// Send one request message (for unary and server-streaming calls: the request).
    Send(ClientSend),
    /// Send `count` messages built from a template.
    SendMany(ClientSendMany),
    /// End the request stream (for unary and server-streaming calls: invoke the call).
    HalfClose,
    /// Wait for the response headers, or the end of the call.
    ReceiveHeaders,
    /// Wait for one response message (or the end of the call).
    Receive,
    /// Read every remaining message and the status.
    ReceiveAll,
    /// Cancel the call through the client's API.
    Cancel,
    /// Sleep (scaled by `--time-scale`).
    Pause(PauseStep),
}

/// Arguments of [`ClientStep::Send`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSend {
    /// The message as proto3 JSON of the method's input type.
    pub message: serde_json::Value,
}

/// Arguments of [`ClientStep::SendMany`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSendMany {
    /// How many messages, at most [`limits::MAX_SEND_MANY`].
    #[serde(deserialize_with = "limits::at_most::<_, u32, { limits::MAX_SEND_MANY }>")]
    pub count: u32,
    /// Proto3 JSON where `{i}` in any string is the message's number from 1.
    pub template: serde_json::Value,
}

/// What the reference answers to one call instead of its service: the
/// response as it goes on the wire. The request is still read (and recorded)
/// until the answer ends.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// HTTP `:status` of the response headers; default 200 (100 to 599).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// `content-type` of the response; default `application/grpc`; `""`
    /// leaves it out.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Extra response header fields (lower-case names, visible ASCII values).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `grpc-encoding` sent on the response whatever the client announced in
    /// `grpc-accept-encoding`; messages are compressed with it (gzip, deflate,
    /// zstd; another name: the bytes stay uncompressed under the flag).
    #[serde(default)]
    pub encoding: Option<String>,
    /// Wait this long (ms, scaled) after reading the request headers, before
    /// the response headers (deadline fixtures); at most [`limits::MAX_PAUSE_MS`].
    #[serde(
        default,
        deserialize_with = "limits::at_most::<_, u64, { limits::MAX_PAUSE_MS }>"
    )]
    pub delay_ms: u64,
    /// Response messages, proto3 JSON of the output type, each in its own
    /// DATA frame; `compressed` and `size` as in a server fixture's `send`.
    #[serde(default)]
    pub messages: Vec<SendStep>,
    /// A body sent as it is, as text, instead of gRPC messages (a non-gRPC
    /// answer, e.g. an HTML error page of a proxy).
    #[serde(default)]
    pub body: Option<String>,
    /// After this many messages, the reference sends GOAWAY on the call's
    /// connection (graceful: no new streams there) and the call then
    /// finishes as scripted; 0: before the first message.
    #[serde(default)]
    pub goaway_after: Option<u32>,
    /// How the response ends; default: trailers with `grpc-status` 0.
    #[serde(default)]
    pub end: Option<AnswerEnd>,
}

/// How a scripted answer ends.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AnswerEnd {
    /// A trailers HEADERS frame with END_STREAM after the messages.
    Trailers(AnswerTrailers),
    /// The status in the response HEADERS frame itself, with END_STREAM
    /// (no messages, no body).
    TrailersOnly(AnswerTrailers),
    /// END_STREAM on the body's last DATA frame, no trailers at all (what a
    /// non-gRPC server or proxy does).
    EndStream,
    /// RST_STREAM with this error code name (`CANCEL`, `INTERNAL_ERROR`,
    /// `REFUSED_STREAM`, ...) instead of trailers.
    Reset(String),
}

/// The trailer fields of [`AnswerEnd::Trailers`] and [`AnswerEnd::TrailersOnly`].
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerTrailers {
    /// `grpc-status` by code name (`OK`, `INTERNAL`, ...); absent: the
    /// trailers carry no `grpc-status` at all.
    #[serde(default)]
    pub status: Option<String>,
    /// `grpc-message`, sent percent-encoded; absent: not sent.
    #[serde(default)]
    pub message: Option<String>,
    /// Other trailer fields (lower-case names, visible ASCII values).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// A client fixture with its name and file.
pub type NamedClientFixture = fixture::NamedFixture<ClientFixture>;

/// The text of every embedded client fixture.
pub fn read_embedded() -> Vec<FixtureText> {
    fixture::embedded_texts(fixture::embedded_client_fixtures(), "client-fixtures")
}

/// The text of every client fixture under `dir`.
pub fn read_dir(dir: &Path) -> Result<Vec<FixtureText>, FixtureError> {
    fixture::read_dir(dir)
}

/// Parses and validates every text, going on after a bad one: the good
/// fixtures, and every problem with its file, line, column and field.
pub fn check_all(
    texts: Vec<FixtureText>,
    descriptors: &Descriptors,
) -> (Vec<NamedClientFixture>, Vec<FixtureError>) {
    fixture::check_all_as(texts, |named| validate(named, descriptors))
}

/// Checks what serde cannot: methods exist, messages fit their types, status
/// and reset code names are known, steps come in an order every stack's API
/// can follow.
pub fn validate(named: &NamedClientFixture, descriptors: &Descriptors) -> Result<(), FixtureError> {
    let invalid = |field: String, message: String| FixtureError::Invalid {
        file: named.source.clone(),
        at: String::new(),
        field,
        message,
    };
    let f = &named.fixture;
    if f.rule.trim().is_empty() {
        return Err(invalid(
            "rule".into(),
            "cite the spec rule the fixture checks".into(),
        ));
    }
    if f.calls.is_empty() {
        return Err(invalid(
            "calls".into(),
            "a client fixture needs at least one call".into(),
        ));
    }
    for (c, call) in f.calls.iter().enumerate() {
        let at = |rest: &str| format!("calls[{c}]{rest}");
        let method = fixture::find_method(descriptors, &call.method)
            .map_err(|e| invalid(at(".method"), e))?;
        fixture::check_header_fields(&call.metadata, ".metadata")
            .map_err(|(field, e)| invalid(at(&field), e))?;
        if call.metadata.contains_key(crate::contract::CALL_ID) {
            return Err(invalid(
                at(".metadata"),
                "the kit sets x-conform-call-id itself".into(),
            ));
        }
        let streams_requests = method.is_client_streaming();
        super::steps::check_order(&call.steps, streams_requests)
            .map_err(|(s, e)| invalid(at(&format!(".steps[{s}]")), e))?;
        for (s, step) in call.steps.iter().enumerate() {
            let at = |rest: &str| format!("calls[{c}].steps[{s}]{rest}");
            match step {
                ClientStep::Send(send) => {
                    message::from_json(&method.input(), &send.message)
                        .map_err(|e| invalid(at(".send.message"), e))?;
                }
                ClientStep::SendMany(many) => {
                    let sample = message::expand_template(&many.template, 1);
                    message::from_json(&method.input(), &sample)
                        .map_err(|e| invalid(at(".send_many.template"), e))?;
                }
                ClientStep::HalfClose
                | ClientStep::ReceiveHeaders
                | ClientStep::Receive
                | ClientStep::ReceiveAll
                | ClientStep::Cancel
                | ClientStep::Pause(_) => {}
            }
        }
        if let Some(answer) = &call.answer {
            super::answer::validate(answer, &method.output())
                .map_err(|(field, e)| invalid(at(&format!(".answer{field}")), e))?;
        }
    }
    Ok(())
}

/// Whether `name` is a status code name of statuscodes.md.
pub(crate) fn is_status_name(name: &str) -> bool {
    STATUS_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), String> {
        let texts = vec![FixtureText {
            name: "x".into(),
            source: "x.json".into(),
            text: text.into(),
        }];
        let (_, bad) = check_all(texts, &Descriptors::contract().unwrap());
        bad.into_iter()
            .next()
            .map_or(Ok(()), |e| Err(e.to_string()))
    }

    #[test]
    fn the_embedded_client_fixtures_are_valid() {
        let texts = read_embedded();
        assert!(!texts.is_empty());
        let (good, bad) = check_all(texts, &Descriptors::contract().unwrap());
        assert!(bad.is_empty(), "{bad:?}");
        assert!(good.iter().any(|f| f.name == "unary/say-hello"));
    }

    #[test]
    fn a_unary_call_must_send_then_half_close() {
        let err = check(
            r#"{"description": "x", "rule": "r", "level": "MUST", "calls": [
  {"method": "/Greeter/SayHello",
   "steps": ["half_close", "receive_all"]}]}"#,
        )
        .unwrap_err();
        assert!(err.starts_with("x.json:3:"), "{err}");
        assert!(err.contains("calls[0].steps[0]"), "{err}");
    }

    #[test]
    fn answers_are_checked_against_the_output_type() {
        let err = check(
            r#"{"description": "x", "rule": "r", "level": "MUST", "calls": [
  {"method": "/Greeter/SayHello",
   "answer": {"messages": [{"message": {"mesage": "hi"}}]},
   "steps": [{"send": {"message": {"name": "a"}}}, "half_close"]}]}"#,
        )
        .unwrap_err();
        assert!(err.contains("calls[0].answer.messages[0].message"), "{err}");
        assert!(err.contains("x.json:3:"), "{err}");
        let err = check(
            r#"{"description": "x", "rule": "r", "level": "MUST", "calls": [
  {"method": "/Greeter/SayHello",
   "answer": {"end": {"reset": "NOT_A_CODE"}},
   "steps": [{"send": {"message": {"name": "a"}}}, "half_close"]}]}"#,
        )
        .unwrap_err();
        assert!(err.contains("calls[0].answer.end.reset"), "{err}");
    }

    #[test]
    fn unknown_fields_name_file_line_and_field() {
        let err = check(
            r#"{"description": "x", "rule": "r", "level": "MUST",
"channel": {"keepalive": {"time_ms": 1, "timeout_ms": 1, "permit": true}},
"calls": []}"#,
        )
        .unwrap_err();
        assert!(err.starts_with("x.json:2:"), "{err}");
        assert!(err.contains("channel.keepalive"), "{err}");
    }
}
