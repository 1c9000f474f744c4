//! Frame-level steps of a raw script that a server must tolerate or that
//! shape flow control: HEADERS padded, with a priority or split into
//! CONTINUATIONs; padded DATA; PRIORITY, unknown frame types, the client's
//! own SETTINGS and WINDOW_UPDATE; many streams opened at once; message
//! bytes given in hex.

use super::{conn::MAX_FRAME, Script, Stop};
use crate::{
    message,
    model::{
        Event, MessageBytesStep, OpenFramedStep, OpenManyStep, OpenStep, PaddedMessageStep,
        PriorityFields, PriorityStep, UnknownFrameStep, WindowUpdateStep,
    },
    wire::{
        frame::{flag, frame, kind},
        log::{hex, setting_name},
        message::MessagePrefix,
    },
};

/// The PRIORITY frame type (RFC 9113 6.3).
const PRIORITY_FRAME: u8 = 0x2;

/// Bytes from hex digits (spaces allowed between bytes).
pub fn hex_bytes(text: &str) -> Result<Vec<u8>, Stop> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bad = || Stop::Failed(format!("fixture: {text:?} is not hex bytes"));
    if digits.len() % 2 != 0 || !digits.is_ascii() {
        return Err(bad());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// The SETTINGS id named `name` (RFC 9113 names, or `0x..` for any id).
pub fn setting_id(name: &str) -> Result<u16, Stop> {
    (1..=8)
        .find(|id| setting_name(*id) == name)
        .or_else(|| u16::from_str_radix(name.strip_prefix("0x")?, 16).ok())
        .ok_or_else(|| Stop::Failed(format!("fixture: no setting {name} (a name or 0x..)")))
}

/// The 5 bytes of a priority: exclusive bit and dependency, weight - 1.
fn priority_bytes(p: &PriorityFields) -> Result<[u8; 5], Stop> {
    if !(1..=256).contains(&p.weight) {
        return Err(Stop::Failed(format!(
            "fixture: weight {} is not 1 to 256",
            p.weight
        )));
    }
    let dep = (p.depends_on & 0x7fff_ffff) | if p.exclusive { 0x8000_0000 } else { 0 };
    let d = dep.to_be_bytes();
    Ok([d[0], d[1], d[2], d[3], (p.weight - 1) as u8])
}

/// `payload` behind a pad-length byte and followed by `padding` zero bytes.
fn padded(payload: &[u8], padding: u8) -> Vec<u8> {
    let mut out = vec![padding];
    out.extend(payload);
    out.extend(std::iter::repeat_n(0u8, padding.into()));
    out
}

impl Script<'_> {
    /// `open_framed`: HEADERS with padding, a priority, or CONTINUATIONs.
    pub(super) async fn open_framed(
        &mut self,
        o: &OpenFramedStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let desc = self.method(&o.method)?;
        let mut shown = Vec::new();
        let mut fields =
            self.request_fields(&plain_open(o.stream, &o.method, &o.metadata), &mut shown);
        if let Some(m) = &o.http_method {
            if let Some(field) = fields.iter_mut().find(|(name, _)| name == ":method") {
                field.1 = m.clone();
            }
            shown.insert(0, format!(":method={m}"));
        }
        if o.without_te {
            fields.retain(|(name, _)| name != "te");
            shown.insert(0, "without te".to_string());
        }
        let block = self
            .conn
            .encoder
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let per = o
            .continuation_bytes
            .unwrap_or(MAX_FRAME)
            .clamp(1, MAX_FRAME);
        let chunks: Vec<&[u8]> = block.chunks(per).collect();
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() {
                flag::END_HEADERS
            } else {
                0
            };
            if i > 0 {
                out.extend(frame(kind::CONTINUATION, last, o.stream, chunk));
                continue;
            }
            let mut flags = last | if o.end_stream { flag::END_STREAM } else { 0 };
            let mut payload = Vec::new();
            if let Some(p) = &o.priority {
                flags |= flag::PRIORITY;
                payload.extend(priority_bytes(p)?);
            }
            payload.extend(*chunk);
            if let Some(n) = o.padding {
                flags |= flag::PADDED;
                payload = padded(&payload, n);
            }
            out.extend(frame(kind::HEADERS, flags, o.stream, &payload));
        }
        self.methods.insert(o.stream, desc);
        if let Some(json) = &o.message {
            let body = self.encode(o.stream, json)?;
            out.extend(frame(
                kind::DATA,
                flag::END_STREAM,
                o.stream,
                &framed(&body),
            ));
        }
        self.conn.writer.write(&out).await?;
        let mut what = format!("s{} HEADERS {}", o.stream, o.method);
        shown.iter().for_each(|s| what.push_str(&format!(" {s}")));
        if let Some(n) = o.padding {
            what.push_str(&format!(" padded with {n} bytes"));
        }
        if let Some(p) = &o.priority {
            what.push_str(&format!(" {}", describe_priority(p)));
        }
        if chunks.len() > 1 {
            what.push_str(&format!(" in {} CONTINUATION frames", chunks.len() - 1));
        }
        if o.end_stream {
            what.push_str(" END_STREAM");
        }
        if let Some(json) = &o.message {
            what.push_str(&format!(
                ", with message {} END_STREAM in the same write",
                message::one_line(json)
            ));
        }
        ev.push(Event::WireSent { what });
        Ok(())
    }

    /// `open_many`: HEADERS only, for each stream, in one write.
    pub(super) async fn open_many(
        &mut self,
        o: &OpenManyStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let desc = self.method(&o.method)?;
        let mut shown = Vec::new();
        let fields = self.request_fields(&plain_open(0, &o.method, &o.metadata), &mut shown);
        let mut out = Vec::new();
        for i in 0..o.count {
            let id = o.first_stream + 2 * i;
            out.extend(self.conn.headers(id, &fields, false).await?);
            self.methods.insert(id, desc.clone());
        }
        self.conn.writer.write(&out).await?;
        let last = o.first_stream + 2 * o.count.saturating_sub(1);
        let mut what = format!(
            "s{} to s{last}: {} streams of {} opened",
            o.first_stream, o.count, o.method
        );
        shown.iter().for_each(|s| what.push_str(&format!(" {s}")));
        ev.push(Event::WireSent { what });
        Ok(())
    }

    /// `padded_message`: one message in a padded DATA frame.
    pub(super) async fn padded_message(
        &mut self,
        m: &PaddedMessageStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let body = self.encode(m.stream, &m.message)?;
        let es = if m.end_stream { flag::END_STREAM } else { 0 };
        let data = padded(&framed(&body), m.padding);
        self.conn
            .writer
            .write(&frame(kind::DATA, es | flag::PADDED, m.stream, &data))
            .await?;
        ev.push(Event::WireSent {
            what: format!(
                "s{} message flag=0 {} in DATA padded with {} bytes{}",
                m.stream,
                message::one_line(&m.message),
                m.padding,
                if m.end_stream { " END_STREAM" } else { "" }
            ),
        });
        Ok(())
    }

    /// `message_bytes`: a message of given bytes (flag 0).
    pub(super) async fn message_bytes(
        &mut self,
        m: &MessageBytesStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let body = hex_bytes(&m.hex)?;
        let es = if m.end_stream { flag::END_STREAM } else { 0 };
        self.conn
            .writer
            .write(&frame(kind::DATA, es, m.stream, &framed(&body)))
            .await?;
        ev.push(Event::WireSent {
            what: format!(
                "s{} message flag=0 bytes {}{}",
                m.stream,
                hex(&body),
                if m.end_stream { " END_STREAM" } else { "" }
            ),
        });
        Ok(())
    }

    /// `priority`: a PRIORITY frame.
    pub(super) async fn priority(
        &mut self,
        p: &PriorityStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let fields = PriorityFields {
            depends_on: p.depends_on,
            weight: p.weight,
            exclusive: p.exclusive,
        };
        let payload = priority_bytes(&fields)?;
        self.conn
            .writer
            .write(&frame(PRIORITY_FRAME, 0, p.stream, &payload))
            .await?;
        ev.push(Event::WireSent {
            what: format!("s{} PRIORITY {}", p.stream, describe_priority(&fields)),
        });
        Ok(())
    }

    /// `unknown_frame`: a frame of an undefined type.
    pub(super) async fn unknown_frame(
        &mut self,
        u: &UnknownFrameStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let payload = hex_bytes(&u.payload)?;
        self.conn
            .writer
            .write(&frame(u.kind, u.flags, u.stream, &payload))
            .await?;
        ev.push(Event::WireSent {
            what: format!(
                "frame of unknown type 0x{:x} on s{} flags=0x{:x} {} bytes",
                u.kind,
                u.stream,
                u.flags,
                payload.len()
            ),
        });
        Ok(())
    }

    /// `settings`: the client's own SETTINGS frame (the reader task leaves
    /// the server's ACK in the log, unreported).
    pub(super) async fn settings(
        &mut self,
        pairs: &[(String, u32)],
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        let mut payload = Vec::new();
        for (name, value) in pairs {
            payload.extend(setting_id(name)?.to_be_bytes());
            payload.extend(value.to_be_bytes());
        }
        self.conn
            .writer
            .write(&frame(kind::SETTINGS, 0, 0, &payload))
            .await?;
        let list: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        ev.push(Event::WireSent {
            what: format!("SETTINGS {}", list.join(" ")),
        });
        Ok(())
    }

    /// `window_update`: a WINDOW_UPDATE.
    pub(super) async fn window_update(
        &mut self,
        w: &WindowUpdateStep,
        ev: &mut Vec<Event>,
    ) -> Result<(), Stop> {
        self.conn
            .writer
            .write(&frame(
                kind::WINDOW_UPDATE,
                0,
                w.stream,
                &w.increment.to_be_bytes(),
            ))
            .await?;
        ev.push(Event::WireSent {
            what: format!("s{} WINDOW_UPDATE +{}", w.stream, w.increment),
        });
        Ok(())
    }
}

