//! A Greeter written for testing the transport apart from the contract's
//! handlers (they live on another branch): it reports to the Observer the way
//! the contract's handlers must (requests read, half-close only on a clean
//! end, errors passed on), and streams as the control headers say.

use futures::{Stream, StreamExt};
use grpc_conform::proto::contract::greeter_server::{Greeter, GreeterServer};
use grpc_conform::proto::contract::{
    HelloReply, HelloRequest, StreamRequestData, StreamResponseData,
};
use grpc_conform::reference::{CallCtx, CallRegistry, ReferenceConfig, ReferenceServer};
use std::{pin::Pin, time::Duration};
use tonic::{service::Routes, Request, Response, Status, Streaming};

type Responses = Pin<Box<dyn Stream<Item = Result<StreamResponseData, Status>> + Send>>;

/// A SayHello with this name waits 10 s first (for deadlines before headers).
pub const SLOW: &str = "slow";

/// The test Greeter.
pub struct TestGreeter;

fn header_u64<T>(request: &Request<T>, name: &str, default: u64) -> u64 {
    request
        .metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads every request, recording each and a clean half-close; an error
/// (reset, oversized message) is returned as it came.
async fn read_all(
    ctx: &CallCtx,
    stream: &mut Streaming<StreamRequestData>,
) -> Result<Vec<String>, Status> {
    let mut seen = Vec::new();
    while let Some(message) = stream.message().await? {
        ctx.request_read();
        seen.push(message.data);
    }
    ctx.half_close();
    Ok(seen)
}

#[tonic::async_trait]
impl Greeter for TestGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let ctx = CallCtx::from_extensions(request.extensions());
        ctx.request_read();
        ctx.half_close();
        let name = request.into_inner().name;
        if name == SLOW {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}"),
        }))
    }

    type ServerStreamStream = Responses;

    async fn server_stream(
        &self,
        request: Request<StreamRequestData>,
    ) -> Result<Response<Responses>, Status> {
        let ctx = CallCtx::from_extensions(request.extensions());
        ctx.request_read();
        ctx.half_close();
        let count = header_u64(&request, "x-conform-response-count", 3);
        let interval =
            Duration::from_millis(header_u64(&request, "x-conform-response-interval-ms", 0));
        let data = request.into_inner().data;
        let stream = futures::stream::iter(1..=count).then(move |i| {
            let data = data.clone();
            async move {
                if i > 1 {
                    tokio::time::sleep(interval).await;
                }
                Ok(StreamResponseData {
                    data: format!("{data}-{i}"),
                })
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<StreamRequestData>>,
    ) -> Result<Response<StreamResponseData>, Status> {
        let ctx = CallCtx::from_extensions(request.extensions());
        let seen = read_all(&ctx, &mut request.into_inner()).await?;
        Ok(Response::new(StreamResponseData {
            data: seen.join(","),
        }))
    }

    type AllStreamStream = Responses;

    async fn all_stream(
        &self,
        request: Request<Streaming<StreamRequestData>>,
    ) -> Result<Response<Responses>, Status> {
        let ctx = CallCtx::from_extensions(request.extensions());
        let mut requests = request.into_inner();
        let stream = async_stream::stream! {
            loop {
                match requests.message().await {
                    Ok(Some(m)) => {
                        ctx.request_read();
                        yield Ok(StreamResponseData { data: format!("echo: {}", m.data) });
                    }
                    Ok(None) => {
                        ctx.half_close();
                        break;
                    }
                    Err(status) => {
                        yield Err(status);
                        break;
                    }
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The test Greeter as routes, configured from `config` as the contract's
/// services must be (encodings both ways, the message size limit).
pub fn routes(config: &ReferenceConfig) -> Routes {
    let mut server =
        GreeterServer::new(TestGreeter).max_decoding_message_size(config.max_message_size);
    for encoding in &config.encodings {
        server = server
            .accept_compressed(encoding.tonic())
            .send_compressed(encoding.tonic());
    }
    Routes::new(server)
}

/// A reference transport serving the test Greeter on 127.0.0.1:0.
pub async fn start(mut config: ReferenceConfig) -> (ReferenceServer, CallRegistry) {
    config.listen = ([127, 0, 0, 1], 0).into();
    let registry = CallRegistry::default();
    let routes = routes(&config);
    let server = ReferenceServer::start_with_routes(config, routes, registry.clone())
        .await
        .expect("reference transport starts");
    (server, registry)
}
