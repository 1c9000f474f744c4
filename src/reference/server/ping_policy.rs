//! The client ping policy of gRPC proposal A8, as grpc-go's `handlePing`
//! enforces it: pure bookkeeping, fed by the IO tap, so the rule can be tested
//! without a socket.

use crate::reference::PingPolicy;
use std::time::Instant;

/// What a client PING earned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingVerdict {
    /// Within the policy.
    Fine,
    /// Too soon after the previous one; `strikes` so far.
    Strike {
        /// Strikes counted, this one included.
        strikes: u32,
    },
    /// One strike more than tolerated: GOAWAY ENHANCE_YOUR_CALM `too_many_pings`.
    TooMany,
}

/// One connection's ping strikes.
#[derive(Clone, Debug)]
pub struct PingEnforcer {
    /// The rule being enforced.
    policy: PingPolicy,
    /// When the previous client PING came; none yet means no strike.
    last_ping: Option<Instant>,
    /// Strikes since the last reset.
    strikes: u32,
    /// Set when the server sent HEADERS or DATA: the next ping is not judged
    /// and clears the strikes (grpc-go's `resetPingStrikes`), so a client that
    /// pings while the server is busy answering never earns strikes.
    reset_pending: bool,
}

impl PingEnforcer {
    /// A fresh connection: the first ping never strikes.
    pub fn new(policy: PingPolicy) -> PingEnforcer {
        PingEnforcer {
            policy,
            last_ping: None,
            strikes: 0,
            reset_pending: false,
        }
    }

    /// The server sent HEADERS or DATA.
    pub fn server_sent_headers_or_data(&mut self) {
        self.reset_pending = true;
    }

    /// Judges a client PING (not an ACK) received at `now`, with `calls_open`
    /// calls open on the connection.
    pub fn on_ping(&mut self, now: Instant, calls_open: bool) -> PingVerdict {
        let previous = self.last_ping.replace(now);
        if std::mem::take(&mut self.reset_pending) {
            self.strikes = 0;
            return PingVerdict::Fine;
        }
        let Some(previous) = previous else {
            return PingVerdict::Fine;
        };
        let min = if calls_open || self.policy.permit_without_calls {
            self.policy.min_interval
        } else {
            self.policy.idle_interval
        };
        if now.saturating_duration_since(previous) >= min {
            return PingVerdict::Fine;
        }
        self.strikes += 1;
        if self.strikes > self.policy.max_strikes {
            PingVerdict::TooMany
        } else {
            PingVerdict::Strike {
                strikes: self.strikes,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pings(enforcer: &mut PingEnforcer, gaps_ms: &[u64], calls_open: bool) -> Vec<PingVerdict> {
        let mut now = Instant::now();
        gaps_ms
            .iter()
            .map(|gap| {
                now += Duration::from_millis(*gap);
                enforcer.on_ping(now, calls_open)
            })
            .collect()
    }

    #[test]
    fn flood_on_an_open_call_fails_on_the_fourth_ping() {
        let mut e = PingEnforcer::new(PingPolicy::default());
        let verdicts = pings(&mut e, &[0, 1000, 1000, 1000], true);
        assert_eq!(
            verdicts,
            [
                PingVerdict::Fine,
                PingVerdict::Strike { strikes: 1 },
                PingVerdict::Strike { strikes: 2 },
                PingVerdict::TooMany
            ]
        );
    }

    #[test]
    fn pings_spaced_beyond_the_minimum_never_strike() {
        let policy = PingPolicy {
            min_interval: Duration::from_millis(200),
            ..PingPolicy::default()
        };
        let mut e = PingEnforcer::new(policy);
        let verdicts = pings(&mut e, &[0, 200, 250, 1000, 300, 200], true);
        assert!(
            verdicts.iter().all(|v| *v == PingVerdict::Fine),
            "{verdicts:?}"
        );
    }

    #[test]
    fn without_calls_the_idle_interval_applies_unless_permitted() {
        let policy = PingPolicy {
            min_interval: Duration::from_millis(200),
            max_strikes: 0,
            ..PingPolicy::default()
        };
        let mut strict = PingEnforcer::new(policy.clone());
        assert_eq!(
            pings(&mut strict, &[0, 1000], false)[1],
            PingVerdict::TooMany
        );
        let mut permissive = PingEnforcer::new(PingPolicy {
            permit_without_calls: true,
            ..policy
        });
        assert_eq!(
            pings(&mut permissive, &[0, 1000], false)[1],
            PingVerdict::Fine
        );
    }

    #[test]
    fn headers_or_data_sent_clear_the_strikes() {
        let mut e = PingEnforcer::new(PingPolicy::default());
        assert_eq!(
            pings(&mut e, &[0, 10, 10], true)[2],
            PingVerdict::Strike { strikes: 2 }
        );
        e.server_sent_headers_or_data();
        // The next ping is not judged and the count restarts from zero.
        let verdicts = pings(&mut e, &[10, 10, 10, 10], true);
        assert_eq!(
            verdicts,
            [
                PingVerdict::Fine,
                PingVerdict::Strike { strikes: 1 },
                PingVerdict::Strike { strikes: 2 },
                PingVerdict::TooMany
            ]
        );
    }
}
