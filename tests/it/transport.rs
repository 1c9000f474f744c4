//! The reference transport (CONTRACT.md sections 4 and 5): the Observer's
//! view of how calls end, deadlines, echo headers. Compression and limits are
//! in `rules`, pings and connection management in `keepalive`, the `serve`
//! command in `serve_cmd`. Calls go to a test Greeter (`greeter`) so the
//! transport is tested apart from the contract's handlers.

mod greeter;
mod keepalive;
mod raw;
mod rules;
mod serve_cmd;
mod with_contract;

use futures::StreamExt;
use grpc_conform::proto::contract::greeter_client::GreeterClient;
use grpc_conform::proto::contract::{HelloRequest, StreamRequestData};
use grpc_conform::proto::observer::{CallRecord, Outcome};
use grpc_conform::reference::{CallRegistry, ReferenceConfig, ReferenceServer};
use prost::Message;
use std::time::Duration;
use tonic::{transport::Channel, Code, Request};

/// Bound on every wait in these tests; generous, since 2 cores are shared.
const WAIT: Duration = Duration::from_secs(10);

async fn client(server: &ReferenceServer) -> GreeterClient<Channel> {
    GreeterClient::new(crate::support::channel(server).await)
        .max_decoding_message_size(64 * 1024 * 1024)
}

/// A request carrying `x-conform-call-id: id` and `headers`.
fn tagged<T>(message: T, id: &str, headers: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-conform-call-id", id.parse().expect("ascii id"));
    for (name, value) in headers {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("ascii value"));
    }
    request
}

/// The record of call `id` once it stopped running (fails after [`WAIT`]).
async fn settled(registry: &CallRegistry, id: &str) -> CallRecord {
    let record = registry.get(id, WAIT).await.expect("the call was recorded");
    assert_ne!(
        record.outcome,
        Outcome::Running as i32,
        "call {id} still running: {record:?}"
    );
    record
}

/// Waits until call `id` is open and has read `requests` messages.
async fn wait_for_requests(registry: &CallRegistry, id: &str, requests: u32) {
    let polled = async {
        loop {
            if let Some(r) = registry.get(id, Duration::ZERO).await {
                if r.requests_received >= requests {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, polled)
        .await
        .unwrap_or_else(|_| panic!("call {id} never read {requests} requests"));
}

/// A ServerStream request for `count` responses `interval_ms` apart.
fn paced(id: &str, count: &str, interval_ms: &str) -> Request<StreamRequestData> {
    tagged(
        data(id),
        id,
        &[
            ("x-conform-response-count", count),
            ("x-conform-response-interval-ms", interval_ms),
        ],
    )
}

fn data(s: &str) -> StreamRequestData {
    StreamRequestData { data: s.into() }
}

#[tokio::test]
async fn unary_completes_with_its_record() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let mut request = tagged(
        HelloRequest { name: "Ada".into() },
        "unary",
        &[("x-extra", "1")],
    );
    request.set_timeout(Duration::from_secs(30));
    let reply = c.say_hello(request).await.expect("SayHello answers");
    assert_eq!(reply.into_inner().message, "Hello Ada");
    let r = settled(&registry, "unary").await;
    assert_eq!(r.outcome, Outcome::Completed as i32);
    assert_eq!(r.status_code, 0);
    assert_eq!(r.method, "/Greeter/SayHello");
    assert_eq!((r.requests_received, r.responses_sent), (1, 1));
    assert!(r.half_close_received);
    assert_eq!(r.timeout_ms, 30_000);
    assert_eq!(r.request_encoding, "");
    assert_eq!(r.metadata.get("x-extra").map(String::as_str), Some("1"));
    assert_eq!(
        r.metadata.get("x-conform-call-id").map(String::as_str),
        Some("unary")
    );
    assert!(
        !r.metadata.contains_key("grpc-timeout"),
        "only x- headers: {:?}",
        r.metadata
    );
}

#[tokio::test]
async fn client_stream_half_close_is_recorded() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let requests = futures::stream::iter([data("a"), data("b"), data("c")]);
    let reply = c
        .client_stream(tagged(requests, "half-close", &[]))
        .await
        .expect("ClientStream answers");
    assert_eq!(reply.into_inner().data, "a,b,c");
    let r = settled(&registry, "half-close").await;
    assert_eq!(r.outcome, Outcome::Completed as i32);
    assert!(r.half_close_received);
    assert_eq!((r.requests_received, r.responses_sent), (3, 1));
}

#[tokio::test]
async fn server_stream_counts_every_response() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let request = tagged(data("x"), "count", &[("x-conform-response-count", "25")]);
    let mut stream = c
        .server_stream(request)
        .await
        .expect("ServerStream answers")
        .into_inner();
    let mut got = Vec::new();
    while let Some(message) = stream.message().await.expect("stream ends OK") {
        got.push(message.data);
    }
    assert_eq!(got.len(), 25);
    assert_eq!(got[24], "x-25");
    let r = settled(&registry, "count").await;
    assert_eq!((r.outcome, r.status_code), (Outcome::Completed as i32, 0));
    assert_eq!(r.responses_sent, 25);
}

