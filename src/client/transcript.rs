//! The client transcript: what the client reported of each call joined with
//! what the server saw of it, normalised so that a conforming client gives
//! the same text on every run (no timings, ports, stream or call ids, stack
//! names or error wording: times are bucketed, ids left out).

use super::fixture::NamedClientFixture;
use super::plan::{Plan, PlanCall, PlanStep, Report, ReportCall};
use super::server::ServerView;
use super::wire::{self, CallWire, ClientEnd, ConnectionWire};
use crate::{
    contract,
    descriptors::Descriptors,
    drive::codec,
    message,
    model::status_name,
    normalise::{self, ObserveContext},
    proto::observer::CallRecord,
    reference::server::deadline::parse_grpc_timeout,
    transcript::fields,
    wire::log::error_name,
};
use prost_reflect::MessageDescriptor;
use std::{collections::BTreeMap, fmt::Write};

/// Request messages shown one by one; a longer stream shows its first
/// few and its last (a `send_many` of thousands stays readable).
const SHOWN_REQUESTS: usize = 10;

/// The transcript of one fixture run.
pub fn render(
    named: &NamedClientFixture,
    plan: &Plan,
    descriptors: &Descriptors,
    report: &Report,
    view: &ServerView,
) -> String {
    let ids: Vec<String> = plan.calls.iter().map(call_id).collect();
    let (calls, connections) = wire::facts(&view.connections, &ids);
    let mut out = String::new();
    for (i, planned) in plan.calls.iter().enumerate() {
        let method = descriptors.method(&planned.method);
        let call = CallView {
            index: i + 1,
            planned,
            volatile: &named.fixture.calls[i].volatile_fields,
            written_metadata: &named.fixture.calls[i].metadata,
            input: method.as_ref().map(|m| m.input()),
            output: method.as_ref().map(|m| m.output()),
            reported: &report.calls[i],
            wire: calls[i].as_ref(),
            record: view.records.get(i).and_then(Option::as_ref),
        };
        call.render(&mut out);
    }
    render_connections(&mut out, &connections, view.connections_not_logged, plan);
    out
}

/// The `x-conform-call-id` of a planned call.
fn call_id(call: &PlanCall) -> String {
    call.metadata
        .iter()
        .find(|(n, _)| n == contract::CALL_ID)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Everything known of one call.
struct CallView<'a> {
    index: usize,
    planned: &'a PlanCall,
    volatile: &'a [String],
    written_metadata: &'a BTreeMap<String, String>,
    input: Option<MessageDescriptor>,
    output: Option<MessageDescriptor>,
    reported: &'a ReportCall,
    wire: Option<&'a CallWire>,
    record: Option<&'a CallRecord>,
}

