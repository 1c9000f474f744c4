//! Attacks on the reference server: silent and surplus connections, a
//! ClientStream or Record that never ends growing, many distinct device ids.
//! Each runs while a bystander on its own connection keeps calling SayHello,
//! and every one of the bystander's calls must succeed.

use crate::services::{bounded, BOUND};
use crate::support;
use grpc_conform::proto::contract::{
    greeter_client::GreeterClient, sensor_service_client::SensorServiceClient, HelloRequest,
    SensorData, StreamRequestData,
};
use grpc_conform::reference::{
    services::{greeter::MAX_CLIENT_STREAM_REPLY, sensor::MAX_RECORD_DEVICE_BYTES},
    ReferenceConfig, ReferenceServer,
};
use grpc_conform::wire::frame::CLIENT_PREFACE;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinHandle,
};
use tonic::Code;

/// A client on its own connection calling SayHello back to back until
/// stopped; it panics on the first call that fails.
struct Bystander {
    stop: Arc<AtomicBool>,
    task: JoinHandle<u32>,
}

impl Bystander {
    async fn start(server: &ReferenceServer) -> Bystander {
        let mut greeter = GreeterClient::new(support::channel(server).await);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut served = 0;
            while !stopped.load(Ordering::Relaxed) {
                let request = HelloRequest {
                    name: format!("b{served}"),
                };
                let reply = bounded("the bystander's SayHello", greeter.say_hello(request))
                    .await
                    .unwrap_or_else(|status| panic!("bystander call {served} failed: {status:?}"));
                assert_eq!(reply.into_inner().message, format!("Hello b{served}"));
                served += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            served
        });
        Bystander { stop, task }
    }

    /// Stops it; how many calls it made, all of which succeeded.
    async fn finish(self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        let served = bounded("the bystander to stop", self.task)
            .await
            .expect("every bystander call succeeded");
        assert!(served > 0, "the bystander made no call at all");
        served
    }
}