#[tokio::test]
async fn cancel_before_any_message() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let call = tokio::spawn(async move {
        let never = futures::stream::pending::<StreamRequestData>();
        c.client_stream(tagged(never, "cancel-early", &[])).await
    });
    wait_for_requests(&registry, "cancel-early", 0).await;
    // Dropping the call makes the client reset the stream (RST_STREAM CANCEL).
    call.abort();
    let r = settled(&registry, "cancel-early").await;
    assert_eq!(r.outcome, Outcome::Cancelled as i32, "{r:?}");
    assert_eq!(r.requests_received, 0);
    assert!(!r.half_close_received, "a cancel is not a half-close");
}

#[tokio::test]
async fn cancel_mid_client_stream_is_not_a_half_close() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let call = tokio::spawn(async move {
        let two_then_wait =
            futures::stream::iter([data("a"), data("b")]).chain(futures::stream::pending());
        c.client_stream(tagged(two_then_wait, "cancel-mid-client", &[]))
            .await
    });
    wait_for_requests(&registry, "cancel-mid-client", 2).await;
    call.abort();
    let r = settled(&registry, "cancel-mid-client").await;
    // tonic alone would hand the handler a clean end of stream here
    // (grpc-rust#1315): the record must say CANCELLED, without half-close.
    assert_eq!(r.outcome, Outcome::Cancelled as i32, "{r:?}");
    assert_eq!(r.requests_received, 2);
    assert!(
        !r.half_close_received,
        "a cancel is not a half-close: {r:?}"
    );
    assert_eq!(r.responses_sent, 0);
}

#[tokio::test]
async fn rst_stream_mid_client_stream_is_not_a_half_close() {
    // The exact wire case of grpc-rust#1315: RST_STREAM(CANCEL) on an open
    // client stream, the connection staying up.
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut call = raw::H2Call::open(
        server.local_addr(),
        "/Greeter/ClientStream",
        &[("x-conform-call-id", "rst-mid-client")],
    )
    .await;
    for d in ["a", "b"] {
        call.send_message(&data(d).encode_to_vec());
    }
    wait_for_requests(&registry, "rst-mid-client", 2).await;
    call.send.send_reset(h2::Reason::CANCEL);
    let r = settled(&registry, "rst-mid-client").await;
    assert_eq!(r.outcome, Outcome::Cancelled as i32, "{r:?}");
    assert_eq!(r.requests_received, 2);
    assert!(
        !r.half_close_received,
        "a cancel is not a half-close: {r:?}"
    );
}

#[tokio::test]
async fn cancel_mid_server_stream() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let request = paced("cancel-mid-server", "1000", "20");
    let mut stream = c
        .server_stream(request)
        .await
        .expect("ServerStream answers")
        .into_inner();
    for _ in 0..2 {
        stream
            .message()
            .await
            .expect("a response")
            .expect("not the end");
    }
    drop(stream);
    let r = settled(&registry, "cancel-mid-server").await;
    assert_eq!(r.outcome, Outcome::Cancelled as i32, "{r:?}");
    assert!(r.responses_sent >= 2 && r.responses_sent < 1000, "{r:?}");
}

#[tokio::test]
async fn cancel_mid_bidi() {
    // Over `h2`: a tonic client only resets a bidi call when both halves are
    // dropped, and dropping the request half first would half-close.
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut call = raw::H2Call::open(
        server.local_addr(),
        "/Greeter/AllStream",
        &[("x-conform-call-id", "cancel-bidi")],
    )
    .await;
    let exchange = async {
        call.send_message(&data("one").encode_to_vec());
        let response = (&mut call.response).await.expect("response headers");
        let mut body = response.into_body();
        let first = body.data().await.expect("a response").expect("data");
        assert!(!first.is_empty());
        call.send.send_reset(h2::Reason::CANCEL);
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("bidi exchange within the wait");
    let r = settled(&registry, "cancel-bidi").await;
    assert_eq!(r.outcome, Outcome::Cancelled as i32, "{r:?}");
    assert_eq!((r.requests_received, r.responses_sent), (1, 1));
    assert!(!r.half_close_received, "{r:?}");
}

/// A SayHello that waits 10 s, over `h2`: tonic's client enforces the
/// deadline itself and would answer before the server does.
async fn slow_hello_h2(server: &ReferenceServer, headers: &[(&str, &str)]) -> raw::H2Reply {
    let body = HelloRequest {
        name: greeter::SLOW.into(),
    }
    .encode_to_vec();
    raw::h2_call(
        server.local_addr(),
        "/Greeter/SayHello",
        headers,
        raw::grpc_message(0, &body),
    )
    .await
}

#[tokio::test]
async fn deadline_before_headers_is_trailers_only_deadline_exceeded() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let started = std::time::Instant::now();
    let reply = slow_hello_h2(
        &server,
        &[
            ("grpc-timeout", "300m"),
            ("x-conform-call-id", "deadline-early"),
        ],
    )
    .await;
    assert_eq!(reply.grpc_status(), Some("4"), "{reply:?}");
    assert!(reply.trailers.is_none(), "trailers-only: {reply:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ended by the deadline, not the handler"
    );
    let r = settled(&registry, "deadline-early").await;
    assert_eq!(
        (r.outcome, r.status_code),
        (Outcome::DeadlineExceeded as i32, 4)
    );
    assert_eq!(r.timeout_ms, 300);
}

