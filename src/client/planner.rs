//! Plan building: a client fixture becomes the [`Plan`] the client under
//! test reads, with every time multiplied by `--time-scale`, each call's mode
//! from the descriptor pool and the `x-conform-call-id` the server joins its
//! view of the call by.

use super::fixture::{ClientCall, ClientStep, NamedClientFixture};
use super::plan::{ChannelOptions, Keepalive, Mode, Plan, PlanCall, PlanStep, INTERFACE_VERSION};
use crate::{contract, descriptors::Descriptors, model::DEFAULT_TIMEOUT_MS, normalise};

/// The call id of call `index` (0-based) of a fixture; each fixture has a
/// server of its own, so ids need only differ within it.
pub fn call_id(index: usize) -> String {
    format!("c{}", index + 1)
}

/// The plan for `named` against `target`; `scale` multiplies times. The
/// fixture was validated, so its methods exist.
pub fn build(
    named: &NamedClientFixture,
    descriptors: &Descriptors,
    target: &str,
    scale: &impl Fn(u64) -> u64,
) -> Result<Plan, String> {
    let f = &named.fixture;
    let calls = f
        .calls
        .iter()
        .enumerate()
        .map(|(i, call)| plan_call(i, call, descriptors, scale))
        .collect::<Result<_, _>>()?;
    Ok(Plan {
        version: INTERFACE_VERSION,
        fixture: named.name.clone(),
        target: target.to_string(),
        timeout_ms: scale(f.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
        channel: ChannelOptions {
            keepalive: f.channel.keepalive.as_ref().map(|k| Keepalive {
                time_ms: scale(k.time_ms),
                timeout_ms: scale(k.timeout_ms),
                permit_without_stream: k.permit_without_stream,
            }),
            max_receive_message_bytes: f.channel.max_receive_message_bytes,
        },
        concurrent: f.concurrent,
        calls,
    })
}

/// One planned call.
fn plan_call(
    index: usize,
    call: &ClientCall,
    descriptors: &Descriptors,
    scale: &impl Fn(u64) -> u64,
) -> Result<PlanCall, String> {
    let method = descriptors
        .method(&call.method)
        .ok_or_else(|| format!("no method {} in the descriptors", call.method))?;
    let mode = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => Mode::Unary,
        (false, true) => Mode::ServerStreaming,
        (true, false) => Mode::ClientStreaming,
        (true, true) => Mode::Bidi,
    };
    let mut metadata = vec![(contract::CALL_ID.to_string(), call_id(index))];
    metadata.extend(call.metadata.iter().map(|(name, written)| {
        let sent = normalise::scaled_metadata(name, written, scale);
        (name.clone(), sent)
    }));
    let steps = call
        .steps
        .iter()
        .map(|step| match step {
            ClientStep::Send(send) => PlanStep::Send {
                message: send.message.clone(),
            },
            ClientStep::SendMany(many) => PlanStep::SendMany {
                count: many.count,
                template: many.template.clone(),
            },
            ClientStep::HalfClose => PlanStep::HalfClose,
            ClientStep::ReceiveHeaders => PlanStep::ReceiveHeaders,
            ClientStep::Receive => PlanStep::Receive,
            ClientStep::ReceiveAll => PlanStep::ReceiveAll,
            ClientStep::Cancel => PlanStep::Cancel,
            ClientStep::Pause(pause) => PlanStep::Pause {
                ms: scale(pause.ms),
            },
        })
        .collect();
    Ok(PlanCall {
        method: call.method.clone(),
        mode,
        metadata,
        deadline_ms: call.deadline_ms.map(scale),
        compression: call.encoding.clone(),
        steps,
    })
}
