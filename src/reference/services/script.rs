//! The scripted shape of a call shared by every handler: when responses go
//! out (delay, interval), where a scripted failure cuts in (fail-after), and
//! how requests are read (counted for the Observer, close-after-requests).
//!
//! The rules, the same for every method (CONTRACT.md section 3):
//! - `delay-ms` pauses before the first response; for unary and client
//!   streaming that is after the requests were read.
//! - `response-interval-ms` pauses before each response after the first.
//! - `fail-after: 0` ends the call with the fail status at the handler's
//!   start, after `delay-ms`, before any request is read. `fail-after: N` (N >
//!   0) ends it right after the N-th response, without reading or sending
//!   more; a call that ends with fewer responses ends as it would have. A
//!   unary or client-streaming reply is the call's last message, so for those
//!   N > 0 changes nothing (tonic cannot send a status after a unary reply).
//! - `close-after-requests: N` stops reading after N requests and finishes
//!   OK; that is not a half-close.
//!
//! Everything here is awaited inside the call's own future or response
//! stream, so a cancelled call (whose future and stream tonic drops) stops at
//! once: no task outlives it.

use super::control::Control;
use crate::reference::CallCtx;
use async_stream::stream;
use futures::Stream;
use tonic::{Status, Streaming};

/// Paces the responses of one call and applies its scripted failure.
#[derive(Debug)]
pub struct Pacer {
    /// The call's control headers.
    control: Control,
    /// Responses already sent, to tell the first from later ones and to
    /// find the fail-after point.
    sent: u32,
}

impl Pacer {
    /// A pacer for a call with `control`.
    pub fn new(control: Control) -> Pacer {
        Pacer { control, sent: 0 }
    }

    /// The call's control headers.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// At the handler's start: with `fail-after: 0`, waits `delay-ms` and
    /// gives the status that must end the call before anything else happens.
    pub async fn fail_at_start(&self) -> Result<(), Status> {
        match self.control.fail.as_ref().filter(|f| f.after == 0) {
            None => Ok(()),
            Some(fail) => {
                tokio::time::sleep(self.control.delay).await;
                Err(fail.status())
            }
        }
    }

    /// Waits as scripted before the next response: `delay-ms` before the
    /// first, `response-interval-ms` before each later one.
    pub async fn before_response(&self) {
        let pause = if self.sent == 0 {
            self.control.delay
        } else {
            self.control.response_interval
        };
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }

    /// One response went out; gives the status that must end the call now
    /// when that was the fail-after-th.
    pub fn after_response(&mut self) -> Option<Status> {
        self.sent += 1;
        let fail = self.control.fail.as_ref()?;
        (fail.after == self.sent).then(|| fail.status())
    }

    /// Whether `read` requests reach `close-after-requests`, so the handler
    /// must stop reading and finish OK.
    pub fn closes_after(&self, read: u32) -> bool {
        self.control.close_after_requests.is_some_and(|n| read >= n)
    }
}

/// Reads the next request, telling the Observer what happened: a message
/// read, or the client's half-close (`Ok(None)`). A stream error (among them
/// a client reset) is passed on and is never counted as a half-close.
pub async fn next_request<M>(input: &mut Streaming<M>, ctx: &CallCtx) -> Result<Option<M>, Status> {
    let next = input.message().await?;
    match next {
        Some(_) => ctx.request_read(),
        None => ctx.half_close(),
    }
    Ok(next)
}

/// Reads requests until the client half-closes or `close-after-requests` is
/// reached, handing each to `each`, which may end the call with an error at
/// once (without waiting for the half-close).
pub async fn read_requests<M>(
    input: &mut Streaming<M>,
    ctx: &CallCtx,
    pacer: &Pacer,
    mut each: impl FnMut(M) -> Result<(), Status>,
) -> Result<(), Status> {
    let mut read = 0;
    while !pacer.closes_after(read) {
        match next_request(input, ctx).await? {
            Some(message) => {
                read += 1;
                each(message)?;
            }
            None => break,
        }
    }
    Ok(())
}

