//! Scripted answers ([`Answer`]): checked against the method's output type
//! here, turned into the response the reference sends.

use super::fixture::{is_status_name, Answer, AnswerEnd, AnswerTrailers};
use crate::{fixture::check_header_fields, message, wire::log::error_name};
use prost_reflect::MessageDescriptor;

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
