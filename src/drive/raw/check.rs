//! A raw script checked before anything is sent: methods exist, messages
//! fit their stream's input type, streams are opened before use with rising
//! odd ids, codes and payloads parse.

use super::super::Stop;
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
            RawStep::ResetMany(r) => {
                for k in 0..r.count {
                    open(r.first_stream + 2 * k, &r.method)?;
                }
            }
            _ => {}
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
            RawStep::Open(_)
            | RawStep::ResetMany(_)
            | RawStep::PingFlood(_)
            | RawStep::Pause(_)
            | RawStep::AwaitGoaway(_) => {}
        }
    }
    Ok(())
}
