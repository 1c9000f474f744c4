//! The `x-conform-*` control headers that script a handler (CONTRACT.md
//! section 3), parsed once per call into [`Control`].
//!
//! Only the headers that are handler behaviour live here; call-id, echo
//! headers, response encoding, deadlines and size limits belong to the
//! transport layer, which applies them to every method alike.
//!
//! A header that is present but malformed fails the call with
//! INVALID_ARGUMENT naming the header: a fixture with a typo must not pass
//! silently as if the header were absent.

use base64::Engine;
use percent_encoding::percent_decode;
use std::time::Duration;
use tonic::{metadata::MetadataMap, Code, Status};

pub use crate::contract::{
    CLOSE_AFTER_REQUESTS, DELAY_MS, FAIL_AFTER, FAIL_CODE, FAIL_DETAILS_BIN, FAIL_MESSAGE,
    RESPONSE_COUNT, RESPONSE_INTERVAL_MS, RESPONSE_SIZE,
};

/// Largest `x-conform-response-size`: 16 MiB, four times the default message
/// limit, so a fixture can cross any limit without the reference building
/// unbounded responses.
pub const MAX_RESPONSE_SIZE: u32 = 16 * 1024 * 1024;

/// Longest pause a header may ask for. A pause is a wait, and every wait of
/// the reference is bounded; ten minutes is far beyond any fixture's need and
/// keeps `Instant + Duration` far from overflow.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// Status code of a scripted failure when `x-conform-fail-code` is absent
/// (UNKNOWN, as the contract says).
const DEFAULT_FAIL_CODE: i32 = 2;

/// A malformed control header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("control header {header}: {reason} (got {value:?})")]
pub struct ControlError {
    /// The header's name.
    pub header: &'static str,
    /// The value as received, lossily shown when it is not UTF-8.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl From<ControlError> for Status {
    fn from(err: ControlError) -> Status {
        Status::invalid_argument(err.to_string())
    }
}

/// A scripted failure: `x-conform-fail-after` with its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// Responses sent before the failure; 0 fails before any.
    pub after: u32,
    /// The status code (0..=16).
    pub code: Code,
    /// The status message, already percent-decoded.
    pub message: String,
    /// The `grpc-status-details-bin` bytes, already base64-decoded.
    pub details: Option<Vec<u8>>,
}

impl Fail {
    /// The status that ends the call, with its details when the script gave some.
    pub fn status(&self) -> Status {
        match &self.details {
            None => Status::new(self.code, self.message.clone()),
            Some(details) => {
                Status::with_details(self.code, self.message.clone(), details.clone().into())
            }
        }
    }
}

/// The handler-side control headers of one call; absent headers are `None`
/// (or zero pauses), which is the contract's default behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    /// Overrides the number of responses of ServerStream and Watch.
    pub response_count: Option<u32>,
    /// Pause before each response after the first.
    pub response_interval: Duration,
    /// Pause before the first response (or before a fail-after-0 status).
    pub delay: Duration,
    /// A scripted failure.
    pub fail: Option<Fail>,
    /// Finish OK after this many requests without reading further.
    pub close_after_requests: Option<u32>,
    /// Pad each response's text field to this many bytes.
    pub response_size: Option<usize>,
}

impl Control {
    /// Reads the control headers of a request.
    pub fn from_metadata(metadata: &MetadataMap) -> Result<Control, ControlError> {
        let fail = match number(metadata, FAIL_AFTER)? {
            None => None,
            Some(after) => Some(Fail {
                after,
                code: fail_code(metadata)?,
                message: fail_message(metadata)?,
                details: fail_details(metadata)?,
            }),
        };
        Ok(Control {
            response_count: number(metadata, RESPONSE_COUNT)?,
            response_interval: pause(metadata, RESPONSE_INTERVAL_MS)?,
            delay: pause(metadata, DELAY_MS)?,
            fail,
            close_after_requests: number(metadata, CLOSE_AFTER_REQUESTS)?,
            response_size: response_size(metadata)?,
        })
    }

