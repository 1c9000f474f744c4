//! `grpc-conform serve`: the reference server as a process, every policy
//! value a flag (CONTRACT.md section 5).

use crate::reference::{
    Encoding, PingPolicy, ReferenceConfig, ReferenceServer, ServeError, ServerKeepalive,
};
use clap::Args;
use std::{io::Write, net::SocketAddr, path::PathBuf, time::Duration};

/// Flags of `grpc-conform serve`. Durations are written like `300s`, `500ms`,
/// `2h` or `1m 30s`.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Client pings closer together than this earn a strike while a call is
    /// open (A8 `min_time`; gRPC's default is 5 minutes).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub ping_min_interval: Duration,

    /// Strikes tolerated; the next one gets GOAWAY ENHANCE_YOUR_CALM
    /// `too_many_pings`.
    #[arg(long, default_value_t = 2)]
    pub ping_max_strikes: u32,

    /// Judge pings with no call open by --ping-min-interval too, instead of
    /// --ping-idle-interval (A8 `permit_without_stream`).
    #[arg(long)]
    pub permit_pings_without_calls: bool,

    /// With no call open (and pings not permitted without calls), pings
    /// closer together than this earn a strike (gRPC fixes it at 2 hours).
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    pub ping_idle_interval: Duration,

    /// Send a keepalive PING after the connection was quiet this long (A9
    /// `keepalive_time`); off when absent.
    #[arg(long, value_parser = parse_duration)]
    pub keepalive_interval: Option<Duration>,

    /// Close the connection when a keepalive PING is not acknowledged within
    /// this (A9 `keepalive_timeout`); used with --keepalive-interval.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,

    /// Graceful GOAWAY `max_idle` after a connection had no call open this
    /// long (A9); off when absent.
    #[arg(long, value_parser = parse_duration)]
    pub max_connection_idle: Option<Duration>,

    /// Graceful GOAWAY `max_age` once a connection lived this long (A9); off
    /// when absent.
    #[arg(long, value_parser = parse_duration)]
    pub max_connection_age: Option<Duration>,

    /// After the max-age GOAWAY, calls in flight get this long before the
    /// connection is closed; unbounded when absent.
    #[arg(long, value_parser = parse_duration)]
    pub max_connection_age_grace: Option<Duration>,

    /// Largest request message accepted, in bytes (also after decompression);
    /// larger gets RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_message_size: usize,

    /// Encodings accepted on requests and offered for responses, besides
    /// identity which is always accepted (comma-separated: gzip,deflate,zstd).
    #[arg(long, value_delimiter = ',', default_value = "gzip,deflate,zstd", value_parser = parse_encoding)]
    pub encodings: Vec<Encoding>,

    /// Serve TLS (ALPN h2) with this PEM certificate chain instead of h2c;
    /// needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by a CA of this PEM file (mTLS);
    /// needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Close a connection that has not sent the HTTP/2 client preface and
    /// its first frame within this (no GOAWAY: it has not spoken HTTP/2).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Close a connection that never started a call this long after it was
    /// accepted (GOAWAY `max_idle`), even without --max-connection-idle.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub first_call_timeout: Duration,

    /// Connections served at once. Past it the oldest connection that never
    /// started a call is closed to make room; when all have, the new one gets
    /// GOAWAY REFUSED_STREAM `too_many_connections` and is closed. Keep it
    /// under the open-file limit (`ulimit -n`).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised; streams beyond it are
    /// refused with REFUSED_STREAM (200 when absent).
    #[arg(long)]
    pub max_concurrent_streams: Option<u32>,

    /// Do not serve the Observer (GetCall answers UNIMPLEMENTED), to play a
    /// server that does not implement it.
    #[arg(long)]
    pub no_observer: bool,

    /// Ignore the contract's control headers (`x-conform-*` but the call id,
    /// and the `x-grpc-test-echo-*` headers), to play a server written from
    /// the streaming tutorials alone.
    #[arg(long)]
    pub no_control_headers: bool,
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 300s, 500ms, 2h)"))
}

fn parse_encoding(name: &str) -> Result<Encoding, String> {
    Encoding::from_name(name.trim()).ok_or_else(|| {
        let known: Vec<&str> = Encoding::ALL.iter().map(|e| e.name()).collect();
        format!("unknown encoding {name:?}; known: {}", known.join(", "))
    })
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub fn config(&self) -> ReferenceConfig {
        ReferenceConfig {
            listen: self.listen,
            ping_policy: PingPolicy {
                min_interval: self.ping_min_interval,
                max_strikes: self.ping_max_strikes,
                permit_without_calls: self.permit_pings_without_calls,
                idle_interval: self.ping_idle_interval,
            },
            keepalive: self.keepalive_interval.map(|interval| ServerKeepalive {
                interval,
                timeout: self.keepalive_timeout,
            }),
            max_connection_idle: self.max_connection_idle,
            max_connection_age: self.max_connection_age,
            max_connection_age_grace: self.max_connection_age_grace,
            max_message_size: self.max_message_size,
            encodings: self.encodings.clone(),
            tls: None,
            handshake_timeout: self.handshake_timeout,
            first_call_timeout: self.first_call_timeout,
            max_connections: self.max_connections as usize,
            max_concurrent_streams: self.max_concurrent_streams,
            observer: !self.no_observer,
            control_headers: !self.no_control_headers,
            hook: None,
        }
    }

    /// The TLS configuration of --tls-cert, --tls-key and --tls-client-ca.
    pub fn tls(
        &self,
    ) -> Result<Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>, ServeError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::server_config(
                cert,
                key,
                self.tls_client_ca.as_deref(),
            )?)),
            _ => Ok(None),
        }
    }
}

