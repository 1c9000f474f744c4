//! HTTP/2 frame headers (RFC 9113 section 4.1) and the few frames the
//! reference writes itself. Only the 9-byte header is parsed: the IO tap needs
//! to know which frame passes, not what is in it.

/// The client connection preface that precedes the first client frame.
pub const CLIENT_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of every frame header.
pub const HEADER_LEN: usize = 9;

/// Frame type codes this crate cares about (RFC 9113 section 6).
pub mod kind {
    /// DATA
    pub const DATA: u8 = 0x0;
    /// HEADERS
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS
    pub const SETTINGS: u8 = 0x4;
    /// PING
    pub const PING: u8 = 0x6;
    /// GOAWAY
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION
    pub const CONTINUATION: u8 = 0x9;
}

/// Flag bits; their meaning depends on the frame type.
pub mod flag {
    /// END_STREAM on DATA and HEADERS.
    pub const END_STREAM: u8 = 0x1;
    /// ACK on SETTINGS and PING (the same bit as END_STREAM).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS on HEADERS and CONTINUATION.
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED on DATA and HEADERS (RFC 9113 section 6.1).
    pub const PADDED: u8 = 0x8;
    /// PRIORITY on HEADERS (RFC 9113 section 6.2).
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS identifiers (RFC 9113 section 6.5.2).
pub mod setting {
    /// SETTINGS_ENABLE_PUSH
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_INITIAL_WINDOW_SIZE
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// The payload of a DATA or HEADERS frame with `flags` without its
/// padding; `None` when the padding is longer than the frame.
pub fn without_padding(flags: u8, payload: &[u8]) -> Option<&[u8]> {
    if flags & flag::PADDED == 0 {
        return Some(payload);
    }
    let (&pad, rest) = payload.split_first()?;
    rest.get(..rest.len().checked_sub(usize::from(pad))?)
}

/// HTTP/2 error codes used in GOAWAY and RST_STREAM (RFC 9113 section 7).
pub mod error_code {
    /// NO_ERROR: a graceful close.
    pub const NO_ERROR: u32 = 0x0;
    /// REFUSED_STREAM: nothing was processed, the request may be retried.
    pub const REFUSED_STREAM: u32 = 0x7;
    /// CANCEL
    pub const CANCEL: u32 = 0x8;
    /// ENHANCE_YOUR_CALM: what gRPC answers a ping flood with.
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// One frame's 9-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes (24 bits).
    pub length: u32,
    /// Frame type code, see [`kind`].
    pub kind: u8,
    /// Flag bits, see [`flag`].
    pub flags: u8,
    /// Stream identifier with the reserved bit cleared; 0 for the connection.
    pub stream_id: u32,
}

impl FrameHeader {
    /// Parses a header from its 9 bytes.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            length: u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]),
            kind: bytes[3],
            flags: bytes[4],
            stream_id: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        }
    }

    /// The 9 bytes of this header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let len = self.length.to_be_bytes();
        let id = (self.stream_id & 0x7fff_ffff).to_be_bytes();
        [
            len[1], len[2], len[3], self.kind, self.flags, id[0], id[1], id[2], id[3],
        ]
    }

    /// Whether a flag bit is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// One whole frame: header and payload.
pub fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        length: payload.len() as u32,
        kind,
        flags,
        stream_id,
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A whole GOAWAY frame: last stream id, error code and debug data.
pub fn goaway(last_stream_id: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    let mut payload = (last_stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(debug);
    frame(kind::GOAWAY, 0, 0, &payload)
}

/// Follows a byte stream frame by frame and reports each header as it
/// completes; payloads are skipped, never buffered.
#[derive(Clone, Debug)]
pub struct FrameReader {
    /// Preface bytes still to skip.
    preface_left: usize,
    /// The header being read, complete once `header_len` is 9.
    header: [u8; HEADER_LEN],
    /// Header bytes seen so far.
    header_len: usize,
    /// Payload bytes of the current frame still to skip.
    payload_left: usize,
}

impl FrameReader {
    /// For bytes a client sends: they start with the 24-byte preface.
    pub fn from_client() -> FrameReader {
        FrameReader {
            preface_left: CLIENT_PREFACE.len(),
            ..FrameReader::from_server()
        }
    }

    /// For bytes a server sends: frames from the first byte.
    pub fn from_server() -> FrameReader {
        FrameReader {
            preface_left: 0,
            header: [0; HEADER_LEN],
            header_len: 0,
            payload_left: 0,
        }
    }

    /// Whether the bytes fed so far end exactly between two frames.
    pub fn at_boundary(&self) -> bool {
        self.preface_left == 0 && self.header_len == 0 && self.payload_left == 0
    }

    /// Feeds the next bytes; `on_header` sees every header completed by them.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_header: impl FnMut(&FrameHeader)) {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(bytes.len());
                self.preface_left -= n;
                bytes = &bytes[n..];
            } else if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                self.payload_left -= n;
                bytes = &bytes[n..];
            } else {
                let n = (HEADER_LEN - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                bytes = &bytes[n..];
                if self.header_len == HEADER_LEN {
                    self.header_len = 0;
                    let header = FrameHeader::parse(&self.header);
                    self.payload_left = header.length as usize;
                    on_header(&header);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = FrameHeader {
            length: 0x01_02_03,
            kind: kind::PING,
            flags: flag::ACK,
            stream_id: 7,
        };
        assert_eq!(FrameHeader::parse(&header.encode()), header);
    }

    #[test]
    fn reader_finds_headers_across_splits() {
        let mut bytes = CLIENT_PREFACE.to_vec();
        bytes.extend(goaway(5, error_code::NO_ERROR, b"max_age"));
        let ping = FrameHeader {
            length: 8,
            kind: kind::PING,
            flags: 0,
            stream_id: 0,
        };
        bytes.extend(ping.encode());
        bytes.extend([0u8; 8]);
        // One byte at a time: the worst split TCP can produce.
        let mut reader = FrameReader::from_client();
        let mut seen = Vec::new();
        for b in &bytes {
            reader.feed(std::slice::from_ref(b), |h| seen.push(*h));
        }
        assert!(reader.at_boundary());
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].kind, seen[0].length), (kind::GOAWAY, 15));
        assert_eq!(seen[1], ping);
    }
}
