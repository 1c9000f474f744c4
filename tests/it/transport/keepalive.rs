//! Pings and connection management (proposals A8 and A9) seen on the wire
//! with a frame-level client, since tonic hides GOAWAY and h2 hides its
//! debug data.

use super::greeter;
use super::raw::{grpc_message, ping_acked, RawConn, RawFrame};
use super::{settled, WAIT};
use grpc_conform::proto::contract::StreamRequestData;
use grpc_conform::proto::observer::Outcome;
use grpc_conform::reference::{PingPolicy, ReferenceConfig, ServerKeepalive};
use grpc_conform::wire::frame::{error_code, flag, kind};
use prost::Message;
use std::time::Duration;

const CLIENT_STREAM: &str = "/Greeter/ClientStream";

fn policy(min_interval_ms: u64, permit_without_calls: bool) -> ReferenceConfig {
    ReferenceConfig {
        ping_policy: PingPolicy {
            min_interval: Duration::from_millis(min_interval_ms),
            permit_without_calls,
            ..PingPolicy::default()
        },
        ..ReferenceConfig::default()
    }
}

async fn expect_goaway(conn: &mut RawConn) -> (u32, u32, String) {
    let frame: RawFrame = conn
        .next_significant()
        .await
        .expect("a GOAWAY before the close");
    frame.goaway()
}

