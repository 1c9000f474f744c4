//! The contract's names, in one place for both sides: the client (driver,
//! capability probes) and the reference server read them from here, so
//! neither imports the other's constants. The page itself is
//! `docs/contract.md`.

/// The Observer's method: what the server saw of a call.
pub const GET_CALL: &str = "/conform.v1.Observer/GetCall";

/// Records a call for the Observer under this id.
pub const CALL_ID: &str = "x-conform-call-id";
/// Responses of ServerStream and Watch.
pub const RESPONSE_COUNT: &str = "x-conform-response-count";
/// Pause before each response after the first.
pub const RESPONSE_INTERVAL_MS: &str = "x-conform-response-interval-ms";
/// Pause before the first response.
pub const DELAY_MS: &str = "x-conform-delay-ms";
/// End the call with a status after N responses.
pub const FAIL_AFTER: &str = "x-conform-fail-after";
/// The numeric status of a scripted failure.
pub const FAIL_CODE: &str = "x-conform-fail-code";
/// The message of a scripted failure.
pub const FAIL_MESSAGE: &str = "x-conform-fail-message";
/// Finish OK after N requests without reading further.
pub const CLOSE_AFTER_REQUESTS: &str = "x-conform-close-after-requests";
/// Pad each response's text to this many bytes.
pub const RESPONSE_SIZE: &str = "x-conform-response-size";
/// Base64 of a `google.rpc.Status`, sent as the scripted failure's
/// `grpc-status-details-bin`.
pub const FAIL_DETAILS_BIN: &str = "x-conform-fail-details-bin";
/// Compress responses with this encoding when the client accepts it.
pub const RESPONSE_ENCODING: &str = "x-conform-response-encoding";
/// Sent back as a response header (interop-test-descriptions.md).
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Sent back as a trailer (interop-test-descriptions.md).
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

/// Every control header that scripts a call (section 3), besides the call id.
pub const CONTROL_HEADERS: [&str; 12] = [
    RESPONSE_COUNT,
    RESPONSE_INTERVAL_MS,
    DELAY_MS,
    FAIL_AFTER,
    FAIL_CODE,
    FAIL_MESSAGE,
    CLOSE_AFTER_REQUESTS,
    RESPONSE_SIZE,
    FAIL_DETAILS_BIN,
    RESPONSE_ENCODING,
    ECHO_INITIAL,
    ECHO_TRAILING,
];

/// Whether `name` is a control header (or the call id) of the contract:
/// every `x-conform-` name is reserved for the contract.
pub fn is_control_header(name: &str) -> bool {
    name.starts_with("x-conform-") || name == ECHO_INITIAL || name == ECHO_TRAILING
}

/// The request encodings the contract names besides identity.
pub const ENCODINGS: [&str; 3] = ["gzip", "deflate", "zstd"];

/// The methods of the contract's services (section 1), Observer last.
pub const METHODS: [&str; 9] = [
    "/ChatService/ChatStream",
    "/Greeter/SayHello",
    "/Greeter/ServerStream",
    "/Greeter/ClientStream",
    "/Greeter/AllStream",
    "/SensorService/Record",
    "/SensorService/Watch",
    "/SensorService/Latest",
    GET_CALL,
];
