//! A plan checked before anything is sent: every method known and of the
//! planned mode, every message valid proto3 JSON of its input type, every
//! metadata name and `-bin` value usable. Requests are encoded, compressed
//! and framed here, so a bad plan is an error naming its field rather than a
//! call that fails half way.

use super::PlanError;
use crate::client::plan::{Mode, Plan, PlanCall, PlanStep};
use crate::descriptors::Descriptors;
use crate::drive::codec;
use crate::message;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use prost_reflect::MessageDescriptor;
use std::time::Duration;

/// One planned call, ready to run.
#[derive(Clone, Debug)]
pub struct PreparedCall {
    /// `/Service/Method`.
    pub path: String,
    /// The method's mode.
    pub mode: Mode,
    /// The response type, to render received messages.
    pub output: MessageDescriptor,
    /// Request metadata in plan order, `-bin` values already in wire form.
    pub metadata: Vec<(HeaderName, HeaderValue)>,
    /// The call's deadline, from its start.
    pub deadline: Option<Duration>,
    /// The request encoding (`grpc-encoding`), when compressing.
    pub compression: Option<&'static str>,
    /// What to do, in order.
    pub steps: Vec<Step>,
}

/// One step, with its messages already framed.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Send these length-prefixed messages, in order.
    Send(Vec<Bytes>),
    /// End the request stream (unary and server streaming: invoke the call).
    HalfClose,
    /// Wait for the response headers or the end of the call.
    ReceiveHeaders,
    /// Wait for one response message.
    Receive,
    /// Read to the end of the call.
    ReceiveAll,
    /// Cancel the call.
    Cancel,
    /// Sleep.
    Pause(Duration),
}

/// Every call of `plan`, checked and encoded.
pub fn calls(plan: &Plan, descriptors: &Descriptors) -> Result<Vec<PreparedCall>, PlanError> {
    plan.calls
        .iter()
        .enumerate()
        .map(|(i, call)| prepare_call(call, &format!("calls[{i}]"), descriptors))
        .collect()
}

/// An error at `field`.
fn field_error(field: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

fn prepare_call(
    call: &PlanCall,
    at: &str,
    descriptors: &Descriptors,
) -> Result<PreparedCall, PlanError> {
    let method = descriptors.method(&call.method).ok_or_else(|| {
        field_error(
            format!("{at}.method"),
            format!("`{}` is no method of the contract", call.method),
        )
    })?;
    let declared = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => Mode::Unary,
        (false, true) => Mode::ServerStreaming,
        (true, false) => Mode::ClientStreaming,
        (true, true) => Mode::Bidi,
    };
    if declared != call.mode {
        return Err(field_error(
            format!("{at}.mode"),
            format!("{} is {declared:?}, not {:?}", call.method, call.mode),
        ));
    }
    let compression = match call.compression.as_deref() {
        None => None,
        Some(name) => Some(
            codec::KNOWN
                .into_iter()
                .find(|k| *k == name)
                .ok_or_else(|| {
                    field_error(
                        format!("{at}.compression"),
                        format!("`{name}` is not one of {}", codec::KNOWN.join(", ")),
                    )
                })?,
        ),
    };
    let steps = prepare_steps(call, at, &method.input(), compression)?;
    Ok(PreparedCall {
        path: call.method.clone(),
        mode: call.mode,
        output: method.output(),
        metadata: metadata(&call.metadata, at)?,
        deadline: call.deadline_ms.map(Duration::from_millis),
        compression,
        steps,
    })
}

/// The steps with messages encoded; unary and server-streaming calls must
/// send exactly one message before their half-close.
fn prepare_steps(
    call: &PlanCall,
    at: &str,
    input: &MessageDescriptor,
    compression: Option<&'static str>,
) -> Result<Vec<Step>, PlanError> {
    let single = matches!(call.mode, Mode::Unary | Mode::ServerStreaming);
    let mut sent = 0usize;
    let mut steps = Vec::with_capacity(call.steps.len());
    for (j, step) in call.steps.iter().enumerate() {
        let field = format!("{at}.steps[{j}]");
        let frame = |json: &serde_json::Value| encode(input, json, compression, &field);
        let prepared = match step {
            PlanStep::Send { message } => Step::Send(vec![frame(message)?]),
            PlanStep::SendMany { count, template } => Step::Send(
                (1..=*count)
                    .map(|i| frame(&message::expand_template(template, i)))
                    .collect::<Result<_, _>>()?,
            ),
            PlanStep::HalfClose => {
                if single && sent != 1 {
                    return Err(field_error(
                        field,
                        format!(
                            "a {:?} call sends exactly one message before half_close, not {sent}",
                            call.mode
                        ),
                    ));
                }
                Step::HalfClose
            }
            PlanStep::ReceiveHeaders => Step::ReceiveHeaders,
            PlanStep::Receive => Step::Receive,
            PlanStep::ReceiveAll => Step::ReceiveAll,
            PlanStep::Cancel => Step::Cancel,
            PlanStep::Pause { ms } => Step::Pause(Duration::from_millis(*ms)),
        };
        if let Step::Send(messages) = &prepared {
            sent += messages.len();
        }
        steps.push(prepared);
    }
    Ok(steps)
}

