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
/// Largest reply ClientStream builds (its requests' data joined by commas):
/// past it the call ends with RESOURCE_EXHAUSTED, so one client cannot make
/// the server hold more than this for it. It is the 4 MiB message limit
/// clients accept by default less the reply's field framing (a tag byte and
/// a 4-byte length), so every reply it allows fits that limit.
pub const MAX_CLIENT_STREAM_REPLY: usize = 4 * 1024 * 1024 - 5;

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
        let mut data = String::new();
        let mut count = 0u64;
        script::read_requests(&mut input, &ctx, &pacer, |m: StreamRequestData| {
            count += 1;
            let comma = usize::from(count > 1);
            if data.len() + comma + m.data.len() > MAX_CLIENT_STREAM_REPLY {
                return Err(Status::resource_exhausted(format!(
                    "ClientStream: the reply would exceed {MAX_CLIENT_STREAM_REPLY} bytes \
                     at request {count}"
                )));
            }
            if comma == 1 {
                data.push(',');
            }
            data.push_str(&m.data);
            Ok(())
        })
        .await?;
        let data = pacer.control().pad(data);
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
