//! Reaching the target: TCP, or TLS with ALPN `h2`, then the HTTP/2
//! handshake on the `h2` crate. One conversation gets one connection, so a
//! GOAWAY or a broken connection shows in that conversation only.
//!
//! Issue 4's frame recorder wraps the byte stream in [`Connector::connect`]
//! before the handshake; nothing above this module sees the socket.

use super::DriveError;
use crate::wire::recorder::{FrameLog, Recorder};
use bytes::Bytes;
use std::{path::PathBuf, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    task::JoinHandle,
};
use tokio_rustls::{
    rustls::{self, pki_types::ServerName},
    TlsConnector,
};

/// Where and how to reach the target.
#[derive(Clone, Debug)]
pub struct Target {
    /// `host:port` as given.
    pub address: String,
    /// TLS settings; `None` for plain TCP (h2c with prior knowledge).
    pub tls: Option<TlsOptions>,
}

/// TLS settings of a target.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file with the CA certificates to trust; the system roots when absent.
    pub ca_cert: Option<PathBuf>,
    /// Name to verify the certificate against (SNI); the target's host when absent.
    pub server_name: Option<String>,
    /// PEM certificate chain and private key presented to a target that asks
    /// for client certificates (mTLS); none when absent.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// Opens connections to one target; cheap to share between conversations.
#[derive(Clone)]
pub struct Connector {
    target: Target,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// An HTTP/2 connection to the target.
pub struct Conn {
    /// Opens streams.
    pub sender: h2::client::SendRequest<Bytes>,
    /// `http` or `https`, for `:scheme`.
    pub scheme: &'static str,
    /// The `:authority` to send.
    pub authority: String,
    /// Every frame of the connection, both ways (the wire recorder).
    pub log: FrameLog,
    /// Sends PINGs and awaits their ACKs (taken once, by a keepalive).
    pub ping_pong: Option<h2::PingPong>,
    /// Drives the connection; aborted when the `Conn` is dropped (taken by
    /// [`Conn::close`], which lets it finish).
    task: Option<JoinHandle<()>>,
    /// Aborts `task`.
    abort: tokio::task::AbortHandle,
}

/// A byte stream to the target, TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

impl Conn {
    /// Closes the connection when aborted (a keepalive whose PING went
    /// unanswered), failing its streams, while others still hold the `Conn`.
    pub fn closer(&self) -> tokio::task::AbortHandle {
        self.abort.clone()
    }

    /// Closes the connection as an HTTP/2 client does when it is done: with
    /// this handle gone and no stream left, h2 flushes what is queued (a
    /// last RST_STREAM), sends GOAWAY(NO_ERROR) and ends; aborted after
    /// `within` (a stream something else still holds).
    pub async fn close(mut self, within: Duration) {
        let Some(task) = self.task.take() else {
            return;
        };
        let abort = self.abort.clone();
        drop(self);
        if tokio::time::timeout(within, task).await.is_err() {
            abort.abort();
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.abort.abort();
        }
    }
}

impl Connector {
    /// Prepares TLS (reading the CA file) once for the whole run.
    pub fn new(target: Target) -> Result<Connector, DriveError> {
        let tls = match &target.tls {
            None => None,
            Some(options) => Some(tls_connector(&target.address, options)?),
        };
        Ok(Connector { target, tls })
    }

    /// The target's `host:port`.
    pub fn address(&self) -> &str {
        &self.target.address
    }

    /// Whether a TCP connection can be opened within `within`; this is the
    /// "unreachable" check made once before a run.
    pub async fn probe(&self, within: Duration) -> Result<(), DriveError> {
        match tokio::time::timeout(within, TcpStream::connect(&self.target.address)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(DriveError::Unreachable {
                target: self.target.address.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(DriveError::Unreachable {
                target: self.target.address.clone(),
                reason: format!("no TCP connection within {within:?}"),
            }),
        }
    }

    /// Opens a connection and performs the TLS and HTTP/2 handshakes, with
    /// the wire recorder between the socket and h2. The caller bounds the time.
    pub async fn connect(&self) -> Result<Conn, DriveError> {
        let (io, scheme) = self.connect_io().await?;
        let log = FrameLog::new();
        self.handshake(
            Recorder::new(io, log.clone()),
            scheme,
            log,
            &conversation_settings(),
        )
        .await
    }

    /// Opens the byte stream (TCP, or TLS with ALPN h2) and says its
    /// `:scheme`; the raw driver writes its frames on it. The caller bounds the time.
    pub async fn connect_io(&self) -> Result<(Box<dyn Io>, &'static str), DriveError> {
        let tcp = TcpStream::connect(&self.target.address)
            .await
            .map_err(|e| DriveError::Unreachable {
                target: self.target.address.clone(),
                reason: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok((Box::new(tcp), "http")),
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    DriveError::Tls(format!("handshake with {}: {e}", self.target.address))
                })?;
                let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
                if alpn.as_deref() != Some(b"h2") {
                    return Err(DriveError::Tls(format!(
                        "{} did not negotiate ALPN h2 (got {:?})",
                        self.target.address,
                        alpn.map(|p| String::from_utf8_lossy(&p).into_owned())
                    )));
                }
                Ok((Box::new(tls), "https"))
            }
        }
    }

