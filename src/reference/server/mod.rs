//! The reference server's transport: where it listens, how it is stopped.
//!
//! - [`accept`]: the accept loop and each connection's life (A9, shutdown).
//! - [`tap`]: the IO tap that enforces the A8 ping policy and adds GOAWAY
//!   debug data, with [`ping_policy`] as its pure rule.
//! - [`layer`] and [`body`]: the per-call layer (Observer records, deadlines,
//!   message size, echo headers, response encoding).
//! - [`deadline`]: `grpc-timeout` parsing.
//! - [`hook`]: per-connection frame logs and scripted answers for embedders
//!   (client conformance).

pub mod accept;
pub mod body;
pub mod conn;
pub mod deadline;
pub mod hook;
pub mod layer;
pub mod ping_policy;
pub mod tap;

use super::{services, CallRegistry, ReferenceConfig};
use std::{net::SocketAddr, sync::Arc};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::service::Routes;

/// Why the reference server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("reference server failed: {0}")]
    Transport(String),
    /// The TLS files could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// A running reference server; dropping it stops it.
#[derive(Debug)]
pub struct ReferenceServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl ReferenceServer {
    /// Binds `config.listen` and serves the contract in the background.
    pub async fn start(config: ReferenceConfig) -> Result<ReferenceServer, ServeError> {
        let registry = CallRegistry::default();
        let routes = services::routes(&config, registry.clone());
        ReferenceServer::start_with_routes(config, routes, registry).await
    }

    /// Binds `config.listen` and serves `routes` through the reference
    /// transport, recording calls in `registry`: for embedding other services
    /// and for testing the transport apart from the contract's handlers.
    pub async fn start_with_routes(
        config: ReferenceConfig,
        routes: Routes,
        registry: CallRegistry,
    ) -> Result<ReferenceServer, ServeError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let config = Arc::new(config);
        let task = tokio::spawn(async move {
            accept::serve(listener, config, routes, registry, async {
                let _ = stopped.await;
            })
            .await;
            Ok(())
        });
        Ok(ReferenceServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Where it listens (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, sends a graceful GOAWAY on every connection, lets
    /// calls in flight end (at most [`accept::SHUTDOWN_GRACE`]) and waits.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| ServeError::Transport(e.to_string()))?,
            None => Ok(()),
        }
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
