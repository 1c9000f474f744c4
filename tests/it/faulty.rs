//! Faulty servers: an h2 proxy in front of the reference that breaks one
//! rule (reorders responses, answers early without reading, ignores a
//! cancel, drops the last response, does not compress when asked). Each must
//! fail the fixtures written to catch it, while fixtures it does not touch
//! still pass (so the proxy itself is not what fails them).

use crate::support::{self, tutorial_server};
use bytes::Bytes;
use grpc_conform::{
    capabilities,
    descriptors::Descriptors,
    drive::{codec, Connector, DriveOptions, Target},
    fixture,
    reference::ReferenceConfig,
    run::{self, RunConfig, Verdict},
    snapshot::Store,
};
use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
};
use tokio::net::{TcpListener, TcpStream};

/// The one rule the proxy breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Swaps the first two response messages of a stream.
    Reorder,
    /// Forwards only the first request message, then ends the request
    /// stream: the server answers without reading the rest.
    AnswerEarly,
    /// Does not pass a client's RST_STREAM on: the server never learns.
    IgnoreCancel,
    /// Drops the last response message before the trailers.
    DropLast,
    /// Decompresses responses and removes `grpc-encoding`.
    NoCompression,
    /// Breaks nothing: the Observer's own calls, which report on the
    /// service and are not the service.
    Passthrough,
}

/// Starts the proxy to `upstream`; its address.
async fn start_proxy(upstream: SocketAddr, fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve_connection(socket, upstream, fault));
        }
    });
    addr
}

/// One client connection, relayed over one upstream connection.
async fn serve_connection(socket: TcpStream, upstream: SocketAddr, fault: Fault) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        return;
    };
    let Ok((sender, up_conn)) = h2::client::handshake(up).await else {
        return;
    };
    tokio::spawn(async move {
        let _ = up_conn.await;
    });
    let Ok(mut conn) = h2::server::handshake(socket).await else {
        return;
    };
    while let Some(Ok((request, respond))) = conn.accept().await {
        tokio::spawn(relay(request, respond, sender.clone(), fault));
    }
}

