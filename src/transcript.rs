//! Turns a conversation's events into its transcript: deterministic,
//! readable text, one line per thing sent or seen, in order. Volatile values
//! never reach the events: the driver applies the filters of
//! [`crate::normalise`] as it records them.

use crate::model::Event;
use std::fmt::Write;

/// The transcript of `events`.
pub fn render(events: &[Event]) -> String {
    let mut out = String::new();
    for event in events {
        let line = match event {
            Event::CallStart {
                index,
                method,
                headers,
            } => {
                let _ = writeln!(out, "call {index} {method}");
                if headers.is_empty() {
                    continue;
                }
                format!("  → headers {}", fields(headers))
            }
            Event::Sent { json, compressed } => format!("  → message{} {json}", flag(*compressed)),
            Event::SentMany {
                count,
                template,
                compressed,
            } => format!("  → {count} messages{} from {template}", flag(*compressed)),
            Event::HalfClosed => "  → half-close".into(),
            Event::Cancelled => "  → cancel (RST_STREAM CANCEL)".into(),
            Event::Paused { ms } => format!("  · pause {ms} ms"),
            Event::Headers { fields: f } => {
                format!("  ← headers {}", fields(f)).trim_end().to_string()
            }
            Event::Received { json, compressed } => {
                format!("  ← message{} {json}", flag(*compressed))
            }
            Event::Trailers { fields: f } if f.is_empty() => continue,
            Event::Trailers { fields: f } => format!("  ← trailers {}", fields(f)),
            Event::Status { code, message } if message.is_empty() => format!("  ← status {code}"),
            Event::Status { code, message } => format!("  ← status {code} {message:?}"),
            Event::Check { ok: true, what } => format!("  ✓ {what}"),
            Event::Check { ok: false, what } => format!("  ✗ expected {what}"),
            Event::Observed { facts } => format!("  observer: {}", fields(facts)),
            Event::NotObservable { reason } => format!("  observer: not observable ({reason})"),
            Event::Failure { what } => format!("  ! {what}"),
            Event::TimedOut { waiting_for } => format!("  ! timed out waiting for {waiting_for}"),
            Event::WireSent { what } => format!("  → {what}"),
            Event::WireHeaders {
                stream,
                shape,
                fields: f,
            } => format!("  ← s{stream} {shape} {}", fields(f))
                .trim_end()
                .to_string(),
            Event::WireMessage {
                stream,
                flag,
                content,
            } => format!("  ← s{stream} message flag={flag} {content}"),
            Event::WireReset {
                stream,
                code,
                after_end,
            } => format!(
                "  ← s{stream} RST_STREAM {code}{}",
                if *after_end { " after the end" } else { "" }
            ),
            Event::PingAck { payload, same } => format!(
                "  ← PING ACK {payload}{}",
                if *same {
                    " (same payload)"
                } else {
                    " (payload differs!)"
                }
            ),
            Event::GoAway {
                last_stream_id,
                code,
                debug,
            } => format!("  ← GOAWAY last_stream_id={last_stream_id} {code} debug={debug:?}"),
            Event::ServerSettings { fields: f } => format!("  ← SETTINGS {}", fields(f)),
            Event::WireNote { what } => format!("  · {what}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The checks of `events` that did not hold, as rendered.
pub fn failed_checks(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Check { ok: false, what } => Some(format!("expected {what}")),
            Event::TimedOut { waiting_for } => Some(format!("timed out waiting for {waiting_for}")),
            _ => None,
        })
        .collect()
}

/// ` (compressed)` when the flag was set.
fn flag(compressed: bool) -> &'static str {
    if compressed {
        " (compressed)"
    } else {
        ""
    }
}

/// `a=1 b=2`; values with spaces or quotes are quoted.
pub fn fields(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() || v.contains([' ', '"', '=']) || v.chars().any(char::is_control) {
                format!("{k}={v:?}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn renders_a_unary_call() {
        let events = vec![
            Event::CallStart {
                index: 1,
                method: "/Greeter/SayHello".into(),
                headers: vec![("x-a".into(), "b c".into())],
            },
            Event::Sent {
                json: r#"{"name":"w"}"#.into(),
                compressed: false,
            },
            Event::HalfClosed,
            Event::Headers {
                fields: vec![("content-type".into(), "application/grpc".into())],
            },
            Event::Trailers { fields: vec![] },
            Event::Status {
                code: "OK".into(),
                message: String::new(),
            },
            Event::Check {
                ok: true,
                what: "status OK".into(),
            },
        ];
        let text = render(&events);
        assert_eq!(
            text,
            "call 1 /Greeter/SayHello\n  → headers x-a=\"b c\"\n  → message {\"name\":\"w\"}\n  → half-close\n  ← headers content-type=application/grpc\n  ← status OK\n  ✓ status OK\n"
        );
        assert!(failed_checks(&events).is_empty());
    }
}
