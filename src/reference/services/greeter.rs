//! `Greeter`: one method per RPC mode (CONTRACT.md section 2).

use super::control::pad_to;
use super::script::{self, ResponseStream};
use super::{start, start_single};
use crate::proto::contract::{
    greeter_server::Greeter, HelloReply, HelloRequest, StreamRequestData, StreamResponseData,
};
use tonic::{Request, Response, Status, Streaming};

/// Responses of ServerStream without `x-conform-response-count`.
const DEFAULT_SERVER_STREAM_COUNT: u32 = 3;

/// The Greeter handlers; stateless.
#[derive(Debug, Default, Clone)]
pub struct GreeterService;

#[tonic::async_trait]
impl Greeter for GreeterService {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let pacer = start_single(&request)?;
        pacer.fail_at_start().await?;
        let message = pacer
            .control()
            .pad(format!("Hello {}", request.get_ref().name));
        script::reply(&pacer, HelloReply { message }).await
    }

    type ServerStreamStream = ResponseStream<StreamResponseData>;

    async fn server_stream(
        &self,
        request: Request<StreamRequestData>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let pacer = start_single(&request)?;
        let count = pacer
            .control()
            .response_count
            .unwrap_or(DEFAULT_SERVER_STREAM_COUNT);
        let data = request.into_inner().data;
        let size = pacer.control().response_size;
        let responses = script::server_stream(pacer, count, move |i| StreamResponseData {
            data: pad_to(size, format!("{data}-{}", i + 1)),
        });
        Ok(Response::new(responses))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<StreamRequestData>>,
    ) -> Result<Response<StreamResponseData>, Status> {
        let (pacer, ctx) = start(&request)?;
        pacer.fail_at_start().await?;
        let mut input = request.into_inner();
        let mut received = Vec::new();
        script::read_requests(&mut input, &ctx, &pacer, |m: StreamRequestData| {
            received.push(m.data);
            Ok(())
        })
        .await?;
        let data = pacer.control().pad(received.join(","));
        script::reply(&pacer, StreamResponseData { data }).await
    }

    type AllStreamStream = ResponseStream<StreamResponseData>;

    async fn all_stream(
        &self,
        request: Request<Streaming<StreamRequestData>>,
    ) -> Result<Response<Self::AllStreamStream>, Status> {
        let (pacer, ctx) = start(&request)?;
        let size = pacer.control().response_size;
        let responses = script::duplex(pacer, request.into_inner(), ctx, move |m| {
            StreamResponseData {
                data: pad_to(size, format!("echo: {}", m.data)),
            }
        });
        Ok(Response::new(responses))
    }
}