/// Relays one stream both ways, breaking the rule of `fault`.
async fn relay(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    sender: h2::client::SendRequest<Bytes>,
    fault: Fault,
) -> Option<()> {
    let (parts, mut body) = request.into_parts();
    let fault = if parts.uri.path().starts_with("/conform.v1.Observer/") {
        Fault::Passthrough
    } else {
        fault
    };
    let mut sender = sender.ready().await.ok()?;
    let (response, up_send) = sender
        .send_request(http::Request::from_parts(parts, ()), false)
        .ok()?;
    let up_send = Arc::new(Mutex::new(up_send));
    // Client → server.
    let up = up_send.clone();
    tokio::spawn(async move {
        let mut deframer = codec::Deframer::default();
        let mut forwarded_end = false;
        loop {
            match body.data().await {
                Some(Ok(data)) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    if fault != Fault::AnswerEarly {
                        let _ = up.lock().unwrap().send_data(data, false);
                        continue;
                    }
                    deframer.push(&data);
                    if !forwarded_end {
                        if let Ok(Some((flag, payload))) = deframer.next_message() {
                            let mut up = up.lock().unwrap();
                            let _ = up.send_data(frame_raw(flag, &payload), false);
                            let _ = up.send_data(Bytes::new(), true);
                            forwarded_end = true;
                        }
                    }
                }
                Some(Err(_)) => {
                    if fault != Fault::IgnoreCancel {
                        up.lock().unwrap().send_reset(h2::Reason::CANCEL);
                    }
                    return;
                }
                None => {
                    if !forwarded_end {
                        let _ = up.lock().unwrap().send_data(Bytes::new(), true);
                    }
                    return;
                }
            }
        }
    });
    // Server → client.
    let (mut head, mut rbody) = response.await.ok()?.into_parts();
    let encoding = head
        .headers
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if fault == Fault::NoCompression {
        head.headers.remove("grpc-encoding");
    }
    let trailers_only = rbody.is_end_stream();
    let mut down = respond
        .send_response(http::Response::from_parts(head, ()), trailers_only)
        .ok()?;
    if trailers_only {
        return Some(());
    }
    let mut deframer = codec::Deframer::default();
    let mut held: Option<Bytes> = None;
    let mut sent = 0usize;
    let mut client_gone = false;
    loop {
        let next = tokio::select! {
            next = rbody.data() => next,
            _ = futures::future::poll_fn(|cx| down.poll_reset(cx)), if !client_gone => {
                client_gone = true;
                if fault != Fault::IgnoreCancel {
                    up_send.lock().unwrap().send_reset(h2::Reason::CANCEL);
                    return Some(());
                }
                continue;
            }
        };
        let Some(Ok(data)) = next else { break };
        let _ = rbody.flow_control().release_capacity(data.len());
        deframer.push(&data);
        while let Ok(Some((flag, payload))) = deframer.next_message() {
            let message = match (fault, flag, encoding.as_deref()) {
                (Fault::NoCompression, 1, Some(enc)) => {
                    codec::frame(false, &codec::decompress(enc, &payload).ok()?)
                }
                _ => frame_raw(flag, &payload),
            };
            let out = match fault {
                Fault::Reorder if sent == 0 && held.is_none() => {
                    held = Some(message);
                    continue;
                }
                Fault::Reorder => {
                    let mut both = message.to_vec();
                    if let Some(first) = held.take() {
                        both.extend_from_slice(&first);
                    }
                    Bytes::from(both)
                }
                Fault::DropLast => match held.replace(message) {
                    Some(previous) => previous,
                    None => continue,
                },
                _ => message,
            };
            sent += 1;
            if !client_gone {
                let _ = down.send_data(out, false);
            }
        }
    }
    if fault == Fault::Reorder {
        if let Some(only) = held.take() {
            let _ = down.send_data(only, false);
        }
    }
    match rbody.trailers().await {
        Ok(Some(trailers)) if !client_gone => {
            let _ = down.send_trailers(trailers);
        }
        _ => down.send_reset(h2::Reason::INTERNAL_ERROR),
    }
    Some(())
}

/// A message re-framed with its original flag.
fn frame_raw(flag: u8, payload: &[u8]) -> Bytes {
    let mut out = codec::frame(false, payload).to_vec();
    out[0] = flag;
    Bytes::from(out)
}

/// Runs the whole embedded corpus through a proxy with `fault`; the names
/// of the fixtures that did not pass.
async fn failing_through(fault: Fault) -> BTreeSet<String> {
    failing_through_server(fault, ReferenceConfig::default(), true).await
}

/// [`failing_through`] with the reference started with `reference`, its
/// capabilities probed through the proxy as a run against a target does.
///
/// With `whole_contract` the capabilities are taken as a whole contract's
/// (as `--assume` would): a proxy that never compresses looks like a server
/// that ignores `x-conform-response-encoding` to the probes, and these
/// tests are about catching the fault, not about applicability.
async fn failing_through_server(
    fault: Fault,
    reference: ReferenceConfig,
    whole_contract: bool,
) -> BTreeSet<String> {
    let server = support::start_reference_with(reference).await;
    let proxy = start_proxy(server.local_addr(), fault).await;
    let connector = Connector::new(Target {
        address: proxy.to_string(),
        tls: None,
    })
    .unwrap();
    let mut capabilities = if whole_contract {
        capabilities::Capabilities::everything()
    } else {
        capabilities::probe(&connector, 2.0).await.unwrap()
    };
    // The proxy is in front of the embedded reference: its settings hold.
    capabilities.reference_settings = true;
    let config = RunConfig {
        connector,
        descriptors: Descriptors::contract().unwrap(),
        fixtures: fixture::load_embedded().unwrap(),
        drive: DriveOptions {
            observer: capabilities.observer,
            ..DriveOptions::default()
        },
        store: Store::new(None, false),
        known_failing: Default::default(),
        jobs: 8,
        known_flaky: Default::default(),
        repeat: 1,
        capabilities,
    };
    let report = run::run(config, "faulty", "h2c", |_| {}).await;
    eprintln!(
        "{fault:?}: {:?}",
        report
            .results
            .iter()
            .filter(|r| r.verdict != Verdict::Pass)
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
    );
    report
        .results
        .into_iter()
        .filter(|r| r.verdict.fails_run())
        .map(|r| r.name)
        .collect()
}

