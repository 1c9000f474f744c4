//! Whole HTTP/2 frames as they passed, decoded enough for a person and for
//! the transcript's wire facts: header blocks through HPACK (dynamic table
//! and Huffman, CONTINUATION joined), DATA payloads kept so the gRPC message
//! prefixes inside can be read, control frames with their fields. One
//! [`FrameDecoder`] per direction, because each direction has its own HPACK
//! table.

use super::bounds::{MAX_CONTINUATIONS, MAX_HEADER_BLOCK};
use super::frame::{flag, kind, FrameHeader, CLIENT_PREFACE, HEADER_LEN};
use bytes::{Buf, Bytes, BytesMut};
use std::fmt::Write;

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to server (what grpc-conform sent).
    Out,
    /// Server to client (what the target sent).
    In,
}

/// What a frame carried.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// DATA; the payload without padding.
    Data {
        /// END_STREAM was set.
        end_stream: bool,
        /// The payload (gRPC messages or parts of them), or its first part
        /// when the log's DATA budget ran out.
        payload: Bytes,
        /// Payload bytes that arrived but are not kept (the log's limit).
        not_kept: usize,
    },
    /// HEADERS (plus its CONTINUATIONs), decoded.
    Headers {
        /// END_STREAM was set.
        end_stream: bool,
        /// Fields in wire order; names as sent.
        fields: Vec<(String, String)>,
    },
    /// RST_STREAM.
    Reset {
        /// The error code.
        code: u32,
    },
    /// SETTINGS.
    Settings {
        /// An acknowledgement (no values).
        ack: bool,
        /// Identifier and value pairs in wire order.
        values: Vec<(u16, u32)>,
    },
    /// PING.
    Ping {
        /// An acknowledgement.
        ack: bool,
        /// The 8 opaque bytes.
        payload: [u8; 8],
    },
    /// GOAWAY.
    GoAway {
        /// Highest stream the sender may have processed.
        last_stream_id: u32,
        /// The error code.
        code: u32,
        /// Debug data (gRPC puts `too_many_pings`, `max_age` there).
        debug: Vec<u8>,
    },
    /// WINDOW_UPDATE.
    WindowUpdate {
        /// The increment.
        increment: u32,
    },
    /// Any other frame, or one too malformed to decode (with why).
    Other {
        /// Type code.
        kind: u8,
        /// Flags.
        flags: u8,
        /// Payload length.
        length: usize,
        /// Why it could not be decoded, when that is the reason it is here.
        problem: Option<String>,
    },
}

/// One frame in the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Direction.
    pub dir: Dir,
    /// Stream id, 0 for the connection.
    pub stream: u32,
    /// Milliseconds since the log began (for `--trace` only, never a transcript).
    pub at_ms: u64,
    /// The decoded content.
    pub body: Body,
}

/// Turns one direction's bytes into [`Frame`]s, however the bytes are split.
pub struct FrameDecoder {
    /// Direction of the frames produced.
    dir: Dir,
    /// Preface bytes still to skip (client side only).
    preface_left: usize,
    /// Bytes not yet forming a whole frame.
    buf: BytesMut,
    /// HPACK state of this direction.
    hpack: loona_hpack::Decoder<'static>,
    /// A header block waiting for CONTINUATION: stream, END_STREAM, bytes,
    /// CONTINUATIONs so far.
    partial: Option<(u32, bool, Vec<u8>, usize)>,
}

impl FrameDecoder {
    /// A decoder for `dir`; client bytes start with the connection preface.
    pub fn new(dir: Dir) -> FrameDecoder {
        FrameDecoder {
            dir,
            preface_left: if dir == Dir::Out {
                CLIENT_PREFACE.len()
            } else {
                0
            },
            buf: BytesMut::new(),
            hpack: loona_hpack::Decoder::new(),
            partial: None,
        }
    }

    /// Feeds bytes; every frame they complete is passed to `out` with `at_ms`.
    pub fn feed(&mut self, mut bytes: &[u8], at_ms: u64, out: &mut impl FnMut(Frame)) {
        if self.preface_left > 0 {
            let n = self.preface_left.min(bytes.len());
            self.preface_left -= n;
            bytes = &bytes[n..];
        }
        self.buf.extend_from_slice(bytes);
        while self.buf.len() >= HEADER_LEN {
            let header = FrameHeader::parse(self.buf[..HEADER_LEN].try_into().expect("9 bytes"));
            let total = HEADER_LEN + header.length as usize;
            if self.buf.len() < total {
                break;
            }
            self.buf.advance(HEADER_LEN);
            let payload = self.buf.split_to(header.length as usize).freeze();
            if let Some(body) = self.decode(&header, payload) {
                out(Frame {
                    dir: self.dir,
                    stream: header.stream_id,
                    at_ms,
                    body,
                });
            }
        }
    }

