//! The order rules of a client call's steps: what every stack's API can
//! follow, checked before a fixture runs so a bad script names its step.

use super::fixture::ClientStep;

/// Checks the order of `steps`; `streams_requests` for client-streaming and
/// bidi methods. The error is the index of the first bad step and why.
pub fn check_order(steps: &[ClientStep], streams_requests: bool) -> Result<(), (usize, String)> {
    if !streams_requests {
        if !matches!(steps.first(), Some(ClientStep::Send(_))) {
            return Err((
                0,
                "a unary or server-streaming call starts with exactly one `send`".into(),
            ));
        }
        if !matches!(steps.get(1), Some(ClientStep::HalfClose)) {
            return Err((
                1,
                "a unary or server-streaming call sends one request then `half_close`".into(),
            ));
        }
    }
    let (mut closed, mut ended, mut cancelled) = (false, false, false);
    for (s, step) in steps.iter().enumerate() {
        let sends = matches!(
            step,
            ClientStep::Send(_) | ClientStep::SendMany(_) | ClientStep::HalfClose
        );
        let reads = matches!(
            step,
            ClientStep::ReceiveHeaders | ClientStep::Receive | ClientStep::ReceiveAll
        );
        if cancelled && !matches!(step, ClientStep::Pause(_)) {
            return Err((s, "only pause may follow cancel".into()));
        }
        if closed && sends {
            return Err((s, "the request stream is already half-closed".into()));
        }
        if ended && reads {
            return Err((s, "the response stream was already read to its end".into()));
        }
        closed |= matches!(step, ClientStep::HalfClose);
        ended |= matches!(step, ClientStep::ReceiveAll);
        cancelled |= matches!(step, ClientStep::Cancel);
    }
    Ok(())
}
