//! The transport under the contract's own handlers, seen through
//! `Observer.GetCall` as a conformance run sees it: resets on every
//! streaming mode, a deadline after the headers, a ping flood.

use super::raw::{ping_acked, H2Call, RawConn};
use super::{tagged, WAIT};
use crate::support::{channel, start_reference};
use grpc_conform::proto::contract::greeter_client::GreeterClient;
use grpc_conform::proto::contract::{Message as ChatMessage, SensorData, StreamRequestData};
use grpc_conform::proto::observer::{
    observer_client::ObserverClient, CallQuery, CallRecord, Outcome,
};
use grpc_conform::reference::ReferenceServer;
use grpc_conform::wire::frame::{error_code, kind};
use prost::Message;
use std::time::Duration;
use tonic::Code;

/// `GetCall` for `id`, waiting up to `wait` for it to end.
async fn get_call(server: &ReferenceServer, id: &str, wait: Duration) -> CallRecord {
    let mut observer = ObserverClient::new(channel(server).await);
    let query = CallQuery {
        call_id: id.into(),
        wait_ms: wait.as_millis() as u32,
    };
    tokio::time::timeout(WAIT + wait, observer.get_call(query))
        .await
        .expect("GetCall answers")
        .expect("the call was recorded")
        .into_inner()
}

/// Polls `GetCall` until call `id` read `n` requests.
async fn until_read(server: &ReferenceServer, id: &str, n: u32) {
    let polled = async {
        while get_call(server, id, Duration::ZERO).await.requests_received < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, polled)
        .await
        .unwrap_or_else(|_| panic!("call {id} never read {n} requests"));
}

/// Opens `path`, sends `messages`, resets the stream once they were read
/// and returns what the Observer recorded.
async fn reset_after(
    server: &ReferenceServer,
    path: &str,
    id: &str,
    messages: &[Vec<u8>],
) -> CallRecord {
    let mut call = H2Call::open(server.local_addr(), path, &[("x-conform-call-id", id)]).await;
    for message in messages {
        call.send_message(message);
    }
    until_read(server, id, messages.len() as u32).await;
    call.send.send_reset(h2::Reason::CANCEL);
    get_call(server, id, WAIT).await
}

#[tokio::test]
async fn resets_mid_client_stream_are_cancels_for_every_client_streaming_method() {
    let server = start_reference().await;
    let greeter = StreamRequestData { data: "a".into() }.encode_to_vec();
    let sensor = SensorData {
        timestamp: 1,
        temperature: 20.0,
        device_id: "dev".into(),
    }
    .encode_to_vec();
    let chat = ChatMessage {
        user: "u".into(),
        content: "c".into(),
        timestamp: 1,
    }
    .encode_to_vec();
    let cases = [
        ("/Greeter/ClientStream", greeter.clone()),
        ("/SensorService/Record", sensor),
        ("/Greeter/AllStream", greeter),
        ("/ChatService/ChatStream", chat),
    ];
    for (path, message) in cases {
        let id = format!("reset{}", path.replace('/', "-"));
        let r = reset_after(&server, path, &id, &[message.clone(), message]).await;
        assert_eq!(r.outcome, Outcome::Cancelled as i32, "{path}: {r:?}");
        assert_eq!(r.requests_received, 2, "{path}: {r:?}");
        assert!(
            !r.half_close_received,
            "{path}: a cancel is not a half-close: {r:?}"
        );
    }
}

#[tokio::test]
async fn server_stream_past_its_deadline_stops_with_deadline_exceeded() {
    let server = start_reference().await;
    let mut greeter = GreeterClient::new(channel(&server).await);
    let mut request = tagged(
        StreamRequestData { data: "d".into() },
        "contract-deadline",
        &[
            ("x-conform-response-count", "1000"),
            ("x-conform-response-interval-ms", "50"),
        ],
    );
    request.set_timeout(Duration::from_millis(500));
    let mut stream = greeter
        .server_stream(request)
        .await
        .expect("headers first")
        .into_inner();
    let mut received = 0u32;
    let status = tokio::time::timeout(WAIT, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => received += 1,
                Ok(None) => panic!("ended OK after {received} responses"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream stops at its deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let r = get_call(&server, "contract-deadline", WAIT).await;
    assert_eq!(
        (r.outcome, r.status_code),
        (Outcome::DeadlineExceeded as i32, 4),
        "{r:?}"
    );
    assert_eq!(r.timeout_ms, 500);
    assert!((1..1000).contains(&r.responses_sent), "{r:?}");
}

#[tokio::test]
async fn ping_flood_on_an_idle_chat_gets_too_many_pings() {
    let server = start_reference().await;
    let mut conn = RawConn::connect(server.local_addr()).await;
    conn.open_call(1, "/ChatService/ChatStream").await;
    // ChatStream answers with its headers at once; they clear the strikes,
    // so wait for them to be out before the pings (as grpc-go counts).
    let headers = conn.next_significant().await.expect("response headers");
    assert_eq!(
        (headers.header.kind, headers.header.stream_id),
        (kind::HEADERS, 1)
    );
    // Well inside the default 5 minutes: the 2 strikes are used up by pings 2
    // and 3, the 4th is one too many.
    for i in 1..=3u8 {
        ping_acked(&mut conn, [i; 8]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.ping([4; 8]).await;
    let ack = conn.next_significant().await.expect("answered");
    assert_eq!(ack.header.kind, kind::PING);
    let goaway = conn.next_significant().await.expect("GOAWAY");
    assert_eq!(
        goaway.goaway(),
        (1, error_code::ENHANCE_YOUR_CALM, "too_many_pings".into())
    );
    assert!(conn.closed().await);
}