impl CallView<'_> {
    fn render(&self, out: &mut String) {
        let _ = write!(out, "call {} {}", self.index, self.planned.method);
        match self.wire {
            Some(w) => {
                let _ = writeln!(out, " (connection {})", w.connection);
                self.render_request(out, w);
            }
            None => {
                let _ = writeln!(out);
                let _ = writeln!(out, "  · the server saw no stream for this call");
            }
        }
        self.render_response(out);
        if let Some(record) = self.record {
            let facts = normalise::observer_facts(record, &self.observe_context());
            let _ = writeln!(out, "  observer: {}", fields(&facts));
        }
    }

    /// The request as the server saw it: headers that matter, messages, end.
    fn render_request(&self, out: &mut String, w: &CallWire) {
        let headers = request_headers(&w.request_headers, self.planned.deadline_ms);
        let _ = writeln!(out, "  → headers {}", fields(&headers));
        let encoding = header(&w.request_headers, "grpc-encoding").unwrap_or_default();
        let shown: Vec<String> = w
            .messages
            .iter()
            .map(|(flag, bytes)| self.request_message(*flag, bytes, &encoding))
            .collect();
        for (n, line) in shown.iter().enumerate() {
            let first_few = n < SHOWN_REQUESTS - 1 || shown.len() <= SHOWN_REQUESTS;
            if first_few || n == shown.len() - 1 {
                let _ = writeln!(out, "  → {line}");
            } else if n == SHOWN_REQUESTS - 1 {
                let _ = writeln!(out, "  → … {} more messages", shown.len() - SHOWN_REQUESTS);
            }
        }
        if w.leftover > 0 {
            let _ = writeln!(out, "  → {} bytes that make no whole message", w.leftover);
        }
        if w.ends.is_empty() {
            let _ = writeln!(out, "  → no END_STREAM and no RST_STREAM from the client");
        }
        for end in &w.ends {
            let line = match end {
                ClientEnd::OnHeaders => "END_STREAM on the HEADERS".to_string(),
                ClientEnd::OnData => "END_STREAM on the last DATA with a message".to_string(),
                ClientEnd::OnEmptyData => "END_STREAM on an empty DATA".to_string(),
                ClientEnd::Reset(code, after) => format!(
                    "RST_STREAM {}{}",
                    error_name(*code),
                    if *after {
                        " after the response ended"
                    } else {
                        ""
                    }
                ),
            };
            let _ = writeln!(out, "  → {line}");
        }
        if w.other_streams > 0 {
            let _ = writeln!(
                out,
                "  → the call id on {} more streams (retried)",
                w.other_streams
            );
        }
    }

    /// One request message as the server read it.
    fn request_message(&self, flag: u8, bytes: &[u8], encoding: &str) -> String {
        let plain = match flag {
            0 => Ok(bytes.to_vec()),
            1 => codec::decompress(encoding, bytes),
            other => Err(format!("flag {other}")),
        };
        let text = match (&self.input, plain) {
            (Some(input), Ok(plain)) => match message::decode_to_json(input, &plain) {
                Ok(json) => message::one_line(&json),
                Err(e) => format!("<not a {}: {e}>", input.name()),
            },
            (None, Ok(plain)) => format!("<{} bytes>", plain.len()),
            (_, Err(e)) => format!("<{e}>"),
        };
        let compressed = if flag == 1 { " (compressed)" } else { "" };
        format!("message{compressed} {text}")
    }

    /// What the client reported: headers, messages, trailers, status.
    fn render_response(&self, out: &mut String) {
        let r = self.reported;
        match &r.headers {
            None => {
                let _ = writeln!(out, "  ← no headers");
            }
            Some(headers) => {
                let line = format!("  ← headers {}", fields(&shown_metadata(headers)));
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        for json in &r.messages {
            let _ = writeln!(out, "  ← message {}", self.response_message(json));
        }
        let trailers = shown_metadata(&r.trailers);
        if !trailers.is_empty() {
            let _ = writeln!(out, "  ← trailers {}", fields(&trailers));
        }
        let code = status_name(r.status.code);
        let server = self.wire.and_then(|w| w.server_end.clone());
        let line = match &server {
            // The server's own status: the client must pass on its message.
            Some(Ok(Some((sent, _)))) if *sent == r.status.code && !r.status.message.is_empty() => {
                format!("← status {code} {:?}", r.status.message)
            }
            Some(Ok(Some((sent, _)))) if *sent == r.status.code => format!("← status {code}"),
            Some(Ok(Some((sent, _)))) => {
                format!("← status {code} (the server sent {})", status_name(*sent))
            }
            Some(Ok(None)) => format!("← status {code} (the server sent no grpc-status)"),
            Some(Err(reset)) => {
                format!(
                    "← status {code} (the server reset the stream: {})",
                    error_name(*reset)
                )
            }
            None => format!("← status {code} (the server did not end the stream)"),
        };
        let _ = writeln!(out, "  {line}");
    }

    /// A reported response message in canonical proto JSON, volatile fields
    /// redacted; as it came when it does not fit the output type.
    fn response_message(&self, json: &serde_json::Value) -> String {
        let canonical = self
            .output
            .as_ref()
            .map(|output| message::canonical(output, json));
        match canonical {
            Some(Ok(mut canonical)) => {
                normalise::volatile_fields(&mut canonical, self.volatile);
                message::one_line(&canonical)
            }
            Some(Err(e)) => format!("{} <not the output type: {e}>", message::one_line(json)),
            None => message::one_line(json),
        }
    }

    /// A `-bin` value as the server recorded it when its bytes are the ones
    /// sent: stacks re-encode binary metadata, padded or not.
    fn as_received(&self, name: &str, sent: &str) -> String {
        let received = self.record.and_then(|r| r.metadata.get(name));
        match received {
            Some(received)
                if name.ends_with("-bin")
                    && normalise::response_field(name, received.as_bytes())
                        == normalise::response_field(name, sent.as_bytes()) =>
            {
                received.clone()
            }
            _ => sent.to_string(),
        }
    }

    /// What the Observer facts need to hide what a conforming server varies.
    fn observe_context(&self) -> ObserveContext<'_> {
        let sent_metadata = self
            .planned
            .metadata
            .iter()
            .filter_map(|(name, sent)| {
                let written = self.written_metadata.get(name)?;
                Some((
                    name.clone(),
                    (self.as_received(name, sent), written.clone()),
                ))
            })
            .collect();
        // The Observer's timeout is judged against the grpc-timeout the
        // client sent (the request line judges that against the deadline):
        // a client that counts its connection setup against the deadline
        // sends less than the plan's deadline, rightly.
        let sent_timeout_ms = self
            .wire
            .and_then(|w| header(&w.request_headers, "grpc-timeout"))
            .and_then(|v| parse_grpc_timeout(v.as_bytes()).ok())
            .map(|t| t.as_millis() as u64);
        ObserveContext {
            call_id: "",
            deadline_sent_ms: sent_timeout_ms.or(self.planned.deadline_ms),
            sent_metadata,
            wait_ms: 0,
            cancelled: self
                .planned
                .steps
                .iter()
                .any(|s| matches!(s, PlanStep::Cancel)),
            received: self.reported.messages.len(),
        }
    }
}

