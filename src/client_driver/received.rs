//! What a client makes of what it received: a message is taken only in an
//! encoding the client announced and within its receive limit, and an OK
//! ending must follow whole messages, one of them for a method of one
//! response (statuscodes.md: cardinality violations are UNIMPLEMENTED).

use super::request::ACCEPTED;
use super::status::{code, Ending};
use crate::client::plan::Mode;
use crate::drive::codec;
use prost_reflect::MessageDescriptor;

/// Decompresses and decodes one message of type `output` with compressed
/// flag `flag`, under the response's `grpc-encoding`.
pub fn unpack(
    output: &MessageDescriptor,
    max_receive: usize,
    flag: u8,
    payload: &[u8],
    encoding: Option<&str>,
) -> Result<serde_json::Value, Ending> {
    let bytes = match (flag, encoding) {
        (0, _) => payload.to_vec(),
        (1, None | Some("identity")) => {
            return Err(Ending::new(
                code::INTERNAL,
                "compressed message without grpc-encoding",
            ))
        }
        (1, Some(enc)) if !ACCEPTED.contains(&enc) => {
            return Err(Ending::new(
                code::INTERNAL,
                format!("message compressed with {enc}, which the client did not announce"),
            ))
        }
        (1, Some(enc)) => {
            codec::decompress(enc, payload).map_err(|e| Ending::new(code::INTERNAL, e))?
        }
        (other, _) => {
            return Err(Ending::new(
                code::INTERNAL,
                format!("message with compressed flag {other}"),
            ))
        }
    };
    if bytes.len() > max_receive {
        return Err(Ending::new(
            code::RESOURCE_EXHAUSTED,
            format!(
                "message of {} bytes decompressed exceeds {max_receive}",
                bytes.len()
            ),
        ));
    }
    crate::message::decode_to_json(output, &bytes)
        .map_err(|e| Ending::new(code::INTERNAL, format!("unparsable response message: {e}")))
}

/// An OK `ending` checked against what came: `leftover` bytes of a partial
/// message, or not exactly one of `messages` for a method of one response.
pub fn checked(mode: Mode, messages: usize, ending: Ending, leftover: usize) -> Ending {
    if ending.status.code != code::OK {
        return ending;
    }
    if leftover > 0 {
        return Ending::new(
            code::INTERNAL,
            format!("{leftover} bytes of an incomplete message"),
        );
    }
    if matches!(mode, Mode::Unary | Mode::ClientStreaming) && messages != 1 {
        return Ending::new(
            code::UNIMPLEMENTED,
            format!("{messages} responses for a method of one response"),
        );
    }
    ending
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output() -> MessageDescriptor {
        let pool = crate::descriptors::Descriptors::contract().unwrap();
        pool.method("/Greeter/SayHello").unwrap().output()
    }

    #[test]
    fn only_announced_encodings_within_the_limit_are_taken() {
        let hello = b"\x0a\x02hi";
        let gzip = codec::compress("gzip", hello).unwrap();
        let zstd = codec::compress("zstd", hello).unwrap();
        let code_of = |r: Result<serde_json::Value, Ending>| r.map_err(|e| e.status.code);
        assert_eq!(
            code_of(unpack(&output(), 100, 1, &gzip, Some("gzip"))),
            Ok(serde_json::json!({"message": "hi"}))
        );
        assert_eq!(
            code_of(unpack(&output(), 100, 1, &zstd, Some("zstd"))),
            Err(code::INTERNAL)
        );
        assert_eq!(
            code_of(unpack(&output(), 100, 1, hello, None)),
            Err(code::INTERNAL)
        );
        assert_eq!(
            code_of(unpack(&output(), 100, 2, hello, None)),
            Err(code::INTERNAL)
        );
        assert_eq!(
            code_of(unpack(&output(), 3, 1, &gzip, Some("gzip"))),
            Err(code::RESOURCE_EXHAUSTED)
        );
        assert_eq!(
            code_of(unpack(&output(), 100, 0, b"\xff", None)),
            Err(code::INTERNAL)
        );
    }

    #[test]
    fn an_ok_ending_needs_whole_messages_and_the_right_count() {
        let ok = || Ending::new(code::OK, "");
        assert_eq!(checked(Mode::Unary, 1, ok(), 0).status.code, code::OK);
        assert_eq!(
            checked(Mode::Unary, 2, ok(), 0).status.code,
            code::UNIMPLEMENTED
        );
        assert_eq!(
            checked(Mode::ClientStreaming, 0, ok(), 0).status.code,
            code::UNIMPLEMENTED
        );
        assert_eq!(
            checked(Mode::ServerStreaming, 0, ok(), 0).status.code,
            code::OK
        );
        assert_eq!(checked(Mode::Bidi, 3, ok(), 2).status.code, code::INTERNAL);
        let failed = Ending::new(5, "x");
        assert_eq!(checked(Mode::Unary, 0, failed, 0).status.code, 5);
    }
}
