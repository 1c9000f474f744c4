//! `grpc-conform bench`: the flags, the targets (the embedded reference
//! when none is given), the progress line, and the report (docs/bench.md).

use super::{
    compare_flags::{self, CompareFlags},
    out,
    run::CliError,
    serve::parse_duration,
};
use crate::{
    bench::{
        self,
        config::{LoadShape, Mode, Until, Workload},
        output::{self, BenchFormat, RunConfig, TargetInfo},
        BenchError, Progress, RoundPhase, Target,
    },
    descriptors::Descriptors,
    drive::{connect::check_address, Connector, TlsOptions},
};
use clap::Args;
use std::{
    io::IsTerminal,
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

/// Flags of `grpc-conform bench`. Durations are written like `10s`, `500ms`.
/// Field names are clap's ids, which --compare-flags relies on to copy the
/// flags it wrote (src/cli/compare_flags.rs).
#[derive(Clone, Debug, Args, serde::Serialize, serde::Deserialize)]
pub struct BenchArgs {
    /// The server to load, as host:port; without it, the embedded reference
    /// is started on 127.0.0.1 (in a child process, so its CPU is not counted
    /// as the load generator's).
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,
    /// Method to call, as /package.Service/Method: the contract's
    /// (/ChatService/ChatStream, /Greeter/AllStream, /Greeter/ServerStream,
    /// /SensorService/Watch, /Greeter/ClientStream, /SensorService/Record,
    /// /Greeter/SayHello) or one from --proto or --reflect.
    #[arg(long, default_value = "/ChatService/ChatStream", value_name = "PATH")]
    pub method: String,
    /// HTTP/2 connections per target.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// Concurrent calls (streams) on each connection.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub streams: u32,
    /// Encoded size of each request in bytes, reached by padding its one
    /// string field (server streaming on the contract: each response's size);
    /// default 1024 for the contract's methods, the --request as it is otherwise.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=16 * 1024 * 1024))]
    pub size: Option<u32>,
    /// Compress requests with this encoding (gzip, deflate, zstd) and accept
    /// it on responses (the contract's methods are asked to compress them).
    #[arg(long, value_name = "ENCODING")]
    pub compression: Option<String>,
    /// How long to measure, after the warm-up [default: 10s].
    #[arg(long, value_parser = parse_duration, conflicts_with = "messages")]
    pub duration: Option<Duration>,
    /// Measure until this many messages of the streaming side (requests;
    /// responses for server streaming) were sent in all, instead of a duration.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: Option<u64>,
    /// Load sent before measuring, not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Messages per second over all streams, on an open-loop schedule whose
    /// latencies count from each message's intended send time; without it,
    /// a closed loop (each stream sends as its window allows).
    #[arg(long, value_name = "MSGS_PER_S", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Bidi: messages a stream keeps in flight. Closed loop: sent as echoes
    /// return [default: 1]; open loop: past it, sends wait (and count as
    /// late) [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub window: Option<u32>,
    /// Client and server streaming: messages per call (requests sent, or
    /// responses asked for), after which a new call starts.
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub call_messages: u32,
    /// A stream that waits this long for the target (a connection, headers,
    /// a message, flow-control window; PINGs are no answer) ends with
    /// `stalled`, and the run stops after that round.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stall_timeout: Duration,
    /// Compile these .proto files (protox) for --method on your own service; repeatable.
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,
    /// Import path for --proto files (their own directory is always one); repeatable.
    #[arg(long = "proto-path", value_name = "DIR")]
    pub proto_paths: Vec<PathBuf>,
    /// Learn the target's own types through server reflection.
    #[arg(long)]
    pub reflect: bool,
    /// The request every call sends, as proto JSON (required for methods
    /// outside the contract).
    #[arg(long, value_name = "JSON")]
    pub request: Option<String>,
    /// Metadata sent on every call, as `name:value`; repeatable.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = BenchFormat::Human)]
    pub format: BenchFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A second server (B) to run the same load against, rounds interleaved
    /// A B A B, with B/A ratios.
    #[arg(long, value_name = "HOST:PORT")]
    pub compare: Option<String>,
    /// Run B (--compare's target, else A's own) with A's flags and FLAGS on
    /// top, e.g. "--compression gzip" or "--connections 1 --streams 100";
    /// rounds interleaved A B A B, with B/A ratios.
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub compare_flags: Option<String>,
    /// Rounds per target [default: 3 with --compare or --compare-flags, else 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: Option<u32>,
    /// Connect with TLS (ALPN h2), to every target.
    #[arg(long)]
    pub tls: bool,
    /// PEM file of CA certificates to trust (implies --tls); default: system roots.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Name to verify the server certificate against (implies --tls); default: the target host.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
}

/// `--rate`: a positive, finite number of messages a second.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("give a positive number of messages a second".into()),
    }
}