/// A message body behind its gRPC prefix (flag 0).
fn framed(body: &[u8]) -> Vec<u8> {
    let prefix = MessagePrefix {
        compressed: 0,
        length: body.len() as u32,
    };
    let mut out = prefix.encode().to_vec();
    out.extend(body);
    out
}

/// An [`OpenStep`] with only a method and metadata, for the shared header list.
fn plain_open(stream: u32, method: &str, metadata: &[(String, String)]) -> OpenStep {
    OpenStep {
        stream,
        method: method.to_string(),
        path: None,
        metadata: metadata.to_vec(),
        content_type: None,
        timeout: None,
        encoding: None,
        end_stream: false,
        filler_bytes: None,
    }
}

fn describe_priority(p: &PriorityFields) -> String {
    format!(
        "depends on s{} weight {}{}",
        p.depends_on,
        p.weight,
        if p.exclusive { " exclusive" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_settings_and_priorities_parse() {
        assert_eq!(hex_bytes("0a 01 ff").unwrap(), [0x0a, 0x01, 0xff]);
        assert!(hex_bytes("0g").is_err() && hex_bytes("abc").is_err());
        assert_eq!(setting_id("INITIAL_WINDOW_SIZE").unwrap(), 4);
        assert_eq!(setting_id("0xfafa").unwrap(), 0xfafa);
        assert!(setting_id("WINDOW").is_err());
        let p = PriorityFields {
            depends_on: 3,
            weight: 256,
            exclusive: true,
        };
        assert_eq!(priority_bytes(&p).unwrap(), [0x80, 0, 0, 3, 255]);
        assert!(priority_bytes(&PriorityFields { weight: 0, ..p }).is_err());
        assert_eq!(padded(&[7], 2), [2, 7, 0, 0]);
    }
}
