//! The reference services through real tonic clients over 127.0.0.1
//! (CONTRACT.md sections 2 and 3): default behaviour, the control headers
//! that are handler behaviour, and what is served beside the contract.

mod beside;
mod control;
mod defaults;
mod observed;

use crate::support;
use grpc_conform::proto::contract::{
    chat_service_client::ChatServiceClient, greeter_client::GreeterClient,
    sensor_service_client::SensorServiceClient,
};
use grpc_conform::reference::ReferenceServer;
use std::{future::Future, time::Duration};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{transport::Channel, Request, Status, Streaming};

/// Bound on every single wait of these tests: far above what any call here
/// needs on a loaded 2-core machine, so a hang fails clearly and never flakes.
pub const BOUND: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`BOUND`].
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {BOUND:?}"))
}

/// A running reference server and clients of each contract service on one
/// channel. Dropping it stops the server.
pub struct Harness {
    /// Kept so the server lives as long as the clients.
    _server: ReferenceServer,
    /// The channel the clients share, for other clients (health, reflection).
    pub channel: Channel,
    /// `Greeter`.
    pub greeter: GreeterClient<Channel>,
    /// `ChatService`.
    pub chat: ChatServiceClient<Channel>,
    /// `SensorService`.
    pub sensor: SensorServiceClient<Channel>,
}

/// Starts a reference server on 127.0.0.1:0 and connects the clients.
pub async fn harness() -> Harness {
    let server = support::start_reference().await;
    let channel = support::channel(&server).await;
    Harness {
        greeter: GreeterClient::new(channel.clone()),
        chat: ChatServiceClient::new(channel.clone()),
        sensor: SensorServiceClient::new(channel.clone()),
        channel,
        _server: server,
    }
}

/// `message` with the request headers `headers`.
pub fn with_headers<T>(message: T, headers: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    for (name, value) in headers {
        let value = value.parse().expect("test header value is valid");
        request.metadata_mut().insert(*name, value);
    }
    request
}

/// A request stream the test feeds by hand and keeps open as long as it
/// holds the sender: this is how a test proves the server answers before the
/// client half-closes. Dropping the sender half-closes.
pub fn open_stream<T>() -> (mpsc::Sender<T>, ReceiverStream<T>) {
    let (tx, rx) = mpsc::channel(16);
    (tx, ReceiverStream::new(rx))
}

/// Sends `message` on a hand-fed request stream.
pub async fn feed<T>(tx: &mpsc::Sender<T>, message: T) {
    bounded("queue a request", tx.send(message))
        .await
        .unwrap_or_else(|_| panic!("the request stream was closed by the client"));
}

/// Reads a response stream to its end: the messages, then the final status
/// (`Ok(())` for OK).
pub async fn drain<T>(mut responses: Streaming<T>) -> (Vec<T>, Result<(), Status>) {
    let mut messages = Vec::new();
    loop {
        match bounded("next response", responses.message()).await {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => return (messages, Ok(())),
            Err(status) => return (messages, Err(status)),
        }
    }
}

/// The next response of a stream, which must be a message.
pub async fn next<T>(responses: &mut Streaming<T>) -> T {
    bounded("next response", responses.message())
        .await
        .expect("a response message, not an error status")
        .expect("a response message, not the end of the stream")
}

/// Fails the test unless a stream ended with OK, showing the status if not.
pub fn assert_ok(ending: Result<(), Status>) {
    if let Err(status) = ending {
        panic!("expected the call to end OK, got {status:?}");
    }
}