/// The async runtime a server runs on: one worker thread per core the
/// process may use; given one core (`taskset`, a container's CPU set) it runs
/// everything on its one thread instead, which spares the hand-offs between
/// the thread that accepts and the worker, and a second thread's stack and
/// heap.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    if one_core {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

/// Runs the server until SIGINT or SIGTERM, then stops it cleanly. Prints
/// `listening on <addr>` to stdout once it accepts connections. Runs on the
/// caller's tokio runtime.
pub async fn execute(args: &ServeArgs) -> Result<(), ServeError> {
    // Watch the signals before announcing the address: a supervisor may
    // send one as soon as it has read the line.
    let stop = StopSignals::watch()?;
    let config = ReferenceConfig {
        tls: args.tls()?,
        ..args.config()
    };
    let server = ReferenceServer::start(config).await?;
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop the server: the address is a courtesy.
    let _ = writeln!(stdout, "listening on {}", server.local_addr());
    let _ = stdout.flush();
    drop(stdout);
    stop.received().await;
    server.shutdown().await
}

/// SIGINT and SIGTERM, watched from creation on.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn watch() -> Result<StopSignals, ServeError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let watch = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| ServeError::Transport(format!("cannot watch {name}: {e}")))
            };
            Ok(StopSignals {
                interrupt: watch(SignalKind::interrupt(), "SIGINT")?,
                terminate: watch(SignalKind::terminate(), "SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignals {})
        }
    }

    async fn received(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn defaults_are_the_reference_defaults() {
        let args = Wrapper::parse_from(["serve"]).serve;
        let config = args.config();
        let default = ReferenceConfig::default();
        assert_eq!(config.ping_policy, default.ping_policy);
        assert_eq!(config.keepalive, None);
        assert_eq!(config.max_message_size, default.max_message_size);
        assert_eq!(config.encodings, default.encodings);
        assert_eq!(config.handshake_timeout, default.handshake_timeout);
        assert_eq!(config.first_call_timeout, default.first_call_timeout);
        assert_eq!(config.max_connections, default.max_connections);
        assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
    }

    #[test]
    fn every_flag_reaches_the_config() {
        let args = Wrapper::parse_from([
            "serve",
            "--listen=127.0.0.1:0",
            "--ping-min-interval=200ms",
            "--ping-max-strikes=5",
            "--permit-pings-without-calls",
            "--ping-idle-interval=1m",
            "--keepalive-interval=10s",
            "--keepalive-timeout=1s",
            "--max-connection-idle=30s",
            "--max-connection-age=1h",
            "--max-connection-age-grace=5s",
            "--max-message-size=1024",
            "--encodings=zstd,gzip",
            "--handshake-timeout=2s",
            "--first-call-timeout=3s",
            "--max-connections=7",
        ])
        .serve;
        let c = args.config();
        assert_eq!(c.ping_policy.min_interval, Duration::from_millis(200));
        assert_eq!(c.ping_policy.max_strikes, 5);
        assert!(c.ping_policy.permit_without_calls);
        assert_eq!(c.ping_policy.idle_interval, Duration::from_secs(60));
        let keepalive = c.keepalive.expect("keepalive on");
        assert_eq!(
            (keepalive.interval, keepalive.timeout),
            (Duration::from_secs(10), Duration::from_secs(1))
        );
        assert_eq!(c.max_connection_idle, Some(Duration::from_secs(30)));
        assert_eq!(c.max_connection_age, Some(Duration::from_secs(3600)));
        assert_eq!(c.max_connection_age_grace, Some(Duration::from_secs(5)));
        assert_eq!(c.max_message_size, 1024);
        assert_eq!(c.encodings, [Encoding::Zstd, Encoding::Gzip]);
        assert_eq!(c.handshake_timeout, Duration::from_secs(2));
        assert_eq!(c.first_call_timeout, Duration::from_secs(3));
        assert_eq!(c.max_connections, 7);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Wrapper::try_parse_from(["serve", "--encodings=br"]).is_err());
        assert!(Wrapper::try_parse_from(["serve", "--ping-min-interval=soon"]).is_err());
        assert!(Wrapper::try_parse_from(["serve", "--max-connections=0"]).is_err());
    }
}