/// Reads `stream` until the server closes it; everything it sent.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await
        .unwrap_or_else(|_| panic!("the server kept the connection open past {within:?}"));
    got
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn silent_connections_cannot_lock_out_a_client() {
    let server = support::start_reference_with(ReferenceConfig {
        max_connections: 8,
        ..ReferenceConfig::default()
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..30 {
        silent.push(TcpStream::connect(server.local_addr()).await.unwrap());
    }
    let bystander = Bystander::start(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The connections beyond the cap made room by closing the oldest silent ones.
    let mut closed = 0;
    for stream in &mut silent {
        // The server's SETTINGS may come first; then the close, or nothing.
        let mut buf = [0u8; 1024];
        let until = tokio::time::Instant::now() + Duration::from_millis(50);
        while let Ok(read) = tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            if matches!(read, Ok(0) | Err(_)) {
                closed += 1;
                break;
            }
        }
    }
    assert!(
        closed >= 30 - 8,
        "only {closed} of 30 silent connections were closed"
    );
    bystander.finish().await;
}

#[tokio::test]
async fn a_full_server_refuses_a_connection_with_a_goaway_that_says_why() {
    let server = support::start_reference_with(ReferenceConfig {
        max_connections: 1,
        ..ReferenceConfig::default()
    })
    .await;
    let mut greeter = GreeterClient::new(support::channel(&server).await);
    let hello = || HelloRequest { name: "a".into() };
    bounded("first call", greeter.say_hello(hello()))
        .await
        .unwrap();
    let mut refused = TcpStream::connect(server.local_addr()).await.unwrap();
    let got = read_to_close(&mut refused, BOUND).await;
    assert!(contains(&got, b"too_many_connections"), "{got:?}");
    // REFUSED_STREAM (7) after last stream id 0.
    assert!(contains(&got, &[0, 0, 0, 0, 0, 0, 0, 7]), "{got:?}");
    bounded("call after the refusal", greeter.say_hello(hello()))
        .await
        .expect("the admitted client is still served");
}

#[tokio::test]
async fn a_peer_that_never_completes_the_handshake_is_dropped() {
    let server = support::start_reference_with(ReferenceConfig {
        handshake_timeout: Duration::from_millis(300),
        ..ReferenceConfig::default()
    })
    .await;
    let bystander = Bystander::start(&server).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    // Half a preface, then nothing.
    stream.write_all(&CLIENT_PREFACE[..10]).await.unwrap();
    let got = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(!contains(&got, b"GOAWAY"), "{got:?}");
    bystander.finish().await;
}

#[tokio::test]
async fn a_connection_that_never_starts_a_call_is_closed() {
    let server = support::start_reference_with(ReferenceConfig {
        first_call_timeout: Duration::from_millis(500),
        ..ReferenceConfig::default()
    })
    .await;
    let bystander = Bystander::start(&server).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut hello = CLIENT_PREFACE.to_vec();
    hello.extend(grpc_conform::wire::frame::frame(4, 0, 0, &[]));
    stream.write_all(&hello).await.unwrap();
    // Never acknowledges anything: the close must not wait for the peer.
    let got = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(contains(&got, b"max_idle"), "{got:?}");
    bystander.finish().await;
}

#[tokio::test]
async fn client_stream_stops_at_its_reply_limit() {
    let server = support::start_reference().await;
    let bystander = Bystander::start(&server).await;
    let mut greeter = GreeterClient::new(support::channel(&server).await);
    let chunk = "c".repeat(64 * 1024);
    let messages = (MAX_CLIENT_STREAM_REPLY / chunk.len()) * 4;
    let requests = tokio_stream::iter((0..messages).map(move |_| StreamRequestData {
        data: chunk.clone(),
    }));
    let status = bounded(
        "ClientStream past its limit",
        greeter.client_stream(requests),
    )
    .await
    .expect_err("RESOURCE_EXHAUSTED");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("ClientStream"), "{status:?}");
    // Just under the limit is still echoed whole.
    let under = "u".repeat(MAX_CLIENT_STREAM_REPLY - 1);
    let reply = bounded(
        "ClientStream under its limit",
        greeter.client_stream(tokio_stream::iter([
            StreamRequestData { data: under },
            StreamRequestData {
                data: String::new(),
            },
        ])),
    )
    .await
    .expect("under the limit is OK");
    assert_eq!(reply.into_inner().data.len(), MAX_CLIENT_STREAM_REPLY);
    bystander.finish().await;
}

fn reading(device_id: String, timestamp: i64) -> SensorData {
    SensorData {
        device_id,
        timestamp,
        temperature: 20.0,
    }
}

#[tokio::test]
async fn record_with_many_devices_is_linear_and_bounded() {
    let server = support::start_reference().await;
    let bystander = Bystander::start(&server).await;
    let mut sensor = SensorServiceClient::new(support::channel(&server).await);
    // 100,000 distinct ids: a linear `contains` per reading made this
    // 5 * 10^9 string comparisons.
    let devices = 100_000;
    let started = std::time::Instant::now();
    let readings = tokio_stream::iter((0..devices).map(|i| reading(format!("d{i}"), i)));
    let summary = bounded("Record of 100,000 devices", sensor.record(readings))
        .await
        .expect("under the device-id limit is OK")
        .into_inner();
    assert_eq!(summary.device_ids.len(), devices as usize);
    assert_eq!(summary.device_ids[99_999], "d99999");
    let took = started.elapsed();
    // Past the limit of distinct id bytes: RESOURCE_EXHAUSTED.
    let id = "i".repeat(64 * 1024);
    let count = (MAX_RECORD_DEVICE_BYTES / id.len()) as i64 * 2;
    let readings = tokio_stream::iter((0..count).map(move |i| reading(format!("{id}{i}"), i)));
    let status = bounded("Record past its limit", sensor.record(readings))
        .await
        .expect_err("RESOURCE_EXHAUSTED");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let served = bystander.finish().await;
    eprintln!("Record of {devices} devices took {took:?}; bystander made {served} calls");
}
