//! How the driver turns what arrived into the status its application sees:
//! `grpc-status` when the server sent one; the HTTP status mapping of
//! http-grpc-status-mapping.md when a response is not gRPC; the RST_STREAM
//! code mapping of PROTOCOL-HTTP2.md ("Errors"); UNAVAILABLE for a lost
//! connection; and the codes a client generates itself (statuscodes.md).

use crate::client::plan::ReportStatus;
use crate::drive::describe_h2;
use http::{HeaderMap, StatusCode};

/// Status codes by name (statuscodes.md).
pub mod code {
    /// Not an error.
    pub const OK: u32 = 0;
    /// Cancelled by the caller.
    pub const CANCELLED: u32 = 1;
    /// Unknown.
    pub const UNKNOWN: u32 = 2;
    /// The deadline passed.
    pub const DEADLINE_EXCEEDED: u32 = 4;
    /// Permission denied.
    pub const PERMISSION_DENIED: u32 = 7;
    /// A resource (here: the receive size limit) ran out.
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    /// Not implemented.
    pub const UNIMPLEMENTED: u32 = 12;
    /// Internal error.
    pub const INTERNAL: u32 = 13;
    /// Unavailable.
    pub const UNAVAILABLE: u32 = 14;
    /// Unauthenticated.
    pub const UNAUTHENTICATED: u32 = 16;
}

/// How a call ended: the status and, for an error, the text shown to people.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    /// What the application is given.
    pub status: ReportStatus,
    /// The error's text; none for OK.
    pub error: Option<String>,
}

impl Ending {
    /// A status with `message`; the error text says it again with its code.
    pub fn new(code: u32, message: impl Into<String>) -> Ending {
        let message = message.into();
        let error =
            (code != code::OK).then(|| format!("{}: {message}", crate::model::status_name(code)));
        Ending {
            status: ReportStatus { code, message },
            error,
        }
    }
}

/// The gRPC status of HTTP status `http` from a response without
/// `grpc-status` (http-grpc-status-mapping.md; 200 is UNKNOWN because a
/// real OK carries `grpc-status`).
pub fn from_http_status(http: StatusCode) -> u32 {
    match http.as_u16() {
        400 => code::INTERNAL,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 => code::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// Whether `headers` say the response is gRPC (`application/grpc`, with or
/// without a `+format` suffix or parameters).
pub fn is_grpc_content_type(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let v = v.to_ascii_lowercase();
            v == "application/grpc"
                || v.starts_with("application/grpc+")
                || v.starts_with("application/grpc;")
        })
        .unwrap_or(false)
}

/// The ending of a response head that is no gRPC response: not HTTP 200, or
/// a content type other than `application/grpc`, and no `grpc-status`.
pub fn not_grpc(http: StatusCode, headers: &HeaderMap) -> Ending {
    let content_type = headers
        .get("content-type")
        .map_or("none".to_string(), super::request::text);
    Ending::new(
        from_http_status(http),
        format!(
            "not a gRPC response: HTTP status {}, content type {content_type}",
            http.as_u16()
        ),
    )
}

/// The ending `grpc-status` and `grpc-message` of `fields` give; `None`
/// without `grpc-status`. An unparsable `grpc-status` is UNKNOWN.
pub fn from_fields(fields: &HeaderMap) -> Option<Ending> {
    let raw = fields.get("grpc-status")?;
    let message = fields
        .get("grpc-message")
        .map(|v| {
            percent_encoding::percent_decode(v.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    Some(
        match raw.to_str().ok().and_then(|s| s.parse::<u32>().ok()) {
            Some(code) => Ending::new(code, message),
            None => Ending::new(
                code::UNKNOWN,
                format!("unparsable grpc-status `{}`", super::request::text(raw)),
            ),
        },
    )
}

/// The ending of trailers without `grpc-status` (the mapping's 200 row).
pub fn missing_status() -> Ending {
    Ending::new(code::UNKNOWN, "the trailers carry no grpc-status")
}

/// The ending of an h2 error on the call's stream or connection.
pub fn from_h2(e: &h2::Error) -> Ending {
    let text = describe_h2(e);
    if e.is_reset() && e.is_remote() {
        let reason = e.reason().unwrap_or(h2::Reason::INTERNAL_ERROR);
        return Ending::new(from_reset(reason), text);
    }
    if e.is_go_away() || e.is_io() {
        return Ending::new(code::UNAVAILABLE, text);
    }
    Ending::new(code::INTERNAL, text)
}

/// The status of a server's RST_STREAM code (PROTOCOL-HTTP2.md, "Errors").
pub fn from_reset(reason: h2::Reason) -> u32 {
    match reason {
        h2::Reason::CANCEL => code::CANCELLED,
        h2::Reason::REFUSED_STREAM => code::UNAVAILABLE,
        h2::Reason::ENHANCE_YOUR_CALM => code::RESOURCE_EXHAUSTED,
        h2::Reason::INADEQUATE_SECURITY => code::PERMISSION_DENIED,
        _ => code::INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn http_statuses_map_as_the_table_says() {
        let table = [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 14),
            (502, 14),
            (503, 14),
            (504, 14),
            (200, 2),
            (415, 2),
            (500, 2),
        ];
        for (http, grpc) in table {
            assert_eq!(
                from_http_status(StatusCode::from_u16(http).unwrap()),
                grpc,
                "{http}"
            );
        }
    }

    #[test]
    fn status_fields_are_decoded() {
        let mut map = HeaderMap::new();
        assert_eq!(from_fields(&map), None);
        map.insert("grpc-status", HeaderValue::from_static("3"));
        map.insert("grpc-message", HeaderValue::from_static("a%20b%"));
        let ending = from_fields(&map).unwrap();
        assert_eq!(
            (ending.status.code, ending.status.message.as_str()),
            (3, "a b%")
        );
        map.insert("grpc-status", HeaderValue::from_static("x"));
        assert_eq!(from_fields(&map).unwrap().status.code, code::UNKNOWN);
    }

    #[test]
    fn content_types_with_suffixes_are_grpc() {
        for (value, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc;charset=utf-8", true),
            ("application/grpc-web", false),
            ("text/html", false),
        ] {
            let mut map = HeaderMap::new();
            map.insert("content-type", HeaderValue::from_static(value));
            assert_eq!(is_grpc_content_type(&map), grpc, "{value}");
        }
        assert!(!is_grpc_content_type(&HeaderMap::new()));
    }
}
