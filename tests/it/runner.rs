//! The conformance run through the library: the whole embedded corpus
//! against the in-process reference, and targets that misbehave at the
//! transport level (silent, closing, HTTP/1.1, no Observer).

use crate::support;
use grpc_conform::{
    descriptors::Descriptors,
    drive::{self, Connector, DriveOptions, Target},
    fixture::{self, NamedFixture},
    model::Event,
    run::{self, RunConfig, Verdict},
    snapshot::Store,
    transcript,
};
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A connector to `addr` over plain TCP.
fn connector(addr: std::net::SocketAddr) -> Connector {
    Connector::new(Target {
        address: addr.to_string(),
        tls: None,
    })
    .expect("plain TCP connector")
}

#[tokio::test]
async fn every_fixture_matches_its_golden_snapshot() {
    let server = support::start_reference().await;
    let fixtures = fixture::load_embedded().expect("embedded corpus parses");
    assert!(fixtures.len() >= 80, "corpus shrank to {}", fixtures.len());
    let descriptors = Descriptors::contract().unwrap();
    for f in &fixtures {
        fixture::validate(f, &descriptors).unwrap_or_else(|e| panic!("{e}"));
    }
    let config = RunConfig {
        connector: connector(server.local_addr()),
        descriptors,
        fixtures,
        // Transcripts do not depend on the scale; a margin against a machine
        // loaded by the tests running beside this one.
        drive: DriveOptions {
            time_scale: 2.0,
            ..DriveOptions::default()
        },
        store: Store::new(None, false),
        known_failing: Default::default(),
        jobs: 4,
        known_flaky: Default::default(),
        repeat: 1,
        capabilities: grpc_conform::capabilities::Capabilities::everything(),
    };
    let report = run::run(config, "reference", "h2c", |_| {}).await;
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| {
            format!(
                "{} ({:?}): {}\n{}",
                r.name,
                r.verdict,
                r.error.clone().unwrap_or_default(),
                r.diff.clone().or(r.transcript.clone()).unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} fixtures differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A one-call unary fixture with a short timeout.
fn unary_fixture(timeout_ms: u64, observe: bool) -> NamedFixture {
    let observe = if observe { r#", "observe""# } else { "" };
    let text = format!(
        r#"{{"description": "d", "rule": "r", "level": "MUST", "timeout_ms": {timeout_ms}, "calls": [
            {{"method": "/Greeter/SayHello", "steps": [{{"send": {{"message": {{"name": "x"}}}}}}, "half_close", "receive_all"{observe}]}}]}}"#
    );
    NamedFixture {
        name: "t/unary".into(),
        source: "t/unary.json".into(),
        fixture: fixture::parse("t/unary.json", &text).unwrap(),
    }
}

/// Drives `fixture` through `connector` with the default options.
async fn converse(
    connector: &Connector,
    fixture: &NamedFixture,
) -> Result<Vec<Event>, drive::DriveError> {
    drive::run_conversation(
        connector,
        &fixture.fixture,
        &Descriptors::contract().unwrap(),
        &DriveOptions::default(),
    )
    .await
}

/// Runs the unary fixture against `addr`; the events and how long it took.
async fn drive_unary(addr: std::net::SocketAddr, timeout_ms: u64) -> (Vec<Event>, Duration) {
    let started = Instant::now();
    let events = tokio::time::timeout(
        Duration::from_secs(30),
        converse(&connector(addr), &unary_fixture(timeout_ms, false)),
    )
    .await
    .expect("the driver bounds its own waits")
    .expect("a TCP connection is made");
    (events, started.elapsed())
}

/// A listener on 127.0.0.1 whose every connection is handled by `serve`.
async fn fake_target<F, Fut>(serve: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket));
        }
    });
    addr
}