    /// The header block still waiting for CONTINUATION, if any: its stream,
    /// the CONTINUATION frames so far and its bytes.
    pub fn open_block(&self) -> Option<(u32, usize, usize)> {
        self.partial
            .as_ref()
            .map(|(stream, _, block, count)| (*stream, *count, block.len()))
    }

    /// One frame's body; `None` while a header block waits for CONTINUATION.
    fn decode(&mut self, h: &FrameHeader, mut p: Bytes) -> Option<Body> {
        let other = |problem: &str| Body::Other {
            kind: h.kind,
            flags: h.flags,
            length: h.length as usize,
            problem: Some(problem.to_string()),
        };
        Some(match h.kind {
            kind::DATA => match strip_padding(h, p) {
                Some(payload) => Body::Data {
                    end_stream: h.has(flag::END_STREAM),
                    payload,
                    not_kept: 0,
                },
                None => other("bad padding"),
            },
            kind::HEADERS => {
                let Some(mut block) = strip_padding(h, p) else {
                    return Some(other("bad padding"));
                };
                if h.flags & flag::PRIORITY != 0 {
                    if block.len() < 5 {
                        return Some(other("short priority"));
                    }
                    block.advance(5);
                }
                let end_stream = h.has(flag::END_STREAM);
                if h.flags & flag::END_HEADERS == 0 {
                    self.partial = Some((h.stream_id, end_stream, block.to_vec(), 0));
                    return None;
                }
                self.header_block(end_stream, &block)
            }
            kind::CONTINUATION => {
                let Some((_, end_stream, mut block, count)) = self.partial.take() else {
                    return Some(other("CONTINUATION without HEADERS"));
                };
                // A block that never ends must not grow without limit: it
                // is given up (and the HPACK state with it).
                if count + 1 > MAX_CONTINUATIONS || block.len() + p.len() > MAX_HEADER_BLOCK {
                    return Some(other(&format!(
                        "header block over {MAX_HEADER_BLOCK} bytes or {MAX_CONTINUATIONS} \
                         CONTINUATION frames, given up"
                    )));
                }
                block.extend_from_slice(&p);
                if h.flags & flag::END_HEADERS == 0 {
                    self.partial = Some((h.stream_id, end_stream, block, count + 1));
                    return None;
                }
                self.header_block(end_stream, &block)
            }
            kind::RST_STREAM if p.len() == 4 => Body::Reset { code: p.get_u32() },
            kind::SETTINGS if p.len() % 6 == 0 => {
                let mut values = Vec::new();
                while p.has_remaining() {
                    values.push((p.get_u16(), p.get_u32()));
                }
                Body::Settings {
                    ack: h.has(flag::ACK),
                    values,
                }
            }
            kind::PING if p.len() == 8 => Body::Ping {
                ack: h.has(flag::ACK),
                payload: p[..8].try_into().expect("8 bytes"),
            },
            kind::GOAWAY if p.len() >= 8 => Body::GoAway {
                last_stream_id: p.get_u32() & 0x7fff_ffff,
                code: p.get_u32(),
                debug: p.to_vec(),
            },
            kind::WINDOW_UPDATE if p.len() == 4 => Body::WindowUpdate {
                increment: p.get_u32() & 0x7fff_ffff,
            },
            kind::RST_STREAM | kind::SETTINGS | kind::PING | kind::GOAWAY | kind::WINDOW_UPDATE => {
                other("wrong payload length")
            }
            _ => Body::Other {
                kind: h.kind,
                flags: h.flags,
                length: h.length as usize,
                problem: None,
            },
        })
    }

    /// A complete header block through HPACK.
    fn header_block(&mut self, end_stream: bool, block: &[u8]) -> Body {
        let mut fields = Vec::new();
        let decoded = self.hpack.decode_with_cb(block, |n, v| {
            fields.push((
                String::from_utf8_lossy(&n).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        });
        match decoded {
            Ok(()) => Body::Headers { end_stream, fields },
            Err(e) => Body::Other {
                kind: kind::HEADERS,
                flags: 0,
                length: block.len(),
                problem: Some(format!("HPACK: {e:?}")),
            },
        }
    }
}

/// The payload without its padding, `None` when the padding is impossible.
fn strip_padding(h: &FrameHeader, p: Bytes) -> Option<Bytes> {
    super::frame::without_padding(h.flags, &p).map(|unpadded| p.slice_ref(unpadded))
}

/// The RFC 9113 name of an error code, or its number.
pub fn error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("0x{code:x}"), |n| n.to_string())
}

