//! The reference server's transport: where it listens, how it is stopped.

use super::{services, CallRegistry, ReferenceConfig};
use std::net::SocketAddr;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;

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
}

/// A running reference server; dropping it stops it.
#[derive(Debug)]
pub struct ReferenceServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl ReferenceServer {
    /// Binds `config.listen` and serves in the background.
    pub async fn start(config: ReferenceConfig) -> Result<ReferenceServer, ServeError> {
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
        let routes = services::routes(&config, CallRegistry::default());
        let (stop, stopped) = oneshot::channel::<()>();
        // Interim: tonic's own server, until the hyper accept loop lands.
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| ServeError::Transport(e.to_string()))
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

    /// Stops accepting, lets calls in flight end, and waits for the server.
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
