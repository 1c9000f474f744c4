//! `grpc-conform [--target host:port] ...`: parses the run's options into a
//! session, runs it, prints the report; and the error type whose exit codes
//! `main` returns.

use crate::{
    drive::TlsOptions,
    plan::NamePattern,
    report::{self, Format},
    run::{self, RunEvent, RunReport},
    session::{self, SessionError, SessionOptions},
    snapshot::Store,
};
use clap::Args;
use http::{HeaderName, HeaderValue};
use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
};

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
    /// File of fixture names whose transcript varies from run to run on this
    /// target, each with its reason in the `#` comment paragraph above it:
    /// run and shown as unstable, never judged.
    #[arg(long, value_name = "FILE")]
    pub known_flaky: Option<PathBuf>,
    /// Conversations run at once, each on its own connection.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Run each selected fixture N times; a fixture whose transcripts differ
    /// is reported unstable with each variant.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Override a capability probe, as NAME=yes|no (observer, reference,
    /// method:/Service/Method, control:x-conform-..., encoding:gzip); repeatable.
    #[arg(long, value_name = "NAME=yes|no")]
    pub assume: Vec<String>,
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
    /// The session could not be prepared (exit 2, or 3 for the target).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The report could not be rendered or written (exit 2).
    #[error("{what}: {source}")]
    Report {
        /// What was being written.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Anything else that stopped the command (exit 2).
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code: 2 usage or fixture error, 3 target unreachable
    /// or not speaking HTTP/2.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Session(SessionError::Unreachable(_)) => 3,
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

impl RunArgs {
    /// The session these flags describe.
    pub fn session_options(&self) -> Result<SessionOptions, CliError> {
        if !(self.time_scale > 0.0 && self.time_scale.is_finite()) {
            return Err(CliError::Usage(
                "--time-scale must be a positive number".into(),
            ));
        }
        let parse = |v: &[String]| {
            v.iter()
                .map(|p| NamePattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CliError::Usage(e.to_string()))
        };
        let in_ci =
            std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        let tls = self.tls || self.ca_cert.is_some() || self.server_name.is_some();
        Ok(SessionOptions {
            target: self.target.clone(),
            tls: tls.then(|| TlsOptions {
                ca_cert: self.ca_cert.clone(),
                server_name: self.server_name.clone(),
            }),
            filters: parse(&self.filter)?,
            skips: parse(&self.skip)?,
            extra_headers: parse_headers(&self.headers)?,
            time_scale: self.time_scale,
            fixtures: self.fixtures.clone(),
            protos: self.protos.clone(),
            proto_paths: self.proto_paths.clone(),
            reflect: self.reflect,
            store: Store::new(self.snapshots.clone(), !in_ci || self.write_new),
            known_failing: self.known_failing.clone(),
            known_flaky: self.known_flaky.clone(),
            assume: self.assume.clone(),
            jobs: self.jobs,
            repeat: self.repeat,
            trace: self.trace,
        })
    }
}

/// Runs the suite as `args` say and returns the exit code.
pub async fn execute(args: RunArgs) -> Result<u8, CliError> {
    let options = args.session_options()?;
    if args.list {
        let (selected, _) = session::select(&options)?;
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
    let prepared = session::prepare(options).await?;
    let show_progress = args.format == Format::Human && std::io::stderr().is_terminal();
    let report = run::run(
        prepared.config,
        &prepared.label,
        &prepared.transport,
        |event| match event {
            RunEvent::FixtureFinished {
                result,
                done,
                total,
            } if show_progress => {
                eprintln!(
                    "{}",
                    report::human::progress_line(result, done, total, true)
                );
            }
            RunEvent::Started {
                total,
                capabilities,
            } if show_progress => {
                eprintln!("{total} fixtures; the target offers:");
                for line in capabilities.summary() {
                    eprintln!("  {line}");
                }
            }
            RunEvent::Started { .. } | RunEvent::FixtureFinished { .. } => {}
        },
    )
    .await;
    drop(prepared.reference);
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
    let text = report::render(&report, args.format, color).map_err(|e| CliError::Report {
        what: "cannot render the report".into(),
        source: Box::new(e),
    })?;
    emit(&args, &text)?;
    Ok(exit_code(&report))
}

/// Writes `text` to `--output` or standard output.
fn emit(args: &RunArgs, text: &str) -> Result<(), CliError> {
    let written = match &args.output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| (format!("cannot write {}", path.display()), e))
        }
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| ("cannot write the report".to_string(), e)),
    };
    written.map_err(|(what, e)| CliError::Report {
        what,
        source: Box::new(e),
    })
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
