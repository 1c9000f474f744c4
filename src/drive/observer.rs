//! Asking the target's `conform.v1.Observer/GetCall` what it saw of a call.
//! It runs on a connection of its own so the conversation's connection
//! carries only the conversation (what issue 4's recorder will show).

use super::{connect::Conn, Connector, Stop};
use crate::{
    model::Event,
    proto::observer::{CallQuery, CallRecord},
};
use prost::Message as _;
use tokio::time::{timeout_at, Instant};

pub use crate::contract::GET_CALL;

pub use crate::normalise::ObserveContext;

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
    // GetCall waits up to `wait_ms` for the call to settle; a server may take
    // longer to notice a reset, so after a cancel a RUNNING record is asked
    // for again (bounded by the fixture's time): the transcript must not
    // depend on when the server noticed.
    for _ in 0..MAX_ASKS - 1 {
        let event = ask(conn, ctx, deadline).await?;
        let running = matches!(&event, Event::Observed { facts }
            if facts.iter().any(|(k, v)| k == "outcome" && v == "RUNNING"));
        if !(running && ctx.cancelled) {
            return Ok(event);
        }
    }
    ask(conn, ctx, deadline).await
}

/// How many times a RUNNING record is asked for after a cancel.
const MAX_ASKS: usize = 4;

/// One GetCall for the call of `ctx`.
async fn ask(conn: &Conn, ctx: &ObserveContext<'_>, deadline: Instant) -> Result<Event, Stop> {
    let query = CallQuery {
        call_id: ctx.call_id.to_string(),
        wait_ms: ctx.wait_ms,
    };
    let mut call =
        super::open_call(conn, GET_CALL, &[], Default::default(), false, deadline).await?;
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
            facts: crate::normalise::observer_facts(&record, ctx),
        },
        (Some((code, message)), _) if code != "OK" => Event::NotObservable {
            reason: if message.is_empty() || code == "UNIMPLEMENTED" {
                code.clone()
            } else {
                // A NOT_FOUND names the call id, which is new on every run.
                let message = crate::normalise::call_id(message, ctx.call_id);
                format!("{code}: {message}")
            },
        },
        _ => Event::NotObservable {
            reason: "the Observer answered without a readable CallRecord".into(),
        },
    })
}
