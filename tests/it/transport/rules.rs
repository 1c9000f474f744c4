//! Wire rules of CONTRACT.md section 5 that sit in the transport or in tonic
//! under it: compression both ways, unsupported and missing encodings,
//! unknown methods, the message size limit.

use super::raw::{grpc_message, h2_call};
use super::{client, data, greeter, settled, tagged};
use grpc_conform::proto::contract::greeter_client::GreeterClient;
use grpc_conform::proto::contract::{HelloRequest, StreamRequestData};
use grpc_conform::proto::observer::Outcome;
use grpc_conform::reference::{Encoding, ReferenceConfig};
use prost::Message;
use tonic::Code;

const MIB4: usize = 4 * 1024 * 1024;

#[tokio::test]
async fn compression_both_ways_with_every_encoding() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    for encoding in Encoding::ALL {
        let name = encoding.name();
        let mut c = client(&server)
            .await
            .send_compressed(encoding.tonic())
            .accept_compressed(encoding.tonic());
        let id = format!("compress-{name}");
        // Big and repetitive, so compressing it is visibly worth it.
        let payload = "z".repeat(64 * 1024);
        let request = tagged(
            data(&payload),
            &id,
            &[("x-conform-response-encoding", name)],
        );
        let response = c
            .server_stream(request)
            .await
            .expect("ServerStream answers");
        assert_eq!(
            response
                .metadata()
                .get("grpc-encoding")
                .map(|v| v.to_str().unwrap()),
            Some(name),
            "responses compressed with {name}"
        );
        let mut stream = response.into_inner();
        let first = stream
            .message()
            .await
            .expect("decompresses")
            .expect("a response");
        assert_eq!(first.data, format!("{payload}-1"));
        while stream.message().await.expect("ends OK").is_some() {}
        let r = settled(&registry, &id).await;
        assert_eq!(r.request_encoding, name);
        assert_eq!(
            (r.outcome, r.status_code, r.responses_sent),
            (Outcome::Completed as i32, 0, 3)
        );
    }
}

#[tokio::test]
async fn no_response_compression_unless_asked_or_for_identity() {
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server)
        .await
        .accept_compressed(Encoding::Gzip.tonic())
        .accept_compressed(Encoding::Zstd.tonic());
    for asked in [None, Some("identity"), Some("deflate")] {
        let mut request = tonic::Request::new(HelloRequest { name: "n".into() });
        if let Some(asked) = asked {
            request
                .metadata_mut()
                .insert("x-conform-response-encoding", asked.parse().unwrap());
        }
        let reply = c.say_hello(request).await.expect("SayHello answers");
        let encoding = reply
            .metadata()
            .get("grpc-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        // deflate was asked but the client does not accept it: identity.
        assert!(
            matches!(encoding.as_deref(), None | Some("identity")),
            "asked {asked:?}, got {encoding:?}"
        );
    }
}

#[tokio::test]
async fn unsupported_encoding_is_unimplemented_with_accept_list() {
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let body = grpc_message(1, b"\x0a\x01x");
    let reply = h2_call(
        server.local_addr(),
        "/Greeter/SayHello",
        &[("grpc-encoding", "br")],
        body,
    )
    .await;
    assert_eq!(reply.grpc_status(), Some("12"), "{reply:?}");
    let accept = reply
        .headers
        .get("grpc-accept-encoding")
        .expect("grpc-accept-encoding on the answer")
        .to_str()
        .unwrap();
    for name in ["gzip", "deflate", "zstd"] {
        assert!(
            accept.split(',').any(|n| n.trim() == name),
            "{name} in {accept:?}"
        );
    }
}

#[tokio::test]
async fn compressed_flag_without_encoding_is_internal() {
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let body = grpc_message(1, b"\x0a\x01x");
    let reply = h2_call(server.local_addr(), "/Greeter/SayHello", &[], body).await;
    assert_eq!(reply.grpc_status(), Some("13"), "{reply:?}");
}

#[tokio::test]
async fn unknown_method_is_unimplemented() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let body = grpc_message(0, b"");
    let reply = h2_call(
        server.local_addr(),
        "/Nope/Nothing",
        &[("x-conform-call-id", "unknown-method")],
        body,
    )
    .await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.grpc_status(), Some("12"), "{reply:?}");
    assert!(reply.trailers.is_none(), "trailers-only: {reply:?}");
    let r = settled(&registry, "unknown-method").await;
    assert_eq!((r.outcome, r.status_code), (Outcome::Completed as i32, 12));
    assert_eq!(r.method, "/Nope/Nothing");
}

/// A HelloRequest whose encoding is exactly `size` bytes.
fn hello_of_size(size: usize) -> HelloRequest {
    // A tag byte and a varint length come before the name: try the lengths
    // the varint can take.
    let request = (1..=5)
        .map(|prefix| HelloRequest {
            name: "a".repeat(size - 1 - prefix),
        })
        .find(|r| r.encoded_len() == size)
        .expect("some name length encodes to size");
    assert_eq!(request.encoded_len(), size);
    request
}

#[tokio::test]
async fn four_mib_passes_and_one_byte_more_is_resource_exhausted() {
    let (server, registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let reply = c
        .say_hello(hello_of_size(MIB4))
        .await
        .expect("exactly 4 MiB passes");
    assert_eq!(reply.into_inner().message.len(), MIB4 - 5 + "Hello ".len());
    let status = c
        .say_hello(tagged(hello_of_size(MIB4 + 1), "too-big", &[]))
        .await
        .expect_err("4 MiB + 1 is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let r = settled(&registry, "too-big").await;
    assert_eq!((r.outcome, r.status_code), (Outcome::Completed as i32, 8));
}

#[tokio::test]
async fn oversized_message_in_a_client_stream_is_resource_exhausted() {
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c = client(&server).await;
    let big = StreamRequestData {
        data: "b".repeat(MIB4),
    };
    let requests = futures::stream::iter([data("small"), big]);
    let status = c.client_stream(requests).await.expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

#[tokio::test]
async fn small_gzip_inflating_past_the_limit_is_resource_exhausted() {
    let (server, _registry) = greeter::start(ReferenceConfig::default()).await;
    let mut c: GreeterClient<_> = client(&server)
        .await
        .send_compressed(Encoding::Gzip.tonic());
    // A few KiB on the wire, 4 MiB + 1 once inflated.
    let status = c
        .say_hello(hello_of_size(MIB4 + 1))
        .await
        .expect_err("refused after inflating");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

#[tokio::test]
async fn a_smaller_configured_limit_applies() {
    let config = ReferenceConfig {
        max_message_size: 1024,
        ..ReferenceConfig::default()
    };
    let (server, _registry) = greeter::start(config).await;
    let mut c = client(&server).await;
    c.say_hello(hello_of_size(1024))
        .await
        .expect("at the limit passes");
    let status = c
        .say_hello(hello_of_size(1025))
        .await
        .expect_err("above it fails");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}
