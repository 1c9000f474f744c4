//! From a frame log to the wire facts a transcript may hold. What the spec
//! fixes is kept (which HEADERS carried END_STREAM, each message's flag and
//! content, reset codes, GOAWAY code and debug data); what it leaves free
//! never gets through: DATA frame boundaries (messages are reassembled),
//! WINDOW_UPDATEs, header fields that vary (`date`, `grpc-message` wording),
//! and a RST_STREAM(NO_ERROR) after the server's END_STREAM, which RFC 9113
//! 8.1 lets a server send or not.

use super::codec::{self, Deframer};
use crate::{
    message,
    model::Event,
    wire::log::{error_name, Body, Dir, Frame},
};
use prost_reflect::MessageDescriptor;

/// Largest stream id: GOAWAY's "no stream processed yet, more may come".
const MAX_STREAM_ID: u32 = 0x7fff_ffff;

/// The server's frames on `stream` (from `frames`, any direction and
/// stream) as events. `output` decodes messages; `shape` keeps
/// trailers-only apart from headers-then-trailers.
pub fn stream_events(
    stream: u32,
    frames: &[Frame],
    output: Option<&MessageDescriptor>,
    shape: bool,
) -> Vec<Event> {
    let mut ev = Vec::new();
    let (mut seen_headers, mut ended) = (false, false);
    let mut encoding: Option<String> = None;
    let mut deframer = Deframer::default();
    for f in frames
        .iter()
        .filter(|f| f.dir == Dir::In && f.stream == stream)
    {
        match &f.body {
            Body::Headers { end_stream, fields } => {
                let fields = crate::normalise::shown_fields(fields);
                if !seen_headers {
                    encoding = fields
                        .iter()
                        .find(|(n, _)| n == "grpc-encoding")
                        .map(|(_, v)| v.clone());
                }
                if !seen_headers && *end_stream && !shape {
                    // Trailers-only shown as headers then trailers.
                    let (head, tail): (Vec<_>, Vec<_>) = fields.into_iter().partition(|(n, _)| {
                        matches!(n.as_str(), ":status" | "content-type" | "grpc-encoding")
                    });
                    ev.push(headers(stream, "headers", head));
                    ev.push(headers(stream, "trailers", tail));
                } else {
                    let kind = match (seen_headers, *end_stream) {
                        (false, true) => "trailers-only",
                        (false, false) => "headers",
                        (true, _) => "trailers",
                    };
                    ev.push(headers(stream, kind, fields));
                }
                seen_headers = true;
                ended |= *end_stream;
            }
            Body::Data {
                end_stream,
                payload,
            } => {
                deframer.push(payload);
                loop {
                    match deframer.next_message() {
                        Ok(Some((flag, bytes))) => ev.push(Event::WireMessage {
                            stream,
                            flag,
                            content: content(flag, &bytes, encoding.as_deref(), output),
                        }),
                        Ok(None) => break,
                        Err(e) => {
                            ev.push(Event::WireNote {
                                what: format!("s{stream} {e}"),
                            });
                            deframer = Deframer::default();
                            break;
                        }
                    }
                }
                if *end_stream {
                    ev.push(Event::WireNote {
                        what: format!("s{stream} END_STREAM on DATA: no trailers"),
                    });
                    ended = true;
                }
            }
            Body::Reset { code } => {
                if ended && *code == 0 {
                    continue;
                }
                ev.push(Event::WireReset {
                    stream,
                    code: error_name(*code),
                    after_end: ended,
                });
            }
            Body::Other {
                problem: Some(p), ..
            } => ev.push(Event::WireNote {
                what: format!("s{stream} undecodable frame: {p}"),
            }),
            _ => {}
        }
    }
    if deframer.leftover() > 0 {
        ev.push(Event::WireNote {
            what: format!(
                "s{stream} {} bytes of an unfinished message",
                deframer.leftover()
            ),
        });
    }
    ev
}

/// A headers event.
fn headers(stream: u32, shape: &str, fields: Vec<(String, String)>) -> Event {
    Event::WireHeaders {
        stream,
        shape: shape.into(),
        fields,
    }
}

/// What a message shows: its JSON when it can be read, else why not.
fn content(
    flag: u8,
    bytes: &[u8],
    encoding: Option<&str>,
    output: Option<&MessageDescriptor>,
) -> String {
    let plain = match (flag, encoding) {
        (0, _) => bytes.to_vec(),
        (1, Some(enc)) => match codec::decompress(enc, bytes) {
            Ok(b) => b,
            Err(e) => return format!("<{enc}: {e}>"),
        },
        (1, None) => return "<compressed without grpc-encoding>".into(),
        _ => return "<invalid flag>".into(),
    };
    match output {
        Some(desc) => match message::decode_to_json(desc, &plain) {
            Ok(json) => message::one_line(&json),
            Err(e) => format!("<not a {}: {e}>", desc.full_name()),
        },
        None => format!("<{} bytes>", plain.len()),
    }
}