    /// `text` padded at its end with `x` to `x-conform-response-size` bytes;
    /// a longer text, or no header, leaves it as it is.
    pub fn pad(&self, text: String) -> String {
        pad_to(self.response_size, text)
    }
}

/// [`Control::pad`] for a size copied out of the control (response streams
/// own their closures).
pub fn pad_to(size: Option<usize>, mut text: String) -> String {
    if let Some(size) = size {
        let missing = size.saturating_sub(text.len());
        text.extend(std::iter::repeat_n('x', missing));
    }
    text
}

/// The raw bytes of header `name`, if present. Bytes, not `to_str`: a client
/// may send obs-text (raw UTF-8) in a header, which `to_str` refuses.
fn raw<'a>(metadata: &'a MetadataMap, name: &'static str) -> Option<&'a [u8]> {
    metadata.get(name).map(|v| v.as_encoded_bytes())
}

fn error(name: &'static str, value: &[u8], reason: &'static str) -> ControlError {
    ControlError {
        header: name,
        value: String::from_utf8_lossy(value).into_owned(),
        reason,
    }
}

/// A non-negative decimal that fits in u32; surrounding spaces are tolerated
/// because some HTTP stacks keep them.
fn number(metadata: &MetadataMap, name: &'static str) -> Result<Option<u32>, ControlError> {
    let Some(value) = raw(metadata, name) else {
        return Ok(None);
    };
    std::str::from_utf8(value)
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .map(Some)
        .ok_or_else(|| {
            error(
                name,
                value,
                "expected a decimal integer from 0 to 4294967295",
            )
        })
}

fn pause(metadata: &MetadataMap, name: &'static str) -> Result<Duration, ControlError> {
    let Some(ms) = number(metadata, name)? else {
        return Ok(Duration::ZERO);
    };
    let pause = Duration::from_millis(u64::from(ms));
    if pause > MAX_PAUSE {
        let value = raw(metadata, name).unwrap_or_default();
        return Err(error(name, value, "pauses above 600000 ms are refused"));
    }
    Ok(pause)
}

fn fail_code(metadata: &MetadataMap) -> Result<Code, ControlError> {
    match number(metadata, FAIL_CODE)? {
        None => Ok(Code::from(DEFAULT_FAIL_CODE)),
        Some(code @ 0..=16) => Ok(Code::from(code as i32)),
        Some(_) => {
            let value = raw(metadata, FAIL_CODE).unwrap_or_default();
            Err(error(
                FAIL_CODE,
                value,
                "expected a gRPC status code from 0 to 16",
            ))
        }
    }
}

fn response_size(metadata: &MetadataMap) -> Result<Option<usize>, ControlError> {
    match number(metadata, RESPONSE_SIZE)? {
        Some(size) if size > MAX_RESPONSE_SIZE => {
            let value = raw(metadata, RESPONSE_SIZE).unwrap_or_default();
            Err(error(
                RESPONSE_SIZE,
                value,
                "sizes above 16777216 bytes are refused",
            ))
        }
        size => Ok(size.map(|s| s as usize)),
    }
}

/// Padded and unpadded base64 are both accepted, as gRPC requires of `-bin`
/// values.
fn fail_details(metadata: &MetadataMap) -> Result<Option<Vec<u8>>, ControlError> {
    let Some(value) = metadata
        .get_bin(FAIL_DETAILS_BIN)
        .map(|v| v.as_encoded_bytes())
    else {
        return Ok(None);
    };
    let trimmed = value
        .strip_suffix(b"==")
        .or_else(|| value.strip_suffix(b"="))
        .unwrap_or(value);
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .map(Some)
        .map_err(|_| error(FAIL_DETAILS_BIN, value, "expected base64"))
}