#[tokio::test]
async fn faults_seen_without_the_observer_or_control_headers_are_still_caught() {
    // Reordering, answering early and dropping a response show in what the
    // client gets; ignoring a cancel needs the server's view, and not
    // compressing needs the response-encoding header, so those two are not
    // expected here.
    let cases: [(Fault, &str); 3] = [
        (Fault::Reorder, "greeter/server-stream/three-responses"),
        (Fault::AnswerEarly, "greeter/client-stream/burst-of-hundred"),
        (Fault::DropLast, "greeter/unary/say-hello"),
    ];
    let clean = failing_through_server(Fault::Passthrough, tutorial_server(), false).await;
    for (fault, fixture) in cases {
        let failing = failing_through_server(fault, tutorial_server(), false).await;
        assert!(
            failing.contains(fixture) && !clean.contains(fixture),
            "{fault:?} not caught by {fixture} on a server without Observer and control headers; failing: {failing:?}, through a faultless proxy: {clean:?}"
        );
    }
}

/// Asserts every `caught` fixture failed and every `untouched` one passed.
fn assert_caught(fault: Fault, failing: &BTreeSet<String>, caught: &[&str], untouched: &[&str]) {
    for name in caught {
        assert!(
            failing.contains(*name),
            "{fault:?} was not caught by {name}; failing: {failing:?}"
        );
    }
    for name in untouched {
        assert!(
            !failing.contains(*name),
            "{fault:?} should not affect {name}; failing: {failing:?}"
        );
    }
}

/// Fixtures with at most one response message and no cancel or compression:
/// none of the faults applies to them.
const PLAIN: [&str; 3] = [
    "greeter/unary/say-hello",
    "sensor/unary/latest-unknown-device",
    "status/fail-after-zero",
];

#[tokio::test]
async fn a_server_that_reorders_responses_is_caught() {
    let failing = failing_through(Fault::Reorder).await;
    assert_caught(
        Fault::Reorder,
        &failing,
        &[
            "greeter/server-stream/three-responses",
            "chat/bidi/burst-order",
            "sensor/server-stream/watch-limit",
        ],
        &PLAIN,
    );
}

#[tokio::test]
async fn a_server_that_answers_early_without_reading_is_caught() {
    let failing = failing_through(Fault::AnswerEarly).await;
    assert_caught(
        Fault::AnswerEarly,
        &failing,
        &[
            "greeter/client-stream/burst-of-hundred",
            "compression/per-message-flag-zero",
            "greeter/bidi/half-close-then-receive",
        ],
        &PLAIN,
    );
}

#[tokio::test]
async fn a_server_that_ignores_cancel_is_caught() {
    let failing = failing_through(Fault::IgnoreCancel).await;
    assert_caught(
        Fault::IgnoreCancel,
        &failing,
        &[
            "greeter/client-stream/cancel-mid-stream",
            "greeter/server-stream/cancel-after-headers",
        ],
        &PLAIN,
    );
}

#[tokio::test]
async fn a_server_that_drops_the_last_response_is_caught() {
    let failing = failing_through(Fault::DropLast).await;
    assert_caught(
        Fault::DropLast,
        &failing,
        &[
            "greeter/server-stream/three-responses",
            "greeter/unary/say-hello",
            "sensor/server-stream/watch-limit",
        ],
        &[
            "sensor/unary/latest-unknown-device",
            "status/fail-after-zero",
        ],
    );
}

#[tokio::test]
async fn a_server_that_does_not_compress_when_asked_is_caught() {
    let failing = failing_through(Fault::NoCompression).await;
    assert_caught(
        Fault::NoCompression,
        &failing,
        &["compression/gzip-both-ways"],
        &PLAIN,
    );
    assert!(
        !failing.contains("compression/identity-only-client"),
        "{failing:?}"
    );
}
