//! The frames of a bidi load connection: what the target sends, handled
//! in place (echoes counted, header blocks decoded, SETTINGS and PING
//! acknowledged, windows given back), and what the connection writes.

use super::{Block, Conn};
use crate::bench::load::Cause;
use crate::drive::connect::{LOAD_CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW};
use crate::wire::bounds::MAX_HEADER_BLOCK;
use crate::wire::frame::{flag, kind, setting, without_padding, FrameHeader, HEADER_LEN};
use bytes::{Buf, BufMut, BytesMut};

impl Conn {
    /// Handles every whole frame in the input, leaving a partial one.
    pub(super) fn frames(&mut self) -> Result<(), Cause> {
        let mut input = std::mem::take(&mut self.input);
        let mut at = 0;
        let handled = loop {
            let Some(head) = input.get(at..at + HEADER_LEN) else {
                break Ok(());
            };
            let header = FrameHeader::parse(head.try_into().expect("9 bytes"));
            let length = header.length as usize;
            if length > MAX_FRAME as usize {
                break Err("transport");
            }
            let Some(payload) = input.get(at + HEADER_LEN..at + HEADER_LEN + length) else {
                break Ok(());
            };
            if let Err(cause) = self.frame(header, payload) {
                break Err(cause);
            }
            at += HEADER_LEN + length;
        };
        input.advance(at);
        self.input = input;
        handled
    }

    /// Handles one frame. Err: the connection cannot go on.
    fn frame(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), Cause> {
        if self.block.is_some() && header.kind != kind::CONTINUATION {
            return Err("transport");
        }
        // Progress is what answers the calls or lets them send; PINGs,
        // PRIORITY and frames of unknown types are not, so a target that
        // sends only those stalls.
        let progress = matches!(
            header.kind,
            kind::DATA
                | kind::HEADERS
                | kind::CONTINUATION
                | kind::RST_STREAM
                | kind::SETTINGS
                | kind::GOAWAY
                | kind::WINDOW_UPDATE
        );
        if progress {
            self.last_progress = self.read_at;
        }
        match header.kind {
            kind::DATA => self.data(header, payload),
            kind::HEADERS => {
                let fragment = unpad(header.flags, payload, header.has(flag::PRIORITY))?;
                self.block = Some(Block {
                    stream: header.stream_id,
                    end_stream: header.has(flag::END_STREAM),
                    bytes: Vec::new(),
                });
                self.fragment(header.flags, fragment)
            }
            kind::CONTINUATION => match &self.block {
                Some(b) if b.stream == header.stream_id => self.fragment(header.flags, payload),
                _ => Err("transport"),
            },
            kind::RST_STREAM => {
                if let Some(call) = self.call(header.stream_id) {
                    call.end(Err("reset"));
                }
                Ok(())
            }
            kind::SETTINGS => {
                if !header.has(flag::ACK) {
                    self.settings(payload)?;
                }
                Ok(())
            }
            kind::PING => {
                if !header.has(flag::ACK) && payload.len() == 8 {
                    put_header(&mut self.out, 8, kind::PING, flag::ACK, 0);
                    self.out.put_slice(payload);
                }
                Ok(())
            }
            kind::GOAWAY => {
                let last = leading_u31(payload);
                self.goaway = Some(last);
                for call in self.calls.iter_mut().filter(|c| c.id > last) {
                    call.end(Err("goaway"));
                }
                Ok(())
            }
            kind::WINDOW_UPDATE => {
                let increment = leading_u31(payload);
                if header.stream_id == 0 {
                    self.send_window += i64::from(increment);
                } else if let Some(call) = self.call(header.stream_id) {
                    call.send_window += i64::from(increment);
                }
                Ok(())
            }
            // PRIORITY, PUSH_PROMISE (refused by our SETTINGS), unknown types.
            _ => Ok(()),
        }
    }

    /// A DATA frame: echoes counted, windows given back past half.
    fn data(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), Cause> {
        let length = payload.len() as u32;
        self.received += length;
        if self.received >= LOAD_CONNECTION_WINDOW / 2 {
            let n = std::mem::take(&mut self.received);
            self.put_window_update(0, n);
        }
        let body = unpad(header.flags, payload, false)?;
        let now = self.read_at;
        let Some(index) = self.index(header.stream_id) else {
            return Ok(());
        };
        let call = &mut self.calls[index];
        call.book
            .echoes(body, &mut call.reader, &mut call.in_flight, now);
        call.received += length;
        let give_back = (call.received >= STREAM_WINDOW / 2 && !header.has(flag::END_STREAM))
            .then(|| std::mem::take(&mut call.received));
        if header.has(flag::END_STREAM) {
            let status = call.head.flatten().unwrap_or("no_status");
            call.finish(status);
            self.reset_if_open(index);
        }
        if let Some(n) = give_back {
            self.put_window_update(header.stream_id, n);
        }
        Ok(())
    }

