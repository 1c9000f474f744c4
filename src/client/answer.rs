//! Scripted answers ([`Answer`]): checked against the method's output type
//! here, turned into the response the reference sends.

use super::fixture::{is_status_name, Answer, AnswerEnd, AnswerTrailers};
use crate::{
    drive::codec,
    fixture::check_header_fields,
    message,
    model::{SendStep, STATUS_NAMES},
    reference::server::hook::ScriptStep,
    wire::log::error_name,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use prost_reflect::MessageDescriptor;
use std::time::Duration;

/// Checks an answer: the error is the field under `answer` and what is wrong.
pub fn validate(answer: &Answer, output: &MessageDescriptor) -> Result<(), (String, String)> {
    if let Some(status) = answer.http_status {
        if !(100..=599).contains(&status) {
            return Err((
                ".http_status".into(),
                format!("{status} is not an HTTP status (100 to 599)"),
            ));
        }
    }
    for (field, value) in [
        (".content_type", &answer.content_type),
        (".encoding", &answer.encoding),
    ] {
        if let Some(value) = value {
            if !value.is_empty() && http::HeaderValue::from_str(value).is_err() {
                return Err((field.into(), "must be visible ASCII".into()));
            }
        }
    }
    check_header_fields(&answer.headers, ".headers")?;
    for (m, send) in answer.messages.iter().enumerate() {
        let at = |rest: &str| format!(".messages[{m}]{rest}");
        message::from_json(output, &send.message).map_err(|e| (at(".message"), e))?;
        if let Some(size) = send.size {
            message::sized(output, &send.message, size).map_err(|e| (at(".size"), e))?;
        }
    }
    if answer.body.is_some() && !answer.messages.is_empty() {
        return Err((
            ".body".into(),
            "an answer sends either `messages` or a `body`, not both".into(),
        ));
    }
    if let Some(after) = answer.goaway_after {
        if after as usize > answer.messages.len() {
            return Err((
                ".goaway_after".into(),
                format!(
                    "{after} is more than the {} messages",
                    answer.messages.len()
                ),
            ));
        }
    }
    match &answer.end {
        None | Some(AnswerEnd::EndStream) => Ok(()),
        Some(AnswerEnd::Trailers(trailers)) => check_trailers(trailers, ".end.trailers"),
        Some(AnswerEnd::TrailersOnly(trailers)) => {
            if !answer.messages.is_empty() || answer.body.is_some() {
                return Err((
                    ".end".into(),
                    "a trailers-only answer has no messages and no body".into(),
                ));
            }
            check_trailers(trailers, ".end.trailers_only")
        }
        Some(AnswerEnd::Reset(code)) => match reset_code(code) {
            Some(_) => Ok(()),
            None => Err((
                ".end.reset".into(),
                format!("unknown HTTP/2 error code `{code}` (NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, CANCEL, ...)"),
            )),
        },
    }
}

/// Checks trailers' status name and fields; `field` is where they are.
fn check_trailers(trailers: &AnswerTrailers, field: &str) -> Result<(), (String, String)> {
    if let Some(status) = &trailers.status {
        if !is_status_name(status) {
            return Err((
                format!("{field}.status"),
                format!("unknown status code `{status}`"),
            ));
        }
    }
    check_header_fields(&trailers.fields, &format!("{field}.fields"))
}

/// The number of the HTTP/2 error code named `name` (RFC 9113 section 7).
pub fn reset_code(name: &str) -> Option<u32> {
    (0..=0xd).find(|code| error_name(*code) == name)
}

/// An answer ready to send, built once per fixture and sent for every
/// request carrying its call id (a client that retries gets it again).
#[derive(Clone, Debug)]
pub struct PreparedAnswer {
    /// Before the response headers (scaled).
    pub delay: Duration,
    /// `:status`.
    pub http_status: http::StatusCode,
    /// Response header fields.
    pub headers: HeaderMap,
    /// The body, as frames and actions.
    pub steps: Vec<ScriptStep>,
}

/// Bytes gRPC requires percent-encoded in `grpc-message` (PROTOCOL-HTTP2.md):
/// everything outside visible ASCII and space, and `%` itself.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

/// Builds what the reference sends for `answer`; `output` types its
/// messages, `scale` multiplies its times. The answer was validated.
pub fn prepare(
    answer: &Answer,
    output: &MessageDescriptor,
    scale: impl Fn(u64) -> u64,
) -> Result<PreparedAnswer, String> {
    let mut headers = HeaderMap::new();
    let content_type = answer.content_type.as_deref().unwrap_or("application/grpc");
    if !content_type.is_empty() {
        headers.insert("content-type", value(content_type)?);
    }
    if let Some(encoding) = &answer.encoding {
        headers.insert("grpc-encoding", value(encoding)?);
    }
    for (name, v) in &answer.headers {
        headers.append(name_of(name)?, value(v)?);
    }
    let mut steps = Vec::new();
    for (m, send) in answer.messages.iter().enumerate() {
        if answer.goaway_after == Some(m as u32) {
            steps.push(ScriptStep::GoAway);
        }
        steps.push(ScriptStep::Data(encode_message(send, answer, output)?));
    }
    if answer.goaway_after == Some(answer.messages.len() as u32) {
        steps.push(ScriptStep::GoAway);
    }
    if let Some(body) = &answer.body {
        steps.push(ScriptStep::Data(Bytes::from(body.clone())));
    }
    match answer.end.clone().unwrap_or_else(|| {
        AnswerEnd::Trailers(AnswerTrailers {
            status: Some("OK".into()),
            ..AnswerTrailers::default()
        })
    }) {
        AnswerEnd::Trailers(trailers) => steps.push(ScriptStep::Trailers(trailer_map(&trailers)?)),
        AnswerEnd::TrailersOnly(trailers) => headers.extend(trailer_map(&trailers)?),
        AnswerEnd::EndStream => {}
        AnswerEnd::Reset(code) => steps.push(ScriptStep::Reset(
            reset_code(&code).ok_or_else(|| format!("unknown HTTP/2 error code {code}"))?,
        )),
    }
    Ok(PreparedAnswer {
        delay: Duration::from_millis(scale(answer.delay_ms)),
        http_status: http::StatusCode::from_u16(answer.http_status.unwrap_or(200))
            .map_err(|e| e.to_string())?,
        headers,
        steps,
    })
}

/// One response message, length-prefixed; compressed under the answer's
/// encoding unless it says `compressed: false` (an encoding the kit lacks
/// leaves the bytes as they are under the flag).
fn encode_message(
    send: &SendStep,
    answer: &Answer,
    output: &MessageDescriptor,
) -> Result<Bytes, String> {
    let json = match send.size {
        Some(size) => message::sized(output, &send.message, size)?,
        None => send.message.clone(),
    };
    let bytes = message::encode_json(output, &json)?;
    let compressed = send.compressed.unwrap_or(answer.encoding.is_some());
    let payload = match (&answer.encoding, compressed) {
        (Some(encoding), true) => codec::compress(encoding, &bytes).unwrap_or(bytes),
        _ => bytes,
    };
    Ok(codec::frame(compressed, &payload))
}

/// The trailer fields of `trailers`: `grpc-status` by number, the message
/// percent-encoded, then the other fields.
fn trailer_map(trailers: &AnswerTrailers) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    if let Some(status) = &trailers.status {
        let code = STATUS_NAMES
            .iter()
            .position(|n| n == status)
            .ok_or_else(|| format!("unknown status code {status}"))?;
        map.insert("grpc-status", HeaderValue::from(code as u32));
    }
    if let Some(message) = &trailers.message {
        let encoded = utf8_percent_encode(message, GRPC_MESSAGE).to_string();
        map.insert("grpc-message", value(&encoded)?);
    }
    for (name, v) in &trailers.fields {
        map.append(name_of(name)?, value(v)?);
    }
    Ok(map)
}

fn value(text: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(text).map_err(|e| format!("header value {text:?}: {e}"))
}

fn name_of(text: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(text.as_bytes()).map_err(|e| format!("header name {text:?}: {e}"))
}