#[tokio::test]
async fn malformed_grpc_timeout_is_internal() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let reply = slow_hello_h2(
        &server,
        &[
            ("grpc-timeout", "123456789m"),
            ("x-conform-call-id", "bad-timeout"),
        ],
    )
    .await;
    assert_eq!(reply.grpc_status(), Some("13"), "{reply:?}");
    let r = settled(&registry, "bad-timeout").await;
    assert_eq!(
        (r.outcome, r.status_code, r.timeout_ms),
        (Outcome::Completed as i32, 13, 0)
    );
}

#[tokio::test]
async fn deadline_after_headers_stops_a_server_stream() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let mut request = paced("deadline-late", "1000", "50");
    request.set_timeout(Duration::from_millis(500));
    let mut stream = c
        .server_stream(request)
        .await
        .expect("headers come first")
        .into_inner();
    let mut received = 0;
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => received += 1,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the stream stops at its deadline");
    let status = end.expect("ends with a status, not OK");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!((1..1000).contains(&received), "received {received}");
    let r = settled(&registry, "deadline-late").await;
    assert_eq!(
        (r.outcome, r.status_code),
        (Outcome::DeadlineExceeded as i32, 4)
    );
    assert!(r.responses_sent >= 1 && r.responses_sent < 1000, "{r:?}");
}

#[tokio::test]
async fn echo_headers_come_back_as_header_and_trailer() {
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let mut request = Request::new(data("e"));
    request
        .metadata_mut()
        .insert("x-grpc-test-echo-initial", "initial-value".parse().unwrap());
    request.metadata_mut().insert_bin(
        "x-grpc-test-echo-trailing-bin",
        tonic::metadata::MetadataValue::from_bytes(b"\x00\xfftrail"),
    );
    let response = c
        .server_stream(request)
        .await
        .expect("ServerStream answers");
    assert_eq!(
        response.metadata().get("x-grpc-test-echo-initial").unwrap(),
        "initial-value"
    );
    assert!(
        response
            .metadata()
            .get_bin("x-grpc-test-echo-trailing-bin")
            .is_none(),
        "trailer, not header"
    );
    let mut stream = response.into_inner();
    while stream.message().await.expect("stream ends OK").is_some() {}
    let trailers = stream
        .trailers()
        .await
        .expect("trailers")
        .expect("some trailers");
    let echoed = trailers
        .get_bin("x-grpc-test-echo-trailing-bin")
        .expect("echoed in trailers");
    assert_eq!(echoed.to_bytes().unwrap().as_ref(), b"\x00\xfftrail");
}

#[tokio::test]
async fn echo_headers_in_a_trailers_only_response() {
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let reply = slow_hello_h2(
        &server,
        &[
            ("grpc-timeout", "100m"),
            ("x-grpc-test-echo-initial", "i"),
            ("x-grpc-test-echo-trailing-bin", "dA=="),
        ],
    )
    .await;
    assert_eq!(reply.grpc_status(), Some("4"), "{reply:?}");
    assert!(reply.trailers.is_none(), "trailers-only: {reply:?}");
    assert_eq!(reply.headers["x-grpc-test-echo-initial"], "i");
    assert_eq!(reply.headers["x-grpc-test-echo-trailing-bin"], "dA==");
}

#[tokio::test]
async fn shutdown_drains_and_stops_accepting() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let addr = server.local_addr();
    let mut c = client(&server).await;
    let request = paced("graceful", "5", "100");
    let mut stream = c
        .server_stream(request)
        .await
        .expect("answers")
        .into_inner();
    stream.message().await.expect("first").expect("not the end");
    let stopping = tokio::spawn(server.shutdown());
    // The call in flight still finishes under the graceful GOAWAY.
    let mut rest = 0;
    while stream.message().await.expect("ends OK").is_some() {
        rest += 1;
    }
    assert_eq!(rest, 4);
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("shutdown is bounded")
        .expect("task")
        .expect("clean shutdown");
    assert_eq!(
        settled(&registry, "graceful").await.outcome,
        Outcome::Completed as i32
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