    /// The HTTP/2 client handshake on `io`.
    async fn handshake<T>(
        &self,
        io: T,
        scheme: &'static str,
        log: FrameLog,
        settings: &h2::client::Builder,
    ) -> Result<Conn, DriveError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, mut connection) = settings
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| DriveError::Handshake(super::describe_h2(&e)))?;
        let ping_pong = connection.ping_pong();
        // Errors of the connection reach every stream; nothing to do with it here.
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            scheme,
            authority: self.target.address.clone(),
            log,
            ping_pong,
            abort: task.abort_handle(),
            task: Some(task),
        })
    }
}

/// The stream window a conversation or a load connection gives the target
/// (SETTINGS_INITIAL_WINDOW_SIZE).
pub(crate) const STREAM_WINDOW: u32 = 4 * 1024 * 1024;

/// The frame size they take (SETTINGS_MAX_FRAME_SIZE, the default).
pub(crate) const MAX_FRAME: u32 = 16 * 1024;

/// Connection window of a load connection: 16 streams' worth of the stream
/// window.
pub(crate) const LOAD_CONNECTION_WINDOW: u32 = 16 * STREAM_WINDOW;

/// The HTTP/2 settings of a load connection (`grpc-conform bench`): the
/// conversations', with a connection window as large as 16 stream windows so
/// many streams of one connection are not held back by the 64 KiB default.
pub(crate) fn load_settings() -> h2::client::Builder {
    let mut settings = conversation_settings();
    settings.initial_connection_window_size(LOAD_CONNECTION_WINDOW);
    settings
}

/// The HTTP/2 settings of every conversation's connection.
fn conversation_settings() -> h2::client::Builder {
    let mut settings = h2::client::Builder::new();
    settings
        .initial_window_size(STREAM_WINDOW)
        .max_frame_size(MAX_FRAME)
        // A header list as large as the frame log decodes (a target's
        // headers are the transcript's, not a place to fill memory).
        .max_header_list_size(crate::wire::bounds::MAX_HEADER_BLOCK as u32);
    settings
}

/// A rustls connector with ALPN h2 and the server name to verify.
fn tls_connector(
    address: &str,
    options: &TlsOptions,
) -> Result<(TlsConnector, ServerName<'static>), DriveError> {
    let tls_err = |e: crate::tls::TlsError| DriveError::Tls(e.to_string());
    let roots = match &options.ca_cert {
        Some(path) => crate::tls::roots("--ca-cert", path).map_err(tls_err)?,
        None => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DriveError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match &options.client_identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                crate::tls::certificates("--client-cert", cert).map_err(tls_err)?,
                crate::tls::private_key("--client-key", key).map_err(tls_err)?,
            )
            .map_err(|e| {
                DriveError::Tls(format!(
                    "--client-cert {} with --client-key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?,
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let host = match &options.server_name {
        Some(name) => name.clone(),
        None => host_of(address).to_string(),
    };
    let name = ServerName::try_from(host.clone())
        .map_err(|e| DriveError::Tls(format!("bad server name `{host}`: {e}")))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// Checks a `--target` value: `host:port` (or `[v6]:port`) with a port in
/// 1..=65535 and no scheme; the reason when it is not, so a typo is a usage
/// error rather than an unreachable target.
pub fn check_address(address: &str) -> Result<(), String> {
    if let Some((scheme, _)) = address.split_once("://") {
        return Err(format!(
            "`{address}`: give host:port without `{scheme}://` (use --tls for TLS)"
        ));
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("`{address}`: no port; give host:port"));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty()
        || bare.contains(['/', ' '])
        || (bare.contains(':') && !host.starts_with('['))
    {
        return Err(format!(
            "`{address}`: bad host (write an IPv6 address in brackets: [::1]:50051)"
        ));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("`{address}`: the port must be 1 to 65535")),
        Ok(_) => Ok(()),
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_checked() {
        for good in [
            "localhost:50051",
            "127.0.0.1:1",
            "[::1]:443",
            "api.example.com:65535",
        ] {
            assert!(super::check_address(good).is_ok(), "{good}");
        }
        for bad in [
            "http://127.0.0.1:8080",
            "localhost",
            "127.0.0.1:99999",
            "127.0.0.1:0",
            ":50051",
            "::1:50051",
            "host:port",
        ] {
            assert!(super::check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(super::host_of("example.com:443"), "example.com");
        assert_eq!(super::host_of("[::1]:50051"), "::1");
    }
}