/// What one side of the run sends, before the method's descriptor is known.
struct Plan {
    shape: LoadShape,
    request: Option<serde_json::Value>,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// Bytes a run may keep in flight (requests queued and not yet echoed) over
/// all its streams; a larger window, size and stream count is refused.
const MAX_IN_FLIGHT_BYTES: u64 = 1 << 30;

impl BenchArgs {
    /// The load's shape these flags describe (the mode is the method's,
    /// filled in once its descriptor is known).
    fn shape(&self) -> Result<LoadShape, CliError> {
        let usage = |m: String| CliError::Usage(m);
        if self.stall_timeout.is_zero() {
            return Err(usage("--stall-timeout must be more than 0".into()));
        }
        let until = match (self.messages, self.duration) {
            (Some(n), _) => Until::Messages(n),
            (None, Some(d)) if d.is_zero() => {
                return Err(usage("--duration must be more than 0".into()))
            }
            (None, d) => Until::Duration(d.unwrap_or(Duration::from_secs(10))),
        };
        let window = self
            .window
            .unwrap_or(if self.rate.is_some() { 100 } else { 1 });
        let streams = u64::from(self.connections) * u64::from(self.streams);
        let in_flight = streams * u64::from(window) * u64::from(self.size.unwrap_or(1024) + 5);
        if in_flight > MAX_IN_FLIGHT_BYTES {
            return Err(usage(format!(
                "--connections x --streams x --window x --size would keep {in_flight} bytes \
                 in flight; at most {MAX_IN_FLIGHT_BYTES}"
            )));
        }
        Ok(LoadShape {
            method: self.method.clone(),
            mode: Mode::Bidi,
            connections: self.connections as usize,
            streams: self.streams as usize,
            size: self.size.map(|s| s as usize),
            compression: self.compression.clone(),
            until,
            warmup: self.warmup,
            rate: self.rate,
            window: window as usize,
            call_messages: self.call_messages,
            stall_timeout: self.stall_timeout,
            rounds: self.rounds.unwrap_or(if self.compared() { 3 } else { 1 }),
        })
    }

    /// Whether the run has a B.
    fn compared(&self) -> bool {
        self.compare.is_some() || self.compare_flags.is_some()
    }

    /// What these flags send, checked before anything starts.
    fn plan(&self) -> Result<Plan, CliError> {
        let request = match &self.request {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<serde_json::Value>(text)
                    .map_err(|e| CliError::Usage(format!("--request: not JSON: {e}")))?,
            ),
        };
        Ok(Plan {
            shape: self.shape()?,
            request,
            headers: super::run::parse_headers(&self.headers)?,
        })
    }

    fn tls(&self) -> Option<TlsOptions> {
        (self.tls || self.ca_cert.is_some() || self.server_name.is_some()).then(|| TlsOptions {
            ca_cert: self.ca_cert.clone(),
            server_name: self.server_name.clone(),
            client_identity: None,
        })
    }

    fn connector(&self, address: &str) -> Result<Connector, CliError> {
        Connector::new(crate::drive::Target {
            address: address.to_string(),
            tls: self.tls(),
        })
        .map_err(|e| CliError::Usage(e.to_string()))
    }
}