#[tokio::test]
async fn a_target_that_never_answers_times_out_within_the_fixture_timeout() {
    let addr = fake_target(|mut socket| async move {
        // Read and hold everything, say nothing.
        let mut buf = [0u8; 1024];
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let (events, took) = drive_unary(addr, 800).await;
    let text = transcript::render(&events);
    assert!(
        text.contains("! timed out waiting for response headers"),
        "{text}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn a_target_that_closes_at_once_is_a_clear_failure() {
    let addr = fake_target(|socket| async move { drop(socket) }).await;
    let (events, took) = drive_unary(addr, 2_000).await;
    let text = transcript::render(&events);
    assert!(
        text.contains("! connection lost") || text.contains("HTTP/2"),
        "{text}"
    );
    assert!(
        !text.contains("timed out"),
        "a closed connection must not wait for the timeout: {text}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_target_speaking_http1_is_a_clear_failure() {
    let addr = fake_target(|mut socket| async move {
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        let _ = socket
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        let _ = socket.shutdown().await;
    })
    .await;
    let (events, took) = drive_unary(addr, 2_000).await;
    let text = transcript::render(&events);
    assert!(text.contains("  ! "), "{text}");
    assert!(!text.contains("← status"), "{text}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_target_without_the_observer_is_not_observable_not_failing() {
    // A real gRPC server with nothing but health: every contract method and
    // the Observer answer UNIMPLEMENTED.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let events = converse(&connector(addr), &unary_fixture(3_000, true))
        .await
        .unwrap();
    let text = transcript::render(&events);
    assert!(text.contains("← status UNIMPLEMENTED"), "{text}");
    assert!(
        text.contains("observer: not observable (UNIMPLEMENTED)"),
        "{text}"
    );
    server.abort();
}

#[tokio::test]
async fn an_observer_not_found_naming_the_call_id_gives_the_same_transcript_every_run() {
    // The reference's routes without the per-call layer: the Observer knows
    // no call and its NOT_FOUND names the per-run x-conform-call-id.
    use grpc_conform::reference::{services, CallRegistry, ReferenceConfig};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = services::routes(&ReferenceConfig::default(), CallRegistry::default());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut texts = Vec::new();
    for _ in 0..2 {
        let events = converse(&connector(addr), &unary_fixture(3_000, true))
            .await
            .unwrap();
        texts.push(transcript::render(&events));
    }
    assert!(
        texts[0].contains("observer: not observable (NOT_FOUND: ")
            && texts[0].contains("<call-id>"),
        "{}",
        texts[0]
    );
    assert!(!texts[0].contains("gc-"), "{}", texts[0]);
    assert_eq!(texts[0], texts[1]);
    server.abort();
}

/// The reference's services behind tonic's TLS server (no per-call layer, so
/// the Observer knows no call), with the test certificate for `localhost`.
pub(crate) async fn tls_target() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use grpc_conform::reference::{services, CallRegistry, ReferenceConfig};
    use tonic::transport::{Identity, Server, ServerTlsConfig};
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let identity = Identity::from_pem(
        std::fs::read(data.join("server.pem")).unwrap(),
        std::fs::read(data.join("server.key")).unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = services::routes(&ReferenceConfig::default(), CallRegistry::default());
    let server = Server::builder()
        .tls_config(ServerTlsConfig::new().identity(identity))
        .unwrap()
        .add_routes(routes)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    (addr, tokio::spawn(async move { server.await.unwrap() }))
}

#[tokio::test]
async fn tls_with_a_ca_file_and_server_name_reaches_the_target() {
    let (addr, server) = tls_target().await;
    let tls = |ca: &str| {
        Connector::new(Target {
            address: addr.to_string(),
            tls: Some(drive::TlsOptions {
                ca_cert: Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(ca)),
                server_name: Some("localhost".into()),
            }),
        })
    };
    let connector = tls("tests/data/ca.pem").expect("the CA file loads");
    let events = converse(&connector, &unary_fixture(3_000, false))
        .await
        .expect("TLS handshake with ALPN h2");
    let text = transcript::render(&events);
    assert!(
        text.contains("← message {\"message\":\"Hello x\"}"),
        "{text}"
    );
    assert!(text.contains("← status OK"), "{text}");

    // The server's own certificate is not a CA: verification must fail.
    let wrong = tls("tests/data/server.pem").expect("a PEM certificate loads");
    let err = converse(&wrong, &unary_fixture(3_000, false))
        .await
        .expect_err("an untrusted certificate is refused");
    assert!(err.to_string().starts_with("TLS: handshake with"), "{err}");
    server.abort();
}

/// How the hand-written h2 server below answers every call.
#[derive(Clone, Copy)]
enum Answer {
    /// One HEADERS frame with END_STREAM carrying the status.
    TrailersOnly,
    /// Response headers, no message, then trailers.
    HeadersThenTrailers,
    /// A message flagged compressed with no `grpc-encoding`, then OK.
    CompressedWithoutEncoding,
    /// A message, then trailers without `grpc-status`.
    NoStatus,
}

/// An h2 server answering every request as `answer` says (status
/// FAILED_PRECONDITION with a percent-encoded message where it sends one).
async fn scripted_h2_target(answer: Answer) -> std::net::SocketAddr {
    fake_target(move |socket| async move {
        let Ok(mut conn) = h2::server::handshake(socket).await else {
            return;
        };
        while let Some(Ok((_request, mut respond))) = conn.accept().await {
            let head = |extra: &[(&'static str, &'static str)]| {
                let mut b = http::Response::builder()
                    .status(200)
                    .header("content-type", "application/grpc");
                for (k, v) in extra {
                    b = b.header(*k, *v);
                }
                b.body(()).unwrap()
            };
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "9".parse().unwrap());
            trailers.insert("grpc-message", "not%20now".parse().unwrap());
            trailers.insert("x-detail", "d".parse().unwrap());
            match answer {
                Answer::TrailersOnly => {
                    let r = head(&[
                        ("grpc-status", "9"),
                        ("grpc-message", "not%20now"),
                        ("x-detail", "d"),
                    ]);
                    let _ = respond.send_response(r, true);
                }
                Answer::HeadersThenTrailers => {
                    let mut s = respond.send_response(head(&[]), false).unwrap();
                    let _ = s.send_trailers(trailers);
                }
                Answer::CompressedWithoutEncoding | Answer::NoStatus => {
                    let mut s = respond.send_response(head(&[]), false).unwrap();
                    let message =
                        prost::Message::encode_to_vec(&grpc_conform::proto::contract::HelloReply {
                            message: "hi".into(),
                        });
                    let framed = drive::codec::frame(true, &message);
                    let framed = if matches!(answer, Answer::NoStatus) {
                        drive::codec::frame(false, &message)
                    } else {
                        framed
                    };
                    let _ = s.send_data(framed, false);
                    let mut t = http::HeaderMap::new();
                    if matches!(answer, Answer::CompressedWithoutEncoding) {
                        t.insert("grpc-status", "0".parse().unwrap());
                    }
                    let _ = s.send_trailers(t);
                }
            }
        }
    })
    .await
}

/// The transcript of the unary fixture against a scripted h2 target.
async fn transcript_against(answer: Answer) -> String {
    let addr = scripted_h2_target(answer).await;
    let events = converse(&connector(addr), &unary_fixture(3_000, false))
        .await
        .unwrap();
    transcript::render(&events)
}

#[tokio::test]
async fn trailers_only_and_headers_then_trailers_give_the_same_transcript() {
    let trailers_only = transcript_against(Answer::TrailersOnly).await;
    let separate = transcript_against(Answer::HeadersThenTrailers).await;
    assert_eq!(trailers_only, separate);
    assert!(trailers_only.contains("  ← headers content-type=application/grpc\n  ← trailers x-detail=d\n  ← status FAILED_PRECONDITION\n"), "{trailers_only}");
}

#[tokio::test]
async fn protocol_violations_in_responses_are_named() {
    let text = transcript_against(Answer::CompressedWithoutEncoding).await;
    assert!(
        text.contains("  ! compressed message without grpc-encoding\n"),
        "{text}"
    );
    let text = transcript_against(Answer::NoStatus).await;
    assert!(text.contains("← message {\"message\":\"hi\"}"), "{text}");
    assert!(
        text.contains("  ! no grpc-status in the trailers\n"),
        "{text}"
    );
}
