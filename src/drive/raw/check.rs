//! A raw script checked before anything is sent: methods exist, messages
//! fit their stream's input type, streams are opened before use with rising
//! odd ids, codes and payloads parse.

use super::super::Stop;
use super::frames::{hex_bytes, setting_id};
use crate::{
    descriptors::Descriptors,
    message,
    model::RawStep,
    wire::log::{error_name, setting_name},
};
use prost_reflect::MethodDescriptor;
use std::collections::HashMap;

/// The error code named `name` (RFC 9113 7).
pub fn error_code(name: &str) -> Result<u32, Stop> {
    (0..14)
        .find(|c| error_name(*c) == name)
        .ok_or_else(|| Stop::Failed(format!("fixture: no HTTP/2 error code {name}")))
}

/// 8 bytes from 16 hex digits.
pub fn ping_payload(text: &str) -> Result<[u8; 8], Stop> {
    let bad = || {
        Stop::Failed(format!(
            "fixture: PING payload {text:?} is not 16 hex digits"
        ))
    };
    if text.len() != 16 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Checks a raw script before anything is sent: methods exist, messages fit
/// their stream's input type, streams are opened before use with rising odd
/// ids, codes and payloads parse. The error is (field path, what is wrong).
pub fn validate(steps: &[RawStep], descriptors: &Descriptors) -> Result<(), (String, String)> {
    let mut methods: HashMap<u32, MethodDescriptor> = HashMap::new();
    let mut last = 0;
    for (i, step) in steps.iter().enumerate() {
        let at = |rest: &str| format!("raw[{i}]{rest}");
        let stop = |rest: &str, e: Stop| match e {
            Stop::Failed(m) | Stop::TimedOut(m) => (at(rest), m),
        };
        let mut open = |s: u32, path: &str| -> Result<(), (String, String)> {
            let m = descriptors.method(path).ok_or_else(|| {
                (
                    at(".method"),
                    format!("no method {path} in the descriptors"),
                )
            })?;
            if u64::from(s) > crate::limits::MAX_STREAM_ID {
                return Err((
                    at(".stream"),
                    format!("s{s}: stream ids are at most 2^31-1"),
                ));
            }
            if s % 2 == 0 || s <= last {
                return Err((
                    at(".stream"),
                    format!("s{s}: client streams are odd and rising"),
                ));
            }
            last = s;
            methods.insert(s, m);
            Ok(())
        };
        match step {
            RawStep::Open(o) => open(o.stream, &o.method)?,
            RawStep::OpenFramed(o) => open(o.stream, &o.method)?,
            RawStep::ResetMany(r) => {
                for k in 0..r.count {
                    open(r.first_stream + 2 * k, &r.method)?;
                }
            }
            RawStep::OpenMany(r) => {
                for k in 0..r.count {
                    open(r.first_stream + 2 * k, &r.method)?;
                }
            }
            RawStep::Message(_)
            | RawStep::Messages(_)
            | RawStep::EndStream(_)
            | RawStep::Reset(_)
            | RawStep::Ping(_)
            | RawStep::PingFlood(_)
            | RawStep::Pause(_)
            | RawStep::Await(_)
            | RawStep::AwaitGoaway(_)
            | RawStep::ServerSettings(_)
            | RawStep::PaddedMessage(_)
            | RawStep::MessageBytes(_)
            | RawStep::Priority(_)
            | RawStep::UnknownFrame(_)
            | RawStep::Settings(_)
            | RawStep::WindowUpdate(_) => {}
        }
        let opened = |s: u32| {
            methods
                .get(&s)
                .cloned()
                .ok_or_else(|| (at(".stream"), format!("s{s} is not opened before")))
        };
        match step {
            RawStep::Message(m) => {
                message::from_json(&opened(m.stream)?.input(), &m.message)
                    .map_err(|e| (at(".message.message"), e))?;
            }
            RawStep::Messages(m) => {
                let input = opened(m.stream)?.input();
                for json in &m.messages {
                    message::from_json(&input, json).map_err(|e| (at(".messages.messages"), e))?;
                }
            }
            RawStep::EndStream(s) => drop(opened(s.stream)?),
            RawStep::Await(a) => drop(opened(a.stream)?),
            RawStep::Reset(r) => {
                opened(r.stream)?;
                error_code(&r.code).map_err(|e| stop(".reset.code", e))?;
            }
            RawStep::Ping(p) => {
                ping_payload(&p.payload).map_err(|e| stop(".ping.payload", e))?;
            }
            RawStep::ServerSettings(names) => {
                if let Some(n) = names
                    .iter()
                    .find(|n| !(1..=8).any(|id| setting_name(id) == **n))
                {
                    return Err((at(".server_settings"), format!("no setting named {n}")));
                }
            }
            RawStep::OpenFramed(o) => {
                if let Some(json) = &o.message {
                    message::from_json(&opened(o.stream)?.input(), json)
                        .map_err(|e| (at(".open_framed.message"), e))?;
                }
            }
            RawStep::PaddedMessage(m) => {
                message::from_json(&opened(m.stream)?.input(), &m.message)
                    .map_err(|e| (at(".padded_message.message"), e))?;
            }
            RawStep::MessageBytes(m) => {
                opened(m.stream)?;
                hex_bytes(&m.hex).map_err(|e| stop(".message_bytes.hex", e))?;
            }
            RawStep::UnknownFrame(u) => {
                hex_bytes(&u.payload).map_err(|e| stop(".unknown_frame.payload", e))?;
                if u.kind <= 0x9 {
                    return Err((
                        at(".unknown_frame.type"),
                        format!("type 0x{:x} is defined by RFC 9113", u.kind),
                    ));
                }
            }
            RawStep::Settings(pairs) => {
                for (name, _) in pairs {
                    setting_id(name).map_err(|e| stop(".settings", e))?;
                }
            }
            RawStep::Priority(p) => {
                if !(1..=256).contains(&p.weight) {
                    return Err((at(".priority.weight"), "a weight is 1 to 256".into()));
                }
            }
            RawStep::Open(_)
            | RawStep::OpenMany(_)
            | RawStep::WindowUpdate(_)
            | RawStep::ResetMany(_)
            | RawStep::PingFlood(_)
            | RawStep::Pause(_)
            | RawStep::AwaitGoaway(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error of validating `steps` (JSON), or none.
    fn check(steps: &str) -> Option<(String, String)> {
        let steps: Vec<RawStep> = serde_json::from_str(steps).expect("steps parse");
        validate(&steps, &Descriptors::contract().unwrap()).err()
    }

    #[test]
    fn a_good_script_passes() {
        assert_eq!(
            check(
                r#"[{"open": {"stream": 1, "method": "/Greeter/SayHello"}},
                    {"message": {"stream": 1, "message": {"name": "a"}, "end_stream": true}},
                    {"ping": {"payload": "0011223344556677"}}, {"await": {"stream": 1}},
                    {"server_settings": ["MAX_FRAME_SIZE"]}]"#
            ),
            None
        );
    }

    #[test]
    fn streams_must_be_opened_odd_and_rising() {
        let (at, e) = check(r#"[{"end_stream": {"stream": 1}}]"#).unwrap();
        assert_eq!(
            (at.as_str(), e.contains("not opened")),
            ("raw[0].stream", true)
        );
        let (_, e) = check(r#"[{"open": {"stream": 2, "method": "/Greeter/SayHello"}}]"#).unwrap();
        assert!(e.contains("odd and rising"), "{e}");
        let (at, _) = check(
            r#"[{"open": {"stream": 3, "method": "/Greeter/SayHello"}},
                {"open": {"stream": 1, "method": "/Greeter/SayHello"}}]"#,
        )
        .unwrap();
        assert_eq!(at, "raw[1].stream");
    }

    #[test]
    fn bad_messages_codes_and_payloads_are_named() {
        let open = r#"{"open": {"stream": 1, "method": "/Greeter/SayHello"}}"#;
        let (at, _) = check(&format!(
            r#"[{open}, {{"message": {{"stream": 1, "message": {{"nmae": "a"}}}}}}]"#
        ))
        .unwrap();
        assert_eq!(at, "raw[1].message.message");
        let (at, _) = check(&format!(
            r#"[{open}, {{"reset": {{"stream": 1, "code": "CANCELLED"}}}}]"#
        ))
        .unwrap();
        assert_eq!(at, "raw[1].reset.code");
        let (at, _) = check(r#"[{"ping": {"payload": "xyz"}}]"#).unwrap();
        assert_eq!(at, "raw[0].ping.payload");
        let (_, e) = check(r#"[{"open": {"stream": 1, "method": "/Nope/Nope"}}]"#).unwrap();
        assert!(e.contains("no method"), "{e}");
    }
}
