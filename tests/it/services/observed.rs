//! What the handlers tell the Observer: requests read and the half-close
//! (CONTRACT.md section 4). The reference's own transport also settles the
//! outcome, status and responses sent; here a minimal stand-in layer only
//! opens each call's record, so these tests see exactly what the handlers
//! recorded, whatever transport the reference runs on.

use super::{assert_ok, bounded, drain, feed, open_stream, with_headers, BOUND};
use grpc_conform::proto::contract::{
    greeter_client::GreeterClient, sensor_service_client::SensorServiceClient, HelloRequest,
    SensorData, StreamRequestData,
};
use grpc_conform::proto::observer::{observer_client::ObserverClient, CallQuery, CallRecord};
use grpc_conform::reference::{call::CallOpening, services, CallRegistry, ReferenceConfig};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server};

/// The routes behind a layer that opens a call record from each request's
/// `x-conform-call-id`, and a channel to them. Dropping it stops the server.
struct Observed {
    /// The server task, aborted on drop.
    task: JoinHandle<()>,
    /// A channel to the server.
    channel: Channel,
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn observed() -> Observed {
    let registry = CallRegistry::default();
    let routes = services::routes(&ReferenceConfig::default(), registry.clone());
    let open_call = move |mut request: http::Request<tonic::body::Body>| {
        let call_id = request
            .headers()
            .get("x-conform-call-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ctx = registry.open(CallOpening {
            call_id,
            method: request.uri().path().to_owned(),
            ..CallOpening::default()
        });
        request.extensions_mut().insert(ctx);
        request
    };
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    let task = tokio::spawn(async move {
        let served = Server::builder()
            .layer(tower::util::MapRequestLayer::new(open_call))
            .add_routes(routes)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
        served.expect("test server runs");
    });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect_timeout(BOUND)
        .connect()
        .await
        .expect("connects to the test server");
    Observed { task, channel }
}

/// The record of `call_id`. Nothing settles the outcome here, so the wait is
/// short and the record says RUNNING; the counts are what matter.
async fn record(channel: &Channel, call_id: &str) -> CallRecord {
    let mut observer = ObserverClient::new(channel.clone());
    let query = CallQuery {
        call_id: call_id.into(),
        wait_ms: 0,
    };
    bounded("GetCall", observer.get_call(query))
        .await
        .unwrap_or_else(|s| panic!("GetCall {call_id}: {s:?}"))
        .into_inner()
}

fn data(s: &str) -> StreamRequestData {
    StreamRequestData { data: s.into() }
}

fn counts(record: &CallRecord) -> (u32, bool) {
    (record.requests_received, record.half_close_received)
}

#[tokio::test]
async fn handlers_count_requests_and_the_half_close() {
    let server = observed().await;
    let mut greeter = GreeterClient::new(server.channel.clone());

    let request = with_headers(HelloRequest::default(), &[("x-conform-call-id", "unary")]);
    bounded("SayHello", greeter.say_hello(request))
        .await
        .expect("OK");
    assert_eq!(counts(&record(&server.channel, "unary").await), (1, true));

    let request = with_headers(data("s"), &[("x-conform-call-id", "server-stream")]);
    let responses = bounded("ServerStream", greeter.server_stream(request))
        .await
        .expect("starts");
    let (_, ending) = drain(responses.into_inner()).await;
    assert_ok(ending);
    assert_eq!(
        counts(&record(&server.channel, "server-stream").await),
        (1, true)
    );

    let requests = tokio_stream::iter(vec![data("a"), data("b"), data("c")]);
    let request = with_headers(requests, &[("x-conform-call-id", "client-stream")]);
    bounded("ClientStream", greeter.client_stream(request))
        .await
        .expect("OK");
    assert_eq!(
        counts(&record(&server.channel, "client-stream").await),
        (3, true)
    );

    let requests = tokio_stream::iter(vec![data("a"), data("b")]);
    let request = with_headers(requests, &[("x-conform-call-id", "bidi")]);
    let responses = bounded("AllStream", greeter.all_stream(request))
        .await
        .expect("starts");
    let (echoes, ending) = drain(responses.into_inner()).await;
    assert_eq!(echoes.len(), 2);
    assert_ok(ending);
    assert_eq!(counts(&record(&server.channel, "bidi").await), (2, true));
}

/// A call the server ends before the client half-closed must not record a
/// half-close, and counts only what the handler read.
#[tokio::test]
async fn calls_ended_by_the_server_record_no_half_close() {
    let server = observed().await;
    let mut greeter = GreeterClient::new(server.channel.clone());
    let mut sensor = SensorServiceClient::new(server.channel.clone());

    let (tx, requests) = open_stream();
    for s in ["a", "b", "c"] {
        feed(&tx, data(s)).await;
    }
    let headers = [
        ("x-conform-call-id", "closed-early"),
        ("x-conform-close-after-requests", "2"),
    ];
    bounded(
        "ClientStream",
        greeter.client_stream(with_headers(requests, &headers)),
    )
    .await
    .expect("OK");
    assert_eq!(
        counts(&record(&server.channel, "closed-early").await),
        (2, false)
    );
    drop(tx);

    let (tx, requests) = open_stream();
    let good = SensorData {
        timestamp: 1,
        temperature: 1.0,
        device_id: "d".into(),
    };
    feed(&tx, good).await;
    feed(&tx, SensorData::default()).await;
    let headers = [("x-conform-call-id", "bad-reading")];
    let status = bounded("Record", sensor.record(with_headers(requests, &headers)))
        .await
        .expect_err("INVALID_ARGUMENT");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        counts(&record(&server.channel, "bad-reading").await),
        (2, false)
    );
    drop(tx);

    let (tx, requests) = open_stream();
    feed(&tx, data("a")).await;
    let headers = [
        ("x-conform-call-id", "failed-at-start"),
        ("x-conform-fail-after", "0"),
    ];
    bounded(
        "ClientStream",
        greeter.client_stream(with_headers(requests, &headers)),
    )
    .await
    .expect_err("the scripted failure");
    assert_eq!(
        counts(&record(&server.channel, "failed-at-start").await),
        (0, false)
    );
    drop(tx);
}