/// One request message: encoded, compressed when asked, length-prefixed.
fn encode(
    input: &MessageDescriptor,
    json: &serde_json::Value,
    compression: Option<&'static str>,
    field: &str,
) -> Result<Bytes, PlanError> {
    let bytes = message::encode_json(input, json)
        .map_err(|e| field_error(format!("{field}.message"), e))?;
    Ok(match compression {
        None => codec::frame(false, &bytes),
        Some(encoding) => {
            let packed = codec::compress(encoding, &bytes)
                .ok_or_else(|| field_error(field, format!("cannot compress with {encoding}")))?;
            codec::frame(true, &packed)
        }
    })
}

/// Request metadata in wire form: names checked, `-bin` values decoded from
/// the plan's base64 (padded or not) and sent as unpadded base64, as gRPC
/// stacks put binary values on the wire.
fn metadata(
    pairs: &[(String, String)],
    at: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, PlanError> {
    pairs
        .iter()
        .enumerate()
        .map(|(k, (name, value))| {
            let field = format!("{at}.metadata[{k}]");
            let header = HeaderName::from_bytes(name.as_bytes())
                .ok()
                .filter(|h| h.as_str() == name && !name.starts_with("grpc-"))
                .ok_or_else(|| {
                    field_error(
                        &field,
                        format!("`{name}` is not a lower-case metadata name outside grpc-*"),
                    )
                })?;
            let wire = if name.ends_with("-bin") {
                let raw = base64_any(value)
                    .ok_or_else(|| field_error(&field, format!("`{value}` is not base64")))?;
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
            } else {
                value.clone()
            };
            let value = HeaderValue::from_str(&wire).map_err(|_| {
                field_error(&field, format!("`{value}` is not a valid header value"))
            })?;
            Ok((header, value))
        })
        .collect()
}

/// Decodes standard base64 with or without padding.
pub fn base64_any(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(call: serde_json::Value) -> Plan {
        serde_json::from_value(
            json!({"version": 1, "fixture": "t", "target": "127.0.0.1:1",
            "timeout_ms": 1000, "calls": [call]}),
        )
        .unwrap()
    }

    fn prepared(call: serde_json::Value) -> Result<Vec<PreparedCall>, PlanError> {
        calls(&plan(call), &Descriptors::contract().unwrap())
    }

    #[test]
    fn a_unary_call_is_framed_and_its_binary_metadata_rewritten() {
        let calls = prepared(json!({"method": "/Greeter/SayHello", "mode": "unary",
            "metadata": [["x-a-bin", "AAE="], ["x-b", "1"]], "compression": "gzip",
            "steps": [{"op": "send", "message": {"name": "w"}}, {"op": "half_close"}]}))
        .unwrap();
        let Step::Send(messages) = &calls[0].steps[0] else {
            panic!("not a send: {:?}", calls[0].steps[0]);
        };
        assert_eq!(messages[0][0], 1, "compressed flag");
        assert_eq!(calls[0].metadata[0].1, "AAE");
        assert_eq!(calls[0].compression, Some("gzip"));
    }

    #[test]
    fn bad_plans_name_their_field() {
        let cases = [
            (
                json!({"method": "/Greeter/Nope", "mode": "unary", "steps": []}),
                "calls[0].method",
            ),
            (
                json!({"method": "/Greeter/SayHello", "mode": "bidi", "steps": []}),
                "calls[0].mode",
            ),
            (
                json!({"method": "/Greeter/SayHello", "mode": "unary",
                "steps": [{"op": "send", "message": {"nom": "w"}}]}),
                "calls[0].steps[0].message",
            ),
            (
                json!({"method": "/Greeter/SayHello", "mode": "unary",
                "steps": [{"op": "half_close"}]}),
                "calls[0].steps[0]",
            ),
            (
                json!({"method": "/Greeter/SayHello", "mode": "unary", "metadata": [["X-Up", "1"]],
                "steps": []}),
                "calls[0].metadata[0]",
            ),
            (
                json!({"method": "/Greeter/SayHello", "mode": "unary", "metadata": [["x-b-bin", "!!"]],
                "steps": []}),
                "calls[0].metadata[0]",
            ),
            (
                json!({"method": "/Greeter/SayHello", "mode": "unary", "compression": "snappy",
                "steps": []}),
                "calls[0].compression",
            ),
        ];
        for (call, field) in cases {
            match prepared(call) {
                Err(PlanError::Field { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn send_many_numbers_its_messages() {
        let calls = prepared(
            json!({"method": "/Greeter/ClientStream", "mode": "client_streaming",
            "steps": [{"op": "send_many", "count": 3, "template": {"data": "m{i}"}}]}),
        )
        .unwrap();
        let Step::Send(messages) = &calls[0].steps[0] else {
            panic!("not a send");
        };
        assert_eq!(messages.len(), 3);
        assert_eq!(&messages[2][5..], b"\x0a\x02m3");
    }
}
