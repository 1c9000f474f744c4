//! Every fold and redaction between what the target sent and the transcript,
//! one named filter each (as insta's filters): two conformant servers give
//! the same text, and a diff is a real difference.
//!
//! - [`response_field`]: header spellings the spec makes equivalent;
//! - [`shown_call_field`], [`shown_fields`]: which response fields a call's
//!   and a wire transcript show;
//! - [`volatile_fields`]: message fields a fixture marks volatile;
//! - [`call_id`]: the per-run call id in server messages;
//! - [`observer_facts`]: the Observer's record at a grain a conforming server
//!   cannot vary;
//! - [`scaled_metadata`]: contract times scaled on the wire, shown as written;
//! - [`snapshot_text`]: line endings and trailing whitespace, as insta;
//! - [`without_server_view`]: a transcript with the Observer's lines left out,
//!   for a target without the Observer.

use crate::{
    contract,
    model::status_name,
    proto::observer::{CallRecord, Outcome},
};
use serde_json::Value;
use std::collections::BTreeMap;

/// A response header field as transcripts show it, with the spellings the
/// spec makes equivalent folded into one; `None` when the field says nothing:
/// - `grpc-accept-encoding`: the list sorted (its order is free);
/// - `content-type: application/grpc+proto` is `application/grpc` (proto is
///   the default format, PROTOCOL-HTTP2.md);
/// - `grpc-encoding: identity` is no encoding (compression.md);
/// - a `-bin` value is its bytes: padded or unpadded base64 read alike
///   (PROTOCOL-HTTP2.md: implementations SHOULD emit unpadded, MUST accept
///   both), each value of a comma-joined list on its own.
pub fn response_field(name: &str, value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value).into_owned();
    if name.ends_with("-bin") {
        return Some(binary_value(&text));
    }
    match name {
        "grpc-accept-encoding" => {
            let mut items: Vec<&str> = text.split(',').map(str::trim).collect();
            items.sort_unstable();
            Some(items.join(","))
        }
        "content-type" if text == "application/grpc+proto" => Some("application/grpc".into()),
        "grpc-encoding" if text == "identity" => None,
        _ => Some(text),
    }
}

