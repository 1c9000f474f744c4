//! `grpc-conform [--target host:port] ...`: the conformance run from the
//! command line, and the error type whose exit codes `main` returns.

use crate::{
    descriptors::Descriptors,
    drive::{Connector, DriveOptions, Target, TlsOptions},
    fixture::{self, NamedFixture},
    plan::{self, NamePattern},
    reference::{ReferenceConfig, ReferenceServer},
    report::{self, Format},
    run::{self, RunConfig, RunReport},
    snapshot::Store,
};
use clap::Args;
use http::{HeaderName, HeaderValue};
use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    time::Duration,
};

/// How long the target gets to accept a TCP connection before the run
/// gives up with exit code 3.
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(2);

/// Options of a conformance run.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// The server to check, as host:port; without it, the embedded reference
    /// server is started on 127.0.0.1 and checked.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,
    /// List the selected fixtures (name, level, rule) and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only fixtures whose name matches (substring, or glob with `*`); repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Leave out fixtures whose name matches (substring or glob); repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub skip: Vec<String>,
    /// File of fixture names expected to fail on this target, one a line
    /// (`#` comments); a listed fixture that passes is reported stale.
    #[arg(long, value_name = "FILE")]
    pub known_failing: Option<PathBuf>,
    /// Conversations run at once, each on its own connection.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Print each selected fixture's frame log (both directions, HEADERS
    /// decoded, message prefixes in DATA) to stderr, for debugging a failure.
    #[arg(long)]
    pub trace: bool,
    /// Multiply every time in the fixtures (timeouts, deadlines, pauses) by F,
    /// for slow machines; transcripts do not change.
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub time_scale: f64,
    /// Metadata sent on every call, as `name:value` (e.g. authorization);
    /// repeatable; never shown in transcripts.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Connect with TLS (ALPN h2).
    #[arg(long)]
    pub tls: bool,
    /// PEM file of CA certificates to trust (implies --tls); default: system roots.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Name to verify the server certificate against (implies --tls); default: the target host.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read fixtures from DIR instead of the corpus embedded in the binary.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// Compile these .proto files (protox) and add their types, for fixtures
    /// on your own services; repeatable.
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,
    /// Import path for --proto files (their own directory is always one); repeatable.
    #[arg(long = "proto-path", value_name = "DIR")]
    pub proto_paths: Vec<PathBuf>,
    /// Add the target's own types through server reflection (v1, plain TCP only).
    #[arg(long)]
    pub reflect: bool,
    /// The target's accepted snapshots (they override the golden ones);
    /// mismatches write DIR/<name>.snap.new there.
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
    /// Write .snap.new files even when the CI environment variable is set.
    #[arg(long)]
    pub write_new: bool,
}

/// Why the command failed, mapped to the documented exit codes.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A fixture or descriptor problem (exit 2).
    #[error("{0}")]
    Fixture(String),
    /// The target did not accept a connection within 2 s (exit 3).
    #[error("{0}")]
    Unreachable(String),
    /// Anything else that stopped the run: IO, reports, the reference server (exit 2).
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code: 2 usage or fixture error, 3 target unreachable.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Unreachable(_) => 3,
            _ => 2,
        }
    }
}

/// Exit code of a finished run: 0 all passed, 1 a fixture failed.
pub fn exit_code(report: &RunReport) -> u8 {
    if report.passed() {
        0
    } else {
        1
    }
}

/// Loads the fixtures (embedded or `--fixtures`), the descriptors, and
/// validates every fixture against them.
pub fn load(args: &RunArgs) -> Result<(Vec<NamedFixture>, Descriptors), CliError> {
    let fixtures = match &args.fixtures {
        Some(dir) => fixture::load_dir(dir),
        None => fixture::load_embedded(),
    }
    .map_err(|e| CliError::Fixture(e.to_string()))?;
    let mut descriptors = Descriptors::contract().map_err(|e| CliError::Fixture(e.to_string()))?;
    for proto in &args.protos {
        descriptors
            .add_proto(proto, &args.proto_paths)
            .map_err(|e| CliError::Fixture(e.to_string()))?;
    }
    Ok((fixtures, descriptors))
}

/// Largest `--time-scale`: fixture times (at most 10 minutes) scaled by it
/// stay far within what a timer can hold.
const MAX_TIME_SCALE: f64 = 100.0;