/// The request header fields that matter, bucketed: `te`, `content-type`,
/// `grpc-timeout` against the call's deadline, `grpc-encoding`,
/// `grpc-accept-encoding`, the shape of `user-agent`.
pub fn request_headers(
    headers: &[(String, String)],
    deadline_ms: Option<u64>,
) -> Vec<(String, String)> {
    let get = |name: &str| header(headers, name);
    let mut out = vec![
        (
            "te".to_string(),
            get("te").unwrap_or_else(|| "absent".into()),
        ),
        (
            "content-type".to_string(),
            get("content-type")
                .and_then(|v| normalise::response_field("content-type", v.as_bytes()))
                .unwrap_or_else(|| "absent".into()),
        ),
        (
            "grpc-timeout".to_string(),
            timeout_bucket(get("grpc-timeout").as_deref(), deadline_ms),
        ),
    ];
    for name in ["grpc-encoding", "grpc-accept-encoding"] {
        if let Some(v) = get(name).and_then(|v| normalise::response_field(name, v.as_bytes())) {
            out.push((name.to_string(), v));
        }
    }
    out.push((
        "user-agent".to_string(),
        user_agent_shape(get("user-agent").as_deref()).to_string(),
    ));
    out
}

/// `grpc-timeout` against the deadline the plan set: `absent`,
/// `within-deadline` (no more than the deadline, one unit of rounding up
/// allowed, and not under half of it: a client sends the time left when the
/// headers go out), `over-deadline`,
/// `under-half-deadline`, `without-deadline` (sent though none was set), or
/// `malformed`.
pub fn timeout_bucket(value: Option<&str>, deadline_ms: Option<u64>) -> String {
    let Some(value) = value else {
        return "absent".into();
    };
    let Ok(timeout) = parse_grpc_timeout(value.as_bytes()) else {
        return "malformed".into();
    };
    let Some(deadline) = deadline_ms else {
        return "without-deadline".into();
    };
    // A deadline past 8 digits of milliseconds (27.8 h) goes in a coarser
    // unit, rounded up: one unit over is still the deadline.
    let unit_ms = match value.as_bytes().last() {
        Some(b'H') => 3_600_000,
        Some(b'M') => 60_000,
        Some(b'S') => 1_000,
        _ => 1,
    };
    let slack_ms = if deadline > 99_999_999 { unit_ms } else { 1 };
    let ms = timeout.as_secs_f64() * 1000.0;
    if ms > (deadline + slack_ms) as f64 {
        "over-deadline".into()
    } else if ms * 2.0 < deadline as f64 {
        "under-half-deadline".into()
    } else {
        "within-deadline".into()
    }
}

/// The shape of a `user-agent` (PROTOCOL-HTTP2.md: `grpc-` language
/// [`-` variant] `/` version, possibly after other product tokens):
/// `grpc-shape`, `other`, or `absent`.
pub fn user_agent_shape(value: Option<&str>) -> &'static str {
    let Some(value) = value else {
        return "absent";
    };
    let grpc_token = value.split_whitespace().any(|token| {
        token.strip_prefix("grpc-").is_some_and(|rest| {
            rest.split_once('/')
                .is_some_and(|(language, version)| !language.is_empty() && !version.is_empty())
        })
    });
    if grpc_token {
        "grpc-shape"
    } else {
        "other"
    }
}

/// The reported metadata a transcript shows: custom `x-` names (what the
/// fixtures send and echo), folded, sorted. Transport fields are left out:
/// stacks differ in which ones their API surfaces, which says nothing.
fn shown_metadata(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (n.to_lowercase(), v))
        .filter(|(n, _)| n.starts_with("x-") && n != contract::CALL_ID)
        .filter_map(|(n, v)| {
            let folded = normalise::response_field(&n, v.as_bytes())?;
            Some((n, folded))
        })
        .collect();
    out.sort();
    out
}

