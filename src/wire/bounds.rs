//! What a frame log keeps of a conversation, and when a server's frames are
//! a flood: the limits that keep grpc-conform's memory and time bounded
//! whatever a target sends (docs/running.md, "Limits").
//!
//! The log keeps every frame up to [`MAX_KEPT_FRAMES`], then only the frames
//! that end something (HEADERS, RST_STREAM, GOAWAY, END_STREAM) up to twice
//! that, and counts the rest by type. DATA payloads are kept up to
//! [`MAX_KEPT_DATA_BYTES`] per conversation; past it a DATA frame keeps
//! nothing but says how many bytes it carried.

use super::frame::kind;
use super::log::Body;
use std::{collections::BTreeMap, time::Instant};

/// Frames a conversation's log keeps in full.
pub const MAX_KEPT_FRAMES: usize = 20_000;
/// DATA payload bytes a conversation's log keeps (both directions).
pub const MAX_KEPT_DATA_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of one header block (HEADERS plus CONTINUATIONs) decoded at most.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// CONTINUATION frames one header block may have.
pub const MAX_CONTINUATIONS: usize = 64;

/// Frames of one type a server may send within one second before the
/// conversation is ended as a flood of that type.
pub const FLOOD_LIMITS: [(u8, &str, u32); 4] = [
    (kind::PING, "PING", 100),
    (kind::SETTINGS, "SETTINGS", 100),
    (kind::CONTINUATION, "CONTINUATION", 1_000),
    // Besides one for each stream the client opened (see `allow_reset`).
    (kind::RST_STREAM, "RST_STREAM", 1_000),
];
/// Frames of any type a server may send within one second.
pub const MAX_FRAMES_PER_SECOND: u32 = 100_000;

/// Counts a server's frames per type over one-second windows.
#[derive(Debug)]
pub struct FloodMeter {
    /// Start of the current window.
    window: Instant,
    /// Frames per type in the window (ACKs of PING and SETTINGS excluded:
    /// they answer what we sent).
    counts: [u32; 4],
    /// Frames of any type in the window.
    total: u32,
    /// RST_STREAM frames not counted: one per stream the client opened.
    resets_allowed: u64,
    /// The flood seen, once one was.
    tripped: Option<String>,
}

impl Default for FloodMeter {
    fn default() -> Self {
        FloodMeter {
            window: Instant::now(),
            counts: [0; 4],
            total: 0,
            resets_allowed: 0,
            tripped: None,
        }
    }
}

impl FloodMeter {
    /// Counts one frame of `frame_kind` (`ack` for PING and SETTINGS ACKs)
    /// received at `now`; the flood it completes, if any.
    pub fn count(&mut self, frame_kind: u8, ack: bool, now: Instant) -> Option<&str> {
        if self.tripped.is_some() {
            return self.tripped.as_deref();
        }
        if now.duration_since(self.window).as_secs() >= 1 {
            self.window = now;
            self.counts = [0; 4];
            self.total = 0;
        }
        self.total += 1;
        if self.total > MAX_FRAMES_PER_SECOND {
            self.tripped = Some(format!(
                "frame flood: the server sent more than {MAX_FRAMES_PER_SECOND} frames within 1 s"
            ));
        }
        let mut acked = ack && matches!(frame_kind, kind::PING | kind::SETTINGS);
        if frame_kind == kind::RST_STREAM && self.resets_allowed > 0 {
            self.resets_allowed -= 1;
            acked = true;
        }
        if let Some(i) = FLOOD_LIMITS.iter().position(|(k, _, _)| *k == frame_kind) {
            if !acked {
                self.counts[i] += 1;
                let (_, name, limit) = FLOOD_LIMITS[i];
                if self.counts[i] > limit {
                    self.tripped = Some(format!(
                        "{name} flood: the server sent more than {limit} {name} frames within 1 s"
                    ));
                }
            }
        }
        self.tripped.as_deref()
    }

    /// The client opened a stream: one RST_STREAM of the server's is its
    /// answer, not part of a flood.
    pub fn allow_reset(&mut self) {
        self.resets_allowed += 1;
    }

    /// The flood seen, if any.
    pub fn tripped(&self) -> Option<&str> {
        self.tripped.as_deref()
    }
}

/// Frames not kept in a log, by type name, and DATA bytes not kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotKept {
    /// Frames dropped whole, by type name.
    pub frames: BTreeMap<String, u64>,
    /// DATA payload bytes not kept (of frames kept or dropped).
    pub data_bytes: u64,
}

impl NotKept {
    /// Whether everything was kept.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.data_bytes == 0
    }

    /// One line for a person: `12 PING frames, 3 MiB of DATA not kept`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .frames
            .iter()
            .map(|(name, n)| format!("{n} {name} frames"))
            .collect();
        if self.data_bytes > 0 {
            parts.push(format!("{} bytes of DATA payload", self.data_bytes));
        }
        format!("{} not kept (frame log limits)", parts.join(", "))
    }
}

/// Whether a list holding `held` frames, `max` of any kind, may keep `body`
/// too: frames that end something (HEADERS, RST_STREAM, GOAWAY, END_STREAM)
/// are kept up to twice `max`, as the script and the wire facts need them.
pub fn may_keep(body: &Body, held: usize, max: usize) -> bool {
    let ends = matches!(
        body,
        Body::Headers { .. }
            | Body::Reset { .. }
            | Body::GoAway { .. }
            | Body::Data {
                end_stream: true,
                ..
            }
    );
    held < if ends { 2 * max } else { max }
}

/// The RFC 9113 name of a frame type.
pub fn kind_name(frame_kind: u8) -> String {
    match frame_kind {
        kind::DATA => "DATA".into(),
        kind::HEADERS => "HEADERS".into(),
        2 => "PRIORITY".into(),
        kind::RST_STREAM => "RST_STREAM".into(),
        kind::SETTINGS => "SETTINGS".into(),
        5 => "PUSH_PROMISE".into(),
        kind::PING => "PING".into(),
        kind::GOAWAY => "GOAWAY".into(),
        kind::WINDOW_UPDATE => "WINDOW_UPDATE".into(),
        kind::CONTINUATION => "CONTINUATION".into(),
        other => format!("0x{other:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_ping_flood_is_named_and_acks_do_not_count() {
        let mut meter = FloodMeter::default();
        let now = Instant::now();
        for _ in 0..500 {
            assert_eq!(meter.count(kind::PING, true, now), None);
        }
        for _ in 0..100 {
            assert_eq!(meter.count(kind::PING, false, now), None);
        }
        let flood = meter.count(kind::PING, false, now).unwrap();
        assert!(flood.starts_with("PING flood"), "{flood}");
    }

    #[test]
    fn the_window_starts_over_each_second() {
        let mut meter = FloodMeter::default();
        let mut now = Instant::now();
        for _ in 0..10 {
            for _ in 0..100 {
                assert_eq!(meter.count(kind::SETTINGS, false, now), None);
            }
            now += Duration::from_millis(1001);
        }
        assert!(meter.tripped().is_none());
    }
}