/// Runs the suite as `args` say and returns the exit code.
pub async fn execute(args: RunArgs) -> Result<u8, CliError> {
    if !(args.time_scale > 0.0 && args.time_scale <= MAX_TIME_SCALE) {
        return Err(CliError::Usage(format!(
            "--time-scale must be a positive number up to {MAX_TIME_SCALE}"
        )));
    }
    let parse = |v: &[String]| {
        v.iter()
            .map(|p| NamePattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
    };
    let filters = parse(&args.filter).map_err(|e| CliError::Usage(e.to_string()))?;
    let skips = parse(&args.skip).map_err(|e| CliError::Usage(e.to_string()))?;
    let extra_headers = parse_headers(&args.headers)?;
    let (fixtures, mut descriptors) = load(&args)?;
    let selected = plan::select(fixtures, &filters, &skips);
    if args.list {
        let mut out = String::new();
        for f in &selected {
            out.push_str(&format!(
                "{}\t{}\t{}\n",
                f.name,
                f.fixture.level.as_str(),
                f.fixture.rule
            ));
        }
        emit(&args, &out)?;
        return Ok(0);
    }
    // Without reflection every type is known now: a bad fixture is exit 2
    // before the target is even tried.
    if !args.reflect {
        validate_all(&selected, &descriptors)?;
    }
    // Started here so it lives until the run ends.
    let (reference, address) = match &args.target {
        Some(t) => (None, t.clone()),
        None => {
            let server = ReferenceServer::start(ReferenceConfig::default())
                .await
                .map_err(|e| CliError::Other(e.to_string()))?;
            let address = server.local_addr().to_string();
            (Some(server), address)
        }
    };
    let tls =
        (args.tls || args.ca_cert.is_some() || args.server_name.is_some()).then(|| TlsOptions {
            ca_cert: args.ca_cert.clone(),
            server_name: args.server_name.clone(),
        });
    let connector = Connector::new(Target {
        address: address.clone(),
        tls,
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    connector
        .probe(UNREACHABLE_AFTER)
        .await
        .map_err(|e| CliError::Unreachable(e.to_string()))?;
    if args.reflect {
        descriptors
            .add_reflected(&address, Duration::from_secs(10))
            .await
            .map_err(|e| CliError::Fixture(e.to_string()))?;
    }
    if args.reflect {
        validate_all(&selected, &descriptors)?;
    }
    let known_failing = match &args.known_failing {
        Some(path) => plan::parse_known_failing(
            &std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("--known-failing {}: {e}", path.display())))?,
        )
        .into_iter()
        .collect(),
        None => Default::default(),
    };
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    let config = RunConfig {
        connector,
        descriptors,
        fixtures: selected,
        drive: DriveOptions {
            extra_headers,
            time_scale: args.time_scale,
            spawn_reference: args.target.is_none(),
            trace: args.trace,
        },
        store: Store::new(args.snapshots.clone(), !in_ci || args.write_new),
        known_failing,
        jobs: args.jobs,
    };
    let show_progress = args.format == Format::Human && std::io::stderr().is_terminal();
    let label = if reference.is_some() {
        "the embedded reference".to_string()
    } else {
        address
    };
    let report = run::run(config, &label, |r, done, total| {
        if show_progress {
            eprintln!("{}", report::human::progress_line(r, done, total, true));
        }
    })
    .await;
    drop(reference);
    if args.trace {
        for r in &report.results {
            if let Some(trace) = &r.trace {
                eprintln!("frames of {} (→ sent, ← received):\n{trace}", r.name);
            }
        }
    }
    let color = args.output.is_none()
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let text =
        report::render(&report, args.format, color).map_err(|e| CliError::Other(e.to_string()))?;
    emit(&args, &text)?;
    Ok(exit_code(&report))
}

/// Validates every selected fixture against the descriptors.
pub fn validate_all(fixtures: &[NamedFixture], descriptors: &Descriptors) -> Result<(), CliError> {
    for f in fixtures {
        fixture::validate(f, descriptors).map_err(|e| CliError::Fixture(e.to_string()))?;
    }
    Ok(())
}

/// Writes `text` to `--output` or standard output.
fn emit(args: &RunArgs, text: &str) -> Result<(), CliError> {
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CliError::Other(format!("cannot write {}: {e}", path.display()))),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| CliError::Other(format!("cannot write the report: {e}"))),
    }
}

/// Parses `--header name:value` values.
fn parse_headers(values: &[String]) -> Result<Vec<(HeaderName, HeaderValue)>, CliError> {
    values
        .iter()
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| CliError::Usage(format!("--header `{h}`: expected name:value")))?;
            let name = HeaderName::from_bytes(name.trim().to_lowercase().as_bytes())
                .map_err(|e| CliError::Usage(format!("--header `{h}`: {e}")))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|e| CliError::Usage(format!("--header `{h}`: {e}")))?;
            Ok((name, value))
        })
        .collect()
}
