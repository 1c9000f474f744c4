//! The connection-level steps of a raw script: PINGs and their ACKs, a
//! PING flood, GOAWAYs, the server's SETTINGS.

use super::{check::ping_payload, Script, Stop};
use crate::{
    drive::facts,
    model::{AwaitGoawayStep, Event, PingFloodStep, PingStep},
    wire::{
        frame::{frame, kind},
        log::{setting_name, Body, Frame},
    },
};
use tokio::time::Instant;

impl Script<'_> {
    /// `ping`: one PING, then its ACK.
    pub(super) async fn ping_step(
        &mut self,
        p: &PingStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let payload = ping_payload(&p.payload)?;
        ev.push(Event::WireSent {
            what: format!("PING {}", p.payload),
        });
        self.ping(payload, self.deadline, ev).await?;
        Ok(())
    }

    /// `ping_flood`: PINGs until a GOAWAY or `max`; never says after which.
    pub(super) async fn ping_flood(
        &mut self,
        p: &PingFloodStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        ev.push(Event::WireSent {
            what: format!("up to {} PINGs {} ms apart", p.max, p.interval_ms),
        });
        let before = self.goaways();
        for i in 1..=p.max {
            let next = Instant::now() + self.scaled(p.interval_ms);
            self.conn
                .writer
                .write(&frame(kind::PING, 0, 0, &u64::from(i).to_be_bytes()))
                .await?;
            let got = self
                .conn
                .pump(next.min(self.deadline), |s| count_goaways(s) > before)
                .await;
            if got || self.conn.closed {
                break;
            }
            if Instant::now() >= self.deadline {
                return Err(Stop::TimedOut("the end of the PING flood".into()));
            }
        }
        if !self.report_goaway(ev) {
            ev.push(Event::WireNote {
                what: if self.conn.closed {
                    format!("connection closed without GOAWAY within {} PINGs", p.max)
                } else {
                    format!("no GOAWAY after {} PINGs", p.max)
                },
            });
        }
        Ok(())
    }

    /// `await_goaway`: the next GOAWAY, or its absence.
    pub(super) async fn await_goaway(&mut self, a: &AwaitGoawayStep, ev: &mut Vec<Event>) {
        let before = self.conn.goaways_reported;
        let until = (Instant::now() + self.scaled(a.within_ms)).min(self.deadline);
        self.conn.pump(until, |s| count_goaways(s) > before).await;
        let reported = ev.len();
        if self.report_goaway(ev) {
            if let (true, Some(Event::GoAway { code, .. })) = (a.code_only, ev.last()) {
                ev[reported] = Event::WireNote {
                    what: format!("GOAWAY {code}"),
                };
            }
        } else {
            ev.push(Event::WireNote {
                what: if self.conn.closed {
                    "connection closed without GOAWAY".into()
                } else {
                    format!("no GOAWAY within {} ms", a.within_ms)
                },
            });
        }
    }

    /// `server_settings`: the named values of the server's first SETTINGS.
    pub(super) async fn server_settings(
        &mut self,
        names: &[String],
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let found = self
            .conn
            .pump(self.deadline, |s| {
                s.iter()
                    .any(|f| matches!(f.body, Body::Settings { ack: false, .. }))
            })
            .await;
        if !found {
            return Err(Stop::TimedOut("the server's SETTINGS".into()));
        }
        let values = self
            .conn
            .seen
            .iter()
            .find_map(|f| match &f.body {
                Body::Settings { ack: false, values } => Some(values.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let fields = names
            .iter()
            .map(|name| {
                let v = values
                    .iter()
                    .rev()
                    .find(|(id, _)| setting_name(*id) == *name)
                    .map_or("absent".to_string(), |(_, v)| v.to_string());
                (name.clone(), v)
            })
            .collect();
        ev.push(Event::ServerSettings { fields });
        Ok(())
    }

    /// Sends a PING and records its ACK.
    pub(super) async fn ping(
        &mut self,
        payload: [u8; 8],
        until: Instant,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let acks = |s: &[Frame]| {
            s.iter()
                .filter(|f| matches!(f.body, Body::Ping { ack: true, .. }))
                .count()
        };
        let before = acks(&self.conn.seen);
        self.conn
            .writer
            .write(&frame(kind::PING, 0, 0, &payload))
            .await?;
        if !self.conn.pump(until, |s| acks(s) > before).await {
            return Err(if self.conn.closed {
                Stop::Failed("connection closed before the PING ACK".into())
            } else {
                Stop::TimedOut("the PING ACK".into())
            });
        }
        let ack = self
            .conn
            .seen
            .iter()
            .filter_map(|f| match f.body {
                Body::Ping { ack: true, payload } => Some(payload),
                _ => None,
            })
            .nth(before)
            .expect("counted");
        ev.push(Event::PingAck {
            payload: crate::wire::log::hex(&ack),
            same: ack == payload,
        });
        Ok(())
    }

    /// GOAWAYs seen so far.
    pub(super) fn goaways(&self) -> usize {
        count_goaways(&self.conn.seen)
    }

    /// Puts the next unreported GOAWAY in the transcript; whether there was one.
    pub(super) fn report_goaway(&mut self, ev: &mut Vec<Event>) -> bool {
        let next = self
            .conn
            .seen
            .iter()
            .filter(|f| matches!(f.body, Body::GoAway { .. }))
            .nth(self.conn.goaways_reported);
        match next.and_then(facts::goaway_event) {
            Some(e) => {
                ev.push(e);
                self.conn.goaways_reported += 1;
                true
            }
            None => false,
        }
    }
}

/// GOAWAY frames among `seen`.
pub(super) fn count_goaways(seen: &[Frame]) -> usize {
    seen.iter()
        .filter(|f| matches!(f.body, Body::GoAway { .. }))
        .count()
}
