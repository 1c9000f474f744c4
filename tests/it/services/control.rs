//! The control headers that are handler behaviour (CONTRACT.md section 3):
//! response count, interval, delay, fail-after with code and message, and
//! close-after-requests. Timing checks assert only lower bounds, which a slow
//! machine cannot break.

use super::{assert_ok, bounded, drain, feed, harness, next, open_stream, with_headers};
use grpc_conform::proto::contract::{
    DeviceQuery, HelloRequest, Message, SensorData, StreamRequestData, WatchRequest,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::time::{Duration, Instant};
use tonic::Code;

/// What gRPC percent-encodes in `grpc-message`: controls, non-ASCII and `%`.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

fn data(s: &str) -> StreamRequestData {
    StreamRequestData { data: s.into() }
}

fn hello() -> HelloRequest {
    HelloRequest { name: "x".into() }
}

#[tokio::test]
async fn response_count_overrides_the_default_and_limit() {
    let mut h = harness().await;
    for (count, expected) in [("5", 5), ("0", 0)] {
        let request = with_headers(data("n"), &[("x-conform-response-count", count)]);
        let responses = bounded("ServerStream", h.greeter.server_stream(request))
            .await
            .expect("ServerStream starts")
            .into_inner();
        let (messages, status) = drain(responses).await;
        let want: Vec<_> = (1..=expected).map(|i| format!("n-{i}")).collect();
        let got: Vec<_> = messages.into_iter().map(|m| m.data).collect();
        assert_eq!(got, want, "response-count {count}");
        assert_ok(status);
    }
    let watch = WatchRequest {
        device_id: "w".into(),
        limit: 2,
    };
    let request = with_headers(watch, &[("x-conform-response-count", "4")]);
    let responses = bounded("Watch", h.sensor.watch(request))
        .await
        .expect("Watch starts")
        .into_inner();
    let (readings, status) = drain(responses).await;
    assert_eq!(readings.len(), 4, "response-count beats limit");
    assert_ok(status);
}

#[tokio::test]
async fn response_interval_pauses_before_each_later_response() {
    let mut h = harness().await;
    let request = with_headers(
        data("i"),
        &[
            ("x-conform-response-count", "3"),
            ("x-conform-response-interval-ms", "300"),
        ],
    );
    let mut responses = bounded("ServerStream", h.greeter.server_stream(request))
        .await
        .expect("ServerStream starts")
        .into_inner();
    assert_eq!(next(&mut responses).await.data, "i-1");
    let first = Instant::now();
    let (rest, status) = drain(responses).await;
    assert_eq!(rest.len(), 2);
    assert_ok(status);
    let spread = first.elapsed();
    assert!(
        spread >= Duration::from_millis(600),
        "two intervals took {spread:?}"
    );
}

#[tokio::test]
async fn delay_pauses_before_the_first_response() {
    let mut h = harness().await;
    let delay = [("x-conform-delay-ms", "400")];
    let at_least = Duration::from_millis(400);

    let start = Instant::now();
    let reply = bounded(
        "SayHello",
        h.greeter.say_hello(with_headers(hello(), &delay)),
    )
    .await;
    assert_eq!(reply.expect("SayHello OK").into_inner().message, "Hello x");
    assert!(
        start.elapsed() >= at_least,
        "SayHello after {:?}",
        start.elapsed()
    );

    let start = Instant::now();
    let request = with_headers(data("d"), &delay);
    let mut responses = bounded("ServerStream", h.greeter.server_stream(request))
        .await
        .expect("ServerStream starts")
        .into_inner();
    assert_eq!(next(&mut responses).await.data, "d-1");
    assert!(
        start.elapsed() >= at_least,
        "first response after {:?}",
        start.elapsed()
    );

    let start = Instant::now();
    let requests = with_headers(tokio_stream::iter(vec![data("a")]), &delay);
    let reply = bounded("ClientStream", h.greeter.client_stream(requests)).await;
    assert_eq!(reply.expect("ClientStream OK").into_inner().data, "a");
    assert!(
        start.elapsed() >= at_least,
        "ClientStream after {:?}",
        start.elapsed()
    );

    let (tx, requests) = open_stream();
    feed(&tx, data("b")).await;
    let start = Instant::now();
    let mut responses = bounded(
        "AllStream",
        h.greeter.all_stream(with_headers(requests, &delay)),
    )
    .await
    .expect("AllStream starts")
    .into_inner();
    assert_eq!(next(&mut responses).await.data, "echo: b");
    assert!(
        start.elapsed() >= at_least,
        "first echo after {:?}",
        start.elapsed()
    );
    drop(tx);
}

/// Three messages then a non-OK status: the client sees all three, then the
/// status, whose message comes back decoded exactly.
#[tokio::test]
async fn fail_after_n_sends_n_responses_then_the_status() {
    let mut h = harness().await;
    let text = "50% off: ünïcode\nnewline";
    let encoded = utf8_percent_encode(text, GRPC_MESSAGE).to_string();
    for (after, sent) in [("3", 3), ("1", 1)] {
        let request = with_headers(
            data("f"),
            &[
                ("x-conform-fail-after", after),
                ("x-conform-fail-code", "9"),
                ("x-conform-fail-message", &encoded),
            ],
        );
        let responses = bounded("ServerStream", h.greeter.server_stream(request))
            .await
            .expect("ServerStream starts")
            .into_inner();
        let (messages, status) = drain(responses).await;
        assert_eq!(messages.len(), sent, "fail-after {after}");
        let status = status.expect_err("the scripted failure");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), text);
    }
}

