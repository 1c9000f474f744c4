//! Shared helpers: an in-process reference server on 127.0.0.1:0 and clients.

#![allow(dead_code)]

use grpc_conform::reference::{ReferenceConfig, ReferenceServer};
use tonic::transport::{Channel, Endpoint};

/// A reference server with the default configuration.
pub async fn start_reference() -> ReferenceServer {
    start_reference_with(ReferenceConfig::default()).await
}

/// A reference server with `config` (its listen address is forced to 127.0.0.1:0).
pub async fn start_reference_with(mut config: ReferenceConfig) -> ReferenceServer {
    config.listen = ([127, 0, 0, 1], 0).into();
    ReferenceServer::start(config)
        .await
        .expect("reference server starts")
}

/// A connected channel to `server`; connecting is bounded to 5 s.
pub async fn channel(server: &ReferenceServer) -> Channel {
    Endpoint::from_shared(format!("http://{}", server.local_addr()))
        .expect("valid endpoint")
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .expect("connects to the reference server")
}
