//! `ChatService`: the full-duplex echo chat (CONTRACT.md section 2).

use super::control::pad_to;
use super::script::{self, ResponseStream};
use super::start;
use crate::proto::contract::{chat_service_server::ChatService, Message};
use std::time::{SystemTime, UNIX_EPOCH};
use tonic::{Request, Response, Status, Streaming};

/// The user name on every message the server sends.
const SERVER_USER: &str = "server";

/// The ChatService handler; stateless.
#[derive(Debug, Default, Clone)]
pub struct ChatServiceImpl;

#[tonic::async_trait]
impl ChatService for ChatServiceImpl {
    type ChatStreamStream = ResponseStream<Message>;

    async fn chat_stream(
        &self,
        request: Request<Streaming<Message>>,
    ) -> Result<Response<Self::ChatStreamStream>, Status> {
        let (pacer, ctx) = start(&request)?;
        let size = pacer.control().response_size;
        let responses = script::duplex(pacer, request.into_inner(), ctx, move |m: Message| {
            Message {
                user: SERVER_USER.to_string(),
                content: pad_to(size, format!("echo: {}", m.content)),
                timestamp: unix_seconds(),
            }
        });
        Ok(Response::new(responses))
    }
}

/// Now in unix seconds; a clock before 1970 reads as 0 rather than failing
/// the call, since the timestamp is informative only.
fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
