//! The request head of a call, in the order of PROTOCOL-HTTP2.md's
//! Call-Definition: POST, the path, `te: trailers`, `grpc-timeout` for the
//! time left of the deadline, `content-type: application/grpc`, the request
//! encoding and the encodings the driver accepts, its user agent, then the
//! application's metadata.

use super::prepare::PreparedCall;
use crate::drive::grpc_timeout;
use http::{HeaderValue, Method, Request};
use std::time::Duration;

/// The response encodings the driver announces in `grpc-accept-encoding`; a
/// compressed response in any other is INTERNAL (compression.md), even one
/// the codec could read.
pub const ACCEPTED: &[&str] = &["gzip"];

/// The `user-agent`, in the shape PROTOCOL-HTTP2.md recommends
/// (`grpc-` language `-` variant `/` version).
pub const USER_AGENT: &str = concat!("grpc-rust-conform/", env!("CARGO_PKG_VERSION"));

/// The head of `call` to `authority`; `timeout` is the time left of its
/// deadline (none: no `grpc-timeout`).
pub fn head(
    call: &PreparedCall,
    authority: &str,
    timeout: Option<Duration>,
) -> Result<Request<()>, http::Error> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{authority}{}", call.path))
        .header("te", "trailers");
    if let Some(left) = timeout {
        // Rounded up: a deadline may be later than asked, never earlier.
        let ms = left.as_micros().div_ceil(1000) as u64;
        builder = builder.header("grpc-timeout", grpc_timeout(ms.max(1)));
    }
    builder = builder.header("content-type", "application/grpc");
    if let Some(encoding) = call.compression {
        builder = builder.header("grpc-encoding", encoding);
    }
    builder = builder
        .header("grpc-accept-encoding", ACCEPTED.join(","))
        .header("user-agent", USER_AGENT);
    let mut request = builder.body(())?;
    let headers = request.headers_mut();
    for (name, value) in &call.metadata {
        headers.append(name.clone(), value.clone());
    }
    Ok(request)
}

/// Response metadata as a client API gives it: every field but the status
/// (`grpc-status`, `grpc-message`), names as received, `-bin` values
/// decoded from the wire and shown as padded base64.
pub fn metadata_pairs(map: &http::HeaderMap) -> Vec<(String, String)> {
    use base64::Engine as _;
    map.iter()
        .filter(|(name, _)| !matches!(name.as_str(), "grpc-status" | "grpc-message"))
        .map(|(name, value)| {
            let shown = if name.as_str().ends_with("-bin") {
                match value.to_str().ok().and_then(super::prepare::base64_any) {
                    Some(raw) => base64::engine::general_purpose::STANDARD.encode(raw),
                    None => String::from_utf8_lossy(value.as_bytes()).into_owned(),
                }
            } else {
                text(value)
            };
            (name.as_str().to_string(), shown)
        })
        .collect()
}

/// A header value as text (lossy for bytes that are not UTF-8).
pub fn text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::plan::Mode;

    fn call() -> PreparedCall {
        let pool = crate::descriptors::Descriptors::contract().unwrap();
        PreparedCall {
            path: "/Greeter/SayHello".into(),
            mode: Mode::Unary,
            output: pool.method("/Greeter/SayHello").unwrap().output(),
            metadata: vec![("x-a".parse().unwrap(), HeaderValue::from_static("1"))],
            deadline: None,
            compression: Some("gzip"),
            steps: Vec::new(),
        }
    }

    #[test]
    fn the_head_has_the_grpc_fields_in_order_then_metadata() {
        let head = head(&call(), "127.0.0.1:1", Some(Duration::from_micros(1500))).unwrap();
        let names: Vec<&str> = head.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "te",
                "grpc-timeout",
                "content-type",
                "grpc-encoding",
                "grpc-accept-encoding",
                "user-agent",
                "x-a"
            ]
        );
        assert_eq!(head.headers()["grpc-timeout"], "2m");
        assert_eq!(head.uri().path(), "/Greeter/SayHello");
    }

    #[test]
    fn binary_metadata_is_shown_padded_and_status_fields_left_out() {
        let mut map = http::HeaderMap::new();
        map.insert("x-t-bin", HeaderValue::from_static("AAE"));
        map.insert("grpc-status", HeaderValue::from_static("0"));
        map.insert("x-u", HeaderValue::from_static("v"));
        assert_eq!(
            metadata_pairs(&map),
            [
                ("x-t-bin".to_string(), "AAE=".to_string()),
                ("x-u".into(), "v".into())
            ]
        );
    }
}
