//! When each stream sends: the round's phases (warm-up, measured, over) and
//! the open-loop schedule of intended send times.
//!
//! On the open loop a message's latency counts from the time it was meant
//! to be sent, not from when it went out: a target that stalls makes the
//! sends behind it late, and that lateness is part of what it made its
//! callers wait (no coordinated omission).

use std::time::Duration;
use tokio::time::Instant;

/// The phases of one round, shared by all its streams.
#[derive(Clone, Copy, Debug)]
pub struct Phases {
    /// Load starts.
    pub start: Instant,
    /// Messages sent from here on are counted.
    pub measure_from: Instant,
    /// No message is sent from here on (duration rounds only).
    pub stop_at: Option<Instant>,
}

impl Phases {
    /// Phases starting now: `warmup`, then `duration` when given.
    pub fn starting_now(warmup: Duration, duration: Option<Duration>) -> Phases {
        let start = Instant::now();
        let measure_from = start + warmup;
        Phases {
            start,
            measure_from,
            stop_at: duration.map(|d| measure_from + d),
        }
    }

    /// Whether a message sent at `at` is counted.
    pub fn counts(&self, at: Instant) -> bool {
        at >= self.measure_from
    }

    /// Whether sending is over at `at`.
    pub fn over(&self, at: Instant) -> bool {
        self.stop_at.is_some_and(|stop| at >= stop)
    }
}

/// One stream's intended send times: evenly spaced at the stream's share of
/// the rate, streams offset from each other so sends do not bunch.
#[derive(Clone, Debug)]
pub struct Schedule {
    next: Instant,
    interval: Duration,
}

impl Schedule {
    /// The schedule of stream `index` of `streams`, together sending `rate`
    /// messages a second from `start`.
    pub fn new(start: Instant, rate: f64, index: usize, streams: usize) -> Schedule {
        let interval = Duration::from_secs_f64(streams as f64 / rate);
        let offset = interval.mul_f64(index as f64 / streams as f64);
        Schedule {
            next: start + offset,
            interval,
        }
    }

    /// The intended time of the next send.
    pub fn next_due(&self) -> Instant {
        self.next
    }

    /// Moves on to the send after the next one.
    pub fn advance(&mut self) {
        self.next += self.interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_share_the_rate_evenly() {
        let start = Instant::now();
        // 1000 msgs/s over 4 streams: each every 4 ms, offset by 1 ms.
        let mut second = Schedule::new(start, 1000.0, 1, 4);
        assert_eq!(second.next_due() - start, Duration::from_millis(1));
        second.advance();
        assert_eq!(second.next_due() - start, Duration::from_millis(5));
    }

    #[test]
    fn phases_count_after_the_warmup_and_stop_after_the_duration() {
        let phases = Phases::starting_now(Duration::from_secs(2), Some(Duration::from_secs(10)));
        assert!(!phases.counts(phases.start));
        assert!(phases.counts(phases.measure_from));
        assert!(!phases.over(phases.measure_from));
        assert!(phases.over(phases.start + Duration::from_secs(12)));
    }
}
