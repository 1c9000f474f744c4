//! Client keepalive (keepalive.md, proposal A8): after `time` without
//! reading anything from the server, send a PING; close the connection when
//! its ACK does not come within `timeout`; without open calls, ping only
//! when `permit_without_stream`. A GOAWAY `ENHANCE_YOUR_CALM` with debug
//! data `too_many_pings` doubles the time new connections of the channel use.
//!
//! What the server sent is read from the connection's frame log (the wire
//! recorder), as h2 tells neither GOAWAY debug data nor when a frame came.

use crate::wire::log::{Body, Dir};
use crate::wire::recorder::FrameLog;
use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex,
};
use std::time::Duration;
use tokio::{task::AbortHandle, time::Instant};

/// `ENHANCE_YOUR_CALM`.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A GOAWAY the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// Its error code.
    pub code: u32,
    /// Its debug data, as text.
    pub debug: String,
}

/// What a connection's frame log has shown so far.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The first GOAWAY from the server.
    pub goaway: Option<GoAway>,
    /// When a frame from the server was last noticed.
    pub last_read: Instant,
}

/// Follows one connection's frame log.
pub struct Watch {
    log: FrameLog,
    /// Frames of the log already read, and what they showed.
    state: Mutex<(usize, Seen)>,
    /// The channel's keepalive time to double on `too_many_pings`; none for
    /// a client that never backs off.
    backoff: Option<Arc<AtomicU64>>,
}

impl Watch {
    /// Watches `log` from now.
    pub fn new(log: FrameLog, backoff: Option<Arc<AtomicU64>>) -> Watch {
        let seen = Seen {
            goaway: None,
            last_read: Instant::now(),
        };
        Watch {
            log,
            state: Mutex::new((0, seen)),
            backoff,
        }
    }

    /// Reads the frames logged since the last poll; the first `too_many_pings`
    /// GOAWAY doubles the channel's keepalive time.
    pub fn poll(&self) -> Seen {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let new = self.log.frames_since(state.0);
        state.0 += new.len();
        for frame in new.iter().filter(|f| f.dir == Dir::In) {
            state.1.last_read = Instant::now();
            if let (Body::GoAway { code, debug, .. }, None) = (&frame.body, &state.1.goaway) {
                let goaway = GoAway {
                    code: *code,
                    debug: String::from_utf8_lossy(debug).into_owned(),
                };
                if goaway.code == ENHANCE_YOUR_CALM && goaway.debug == "too_many_pings" {
                    if let Some(time) = &self.backoff {
                        let _ = time.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                            Some(t.saturating_mul(2))
                        });
                    }
                }
                state.1.goaway = Some(goaway);
            }
        }
        state.1.clone()
    }
}

/// A connection's keepalive settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Quiet time before a PING (already doubled after `too_many_pings`).
    pub time: Duration,
    /// How long a PING's ACK may take.
    pub timeout: Duration,
    /// Ping with no call open.
    pub permit_without_stream: bool,
    /// The fault: ping every tenth of `time` whatever happens.
    pub too_often: bool,
}

/// The keepalive of one connection.
pub struct Pinger {
    /// h2's PING sender.
    pub ping_pong: h2::PingPong,
    /// The connection's log.
    pub watch: Arc<Watch>,
    /// Streams open on the channel.
    pub active: Arc<AtomicUsize>,
    /// Closes the connection.
    pub closer: AbortHandle,
    /// The settings.
    pub settings: Settings,
}

impl Pinger {
    /// Pings until the connection goes away, is closed, or a PING goes
    /// unanswered (which closes it).
    pub async fn run(mut self) {
        let s = self.settings;
        let interval = if s.too_often { s.time / 10 } else { s.time };
        let interval = interval.max(Duration::from_millis(1));
        // Activity is noticed at this granularity.
        let tick = (interval / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
        let mut last_ping = Instant::now();
        loop {
            tokio::time::sleep(tick).await;
            let seen = self.watch.poll();
            if seen.goaway.is_some() || self.closer.is_finished() {
                return;
            }
            let quiet_since = if s.too_often {
                last_ping
            } else {
                seen.last_read.max(last_ping)
            };
            let idle = self.active.load(Ordering::SeqCst) == 0;
            if Instant::now() < quiet_since + interval
                || (idle && !s.permit_without_stream && !s.too_often)
            {
                continue;
            }
            last_ping = Instant::now();
            match tokio::time::timeout(s.timeout, self.ping_pong.ping(h2::Ping::opaque())).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    self.closer.abort();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::goaway;

    #[test]
    fn too_many_pings_doubles_the_channel_time_once_and_other_goaways_do_not() {
        let time = Arc::new(AtomicU64::new(300));
        let log = FrameLog::new();
        let watch = Watch::new(log.clone(), Some(time.clone()));
        assert_eq!(watch.poll().goaway, None);
        log.feed(Dir::In, &goaway(1, ENHANCE_YOUR_CALM, b"too_many_pings"));
        log.feed(Dir::In, &goaway(1, ENHANCE_YOUR_CALM, b"too_many_pings"));
        let seen = watch.poll();
        assert_eq!(seen.goaway.map(|g| g.debug), Some("too_many_pings".into()));
        assert_eq!(
            time.load(Ordering::SeqCst),
            600,
            "doubled once per connection"
        );

        let other = FrameLog::new();
        let calm = Watch::new(other.clone(), Some(time.clone()));
        other.feed(Dir::In, &goaway(1, 0, b"max_age"));
        assert_eq!(calm.poll().goaway.map(|g| g.code), Some(0));
        assert_eq!(time.load(Ordering::SeqCst), 600);

        let faulty = FrameLog::new();
        let never = Watch::new(faulty.clone(), None);
        faulty.feed(Dir::In, &goaway(1, ENHANCE_YOUR_CALM, b"too_many_pings"));
        assert!(never.poll().goaway.is_some());
        assert_eq!(time.load(Ordering::SeqCst), 600);
    }
}