#[tokio::test]
async fn fail_after_zero_fails_before_any_response() {
    let mut h = harness().await;
    let request = with_headers(hello(), &[("x-conform-fail-after", "0")]);
    let status = bounded("SayHello", h.greeter.say_hello(request))
        .await
        .expect_err("the scripted failure");
    assert_eq!((status.code(), status.message()), (Code::Unknown, ""));

    let request = with_headers(
        data("z"),
        &[("x-conform-fail-after", "0"), ("x-conform-fail-code", "14")],
    );
    match bounded("ServerStream", h.greeter.server_stream(request)).await {
        Err(status) => assert_eq!(status.code(), Code::Unavailable),
        Ok(responses) => {
            let (messages, status) = drain(responses.into_inner()).await;
            assert!(messages.is_empty(), "{messages:?}");
            assert_eq!(status.expect_err("UNAVAILABLE").code(), Code::Unavailable);
        }
    }

    // A client stream fails at once, while the client still holds it open.
    let (tx, requests) = open_stream();
    feed(&tx, data("a")).await;
    let request = with_headers(requests, &[("x-conform-fail-after", "0")]);
    let status = bounded("ClientStream", h.greeter.client_stream(request))
        .await
        .expect_err("the scripted failure");
    assert_eq!(status.code(), Code::Unknown);
    drop(tx);
}

#[tokio::test]
async fn fail_after_ends_a_bidi_stream_after_that_many_answers() {
    let mut h = harness().await;
    let (tx, requests) = open_stream();
    feed(&tx, data("a")).await;
    let headers = [
        ("x-conform-fail-after", "2"),
        ("x-conform-fail-code", "8"),
        ("x-conform-fail-message", "enough"),
    ];
    let mut responses = bounded(
        "AllStream",
        h.greeter.all_stream(with_headers(requests, &headers)),
    )
    .await
    .expect("AllStream starts")
    .into_inner();
    assert_eq!(next(&mut responses).await.data, "echo: a");
    feed(&tx, data("b")).await;
    assert_eq!(next(&mut responses).await.data, "echo: b");
    // The client has not half-closed; the status ends the call anyway.
    let (rest, status) = drain(responses).await;
    assert!(rest.is_empty(), "{rest:?}");
    let status = status.expect_err("the scripted failure");
    assert_eq!(
        (status.code(), status.message()),
        (Code::ResourceExhausted, "enough")
    );
    drop(tx);
}

/// Every request is queued before the call and the client never half-closes
/// while the server answers: the server stops reading by itself.
#[tokio::test]
async fn close_after_requests_finishes_ok_without_the_half_close() {
    let mut h = harness().await;
    let close_after = |n| [("x-conform-close-after-requests", n)];

    let (tx, requests) = open_stream();
    for s in ["a", "b", "c"] {
        feed(&tx, data(s)).await;
    }
    let reply = bounded(
        "ClientStream",
        h.greeter
            .client_stream(with_headers(requests, &close_after("2"))),
    )
    .await;
    assert_eq!(reply.expect("ClientStream OK").into_inner().data, "a,b");
    drop(tx);

    let (tx, requests) = open_stream();
    for t in [1, 2] {
        let r = SensorData {
            timestamp: t,
            temperature: 20.0,
            device_id: format!("c{t}"),
        };
        feed(&tx, r).await;
    }
    let summary = bounded(
        "Record",
        h.sensor.record(with_headers(requests, &close_after("1"))),
    )
    .await
    .expect("Record OK")
    .into_inner();
    assert_eq!(
        (summary.count, summary.device_ids),
        (1, vec!["c1".to_string()])
    );
    drop(tx);
    let query = DeviceQuery {
        device_id: "c1".into(),
    };
    let latest = bounded("Latest", h.sensor.latest(query)).await;
    assert_eq!(
        latest
            .expect("stored: Record ended OK")
            .into_inner()
            .timestamp,
        1
    );

    let (tx, requests) = open_stream();
    feed(&tx, data("x")).await;
    feed(&tx, data("y")).await;
    let responses = bounded(
        "AllStream",
        h.greeter
            .all_stream(with_headers(requests, &close_after("1"))),
    )
    .await
    .expect("AllStream starts")
    .into_inner();
    let (messages, status) = drain(responses).await;
    let got: Vec<_> = messages.into_iter().map(|m| m.data).collect();
    assert_eq!(got, ["echo: x"]);
    assert_ok(status);
    drop(tx);

    let (tx, requests) = open_stream::<Message>();
    let responses = bounded(
        "ChatStream",
        h.chat
            .chat_stream(with_headers(requests, &close_after("0"))),
    )
    .await
    .expect("ChatStream starts")
    .into_inner();
    let (messages, status) = drain(responses).await;
    assert!(messages.is_empty(), "{messages:?}");
    assert_ok(status);
    drop(tx);
}

#[tokio::test]
async fn a_malformed_control_header_is_invalid_argument_naming_it() {
    let mut h = harness().await;
    let request = with_headers(hello(), &[("x-conform-delay-ms", "soon")]);
    let status = bounded("SayHello", h.greeter.say_hello(request))
        .await
        .expect_err("INVALID_ARGUMENT");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("x-conform-delay-ms"),
        "{}",
        status.message()
    );
}
