//! Every policy value of the reference server, settable when it is started
//! (CONTRACT.md section 5). Defaults follow gRPC's own: proposal A8 for the
//! ping policy, A9 (all off) for connection management, 4 MiB messages.

use std::{net::SocketAddr, time::Duration};

/// A message encoding the reference can accept and send, besides `identity`
/// which is always accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `gzip`
    Gzip,
    /// `deflate`, zlib-wrapped as grpc/grpc#36113 settles it.
    Deflate,
    /// `zstd`
    Zstd,
}

impl Encoding {
    /// All encodings the reference knows, in the order it advertises them.
    pub const ALL: [Encoding; 3] = [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd];

    /// The name used in `grpc-encoding` and `grpc-accept-encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Zstd => "zstd",
        }
    }

    /// The encoding named `name` (`identity` is not one: it needs no codec).
    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The matching tonic codec.
    pub fn tonic(self) -> tonic::codec::CompressionEncoding {
        match self {
            Encoding::Gzip => tonic::codec::CompressionEncoding::Gzip,
            Encoding::Deflate => tonic::codec::CompressionEncoding::Deflate,
            Encoding::Zstd => tonic::codec::CompressionEncoding::Zstd,
        }
    }
}

/// The server's policy for client PINGs, as proposal A8 and grpc-go's
/// `EnforcementPolicy` define it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingPolicy {
    /// Pings closer together than this earn a strike while calls are open.
    pub min_interval: Duration,
    /// Strikes tolerated; one more sends GOAWAY ENHANCE_YOUR_CALM `too_many_pings`.
    pub max_strikes: u32,
    /// Whether pings with no call open are judged by `min_interval` (true) or
    /// by `idle_interval` (false, the default).
    pub permit_without_calls: bool,
    /// With no call open and `permit_without_calls` false, pings closer
    /// together than this earn a strike (gRPC's fixed 2 hours).
    pub idle_interval: Duration,
}

impl Default for PingPolicy {
    fn default() -> Self {
        PingPolicy {
            min_interval: Duration::from_secs(300),
            max_strikes: 2,
            permit_without_calls: false,
            idle_interval: Duration::from_secs(2 * 60 * 60),
        }
    }
}

/// Server-initiated keepalive (proposal A9's `keepalive_time` and
/// `keepalive_timeout`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKeepalive {
    /// Send a PING after the connection was quiet this long.
    pub interval: Duration,
    /// Close the connection when the PING is not acknowledged within this.
    pub timeout: Duration,
}

/// Default [`ReferenceConfig::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ReferenceConfig::first_call_timeout`].
pub const DEFAULT_FIRST_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ReferenceConfig::max_connections`]: well under the usual limit
/// of 1024 open files, so the listener itself never runs out.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// How the reference server is started.
#[derive(Clone, Debug)]
pub struct ReferenceConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The client ping policy (A8).
    pub ping_policy: PingPolicy,
    /// Server-side keepalive pings; off by default.
    pub keepalive: Option<ServerKeepalive>,
    /// GOAWAY `max_idle` after a connection had no call open this long; off by default.
    pub max_connection_idle: Option<Duration>,
    /// GOAWAY `max_age` after a connection lived this long; off by default.
    pub max_connection_age: Option<Duration>,
    /// After a max-age GOAWAY, calls in flight get this long before the
    /// connection is closed; unbounded when `None`.
    pub max_connection_age_grace: Option<Duration>,
    /// Largest request message accepted, in bytes (before and after
    /// decompression); larger gets RESOURCE_EXHAUSTED.
    pub max_message_size: usize,
    /// Encodings accepted on requests and offered for responses, besides identity.
    pub encodings: Vec<Encoding>,
    /// TLS (ALPN h2, optionally client certificates) instead of h2c; see
    /// [`crate::tls::server_config`].
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    /// A connection that has not sent the client preface and its first frame
    /// within this is closed without a word (it has not spoken HTTP/2 yet).
    pub handshake_timeout: Duration,
    /// A connection that never started a call is closed this long after it
    /// was accepted (GOAWAY `max_idle`), whatever `max_connection_idle` says.
    pub first_call_timeout: Duration,
    /// Connections served at once. A new one beyond it first evicts the
    /// oldest connection that never started a call; when every connection
    /// has, the new one is refused with GOAWAY REFUSED_STREAM
    /// `too_many_connections` and closed.
    pub max_connections: usize,
    /// SETTINGS_MAX_CONCURRENT_STREAMS; hyper's default (200) when `None`.
    pub max_concurrent_streams: Option<u32>,
    /// Serve the Observer (`conform.v1.Observer`); off, GetCall is
    /// UNIMPLEMENTED, as on a server that does not implement it.
    pub observer: bool,
    /// Honour the control headers of the contract (section 3); off, they are
    /// dropped before any handler sees them, as on a server written from the
    /// streaming tutorials alone.
    pub control_headers: bool,
    /// Logs each connection's frames and scripts calls (client
    /// conformance); none for a plain reference.
    pub hook: Option<std::sync::Arc<dyn super::server::hook::ConnectionHook>>,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        ReferenceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ping_policy: PingPolicy::default(),
            keepalive: None,
            max_connection_idle: None,
            max_connection_age: None,
            max_connection_age_grace: None,
            max_message_size: 4 * 1024 * 1024,
            encodings: Encoding::ALL.to_vec(),
            tls: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            first_call_timeout: DEFAULT_FIRST_CALL_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_concurrent_streams: None,
            observer: true,
            control_headers: true,
            hook: None,
        }
    }
}
