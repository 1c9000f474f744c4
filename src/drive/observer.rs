//! Asking the target's `conform.v1.Observer/GetCall` what it saw of a call.
//! It runs on a connection of its own so the conversation's connection
//! carries only the conversation (what issue 4's recorder will show).

use super::{connect::Conn, Connector, Stop};
use crate::{
    model::{status_name, Event},
    proto::observer::{CallQuery, CallRecord, Outcome},
};
use prost::Message as _;
use std::collections::BTreeMap;
use tokio::time::{timeout_at, Instant};

/// The Observer's method path.
pub const GET_CALL: &str = "/conform.v1.Observer/GetCall";

/// What the transcript needs to turn a record into stable facts.
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
}

/// Asks for the record and renders it as one event; never fails the run.
pub async fn observe(
    connector: &Connector,
    conn: &mut Option<Conn>,
    ctx: &ObserveContext<'_>,
    deadline: Instant,
) -> Result<Event, Stop> {
    if conn.is_none() {
        let opened = timeout_at(deadline, connector.connect())
            .await
            .map_err(|_| Stop::TimedOut("the observer connection".into()))?
            .map_err(|e| Stop::Failed(format!("observer connection: {e}")))?;
        *conn = Some(opened);
    }
    let conn = conn.as_mut().expect("opened above");
    let query = CallQuery {
        call_id: ctx.call_id.to_string(),
        wait_ms: ctx.wait_ms,
    };
    let mut call =
        super::open_call(&*conn, GET_CALL, &[], Default::default(), false, deadline).await?;
    call.send_message(super::codec::frame(false, &query.encode_to_vec()))?;
    call.half_close();
    let mut scratch = Vec::new();
    let mut record = None;
    call.drain(&mut scratch, |_, bytes, _| {
        record = CallRecord::decode(bytes).ok()
    })
    .await?;
    Ok(match (&call.status, record) {
        (Some((code, _)), Some(record)) if code == "OK" => Event::Observed {
            facts: facts(&record, ctx),
        },
        (Some((code, message)), _) if code != "OK" => Event::NotObservable {
            reason: if message.is_empty() || code == "UNIMPLEMENTED" {
                code.clone()
            } else {
                // A NOT_FOUND names the call id, which is new on every run.
                let message = message.replace(ctx.call_id, "<call-id>");
                format!("{code}: {message}")
            },
        },
        _ => Event::NotObservable {
            reason: "the Observer answered without a readable CallRecord".into(),
        },
    })
}

/// The record as `key=value` facts without volatile values.
fn facts(r: &CallRecord, ctx: &ObserveContext<'_>) -> Vec<(String, String)> {
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
    out.push(("responses_sent".into(), r.responses_sent.to_string()));
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
        .filter(|(k, _)| k.as_str() != crate::reference::call::CALL_ID_HEADER)
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