/// The one reply of a unary or client-streaming call, after `delay-ms`.
pub async fn reply<T>(pacer: &Pacer, message: T) -> Result<tonic::Response<T>, Status> {
    pacer.before_response().await;
    Ok(tonic::Response::new(message))
}

/// The boxed response stream every streaming handler returns.
pub type ResponseStream<T> =
    std::pin::Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A server stream of `count` responses, response `i` (from 0) made by
/// `make(i)`, paced and cut short as the script says.
pub fn server_stream<T: Send + 'static>(
    mut pacer: Pacer,
    count: u32,
    mut make: impl FnMut(u32) -> T + Send + 'static,
) -> ResponseStream<T> {
    Box::pin(stream! {
        if let Err(status) = pacer.fail_at_start().await {
            yield Err(status);
            return;
        }
        for i in 0..count {
            pacer.before_response().await;
            yield Ok(make(i));
            if let Some(status) = pacer.after_response() {
                yield Err(status);
                return;
            }
        }
    })
}

/// A full-duplex stream answering each request with `answer(request)` at
/// once; it ends OK when the client half-closes or after
/// `close-after-requests`, and passes on a request stream error.
pub fn duplex<M, T>(
    mut pacer: Pacer,
    mut input: Streaming<M>,
    ctx: CallCtx,
    mut answer: impl FnMut(M) -> T + Send + 'static,
) -> ResponseStream<T>
where
    M: Send + 'static,
    T: Send + 'static,
{
    Box::pin(stream! {
        if let Err(status) = pacer.fail_at_start().await {
            yield Err(status);
            return;
        }
        let mut read = 0;
        while !pacer.closes_after(read) {
            match next_request(&mut input, &ctx).await {
                Ok(Some(request)) => {
                    read += 1;
                    pacer.before_response().await;
                    yield Ok(answer(request));
                    if let Some(status) = pacer.after_response() {
                        yield Err(status);
                        return;
                    }
                }
                Ok(None) => return,
                Err(status) => {
                    yield Err(status);
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::services::control::Fail;
    use std::time::Duration;
    use tonic::Code;

    fn failing(after: u32) -> Control {
        Control {
            fail: Some(Fail {
                after,
                code: Code::Aborted,
                message: "stop".into(),
                details: None,
            }),
            ..Control::default()
        }
    }

    #[test]
    fn fail_after_cuts_in_right_after_the_nth_response() {
        let mut pacer = Pacer::new(failing(2));
        assert!(pacer.after_response().is_none());
        let status = pacer
            .after_response()
            .expect("the 2nd response fails the call");
        assert_eq!((status.code(), status.message()), (Code::Aborted, "stop"));
        let mut plain = Pacer::new(Control::default());
        assert!((0..10).all(|_| plain.after_response().is_none()));
    }

    #[test]
    fn close_after_counts_requests_read() {
        let pacer = Pacer::new(Control {
            close_after_requests: Some(2),
            ..Control::default()
        });
        assert_eq!(
            (0..4).map(|n| pacer.closes_after(n)).collect::<Vec<_>>(),
            [false, false, true, true]
        );
        assert!(!Pacer::new(Control::default()).closes_after(u32::MAX));
    }

    #[tokio::test]
    async fn fail_after_zero_waits_the_delay_then_fails() {
        let mut control = failing(0);
        control.delay = Duration::from_millis(250);
        let started = tokio::time::Instant::now();
        let status = Pacer::new(control)
            .fail_at_start()
            .await
            .expect_err("fails at start");
        assert_eq!(status.code(), Code::Aborted);
        // Lower bounds only: a loaded machine can be late, never early.
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(Pacer::new(failing(1)).fail_at_start().await.is_ok());
    }

    #[tokio::test]
    async fn delay_comes_first_then_the_interval() {
        let mut pacer = Pacer::new(Control {
            delay: Duration::from_millis(100),
            response_interval: Duration::from_millis(30),
            ..Control::default()
        });
        let started = tokio::time::Instant::now();
        for _ in 0..3 {
            pacer.before_response().await;
            pacer.after_response();
        }
        assert!(started.elapsed() >= Duration::from_millis(160));
    }
}