/// A GOAWAY frame as an event.
pub fn goaway_event(frame: &Frame) -> Option<Event> {
    let Body::GoAway {
        last_stream_id,
        code,
        debug,
    } = &frame.body
    else {
        return None;
    };
    Some(Event::GoAway {
        last_stream_id: if *last_stream_id == MAX_STREAM_ID {
            "max".into()
        } else {
            last_stream_id.to_string()
        },
        code: error_name(*code),
        debug: String::from_utf8_lossy(debug).into_owned(),
    })
}

/// The wire facts of a whole recorded connection: each stream the client
/// opened, in id order, then the server's GOAWAYs. `output` gives a
/// stream's response type from its `:path`.
pub fn connection_events(
    frames: &[Frame],
    output: impl Fn(&str) -> Option<MessageDescriptor>,
) -> Vec<Event> {
    let mut streams: Vec<(u32, Option<MessageDescriptor>)> = frames
        .iter()
        .filter(|f| f.dir == Dir::Out)
        .filter_map(|f| match &f.body {
            Body::Headers { fields, .. } => fields
                .iter()
                .find(|(n, _)| n == ":path")
                .map(|(_, p)| (f.stream, output(p))),
            _ => None,
        })
        .collect();
    streams.sort_by_key(|(s, _)| *s);
    let mut ev = Vec::new();
    for (stream, desc) in streams {
        ev.extend(stream_events(stream, frames, desc.as_ref(), true));
    }
    ev.extend(
        frames
            .iter()
            .filter(|f| f.dir == Dir::In)
            .filter_map(goaway_event),
    );
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A server frame on stream 1.
    fn inbound(body: Body) -> Frame {
        Frame {
            dir: Dir::In,
            stream: 1,
            at_ms: 0,
            body,
        }
    }

    /// A HEADERS frame with `fields`.
    fn headers_frame(end_stream: bool, fields: &[(&str, &str)]) -> Frame {
        inbound(Body::Headers {
            end_stream,
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// What the events render to.
    fn text(ev: &[Event]) -> String {
        crate::transcript::render(ev)
    }

    #[test]
    fn messages_are_reassembled_and_free_things_left_out() {
        let mut wire = codec::frame(false, b"").to_vec();
        wire.extend_from_slice(&codec::frame(false, b""));
        let (a, b) = wire.split_at(3);
        let frames = vec![
            headers_frame(
                false,
                &[(":status", "200"), ("date", "today"), ("x-a", "1")],
            ),
            inbound(Body::Data {
                end_stream: false,
                payload: Bytes::copy_from_slice(a),
            }),
            inbound(Body::WindowUpdate { increment: 5 }),
            inbound(Body::Data {
                end_stream: false,
                payload: Bytes::copy_from_slice(b),
            }),
            headers_frame(true, &[("grpc-status", "0"), ("grpc-message", "any words")]),
            inbound(Body::Reset { code: 0 }),
        ];
        assert_eq!(
            text(&stream_events(1, &frames, None, false)),
            "  ← s1 headers :status=200 x-a=1\n  ← s1 message flag=0 <0 bytes>\n  ← s1 message flag=0 <0 bytes>\n  ← s1 trailers grpc-status=0\n"
        );
    }

    #[test]
    fn a_cancel_after_the_end_is_shown() {
        let frames = vec![
            headers_frame(true, &[(":status", "200"), ("grpc-status", "0")]),
            inbound(Body::Reset { code: 8 }),
        ];
        let out = text(&stream_events(1, &frames, None, false));
        assert!(
            out.ends_with("  ← s1 RST_STREAM CANCEL after the end\n"),
            "{out}"
        );
    }

    #[test]
    fn trailers_only_is_split_unless_the_shape_is_asked_for() {
        let frames = vec![headers_frame(
            true,
            &[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", "12"),
            ],
        )];
        assert_eq!(
            text(&stream_events(1, &frames, None, false)),
            "  ← s1 headers :status=200 content-type=application/grpc\n  ← s1 trailers grpc-status=12\n"
        );
        assert_eq!(
            text(&stream_events(1, &frames, None, true)),
            "  ← s1 trailers-only :status=200 content-type=application/grpc grpc-status=12\n"
        );
    }

    #[test]
    fn a_flagged_message_without_encoding_and_an_unfinished_one_are_named() {
        let mut wire = codec::frame(true, b"zz").to_vec();
        wire.extend_from_slice(&[0, 0, 0, 0, 9, 1]);
        let frames = vec![
            headers_frame(false, &[(":status", "200")]),
            inbound(Body::Data {
                end_stream: true,
                payload: Bytes::from(wire),
            }),
        ];
        let out = text(&stream_events(1, &frames, None, false));
        assert!(
            out.contains("message flag=1 <compressed without grpc-encoding>"),
            "{out}"
        );
        assert!(out.contains("END_STREAM on DATA: no trailers"), "{out}");
        assert!(out.contains("6 bytes of an unfinished message"), "{out}");
    }
}