/// The RFC 9113 name of a setting, or its number.
pub fn setting_name(id: u16) -> String {
    match id {
        1 => "HEADER_TABLE_SIZE".into(),
        2 => "ENABLE_PUSH".into(),
        3 => "MAX_CONCURRENT_STREAMS".into(),
        4 => "INITIAL_WINDOW_SIZE".into(),
        5 => "MAX_FRAME_SIZE".into(),
        6 => "MAX_HEADER_LIST_SIZE".into(),
        8 => "ENABLE_CONNECT_PROTOCOL".into(),
        n => format!("0x{n:x}"),
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A person's view of a frame log: one line per frame with time, direction,
/// stream and content; DATA shows the gRPC message prefixes that start in it.
/// Values of header fields named in `hidden` (`--header` credentials) show
/// as `<hidden>`.
pub fn render_trace(frames: &[Frame], hidden: &[String]) -> String {
    let mut out = String::new();
    // Message prefixes per direction and stream, read across DATA frames.
    let mut readers: std::collections::HashMap<(bool, u32), super::message::MessageReader> =
        Default::default();
    for f in frames {
        let arrow = if f.dir == Dir::Out { "→" } else { "←" };
        let _ = write!(out, "{:>6} ms {arrow} ", f.at_ms);
        let s = f.stream;
        let _ = match &f.body {
            Body::Data {
                end_stream,
                payload,
                not_kept,
            } => {
                let reader = readers.entry((f.dir == Dir::Out, s)).or_default();
                let mut prefixes = Vec::new();
                if *not_kept > 0 {
                    // The prefixes cannot be followed past bytes not kept.
                    *reader = Default::default();
                    prefixes.push(format!("({not_kept} bytes not kept)"));
                } else {
                    let _ = reader.feed(payload, |p| {
                        prefixes.push(format!("[flag {} len {}]", p.compressed, p.length));
                        Ok::<_, ()>(())
                    });
                }
                write!(
                    out,
                    "DATA s{s} {} bytes{}{}{}",
                    payload.len() + not_kept,
                    if prefixes.is_empty() {
                        ""
                    } else {
                        " messages "
                    },
                    prefixes.join(" "),
                    if *end_stream { " END_STREAM" } else { "" }
                )
            }
            Body::Headers { end_stream, fields } => {
                let shown: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| {
                        if hidden.contains(n) {
                            format!("{n}=<hidden>")
                        } else if v.len() > 80 {
                            format!("{n}=<{} bytes>", v.len())
                        } else {
                            format!("{n}={v}")
                        }
                    })
                    .collect();
                write!(
                    out,
                    "HEADERS s{s}{} {}",
                    if *end_stream { " END_STREAM" } else { "" },
                    shown.join(" ")
                )
            }
            Body::Reset { code } => write!(out, "RST_STREAM s{s} {}", error_name(*code)),
            Body::Settings { ack: true, .. } => write!(out, "SETTINGS ACK"),
            Body::Settings { values, .. } => {
                let v: Vec<String> = values
                    .iter()
                    .map(|(id, v)| format!("{}={v}", setting_name(*id)))
                    .collect();
                write!(out, "SETTINGS {}", v.join(" "))
            }
            Body::Ping { ack, payload } => write!(
                out,
                "PING{} {}",
                if *ack { " ACK" } else { "" },
                hex(payload)
            ),
            Body::GoAway {
                last_stream_id,
                code,
                debug,
            } => write!(
                out,
                "GOAWAY last_stream_id={last_stream_id} {} debug={:?}",
                error_name(*code),
                String::from_utf8_lossy(debug)
            ),
            Body::WindowUpdate { increment } => write!(out, "WINDOW_UPDATE s{s} +{increment}"),
            Body::Other {
                kind,
                flags,
                length,
                problem,
            } => write!(
                out,
                "frame type 0x{kind:x} flags 0x{flags:x} s{s} {length} bytes{}",
                problem
                    .as_deref()
                    .map_or(String::new(), |p| format!(" ({p})"))
            ),
        };
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_headers_with_huffman_and_dynamic_table_split_anywhere() {
        // RFC 7541 C.4.1 and C.4.2: Huffman-coded requests that index into
        // the dynamic table the first one filled.
        let first = [
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ];
        let second = [
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
        ];
        let mut bytes = Vec::new();
        for (block, id) in [(&first[..], 1u32), (&second[..], 3)] {
            let h = FrameHeader {
                length: block.len() as u32,
                kind: kind::HEADERS,
                flags: flag::END_HEADERS,
                stream_id: id,
            };
            bytes.extend(h.encode());
            bytes.extend(block);
        }
        let mut dec = FrameDecoder::new(Dir::In);
        let mut frames = Vec::new();
        for b in &bytes {
            dec.feed(std::slice::from_ref(b), 0, &mut |f| frames.push(f));
        }
        assert_eq!(frames.len(), 2);
        let Body::Headers { fields, .. } = &frames[1].body else {
            panic!("{frames:?}")
        };
        assert!(fields.contains(&(":authority".into(), "www.example.com".into())));
        assert!(fields.contains(&("cache-control".into(), "no-cache".into())));
    }
}
