//! `grpc-conform [--target host:port] ...`: parses the run's options into a
//! session, runs it, prints the report; and the error type whose exit codes
//! `main` returns.

use super::{color::ColorChoice, list, out};
use crate::{
    drive::{connect::check_address, TlsOptions},
    judge::Verdict,
    partition::Partition,
    plan::NamePattern,
    report::{self, Format},
    run::{self, RunEvent, RunReport},
    session::{self, SessionError, SessionOptions},
    snapshot::{self, Store},
};
use clap::Args;
use http::{HeaderName, HeaderValue};
use std::{io::IsTerminal, path::PathBuf};

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
    /// Conversations run at once, each on its own connection (1 or more).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = at_least_one)]
    pub jobs: usize,
    /// Run only the k-th of n shards (e.g. 2/3): every fixture is in exactly
    /// one shard, the same one on every run.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<Partition>,
    /// Start no further fixture after the first that fails the run; the
    /// rest are reported as not run.
    #[arg(long)]
    pub fail_fast: bool,
    /// Colour the human report: auto (a terminal, unless NO_COLOR is set;
    /// CLICOLOR_FORCE forces it), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// No line per finished fixture on stderr.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also list passing fixtures (with their times) in the human report.
    #[arg(short, long)]
    pub verbose: bool,
    /// Read options from FILE instead of ./grpc-conform.toml (flags win
    /// over the file).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run each selected fixture N times; a fixture whose transcripts differ
    /// is reported unstable with each variant.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
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
    /// PEM certificate chain presented to a target that asks for client
    /// certificates (mTLS; implies --tls; needs --client-key).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
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
    /// Add the target's own types through server reflection (v1, falling back
    /// to v1alpha; over TLS too).
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
            CliError::Session(SessionError::NothingSelected(_)) => 4,
            _ => 2,
        }
    }
}

/// `--jobs`: a count of at least one.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
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
        check_time_scale(self.time_scale)?;
        let parse = |v: &[String]| {
            v.iter()
                .map(|p| NamePattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CliError::Usage(e.to_string()))
        };
        if let Some(target) = &self.target {
            check_address(target).map_err(|e| CliError::Usage(format!("--target {e}")))?;
        }
        let client_identity = self.client_cert.clone().zip(self.client_key.clone());
        let tls = self.tls
            || self.ca_cert.is_some()
            || self.server_name.is_some()
            || client_identity.is_some();
        Ok(SessionOptions {
            target: self.target.clone(),
            tls: tls.then(|| TlsOptions {
                ca_cert: self.ca_cert.clone(),
                server_name: self.server_name.clone(),
                client_identity,
            }),
            filters: parse(&self.filter)?,
            skips: parse(&self.skip)?,
            extra_headers: parse_headers(&self.headers)?,
            time_scale: self.time_scale,
            fixtures: self.fixtures.clone(),
            protos: self.protos.clone(),
            proto_paths: self.proto_paths.clone(),
            reflect: self.reflect,
            store: Store::new(self.snapshots.clone(), !in_ci() || self.write_new),
            known_failing: self.known_failing.clone(),
            known_flaky: self.known_flaky.clone(),
            assume: self.assume.clone(),
            jobs: self.jobs,
            repeat: self.repeat,
            trace: self.trace,
            partition: self.partition,
            fail_fast: self.fail_fast,
        })
    }
}

/// `--time-scale` must be positive and at most [`MAX_TIME_SCALE`].
pub(super) fn check_time_scale(time_scale: f64) -> Result<(), CliError> {
    if time_scale > 0.0 && time_scale <= MAX_TIME_SCALE {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--time-scale must be a positive number up to {MAX_TIME_SCALE}"
        )))
    }
}

/// Largest `--time-scale`: fixture times (at most 10 minutes) scaled by it
/// stay far within what a timer can hold.
const MAX_TIME_SCALE: f64 = 100.0;

/// Whether the CI environment variable says this is a CI run.
pub(super) fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Runs the suite as `args` say (completed by the config file, see
/// [`super::config`]) and returns the exit code.
pub async fn execute(mut args: RunArgs, matches: &clap::ArgMatches) -> Result<u8, CliError> {
    super::config::apply(&mut args, matches)?;
    let options = args.session_options()?;
    check_output(&args)?;
    if args.list {
        let (selected, _) = session::select(&options)?;
        emit(&args, &list::render(&selected, args.format)?)?;
        return Ok(0);
    }
    let prepared = match session::prepare(options.clone()).await {
        Ok(prepared) => prepared,
        Err(e) => {
            // The fixtures were selected: the report still names each one,
            // as an error with what stopped the run (an unreachable target,
            // a failed reflection, a bad list entry).
            if let Ok((selected, _)) = session::select(&options) {
                let target = options.target.clone().unwrap_or_default();
                let report = RunReport::not_run(&selected, &target, &e.to_string());
                write_report(&args, &report)?;
            }
            return Err(e.into());
        }
    };
    if let Some(reflected) = &prepared.reflected {
        out::note(&format!(
            "reflection {} on {}: {}",
            reflected.version,
            prepared.label,
            reflected.services.join(", ")
        ));
    }
    warn_orphans(&args)?;
    let per_fixture = Progress::new(&args);
    let report = run::run(
        prepared.config,
        &prepared.label,
        &prepared.transport,
        |event| match event {
            RunEvent::FixtureFinished {
                result,
                done,
                total,
            } => per_fixture.show(result, done, total),
            RunEvent::Started {
                total,
                capabilities,
            } => per_fixture.started(total, capabilities),
        },
    )
    .await;
    drop(prepared.reference);
    if args.trace {
        print_traces(&report);
    }
    write_report(&args, &report)?;
    Ok(exit_code(&report))
}

/// Each result's frame log on stderr (`--trace`).
pub(super) fn print_traces(report: &RunReport) {
    for r in &report.results {
        if let Some(trace) = &r.trace {
            out::note(&format!(
                "frames of {} (→ sent, ← received):\n{trace}",
                r.name
            ));
        }
    }
}

/// A line per finished fixture on stderr: `[3/50] PASS name` on a
/// terminal, `PASS name (12 ms)` in a log; none with `-q`.
pub(super) struct Progress {
    quiet: bool,
    terminal: bool,
    color: bool,
}

impl Progress {
    pub(super) fn new(args: &RunArgs) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        Progress {
            quiet: args.quiet,
            terminal,
            color: args.color.colored(terminal),
        }
    }

    /// On a terminal, the target's profile as the run starts.
    fn started(&self, total: usize, capabilities: &crate::capabilities::Capabilities) {
        if self.quiet || !self.terminal {
            return;
        }
        out::note(&format!("{total} fixtures; the target offers:"));
        for line in capabilities.summary() {
            out::note(&format!("  {line}"));
        }
    }

    pub(super) fn show(&self, result: &run::FixtureResult, done: usize, total: usize) {
        if self.quiet {
            return;
        }
        out::note(&if self.terminal {
            report::human::progress_line(result, done, total, self.color)
        } else {
            report::human::log_line(result)
        });
    }
}