/// One side of the run as the command line gives it: A, or B with its own
/// flags (A's with --compare-flags on top).
struct Side<'a> {
    label: &'static str,
    args: &'a BenchArgs,
    /// Words of --compare-flags (B's), and the ids of the flags they wrote.
    flags: Option<&'a CompareFlags>,
    plan: Plan,
}

/// A usage error of B's flags names --compare-flags when they came from it.
fn usage_of(flags: Option<&CompareFlags>, e: CliError) -> CliError {
    match (e, flags) {
        (CliError::Usage(m), Some(_)) => CliError::Usage(format!("--compare-flags: {m}")),
        (e, _) => e,
    }
}

/// Runs the bench: 0 when every call ended OK, 1 when some did not or the
/// target stalled, 2 usage, 3 a target unreachable.
pub async fn execute(args: &BenchArgs) -> Result<u8, CliError> {
    let b_flags = match &args.compare_flags {
        Some(flags) => Some(compare_flags::apply(args, flags)?),
        None => None,
    };
    let mut sides = vec![Side {
        label: "A",
        args,
        flags: None,
        plan: args.plan()?,
    }];
    if args.compared() {
        let flags = b_flags.as_ref();
        let b_args = flags.map_or(args, |f| &f.args);
        sides.push(Side {
            label: "B",
            args: b_args,
            flags,
            plan: b_args.plan().map_err(|e| usage_of(flags, e))?,
        });
    }
    for (flag, address) in [("--target", &args.target), ("--compare", &args.compare)] {
        if let Some(address) = address {
            check_address(address).map_err(|e| CliError::Usage(format!("{flag} {e}")))?;
        }
    }
    let reference = match &args.target {
        Some(_) => None,
        None => {
            let exe = std::env::current_exe()
                .map_err(|e| CliError::Other(format!("cannot find this program: {e}")))?;
            Some(bench::reference::start(&exe).await.map_err(bench_error)?)
        }
    };
    let a_address = match (&args.target, &reference) {
        (Some(t), _) => t.clone(),
        (None, Some(r)) => r.address.clone(),
        (None, None) => unreachable!("the reference starts when no target is given"),
    };
    let (targets, infos) = prepare_targets(args, sides, &a_address).await?;
    let config_shape = targets[0].workload.shape.clone();
    let progress = Progress::default();
    let line = ProgressLine::start(&progress, &config_shape);
    let outcome = bench::run(
        &targets,
        config_shape.rounds,
        &progress,
        |round, target, phase| line.phase(round, target.label, phase),
    )
    .await;
    line.stop();
    let report = match outcome {
        Ok(report) => report,
        Err(e @ BenchError::Connect { .. }) => {
            out::note(&format!("grpc-conform bench: {e}"));
            return Ok(3);
        }
        Err(e) => return Err(bench_error(e)),
    };
    drop(reference);
    let config = RunConfig {
        shape: &config_shape,
        targets: infos,
    };
    write_report(args, &config, &report)?;
    if let Some(stalled) = &report.stalled {
        let waited = targets
            .iter()
            .find(|t| stalled.split(' ').next() == Some(t.label))
            .map_or(args.stall_timeout, |t| t.workload.shape.stall_timeout);
        out::note(&format!(
            "grpc-conform bench: target {stalled} stopped answering: a stream waited \
             {waited:?} (--stall-timeout) for it; the run stopped after that round",
        ));
        return Ok(1);
    }
    let failed = report.summary.iter().any(|f| !f.errors_by_code.is_empty());
    Ok(u8::from(failed))
}