/// A `-bin` header value as padded base64 of its bytes, each comma-joined
/// value on its own; a value that is not base64 is shown as it came.
fn binary_value(text: &str) -> String {
    use base64::{
        alphabet::STANDARD,
        engine::{general_purpose::PAD, DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
        Engine,
    };
    let lenient = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let canonical = GeneralPurpose::new(&STANDARD, PAD);
    text.split(',')
        .map(|v| match lenient.decode(v.trim()) {
            Ok(bytes) => canonical.encode(bytes),
            Err(_) => v.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Response fields a call's transcript always shows; others only when a
/// step names them, or when they are `x-` metadata.
pub const TRANSPORT_FIELDS: [&str; 2] = ["content-type", "grpc-encoding"];

/// Whether a call's transcript shows response field `name`: custom `x-`
/// metadata (what fixtures are about), the fields a step names, and
/// [`TRANSPORT_FIELDS`]; `grpc-status` and `grpc-message` are shown as the
/// status line instead.
pub fn shown_call_field(name: &str, named: &std::collections::BTreeSet<String>) -> bool {
    name != "grpc-status"
        && name != "grpc-message"
        && (name.starts_with("x-") || named.contains(name) || TRANSPORT_FIELDS.contains(&name))
}

/// The response fields a wire transcript shows (transport fields that carry
/// meaning, and custom `x-` metadata), folded and sorted.
pub fn shown_fields(fields: &[(String, String)]) -> Vec<(String, String)> {
    let shown = |name: &str| {
        matches!(
            name,
            ":status" | "content-type" | "grpc-status" | "grpc-encoding" | "grpc-accept-encoding"
        ) || name.starts_with("x-")
    };
    let mut out: Vec<(String, String)> = fields
        .iter()
        .filter(|(n, _)| shown(n))
        .filter_map(|(n, v)| Some((n.clone(), response_field(n, v.as_bytes())?)))
        .collect();
    out.sort();
    out
}

/// Replaces the top-level `fields` present in `json` with `"<volatile>"`.
pub fn volatile_fields(json: &mut Value, fields: &[String]) {
    if let Value::Object(map) = json {
        for field in fields {
            if let Some(v) = map.get_mut(field) {
                *v = Value::String("<volatile>".into());
            }
        }
    }
}

/// A server's message with the per-run call id shown as `<call-id>`.
pub fn call_id(message: &str, id: &str) -> String {
    message.replace(id, "<call-id>")
}

/// What [`observer_facts`] needs besides the record.
pub struct ObserveContext<'a> {
    /// The call's `x-conform-call-id`.
    pub call_id: &'a str,
    /// The deadline sent in milliseconds (scaled), to recognise it in `timeout_ms`.
    pub deadline_sent_ms: Option<u64>,
    /// Metadata values as sent (scaled) → as the fixture wrote them; the
    /// Observer's echo of a scaled value is shown unscaled.
    pub sent_metadata: BTreeMap<String, (String, String)>,
    /// How long the server may wait for the call to end, in milliseconds.
    pub wait_ms: u32,
    /// Whether the client cancelled the call before asking.
    pub cancelled: bool,
    /// Response messages the client had received when it asked.
    pub received: usize,
}

/// The record as `key=value` facts without volatile values.
///
/// After a client cancel, how many responses the server had handed to its
/// transport when the reset arrived is a race a conforming server cannot
/// control; what it cannot do is claim fewer than the client received. So
/// `responses_sent` is shown as `at-least-received` when it is at least what the
/// client received, and as the number (a bug) when it is fewer.
pub fn observer_facts(r: &CallRecord, ctx: &ObserveContext<'_>) -> Vec<(String, String)> {
    let outcome = Outcome::try_from(r.outcome)
        .map_or_else(|_| r.outcome.to_string(), |o| o.as_str_name().to_string());
    let mut out = vec![
        (
            "requests_received".to_string(),
            r.requests_received.to_string(),
        ),
        (
            "half_close_received".to_string(),
            r.half_close_received.to_string(),
        ),
        ("outcome".to_string(), outcome),
    ];
    if r.outcome == Outcome::Completed as i32 {
        out.push(("status".into(), status_name(r.status_code)));
    }
    let sent = if ctx.cancelled && r.responses_sent as usize >= ctx.received {
        "at-least-received".to_string()
    } else {
        r.responses_sent.to_string()
    };
    out.push(("responses_sent".into(), sent));
    if !r.request_encoding.is_empty() {
        out.push(("request_encoding".into(), r.request_encoding.clone()));
    }
    let timeout = match (r.timeout_ms, ctx.deadline_sent_ms) {
        (0, _) => "none".to_string(),
        // Servers round grpc-timeout differently; within 10% is "what we sent".
        (t, Some(sent))
            if (t as i128 - sent as i128).unsigned_abs() <= (sent / 10).max(5) as u128 =>
        {
            "as-sent".into()
        }
        (t, _) => format!("{t} ms"),
    };
    out.push(("timeout".into(), timeout));
    let mut metadata: Vec<(String, String)> = r
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != contract::CALL_ID)
        .filter_map(|(k, v)| match ctx.sent_metadata.get(k) {
            Some((sent, shown)) if sent == v => Some((k.clone(), shown.clone())),
            Some((sent, _)) => Some((k.clone(), format!("{v} (sent {sent})"))),
            // Names the fixture did not send are --header values: not shown.
            None => None,
        })
        .collect();
    metadata.sort();
    out.extend(metadata);
    out
}

/// The value to send for metadata `name` as the fixture `written` it: a
/// contract time (`x-conform-*-ms`) is scaled by `--time-scale`, so a slow
/// machine gets longer pauses while transcripts keep showing what the
/// fixture wrote.
pub fn scaled_metadata(name: &str, written: &str, scale: impl Fn(u64) -> u64) -> String {
    match written.parse::<u64>() {
        Ok(ms) if name.starts_with("x-conform-") && name.ends_with("-ms") => scale(ms).to_string(),
        _ => written.to_string(),
    }
}

/// Snapshot text as compared: CRLF as LF, trailing whitespace trimmed.
pub fn snapshot_text(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_string()
}

/// The line a transcript carries, once, when the Observer's lines are left out.
pub const SERVER_VIEW_LEFT_OUT: &str =
    "(the target has no Observer: the server's view of each call is left out)";

/// `text` without its Observer lines, saying so once at the end; applied to
/// the expected and the actual transcript alike.
pub fn without_server_view(text: &str) -> String {
    let mut out: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("observer:") && *l != SERVER_VIEW_LEFT_OUT)
        .collect();
    out.push(SERVER_VIEW_LEFT_OUT);
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_the_spec_makes_equivalent_read_alike() {
        let ct = |v: &str| response_field("content-type", v.as_bytes());
        assert_eq!(ct("application/grpc+proto"), ct("application/grpc"));
        assert_eq!(
            ct("application/grpc+json").as_deref(),
            Some("application/grpc+json")
        );
        assert_eq!(response_field("grpc-encoding", b"identity"), None);
        assert_eq!(
            response_field("grpc-accept-encoding", b"zstd, gzip,identity").as_deref(),
            Some("gzip,identity,zstd")
        );
        let bin = |v: &str| response_field("x-a-bin", v.as_bytes());
        assert_eq!(bin("AAEC/w"), bin("AAEC/w=="));
        assert_eq!(bin("AAE=,Av8").as_deref(), Some("AAE=,Av8="));
        assert_eq!(bin("not base64!").as_deref(), Some("not base64!"));
    }

    #[test]
    fn responses_sent_after_a_cancel_shows_only_what_a_server_cannot_vary() {
        let ctx = |received| ObserveContext {
            call_id: "gc-1",
            deadline_sent_ms: None,
            sent_metadata: BTreeMap::new(),
            wait_ms: 0,
            cancelled: true,
            received,
        };
        let record = |sent| CallRecord {
            outcome: Outcome::Cancelled as i32,
            responses_sent: sent,
            ..Default::default()
        };
        let sent = |r: &CallRecord, received| {
            observer_facts(r, &ctx(received))
                .into_iter()
                .find(|(k, _)| k == "responses_sent")
                .unwrap()
                .1
        };
        assert_eq!(sent(&record(2), 2), "at-least-received");
        assert_eq!(sent(&record(3), 2), "at-least-received");
        assert_eq!(sent(&record(1), 2), "1");
    }

    #[test]
    fn server_view_is_left_out_once() {
        let t = "call 1 /Greeter/SayHello\n  observer: outcome=COMPLETED\n  ← status OK";
        let once = without_server_view(t);
        assert_eq!(
            once,
            format!("call 1 /Greeter/SayHello\n  ← status OK\n{SERVER_VIEW_LEFT_OUT}")
        );
        assert_eq!(without_server_view(&once), once);
    }
}
