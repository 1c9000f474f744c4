//! Every method's behaviour without control headers (CONTRACT.md section 2).

use super::{assert_ok, bounded, drain, feed, harness, next, open_stream};
use grpc_conform::proto::contract::{
    DeviceQuery, HelloRequest, Message, RecordSummary, SensorData, StreamRequestData, WatchRequest,
};
use std::time::{SystemTime, UNIX_EPOCH};
use tonic::Code;

fn data(s: &str) -> StreamRequestData {
    StreamRequestData { data: s.into() }
}

fn reading(timestamp: i64, temperature: f32, device_id: &str) -> SensorData {
    SensorData {
        timestamp,
        temperature,
        device_id: device_id.into(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

#[tokio::test]
async fn say_hello_greets_by_name() {
    let mut h = harness().await;
    let request = HelloRequest {
        name: "world".into(),
    };
    let reply = bounded("SayHello", h.greeter.say_hello(request)).await;
    assert_eq!(
        reply.expect("SayHello OK").into_inner().message,
        "Hello world"
    );
}

#[tokio::test]
async fn server_stream_sends_three_numbered_responses() {
    let mut h = harness().await;
    let responses = bounded("ServerStream", h.greeter.server_stream(data("x")))
        .await
        .expect("ServerStream starts")
        .into_inner();
    let (messages, status) = drain(responses).await;
    let got: Vec<_> = messages.into_iter().map(|m| m.data).collect();
    assert_eq!(got, ["x-1", "x-2", "x-3"]);
    assert_ok(status);
}

#[tokio::test]
async fn client_stream_joins_in_arrival_order() {
    let mut h = harness().await;
    let requests = tokio_stream::iter(vec![data("a"), data("b"), data("c")]);
    let reply = bounded("ClientStream", h.greeter.client_stream(requests)).await;
    assert_eq!(reply.expect("ClientStream OK").into_inner().data, "a,b,c");

    let none = tokio_stream::iter(Vec::<StreamRequestData>::new());
    let reply = bounded("empty ClientStream", h.greeter.client_stream(none)).await;
    assert_eq!(reply.expect("empty ClientStream OK").into_inner().data, "");
}

/// Each answer arrives while the client still holds its stream open: the
/// server does not wait for the half-close.
#[tokio::test]
async fn all_stream_answers_each_request_at_once() {
    let mut h = harness().await;
    let (tx, requests) = open_stream();
    feed(&tx, data("one")).await;
    let mut responses = bounded("AllStream", h.greeter.all_stream(requests))
        .await
        .expect("AllStream starts")
        .into_inner();
    assert_eq!(next(&mut responses).await.data, "echo: one");
    feed(&tx, data("two")).await;
    assert_eq!(next(&mut responses).await.data, "echo: two");
    drop(tx);
    let (rest, status) = drain(responses).await;
    assert!(rest.is_empty(), "nothing after the half-close: {rest:?}");
    assert_ok(status);
}

#[tokio::test]
async fn chat_stream_echoes_as_server_with_the_time() {
    let mut h = harness().await;
    let (tx, requests) = open_stream();
    let hello = Message {
        user: "alice".into(),
        content: "hi".into(),
        timestamp: 1,
    };
    feed(&tx, hello).await;
    let before = unix_now();
    let mut responses = bounded("ChatStream", h.chat.chat_stream(requests))
        .await
        .expect("ChatStream starts")
        .into_inner();
    let echo = next(&mut responses).await;
    let after = unix_now();
    assert_eq!(
        (echo.user.as_str(), echo.content.as_str()),
        ("server", "echo: hi")
    );
    // The request was queued a moment before `before`; allow one second of slack.
    assert!(
        (before - 1..=after).contains(&echo.timestamp),
        "timestamp {} not within {before}..={after}",
        echo.timestamp
    );
    drop(tx);
    let (rest, status) = drain(responses).await;
    assert!(rest.is_empty());
    assert_ok(status);
}

#[tokio::test]
async fn record_summarises_readings_with_out_of_order_ones() {
    let mut h = harness().await;
    let readings = vec![
        reading(10, 21.5, "b"),
        reading(12, 19.0, "a"),
        reading(11, 23.0, "b"),
        reading(13, 20.5, "c"),
        reading(9, 22.0, "a"),
    ];
    let summary = bounded("Record", h.sensor.record(tokio_stream::iter(readings)))
        .await
        .expect("Record OK")
        .into_inner();
    let expected = RecordSummary {
        count: 5,
        min: 19.0,
        max: 23.0,
        mean: (21.5 + 19.0 + 23.0 + 20.5 + 22.0) / 5.0,
        first_timestamp: 10,
        last_timestamp: 9,
        out_of_order: 2,
        device_ids: vec!["b".into(), "a".into(), "c".into()],
    };
    assert_eq!(summary, expected);
}

#[tokio::test]
async fn record_of_nothing_is_all_zero() {
    let mut h = harness().await;
    let none = tokio_stream::iter(Vec::<SensorData>::new());
    let summary = bounded("empty Record", h.sensor.record(none)).await;
    assert_eq!(
        summary.expect("empty Record OK").into_inner(),
        RecordSummary::default()
    );
}

/// The request stream stays open (the test holds its sender), so the status
/// can only come from the server ending the call at the bad reading.
#[tokio::test]
async fn record_with_an_empty_device_fails_before_the_half_close() {
    let mut h = harness().await;
    let (tx, requests) = open_stream();
    feed(&tx, reading(1, 20.0, "ok")).await;
    feed(&tx, reading(2, 20.0, "")).await;
    let result = bounded("Record with empty device_id", h.sensor.record(requests)).await;
    let status = result.expect_err("INVALID_ARGUMENT");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Only now does the client half-close.
    drop(tx);

    // A Record that failed stores nothing.
    let query = DeviceQuery {
        device_id: "ok".into(),
    };
    let latest = bounded("Latest after a failed Record", h.sensor.latest(query)).await;
    assert_eq!(latest.expect_err("NOT_FOUND").code(), Code::NotFound);
}

#[tokio::test]
async fn latest_answers_the_last_reading_of_a_completed_record() {
    let mut h = harness().await;
    let readings = vec![
        reading(1, 20.0, "d1"),
        reading(2, 21.0, "d2"),
        reading(3, 22.0, "d1"),
    ];
    bounded("Record", h.sensor.record(tokio_stream::iter(readings)))
        .await
        .expect("Record OK");
    for (device, expected) in [
        ("d1", reading(3, 22.0, "d1")),
        ("d2", reading(2, 21.0, "d2")),
    ] {
        let query = DeviceQuery {
            device_id: device.into(),
        };
        let latest = bounded("Latest", h.sensor.latest(query)).await;
        assert_eq!(latest.expect("Latest OK").into_inner(), expected);
    }
    let unknown = DeviceQuery {
        device_id: "never".into(),
    };
    let status = bounded("Latest unknown", h.sensor.latest(unknown)).await;
    assert_eq!(status.expect_err("NOT_FOUND").code(), Code::NotFound);
    let empty = DeviceQuery::default();
    let status = bounded("Latest empty", h.sensor.latest(empty)).await;
    assert_eq!(
        status.expect_err("INVALID_ARGUMENT").code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn watch_sends_limit_readings_or_three() {
    let mut h = harness().await;
    for (limit, count) in [(0, 3), (5, 5)] {
        let request = WatchRequest {
            device_id: "w".into(),
            limit,
        };
        let responses = bounded("Watch", h.sensor.watch(request))
            .await
            .expect("Watch starts")
            .into_inner();
        let (readings, status) = drain(responses).await;
        let expected: Vec<_> = (0..count)
            .map(|i| reading(1000 + i, 20.0 + 0.25 * i as f32, "w"))
            .collect();
        assert_eq!(readings, expected, "limit {limit}");
        assert_ok(status);
    }
}

#[tokio::test]
async fn watch_without_a_device_fails_before_any_reading() {
    let mut h = harness().await;
    let request = WatchRequest {
        device_id: String::new(),
        limit: 2,
    };
    // tonic reports a trailers-only error from the call itself; an error after
    // headers would come from the stream. Either way no reading may come first.
    match bounded("Watch empty device", h.sensor.watch(request)).await {
        Err(status) => assert_eq!(status.code(), Code::InvalidArgument),
        Ok(responses) => {
            let (readings, status) = drain(responses.into_inner()).await;
            assert!(readings.is_empty(), "{readings:?}");
            assert_eq!(
                status.expect_err("INVALID_ARGUMENT").code(),
                Code::InvalidArgument
            );
        }
    }
}