/// Each side's connector and workload (its method checked against the
/// descriptors it sees), and how the report's config lists it.
async fn prepare_targets(
    args: &BenchArgs,
    sides: Vec<Side<'_>>,
    a_address: &str,
) -> Result<(Vec<Target>, Vec<TargetInfo>), CliError> {
    let (mut targets, mut infos) = (Vec::new(), Vec::new());
    let mut a_descriptors: Option<Descriptors> = None;
    for side in sides {
        let address = match side.label {
            "A" => a_address.to_string(),
            _ => args.compare.clone().unwrap_or(a_address.to_string()),
        };
        let connector = side
            .args
            .connector(&address)
            .map_err(|e| usage_of(side.flags, e))?;
        // B sees A's types unless its flags name its own.
        let own_types = side.flags.is_some_and(|f| {
            f.given
                .iter()
                .any(|id| ["protos", "proto_paths", "reflect"].contains(&id.as_str()))
        });
        let descriptors = match &a_descriptors {
            Some(d) if !own_types => d.clone(),
            _ => descriptors(side.args, &connector)
                .await
                .map_err(|e| usage_of(side.flags, e))?,
        };
        let Plan {
            shape,
            request,
            headers,
        } = side.plan;
        let workload = Workload::prepare(&descriptors, shape, request.as_ref(), &headers)
            .map_err(|e| usage_of(side.flags, bench_error(e)))?;
        if a_descriptors.is_none() {
            a_descriptors = Some(descriptors);
        }
        infos.push(TargetInfo {
            label: side.label,
            address: address.clone(),
            embedded_reference: args.target.is_none() && address == a_address,
            flags: side.flags.map_or(Vec::new(), |f| f.words.clone()),
            shape: workload.shape.clone(),
        });
        targets.push(Target {
            label: side.label,
            connector,
            workload: Arc::new(workload),
        });
    }
    Ok((targets, infos))
}

/// Writes the report to --output or standard output.
fn write_report(
    args: &BenchArgs,
    config: &RunConfig<'_>,
    report: &bench::BenchReport,
) -> Result<(), CliError> {
    let text = output::render(args.format, config, report);
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| CliError::Report {
            what: format!("--output {}", path.display()),
            source: Box::new(e),
        }),
        None => out::print(&text),
    }
}

/// The contract's types, plus --proto files and what --reflect finds on
/// `target` (A's, or B's when B's flags name their own types).
async fn descriptors(args: &BenchArgs, target: &Connector) -> Result<Descriptors, CliError> {
    let mut descriptors = crate::session::descriptors(&args.protos, &args.proto_paths)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if args.reflect {
        descriptors
            .add_reflected(target, args.stall_timeout)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    Ok(descriptors)
}

fn bench_error(e: BenchError) -> CliError {
    match e {
        BenchError::Usage(m) => CliError::Usage(m),
        other => CliError::Other(other.to_string()),
    }
}

/// Progress on standard error. On a terminal, one line: messages received
/// so far in the round and their rate, redrawn every half second.
/// Elsewhere (a CI log, a script), a line as each round starts, begins to
/// measure and is done, which also tells a script sampling the target when
/// the measured window opens and closes.
struct ProgressLine {
    task: Option<tokio::task::JoinHandle<()>>,
    round: std::sync::Arc<std::sync::Mutex<String>>,
    rounds: u32,
}

impl ProgressLine {
    fn start(progress: &Progress, shape: &LoadShape) -> ProgressLine {
        let round = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if !std::io::stderr().is_terminal() {
            return ProgressLine {
                task: None,
                round,
                rounds: shape.rounds,
            };
        }
        let (received, label, rounds) = (progress.received.clone(), round.clone(), shape.rounds);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let mut last = 0u64;
            loop {
                tick.tick().await;
                let now = received.load(Ordering::Relaxed);
                let rate = now.saturating_sub(last) * 2;
                last = now;
                let label = label.lock().map(|l| l.clone()).unwrap_or_default();
                eprint!("\r\x1b[2Kround {label} of {rounds}: {now} messages received, {rate}/s");
            }
        });
        ProgressLine {
            task: Some(task),
            round,
            rounds,
        }
    }

    fn phase(&self, number: u32, label: &str, phase: RoundPhase) {
        if self.task.is_none() {
            let what = match phase {
                RoundPhase::Started => "connecting, then the warm-up",
                RoundPhase::Measuring => "measuring",
                RoundPhase::Done => "done",
            };
            out::note(&format!(
                "grpc-conform bench: round {number} of {}, {label}: {what}",
                self.rounds
            ));
        } else if let (RoundPhase::Started, Ok(mut l)) = (phase, self.round.lock()) {
            *l = format!("{number} {label}");
        }
    }

    fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
            eprint!("\r\x1b[2K");
        }
    }
}
