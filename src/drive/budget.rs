//! What one conversation keeps of the target's messages: at most
//! [`MAX_MESSAGES`] received messages and [`MAX_MESSAGE_BYTES`] of their
//! bytes become transcript events. Past either, messages are still read (so
//! the conversation goes on as scripted and ends within its time) but only
//! counted, and the transcript ends with a failure saying how much more
//! arrived. This, the frame log's limits and the message size limit bound a
//! conversation's memory whatever the target sends.

use crate::model::Event;
use std::sync::atomic::{AtomicU64, Ordering};

/// Received messages a conversation records at most.
pub const MAX_MESSAGES: u64 = 1_000;
/// Bytes of received messages (decompressed) a conversation records at most.
pub const MAX_MESSAGE_BYTES: u64 = 16 * 1024 * 1024;

/// One conversation's count of received messages; shared by its calls,
/// which may run at once.
#[derive(Debug, Default)]
pub struct Budget {
    /// Messages recorded.
    messages: AtomicU64,
    /// Bytes of the messages recorded.
    bytes: AtomicU64,
    /// Messages read past a limit and not recorded.
    over_messages: AtomicU64,
    /// Their bytes.
    over_bytes: AtomicU64,
}

impl Budget {
    /// Whether a received message of `len` bytes may be recorded; if not,
    /// it is counted as arrived beyond the limits.
    pub fn admit(&self, len: usize) -> bool {
        let len = len as u64;
        let fits = self.over_messages.load(Ordering::Relaxed) == 0
            && self.messages.load(Ordering::Relaxed) < MAX_MESSAGES
            && self.bytes.load(Ordering::Relaxed) + len <= MAX_MESSAGE_BYTES;
        if fits {
            self.messages.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(len, Ordering::Relaxed);
        } else {
            self.over_messages.fetch_add(1, Ordering::Relaxed);
            self.over_bytes.fetch_add(len, Ordering::Relaxed);
        }
        fits
    }

    /// The failure to end the transcript with, when messages went unrecorded.
    pub fn overflow(&self) -> Option<Event> {
        let over = self.over_messages.load(Ordering::Relaxed);
        (over > 0).then(|| Event::Failure {
            what: format!(
                "the target sent {over} more messages ({} bytes) than a conversation records \
                 ({MAX_MESSAGES} messages, {MAX_MESSAGE_BYTES} bytes); they are not shown",
                self.over_bytes.load(Ordering::Relaxed)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_count_messages_are_only_counted() {
        let budget = Budget::default();
        for _ in 0..MAX_MESSAGES {
            assert!(budget.admit(10));
        }
        assert!(budget.overflow().is_none());
        assert!(!budget.admit(10));
        assert!(!budget.admit(1), "once over, later messages stay out too");
        let Some(Event::Failure { what }) = budget.overflow() else {
            panic!("a failure")
        };
        assert!(
            what.starts_with("the target sent 2 more messages (11 bytes)"),
            "{what}"
        );
    }

    #[test]
    fn past_the_bytes_messages_are_only_counted() {
        let budget = Budget::default();
        assert!(budget.admit(MAX_MESSAGE_BYTES as usize));
        assert!(!budget.admit(1));
    }
}
