//! The tonic peer: the contract (docs/contract.md) on tonic as users write
//! it: `Server::builder()` with its defaults, one `add_service` per service,
//! no layers, no compression settings.
//!
//!   grpc-conform-peer-tonic PORT   # prints "listening on 127.0.0.1:PORT"; SIGTERM stops it

mod contract;
pub mod proto;
mod services;

use std::net::SocketAddr;

use tonic::transport::Server;

use crate::proto::observer::observer_server::ObserverServer;
use crate::proto::{
    chat_service_server::ChatServiceServer, greeter_server::GreeterServer,
    sensor_service_server::SensorServiceServer,
};
use crate::services::Contract;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        _ => return Err("usage: grpc-conform-peer-tonic PORT".into()),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {addr}");
    let contract = Contract::default();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Server::builder()
        .add_service(ChatServiceServer::new(contract.clone()))
        .add_service(GreeterServer::new(contract.clone()))
        .add_service(SensorServiceServer::new(contract.clone()))
        .add_service(ObserverServer::new(contract))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async move {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            },
        )
        .await?;
    Ok(())
}