#[tokio::test]
async fn ping_flood_on_an_open_idle_call_gets_too_many_pings_on_the_fourth() {
    // Default policy: 5 minutes, 2 strikes; pings 1 s apart as in BEHAVIOURS.md.
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    conn.open_call(1, CLIENT_STREAM).await;
    for i in 1..=3u8 {
        ping_acked(&mut conn, [i; 8]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    conn.ping([4; 8]).await;
    let ack = conn
        .next_significant()
        .await
        .expect("the 4th ping is still answered");
    assert_eq!(
        (ack.header.kind, ack.header.has(flag::ACK)),
        (kind::PING, true),
        "{ack:?}"
    );
    let (last, code, debug) = expect_goaway(&mut conn).await;
    assert_eq!(
        (last, code, debug.as_str()),
        (1, error_code::ENHANCE_YOUR_CALM, "too_many_pings")
    );
    assert!(
        conn.closed().await,
        "the connection is closed after the GOAWAY"
    );
}

#[tokio::test]
async fn headers_and_data_sent_clear_the_strikes() {
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    conn.open_call(1, CLIENT_STREAM).await;
    // Pings back to back: the first is free, the next two are the 2 strikes.
    for i in 1..=3u8 {
        ping_acked(&mut conn, [i; 8]).await;
    }
    // A whole call on stream 3: the server sends HEADERS, DATA and trailers.
    conn.open_call(3, "/Greeter/ServerStream").await;
    let request = StreamRequestData { data: "r".into() }.encode_to_vec();
    conn.send(kind::DATA, flag::END_STREAM, 3, &grpc_message(0, &request))
        .await;
    loop {
        let frame = conn.next_significant().await.expect("the call is answered");
        assert_ne!(frame.header.kind, kind::GOAWAY, "{frame:?}");
        if frame.header.stream_id == 3
            && frame.header.kind == kind::HEADERS
            && frame.header.has(flag::END_STREAM)
        {
            break;
        }
    }
    // Cleared: again one free ping and two strikes before the GOAWAY.
    for i in 4..=6u8 {
        ping_acked(&mut conn, [i; 8]).await;
    }
    conn.ping([7; 8]).await;
    let ack = conn.next_significant().await.expect("answered");
    assert_eq!(ack.header.kind, kind::PING);
    let (_, code, debug) = expect_goaway(&mut conn).await;
    assert_eq!(
        (code, debug.as_str()),
        (error_code::ENHANCE_YOUR_CALM, "too_many_pings")
    );
}

#[tokio::test]
async fn pings_spaced_beyond_the_minimum_get_no_goaway() {
    let (server, _registry) = greeter::start(policy(200, false)).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    conn.open_call(1, CLIENT_STREAM).await;
    for i in 1..=6u8 {
        ping_acked(&mut conn, [i; 8]).await;
        // Twice the minimum: a loaded machine only makes the gap longer.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    ping_acked(&mut conn, [7; 8]).await;
}

#[tokio::test]
async fn pings_with_no_call_open_strike_unless_permitted() {
    let (server, _registry) = greeter::start(policy(200, false)).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    // With no call, the 2-hour idle interval applies: 400 ms apart is a flood.
    for i in 1..=3u8 {
        ping_acked(&mut conn, [i; 8]).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    conn.ping([4; 8]).await;
    let ack = conn.next_significant().await.expect("answered");
    assert_eq!(ack.header.kind, kind::PING);
    let (last, code, debug) = expect_goaway(&mut conn).await;
    assert_eq!(
        (last, code, debug.as_str()),
        (0, error_code::ENHANCE_YOUR_CALM, "too_many_pings")
    );

    let (server, _registry) = greeter::start(policy(200, true)).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    for i in 1..=5u8 {
        ping_acked(&mut conn, [i; 8]).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// Expects hyper's graceful close with `debug`: GOAWAY(2^31-1), a PING to
/// acknowledge, GOAWAY(last stream), then the close.
async fn expect_graceful_close(conn: &mut RawConn, debug: &str, last_stream: u32) {
    let (last, code, got) = expect_goaway(conn).await;
    assert_eq!(
        (last, code, got.as_str()),
        ((1 << 31) - 1, error_code::NO_ERROR, debug)
    );
    let ping = conn
        .next_significant()
        .await
        .expect("a PING after the first GOAWAY");
    assert_eq!(
        (ping.header.kind, ping.header.has(flag::ACK)),
        (kind::PING, false),
        "{ping:?}"
    );
    conn.send(kind::PING, flag::ACK, 0, &ping.payload).await;
    let (last, code, got) = expect_goaway(conn).await;
    assert_eq!(
        (last, code, got.as_str()),
        (last_stream, error_code::NO_ERROR, debug)
    );
}

#[tokio::test]
async fn max_age_sends_goaway_max_age_then_closes() {
    let config = ReferenceConfig {
        max_connection_age: Some(Duration::from_millis(300)),
        max_connection_age_grace: Some(Duration::from_secs(1)),
        ..ReferenceConfig::default()
    };
    let (server, _registry) = greeter::start(config).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    expect_graceful_close(&mut conn, "max_age", 0).await;
    assert!(conn.closed().await);
}

#[tokio::test]
async fn max_age_grace_ends_calls_still_open() {
    let config = ReferenceConfig {
        max_connection_age: Some(Duration::from_millis(300)),
        max_connection_age_grace: Some(Duration::from_millis(500)),
        ..ReferenceConfig::default()
    };
    let (server, registry) = greeter::start(config).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    conn.open_call(1, CLIENT_STREAM).await;
    let started = std::time::Instant::now();
    // The call never ends by itself: only the grace closes the connection.
    let (last, code, debug) = expect_goaway(&mut conn).await;
    assert_eq!(
        (last, code, debug.as_str()),
        ((1 << 31) - 1, error_code::NO_ERROR, "max_age")
    );
    assert!(conn.closed().await, "closed once the grace ran out");
    assert!(started.elapsed() < WAIT);
    // No call id on a raw call: the registry is empty, the server is fine.
    assert!(registry.get("none", Duration::ZERO).await.is_none());
}

#[tokio::test]
async fn max_idle_sends_goaway_max_idle() {
    let config = ReferenceConfig {
        max_connection_idle: Some(Duration::from_millis(300)),
        ..ReferenceConfig::default()
    };
    let (server, _registry) = greeter::start(config).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    expect_graceful_close(&mut conn, "max_idle", 0).await;
    assert!(conn.closed().await);
}

#[tokio::test]
async fn a_call_in_flight_keeps_an_idle_limited_connection_open() {
    let config = ReferenceConfig {
        max_connection_idle: Some(Duration::from_millis(200)),
        ..ReferenceConfig::default()
    };
    let (server, registry) = greeter::start(config).await;
    let mut c = super::client(&server).await;
    let request = super::paced("idle-open", "8", "100");
    let mut stream = c
        .server_stream(request)
        .await
        .expect("answers")
        .into_inner();
    let mut got = 0;
    while stream
        .message()
        .await
        .expect("not cut by max idle")
        .is_some()
    {
        got += 1;
    }
    assert_eq!(got, 8);
    assert_eq!(
        settled(&registry, "idle-open").await.outcome,
        Outcome::Completed as i32
    );
}

#[tokio::test]
async fn server_keepalive_pings_a_quiet_connection() {
    let config = ReferenceConfig {
        keepalive: Some(ServerKeepalive {
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
        }),
        ..ReferenceConfig::default()
    };
    let (server, _registry) = greeter::start(config).await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    let ping = conn.next_significant().await.expect("a keepalive PING");
    assert_eq!(
        (ping.header.kind, ping.header.has(flag::ACK)),
        (kind::PING, false),
        "{ping:?}"
    );
    // Left unanswered, the keepalive timeout closes the connection.
    assert!(conn.closed().await, "closed after the keepalive timeout");
}
