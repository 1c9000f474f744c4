//! What the server saw of a client on the wire, from the connection logs:
//! each call's stream (found by its `x-conform-call-id`), its request
//! headers, messages and how the client ended it; each connection's PINGs
//! and GOAWAYs. Facts only; [`super::transcript`] buckets and renders them.

use crate::{
    contract,
    drive::codec::Deframer,
    wire::log::{Body, Dir, Frame},
};

/// A call's stream as the server saw it.
#[derive(Clone, Debug, Default)]
pub struct CallWire {
    /// 1-based connection number.
    pub connection: usize,
    /// The request header fields, in wire order.
    pub request_headers: Vec<(String, String)>,
    /// The request messages: (flag byte, payload).
    pub messages: Vec<(u8, Vec<u8>)>,
    /// Request bytes that did not make a whole message.
    pub leftover: usize,
    /// How the client ended its side, in order (END_STREAM, RST_STREAM).
    pub ends: Vec<ClientEnd>,
    /// What the server ended the stream with: its status (`None` for
    /// trailers without one), or `Err` with an RST_STREAM code.
    pub server_end: Option<Result<Option<(u32, String)>, u32>>,
    /// Streams carrying the same call id besides this one (retries).
    pub other_streams: usize,
}

/// One way the client ended (its half of) a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEnd {
    /// END_STREAM on the HEADERS (a request without messages).
    OnHeaders,
    /// END_STREAM on a DATA frame carrying bytes.
    OnData,
    /// END_STREAM on an empty DATA frame.
    OnEmptyData,
    /// RST_STREAM with this code; whether the server had ended the stream
    /// before (in the log's order).
    Reset(u32, bool),
}

/// One connection as the server saw it.
#[derive(Clone, Debug, Default)]
pub struct ConnectionWire {
    /// When each client PING (not ACK) arrived, ms since the log began.
    pub pings_at: Vec<u64>,
    /// The server's GOAWAYs: (code, debug data as text).
    pub goaways: Vec<(u32, String)>,
    /// Streams the client opened after the server's first GOAWAY.
    pub streams_after_goaway: usize,
    /// Whether the client sent any frame at all.
    pub spoke: bool,
}

/// The wire facts of every call (by its index, `None`: no stream carried its
/// id) and of every connection, from the connection logs.
pub fn facts(
    connections: &[Vec<Frame>],
    call_ids: &[String],
) -> (Vec<Option<CallWire>>, Vec<ConnectionWire>) {
    let mut calls: Vec<Option<CallWire>> = vec![None; call_ids.len()];
    let mut conns = Vec::new();
    for (c, frames) in connections.iter().enumerate() {
        conns.push(connection_facts(frames));
        for (stream, id) in streams_with_ids(frames) {
            let Some(index) = call_ids.iter().position(|i| *i == id) else {
                continue;
            };
            match &mut calls[index] {
                Some(known) => known.other_streams += 1,
                slot @ None => *slot = Some(stream_facts(c + 1, frames, stream)),
            }
        }
    }
    (calls, conns)
}

/// Each stream the client opened, with the call id it carried.
fn streams_with_ids(frames: &[Frame]) -> Vec<(u32, String)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for f in frames.iter().filter(|f| f.dir == Dir::Out && f.stream != 0) {
        if let Body::Headers { fields, .. } = &f.body {
            if !seen.insert(f.stream) {
                continue;
            }
            if let Some((_, id)) = fields.iter().find(|(n, _)| n == contract::CALL_ID) {
                out.push((f.stream, id.clone()));
            }
        }
    }
    out
}

/// The facts of stream `stream` of a connection's log.
fn stream_facts(connection: usize, frames: &[Frame], stream: u32) -> CallWire {
    let mut wire = CallWire {
        connection,
        ..CallWire::default()
    };
    let mut deframer = Deframer::default();
    let mut server_ended = false;
    for f in frames.iter().filter(|f| f.stream == stream) {
        match (f.dir, &f.body) {
            (Dir::Out, Body::Headers { end_stream, fields }) => {
                if wire.request_headers.is_empty() {
                    wire.request_headers = fields.clone();
                }
                if *end_stream {
                    wire.ends.push(ClientEnd::OnHeaders);
                }
            }
            (
                Dir::Out,
                Body::Data {
                    end_stream,
                    payload,
                    not_kept,
                },
            ) => {
                deframer.push(payload);
                while let Ok(Some((flag, message))) = deframer.next_message() {
                    wire.messages.push((flag, message.to_vec()));
                }
                if *end_stream {
                    let empty = payload.is_empty() && *not_kept == 0;
                    wire.ends.push(if empty {
                        ClientEnd::OnEmptyData
                    } else {
                        ClientEnd::OnData
                    });
                }
            }
            (Dir::Out, Body::Reset { code }) => {
                wire.ends.push(ClientEnd::Reset(*code, server_ended))
            }
            (
                Dir::In,
                Body::Headers {
                    end_stream: true,
                    fields,
                },
            ) => {
                server_ended = true;
                wire.server_end = Some(Ok(status_of(fields)));
            }
            (
                Dir::In,
                Body::Data {
                    end_stream: true, ..
                },
            ) => {
                server_ended = true;
                wire.server_end = Some(Ok(None));
            }
            (Dir::In, Body::Reset { code }) => {
                server_ended = true;
                wire.server_end = Some(Err(*code));
            }
            _ => {}
        }
    }
    wire.leftover = deframer.leftover();
    wire
}

/// `grpc-status` and the percent-decoded `grpc-message` of trailers.
fn status_of(fields: &[(String, String)]) -> Option<(u32, String)> {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let code = value("grpc-status")?.parse().ok()?;
    let message = value("grpc-message").map_or_else(String::new, |m| {
        percent_encoding::percent_decode_str(m)
            .decode_utf8_lossy()
            .into_owned()
    });
    Some((code, message))
}

/// PINGs, GOAWAYs and streams opened after a GOAWAY on one connection.
fn connection_facts(frames: &[Frame]) -> ConnectionWire {
    let mut conn = ConnectionWire::default();
    let mut opened = std::collections::BTreeSet::new();
    for f in frames {
        conn.spoke |= f.dir == Dir::Out;
        match (f.dir, &f.body) {
            (Dir::Out, Body::Ping { ack: false, .. }) => conn.pings_at.push(f.at_ms),
            (Dir::In, Body::GoAway { code, debug, .. }) => {
                conn.goaways
                    .push((*code, String::from_utf8_lossy(debug).into_owned()));
            }
            (Dir::Out, Body::Headers { .. }) => {
                let new_stream = opened.insert(f.stream);
                if new_stream && !conn.goaways.is_empty() {
                    conn.streams_after_goaway += 1;
                }
            }
            _ => {}
        }
    }
    conn
}
