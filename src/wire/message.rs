//! gRPC's length-prefixed messages (PROTOCOL-HTTP2.md "Length-Prefixed-Message"):
//! a compressed flag byte, a 4-byte big-endian length, then the message.
//! Messages can span DATA frames and a frame can hold several messages.

/// Length of the prefix before each message.
pub const PREFIX_LEN: usize = 5;

/// A message prefix as read from the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessagePrefix {
    /// The compressed-flag byte (0 or 1 are legal).
    pub compressed: u8,
    /// Length of the message that follows, in bytes.
    pub length: u32,
}

impl MessagePrefix {
    /// Reads a prefix from its 5 bytes.
    pub fn parse(bytes: [u8; PREFIX_LEN]) -> MessagePrefix {
        MessagePrefix {
            compressed: bytes[0],
            length: u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
        }
    }

    /// The 5 bytes of this prefix.
    pub fn encode(self) -> [u8; PREFIX_LEN] {
        let [a, b, c, d] = self.length.to_be_bytes();
        [self.compressed, a, b, c, d]
    }
}

/// Follows a stream of length-prefixed messages and reports each prefix as it
/// completes; message bytes are skipped, never buffered.
#[derive(Clone, Debug, Default)]
pub struct MessageReader {
    /// The prefix being read, complete once `prefix_len` is 5.
    prefix: [u8; PREFIX_LEN],
    /// Prefix bytes seen so far.
    prefix_len: usize,
    /// Bytes of the current message still to skip.
    body_left: u64,
}

impl MessageReader {
    /// A reader at the start of a stream.
    pub fn new() -> MessageReader {
        MessageReader::default()
    }

    /// Whether the bytes fed so far end exactly between two messages.
    pub fn at_boundary(&self) -> bool {
        self.prefix_len == 0 && self.body_left == 0
    }

    /// Feeds the next bytes; `on_prefix` sees every prefix completed by them.
    /// Stops early and returns the error when `on_prefix` returns one.
    pub fn feed<E>(
        &mut self,
        mut bytes: &[u8],
        mut on_prefix: impl FnMut(MessagePrefix) -> Result<(), E>,
    ) -> Result<(), E> {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len() as u64) as usize;
                self.body_left -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (PREFIX_LEN - self.prefix_len).min(bytes.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&bytes[..n]);
            self.prefix_len += n;
            bytes = &bytes[n..];
            if self.prefix_len == PREFIX_LEN {
                self.prefix_len = 0;
                let prefix = MessagePrefix::parse(self.prefix);
                self.body_left = u64::from(prefix.length);
                on_prefix(prefix)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &[u8]) -> Vec<u8> {
        let mut m = vec![0];
        m.extend((body.len() as u32).to_be_bytes());
        m.extend(body);
        m
    }

    #[test]
    fn counts_messages_sharing_and_spanning_chunks() {
        let mut bytes = message(b"abc");
        bytes.extend(message(b""));
        bytes.extend(message(&[7; 300]));
        for split in [1, 2, 4, 9, 1000] {
            let mut reader = MessageReader::new();
            let mut lengths = Vec::new();
            for chunk in bytes.chunks(split) {
                reader
                    .feed(chunk, |p| {
                        lengths.push(p.length);
                        Ok::<_, ()>(())
                    })
                    .unwrap();
            }
            assert_eq!(lengths, [3, 0, 300], "split {split}");
            assert!(reader.at_boundary());
        }
    }

    #[test]
    fn stops_at_the_first_refused_prefix() {
        let mut reader = MessageReader::new();
        let bytes = message(&[1; 10]);
        let refused = reader.feed(
            &bytes,
            |p| if p.length > 4 { Err(p.length) } else { Ok(()) },
        );
        assert_eq!(refused, Err(10));
    }
}
