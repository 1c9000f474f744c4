//! gRPC message framing (the 5-byte prefix of PROTOCOL-HTTP2.md) and the
//! message encodings the driver knows. Written here rather than borrowed from
//! tonic because fixtures set the compressed flag per message, send encodings
//! the driver cannot produce, and must see each received flag.

use crate::wire::message::{MessagePrefix, PREFIX_LEN};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::io::{Read, Write};

/// Largest message the driver accepts from a target, after decompression:
/// four times gRPC's 4 MiB default, so only a runaway peer hits it.
pub const MAX_RECEIVED: usize = 16 * 1024 * 1024;

/// Encodings the driver can compress and decompress.
pub const KNOWN: [&str; 3] = ["gzip", "deflate", "zstd"];

/// Compresses `data` with `encoding`; `None` for an encoding the driver lacks
/// (the caller then sends the bytes as they are under the flag).
pub fn compress(encoding: &str, data: &[u8]) -> Option<Vec<u8>> {
    let out = match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).ok()?;
            e.finish().ok()?
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).ok()?;
            e.finish().ok()?
        }
        "zstd" => zstd::encode_all(data, 0).ok()?,
        _ => return None,
    };
    Some(out)
}

/// Decompresses a message flagged compressed under `encoding`, refusing to
/// inflate past [`MAX_RECEIVED`].
pub fn decompress(encoding: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    let limit = MAX_RECEIVED as u64 + 1;
    let mut out = Vec::new();
    let read = match encoding {
        "gzip" => flate2::read::GzDecoder::new(data)
            .take(limit)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(data)
            .take(limit)
            .read_to_end(&mut out),
        "zstd" => {
            zstd::stream::read::Decoder::new(data).and_then(|d| d.take(limit).read_to_end(&mut out))
        }
        other => {
            return Err(format!(
                "compressed message under unknown encoding `{other}`"
            ))
        }
    };
    read.map_err(|e| format!("cannot decompress {encoding}: {e}"))?;
    if out.len() > MAX_RECEIVED {
        return Err(format!("message inflates past {MAX_RECEIVED} bytes"));
    }
    Ok(out)
}

/// One length-prefixed message: flag byte, big-endian length, payload.
pub fn frame(compressed: bool, payload: &[u8]) -> Bytes {
    let prefix = MessagePrefix {
        compressed: u8::from(compressed),
        length: payload.len() as u32,
    };
    let mut out = BytesMut::with_capacity(PREFIX_LEN + payload.len());
    out.put_slice(&prefix.encode());
    out.put_slice(payload);
    out.freeze()
}

/// Reassembles messages from DATA frames, whose boundaries mean nothing.
#[derive(Debug)]
pub struct Deframer {
    buf: BytesMut,
    /// The largest length prefix accepted.
    limit: usize,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer::with_limit(MAX_RECEIVED)
    }
}

impl Deframer {
    /// A deframer refusing any message whose length prefix exceeds `limit`
    /// (a client's maximum receive message size).
    pub fn with_limit(limit: usize) -> Deframer {
        Deframer {
            buf: BytesMut::new(),
            limit,
        }
    }

    /// Appends the payload of one DATA frame.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message as (flag byte, payload), if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<(u8, Bytes)>, String> {
        let Some(head) = self.buf.first_chunk::<PREFIX_LEN>() else {
            return Ok(None);
        };
        let prefix = MessagePrefix::parse(*head);
        let (flag, len) = (prefix.compressed, prefix.length as usize);
        if len > self.limit {
            return Err(format!(
                "message length prefix {len} exceeds {}",
                self.limit
            ));
        }
        if self.buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        self.buf.advance(PREFIX_LEN);
        Ok(Some((flag, self.buf.split_to(len).freeze())))
    }

    /// Bytes left over that do not make a whole message.
    pub fn leftover(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_encoding_round_trips() {
        let data = b"hello hello hello hello".repeat(20);
        for enc in KNOWN {
            let packed = compress(enc, &data).unwrap();
            assert_ne!(packed, data, "{enc} compressed nothing");
            assert_eq!(decompress(enc, &packed).unwrap(), data, "{enc}");
        }
        assert!(compress("snappy", &data).is_none());
    }

    #[test]
    fn deframer_splits_and_joins_across_frames() {
        let mut wire = frame(false, b"ab").to_vec();
        wire.extend_from_slice(&frame(true, b"cde"));
        let mut d = Deframer::default();
        d.push(&wire[..3]);
        assert_eq!(d.next_message().unwrap(), None);
        d.push(&wire[3..]);
        assert_eq!(
            d.next_message().unwrap(),
            Some((0, Bytes::from_static(b"ab")))
        );
        assert_eq!(
            d.next_message().unwrap(),
            Some((1, Bytes::from_static(b"cde")))
        );
        assert_eq!(d.next_message().unwrap(), None);
        assert_eq!(d.leftover(), 0);
    }
}