/// The message is percent-decoded: a header cannot carry a newline, so a
/// client sends the text percent-encoded as gRPC does for `grpc-message`.
/// Decoding is lenient the same way (a `%` not followed by two hex digits
/// stays as it is), so plain ASCII text may be sent as it is.
fn fail_message(metadata: &MetadataMap) -> Result<String, ControlError> {
    let Some(value) = raw(metadata, FAIL_MESSAGE) else {
        return Ok(String::new());
    };
    percent_decode(value)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| error(FAIL_MESSAGE, value, "percent-decodes to invalid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers as they come off the wire (`-bin` values still base64).
    fn headers(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("test header value"));
        }
        MetadataMap::from_headers(map)
    }

    #[test]
    fn absent_headers_are_the_default() {
        assert_eq!(
            Control::from_metadata(&headers(&[])),
            Ok(Control::default())
        );
    }

    #[test]
    fn every_header_is_read() {
        let control = Control::from_metadata(&headers(&[
            (RESPONSE_COUNT, "5"),
            (RESPONSE_INTERVAL_MS, "20"),
            (DELAY_MS, " 30 "),
            (FAIL_AFTER, "2"),
            (FAIL_CODE, "9"),
            (FAIL_MESSAGE, "50%25 off: %C3%BCn%C3%AFcode%0Anewline"),
            (CLOSE_AFTER_REQUESTS, "0"),
            (RESPONSE_SIZE, "12"),
            (FAIL_DETAILS_BIN, "CAUSAm5v"),
        ]))
        .expect("valid headers");
        assert_eq!(control.response_count, Some(5));
        assert_eq!(control.response_interval, Duration::from_millis(20));
        assert_eq!(control.delay, Duration::from_millis(30));
        assert_eq!(control.close_after_requests, Some(0));
        assert_eq!(control.pad("Hello".into()), "Helloxxxxxxx");
        assert_eq!(control.pad("Hello, longer".into()), "Hello, longer");
        let fail = control.fail.expect("fail-after given");
        assert_eq!(fail.after, 2);
        assert_eq!(fail.code, Code::FailedPrecondition);
        assert_eq!(fail.message, "50% off: ünïcode\nnewline");
        assert_eq!(
            fail.details.as_deref(),
            Some(&[8, 5, 18, 2, b'n', b'o'][..])
        );
        assert_eq!(fail.status().details(), [8, 5, 18, 2, b'n', b'o']);
    }

    #[test]
    fn padded_and_unpadded_details_are_the_same_bytes() {
        let details = |value| {
            Control::from_metadata(&headers(&[(FAIL_AFTER, "0"), (FAIL_DETAILS_BIN, value)]))
                .expect("valid")
                .fail
                .and_then(|f| f.details)
        };
        assert_eq!(details("CAU"), Some(vec![8, 5]));
        assert_eq!(details("CAU="), Some(vec![8, 5]));
    }

    #[test]
    fn fail_defaults_to_unknown_with_no_message() {
        let fail = Control::from_metadata(&headers(&[(FAIL_AFTER, "0")]))
            .expect("valid")
            .fail
            .expect("fail-after given");
        assert_eq!((fail.code, fail.message.as_str()), (Code::Unknown, ""));
    }

    #[test]
    fn plain_text_with_a_lone_percent_survives() {
        let fail =
            Control::from_metadata(&headers(&[(FAIL_AFTER, "1"), (FAIL_MESSAGE, "50% off")]))
                .expect("valid")
                .fail
                .expect("fail-after given");
        assert_eq!(fail.message, "50% off");
    }

    #[test]
    fn malformed_values_name_the_header() {
        for (name, value) in [
            (RESPONSE_COUNT, "-1"),
            (RESPONSE_COUNT, "three"),
            (DELAY_MS, "1.5"),
            (DELAY_MS, "600001"),
            (RESPONSE_INTERVAL_MS, ""),
            (CLOSE_AFTER_REQUESTS, "99999999999"),
            (FAIL_CODE, "17"),
            (FAIL_MESSAGE, "%FF"),
            (RESPONSE_SIZE, "16777217"),
            (FAIL_DETAILS_BIN, "not base64!"),
        ] {
            let err = Control::from_metadata(&headers(&[(FAIL_AFTER, "0"), (name, value)]))
                .expect_err(value);
            assert_eq!(err.header, name, "{value}");
            let status = Status::from(err);
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().contains(name), "{}", status.message());
        }
    }
}