    /// Adds a header block fragment; a whole block is decoded and applied.
    fn fragment(&mut self, flags: u8, fragment: &[u8]) -> Result<(), Cause> {
        let block = self.block.as_mut().expect("a block is open");
        if block.bytes.len() + fragment.len() > MAX_HEADER_BLOCK {
            return Err("transport");
        }
        block.bytes.extend_from_slice(fragment);
        if flags & flag::END_HEADERS == 0 {
            return Ok(());
        }
        let block = self.block.take().expect("a block is open");
        let mut http_status = None;
        let mut grpc_status = None;
        self.hpack
            .decode_with_cb(&block.bytes, |name, value| match &name[..] {
                b":status" => http_status = Some(value.into_owned()),
                b"grpc-status" => grpc_status = crate::bench::load::status_name(&value),
                _ => {}
            })
            .map_err(|_| "transport")?;
        let Some(index) = self.index(block.stream) else {
            return Ok(());
        };
        let call = &mut self.calls[index];
        if call.head.is_none() {
            if http_status.as_deref() != Some(b"200") {
                call.end(Err("http_status"));
            } else {
                call.head = Some(grpc_status);
                if block.end_stream {
                    call.finish(grpc_status.unwrap_or("no_status"));
                }
            }
        } else {
            call.finish(grpc_status.unwrap_or("no_status"));
        }
        self.reset_if_open(index);
        Ok(())
    }

    /// The target's SETTINGS: the windows and frame size it gives, acked.
    fn settings(&mut self, payload: &[u8]) -> Result<(), Cause> {
        if payload.len() % 6 != 0 {
            return Err("transport");
        }
        for setting in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = u32::from_be_bytes(setting[2..6].try_into().expect("4 bytes"));
            match id {
                setting::INITIAL_WINDOW_SIZE => {
                    let delta = i64::from(value) - self.peer_stream_window;
                    self.peer_stream_window = i64::from(value);
                    for call in &mut self.calls {
                        call.send_window += delta;
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    self.peer_max_frame = (value as usize).clamp(MAX_FRAME as usize, (1 << 24) - 1)
                }
                _ => {}
            }
        }
        put_header(&mut self.out, 0, kind::SETTINGS, flag::ACK, 0);
        Ok(())
    }
}

/// The payload of a DATA or HEADERS frame without its padding (and a
/// HEADERS frame's priority fields). Err: padding longer than the frame.
pub(super) fn unpad(flags: u8, payload: &[u8], priority: bool) -> Result<&[u8], Cause> {
    let unpadded = without_padding(flags, payload).ok_or("transport")?;
    let skip = if priority { 5 } else { 0 };
    unpadded.get(skip..).ok_or("transport")
}

/// The 31-bit number a GOAWAY or WINDOW_UPDATE payload starts with (0
/// when it is too short).
fn leading_u31(payload: &[u8]) -> u32 {
    payload.get(..4).map_or(0, |b| {
        u32::from_be_bytes(b.try_into().expect("4 bytes")) & 0x7fff_ffff
    })
}

pub(super) fn put_header(out: &mut BytesMut, length: usize, kind: u8, flags: u8, stream: u32) {
    out.put_slice(
        &FrameHeader {
            length: length as u32,
            kind,
            flags,
            stream_id: stream,
        }
        .encode(),
    );
}

/// `message` (framed already) as DATA frames of at most `max_frame`.
pub(super) fn put_data(out: &mut BytesMut, stream: u32, message: &[u8], max_frame: usize) {
    for chunk in message.chunks(max_frame) {
        put_header(out, chunk.len(), kind::DATA, 0, stream);
        out.put_slice(chunk);
    }
}

pub(super) fn put_rst_stream(out: &mut BytesMut, stream: u32, code: u32) {
    put_header(out, 4, kind::RST_STREAM, 0, stream);
    out.put_u32(code);
}

/// The request's header block: every field a literal without indexing
/// (RFC 7541 section 6.2.2), so the same bytes open every stream and
/// neither side's table changes.
pub(super) fn header_block(
    scheme: &str,
    authority: &str,
    path: &str,
    headers: &http::HeaderMap,
) -> Vec<u8> {
    let mut block = Vec::new();
    let mut field = |name: &[u8], value: &[u8]| {
        block.push(0x00);
        for string in [name, value] {
            loona_hpack::encoder::encode_integer_into(string.len(), 7, 0, &mut block)
                .expect("a Vec takes every write");
            block.extend_from_slice(string);
        }
    };
    field(b":method", b"POST");
    field(b":scheme", scheme.as_bytes());
    field(b":path", path.as_bytes());
    field(b":authority", authority.as_bytes());
    for (name, value) in headers {
        field(name.as_str().as_bytes(), value.as_bytes());
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_block_decodes_to_the_request_fields_every_time() {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/grpc".parse().unwrap());
        headers.insert("te", "trailers".parse().unwrap());
        let block = header_block("http", "127.0.0.1:1", "/ChatService/ChatStream", &headers);
        let mut decoder = loona_hpack::Decoder::new();
        for _ in 0..2 {
            let fields = decoder.decode(&block).unwrap();
            let fields: Vec<(&[u8], &[u8])> =
                fields.iter().map(|(n, v)| (&n[..], &v[..])).collect();
            assert_eq!(
                fields,
                [
                    (&b":method"[..], &b"POST"[..]),
                    (b":scheme", b"http"),
                    (b":path", b"/ChatService/ChatStream"),
                    (b":authority", b"127.0.0.1:1"),
                    (b"content-type", b"application/grpc"),
                    (b"te", b"trailers"),
                ]
            );
        }
    }

    #[test]
    fn padding_and_priority_are_taken_off() {
        assert_eq!(unpad(0, b"abc", false), Ok(&b"abc"[..]));
        assert_eq!(unpad(flag::PADDED, b"\x02abcxx", false), Ok(&b"abc"[..]));
        assert_eq!(unpad(flag::PADDED, b"\x0112345abcx", true), Ok(&b"abc"[..]));
        assert_eq!(unpad(flag::PADDED, b"\x09abc", false), Err("transport"));
        assert_eq!(unpad(0, b"123", true), Err("transport"));
    }
}