/// The connection lines: how many the client opened, the server's GOAWAYs
/// and what followed them, the client's PINGs against its keepalive time.
fn render_connections(
    out: &mut String,
    connections: &[ConnectionWire],
    not_logged: usize,
    plan: &Plan,
) {
    let spoke: Vec<&ConnectionWire> = connections.iter().filter(|c| c.spoke).collect();
    let _ = writeln!(out, "connections: {}", spoke.len() + not_logged);
    for (n, conn) in spoke.iter().enumerate() {
        let mut lines = Vec::new();
        let mut goaways: Vec<String> = conn
            .goaways
            .iter()
            .map(|(code, debug)| match debug.as_str() {
                "" => error_name(*code),
                debug => format!("{} {debug:?}", error_name(*code)),
            })
            .collect();
        // hyper's graceful close sends two GOAWAYs; whether the second goes
        // out depends on how fast the client closes, so each kind shows once.
        goaways.dedup();
        for goaway in goaways {
            lines.push(format!("← GOAWAY {goaway}"));
        }
        if !conn.goaways.is_empty() {
            lines.push(format!(
                "→ streams opened after the GOAWAY: {}",
                conn.streams_after_goaway
            ));
        }
        if let Some(keepalive) = &plan.channel.keepalive {
            lines.push(format!("→ {}", pings(&conn.pings_at, keepalive.time_ms)));
        }
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(out, "connection {}", n + 1);
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// The client's PINGs on a connection, bucketed against the keepalive
/// time: how many (none, one, several) and how close the closest two came.
pub fn pings(at_ms: &[u64], keepalive_ms: u64) -> String {
    let count = match at_ms.len() {
        0 => return "no PINGs".into(),
        1 => return "one PING".into(),
        _ => "several PINGs",
    };
    let closest = at_ms
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .min()
        .unwrap_or(0);
    let ratio = closest as f64 / keepalive_ms.max(1) as f64;
    let spacing = if ratio < 0.8 {
        "closer together than the keepalive time"
    } else if ratio < 1.6 {
        "about the keepalive time apart"
    } else {
        "at least twice the keepalive time apart"
    };
    format!("{count}, {spacing}")
}

/// The value of header `name`, when present.
fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_is_bucketed_against_the_deadline() {
        assert_eq!(timeout_bucket(None, Some(100)), "absent");
        assert_eq!(timeout_bucket(Some("99m"), Some(100)), "within-deadline");
        assert_eq!(timeout_bucket(Some("99987u"), Some(100)), "within-deadline");
        assert_eq!(timeout_bucket(Some("1S"), Some(100)), "over-deadline");
        assert_eq!(timeout_bucket(Some("3S"), Some(1000)), "over-deadline");
        assert_eq!(
            timeout_bucket(Some("200000S"), Some(199_999_998)),
            "within-deadline"
        );
        assert_eq!(
            timeout_bucket(Some("10m"), Some(100)),
            "under-half-deadline"
        );
        assert_eq!(timeout_bucket(Some("123456789m"), Some(100)), "malformed");
        assert_eq!(timeout_bucket(Some("5S"), None), "without-deadline");
    }

    #[test]
    fn user_agents_are_shown_by_shape() {
        assert_eq!(user_agent_shape(Some("grpc-go/1.33.0")), "grpc-shape");
        assert_eq!(
            user_agent_shape(Some("grpc-java-netty/1.50.0")),
            "grpc-shape"
        );
        assert_eq!(
            user_agent_shape(Some("myapp/2 grpc-python/1.60 grpc-c/38")),
            "grpc-shape"
        );
        assert_eq!(user_agent_shape(Some("tonic/0.14")), "other");
        assert_eq!(user_agent_shape(None), "absent");
    }

    #[test]
    fn pings_are_bucketed_against_the_keepalive_time() {
        assert_eq!(pings(&[], 1000), "no PINGs");
        assert_eq!(pings(&[1000], 1000), "one PING");
        assert_eq!(
            pings(&[1000, 2050, 3010], 1000),
            "several PINGs, about the keepalive time apart"
        );
        assert_eq!(
            pings(&[100, 200], 1000),
            "several PINGs, closer together than the keepalive time"
        );
        assert_eq!(
            pings(&[1000, 3100], 1000),
            "several PINGs, at least twice the keepalive time apart"
        );
    }
}