/// Renders the report (with the notes a person needs after it) and writes
/// it to `--output` or standard output.
pub(super) fn write_report(args: &RunArgs, report: &RunReport) -> Result<(), CliError> {
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let color = match (args.color, &args.output) {
        (ColorChoice::Always, _) => true,
        (_, Some(_)) => false,
        (choice, None) => choice.colored(to_terminal),
    };
    let mut text = report::render(report, args.format, color).map_err(|e| CliError::Report {
        what: "cannot render the report".into(),
        source: Box::new(e),
    })?;
    let notes = notes(args, report);
    if args.format == Format::Human {
        if args.verbose {
            let passes: String = report
                .results
                .iter()
                .filter(|r| r.verdict == Verdict::Pass)
                .map(|r| report::human::log_line(r) + "\n")
                .collect();
            text.insert_str(0, &passes);
        }
        for note in &notes {
            text.push_str(&format!("note: {note}\n"));
        }
    } else {
        notes.iter().for_each(|n| out::note(&format!("note: {n}")));
    }
    emit(args, &text)
}

/// What a person must know after the report: fixtures without any snapshot
/// (the accept workflow), and mismatches under CI with nothing written.
fn notes(args: &RunArgs, report: &RunReport) -> Vec<String> {
    let mut notes = Vec::new();
    let failed = |r: &&run::FixtureResult| r.verdict == Verdict::Fail;
    let unsnapshotted = report
        .results
        .iter()
        .filter(failed)
        .filter(|r| r.expected_from.is_none())
        .count();
    if unsnapshotted > 0 {
        notes.push(match &args.snapshots {
            None => format!(
                "{unsnapshotted} fixtures have no snapshot: run with --snapshots DIR to write each transcript as DIR/<name>.snap.new, read them, then keep them with `grpc-conform snapshots accept --snapshots DIR`"
            ),
            Some(dir) => format!(
                "{unsnapshotted} fixtures have no accepted snapshot: read the transcripts, then `grpc-conform snapshots accept --snapshots {}`",
                dir.display()
            ),
        });
    }
    let unwritten = report
        .results
        .iter()
        .filter(failed)
        .filter(|r| r.new_snapshot.is_none())
        .count();
    if unwritten > 0 && args.snapshots.is_some() && in_ci() && !args.write_new {
        notes.push(format!(
            "CI is set, so no .snap.new written for the {unwritten} mismatches; add --write-new to write them (and keep them as artifacts to review)"
        ));
    }
    notes
}

/// Warns about snapshot files in `--snapshots` whose fixture no longer exists.
fn warn_orphans(args: &RunArgs) -> Result<(), CliError> {
    let Some(dir) = &args.snapshots else {
        return Ok(());
    };
    let (fixtures, _) = session::load(args.fixtures.as_ref(), &[], &[])?;
    let names: std::collections::BTreeSet<String> = fixtures.into_iter().map(|f| f.name).collect();
    let orphans = snapshot::orphans(dir, |n| names.contains(n))
        .map_err(|e| CliError::Other(e.to_string()))?;
    if !orphans.is_empty() {
        out::note(&format!(
            "warning: {} snapshot files in {} have no fixture ({}...); `grpc-conform snapshots prune --snapshots {}` deletes them",
            orphans.len(),
            dir.display(),
            orphans[0].0,
            dir.display()
        ));
    }
    Ok(())
}

/// `--output` must be writable before the run starts, so a typo in it does
/// not cost a whole run's verdict.
pub(super) fn check_output(args: &RunArgs) -> Result<(), CliError> {
    let Some(path) = &args.output else {
        return Ok(());
    };
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .map_err(|e| CliError::Usage(format!("--output {}: {e}", path.display())))
}

/// Writes `text` to `--output` or standard output (a closed standard output
/// ends it quietly).
fn emit(args: &RunArgs, text: &str) -> Result<(), CliError> {
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| CliError::Report {
            what: format!("cannot write {}", path.display()),
            source: Box::new(e),
        }),
        None => out::print(text),
    }
}

/// Parses `--header name:value` values.
pub(crate) fn parse_headers(values: &[String]) -> Result<Vec<(HeaderName, HeaderValue)>, CliError> {
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
