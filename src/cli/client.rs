//! `grpc-conform client [OPTIONS] -- CMD [ARGS...]`: runs the client
//! fixtures with CMD as the client under test (docs/clients.md) and reports
//! as a server run does; `--bless-golden` writes the transcripts as the
//! golden client snapshots instead of judging them.

use super::{
    color::ColorChoice,
    out,
    run::{self as cli_run, CliError, RunArgs},
};
use crate::{
    client::{
        fixture as client_fixture,
        suite::{self, ClientRunConfig},
        under_test::ClientUnderTest,
    },
    fixture::FixtureError,
    plan::NamePattern,
    report::Format,
    run::{RunEvent, RunReport},
    session::{self, SessionError},
    snapshot::{self, Store},
};
use clap::Args;
use std::{ffi::OsString, path::PathBuf};

/// Options of a client run.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Run only fixtures whose name matches (substring, or glob with `*`); repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Leave out fixtures whose name matches (substring or glob); repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub skip: Vec<String>,
    /// File of fixture names expected to fail with this client, one a line
    /// (`#` comments); a listed fixture that passes is reported stale.
    #[arg(long, value_name = "FILE")]
    pub known_failing: Option<PathBuf>,
    /// File of fixture names whose transcript varies from run to run with
    /// this client, each with its reason in the `#` comment paragraph above
    /// it: run and shown as unstable, never judged.
    #[arg(long, value_name = "FILE")]
    pub known_flaky: Option<PathBuf>,
    /// Fixtures run at once, each with its own reference server and client process.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Multiply every time in the fixtures (timeouts, deadlines, pauses,
    /// keepalive) by F, for slow machines or slow clients; transcripts do not change.
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub time_scale: f64,
    /// Read client fixtures from DIR instead of the corpus embedded in the binary.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// The client's accepted snapshots (they override the golden ones,
    /// `snapshots/client-peers/<peer>/` by convention); mismatches write
    /// DIR/<name>.snap.new there.
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
    /// Write .snap.new files even when the CI environment variable is set.
    #[arg(long)]
    pub write_new: bool,
    /// Write each transcript as the golden snapshot DIR/<name>.snap instead
    /// of judging it (for maintainers, with the kit's own client:
    /// `grpc-conform client --bless-golden -- grpc-conform client-driver`;
    /// review every changed file). Fixtures whose client failed are not written.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "snapshots/client")]
    pub bless_golden: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Colour the human report: auto, always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// No line per finished fixture on stderr.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also list passing fixtures (with their times) in the human report.
    #[arg(short, long)]
    pub verbose: bool,
    /// The client under test and its arguments, after `--`: it reads the
    /// plan on stdin and prints its report on stdout (docs/clients.md).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl ClientArgs {
    /// The report options in the shape the server run's reporters take.
    fn report_args(&self) -> RunArgs {
        RunArgs {
            format: self.format,
            output: self.output.clone(),
            color: self.color,
            quiet: self.quiet,
            verbose: self.verbose,
            snapshots: self.snapshots.clone(),
            write_new: self.write_new,
            time_scale: self.time_scale,
            ..RunArgs::default()
        }
    }
}

/// Runs the client fixtures as `args` say; the exit code (as a server run's:
/// 0 all passed, 1 a fixture failed, 2 usage or fixture error, 4 nothing selected).
pub async fn execute(args: ClientArgs) -> Result<u8, CliError> {
    let report_args = args.report_args();
    cli_run::check_time_scale(args.time_scale)?;
    cli_run::check_output(&report_args)?;
    let config = prepare(&args)?;
    let label = args
        .command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let progress = cli_run::Progress::new(&report_args);
    let report = suite::run(config, &label, |event| match event {
        RunEvent::FixtureFinished {
            result,
            done,
            total,
        } => progress.show(result, done, total),
        RunEvent::Started { .. } => {}
    })
    .await;
    match &args.bless_golden {
        Some(dir) => bless(dir, &report),
        None => {
            cli_run::write_report(&report_args, &report)?;
            Ok(cli_run::exit_code(&report))
        }
    }
}

/// The run's configuration: fixtures selected and validated, lists read.
fn prepare(args: &ClientArgs) -> Result<ClientRunConfig, CliError> {
    let descriptors = session::descriptors(&[], &[])?;
    let texts = match &args.fixtures {
        Some(dir) => client_fixture::read_dir(dir).map_err(SessionError::from)?,
        None => client_fixture::read_embedded(),
    };
    let names: Vec<String> = texts.iter().map(|t| t.name.clone()).collect();
    let (mut fixtures, bad) = client_fixture::check_all(texts, &descriptors);
    if !bad.is_empty() {
        return Err(fixture_errors(bad).into());
    }
    let patterns = |v: &[String]| {
        v.iter()
            .map(|p| NamePattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CliError::Usage(e.to_string()))
    };
    let (filters, skips) = (patterns(&args.filter)?, patterns(&args.skip)?);
    fixtures.retain(|f| {
        (filters.is_empty() || filters.iter().any(|p| p.matches(&f.name)))
            && !skips.iter().any(|p| p.matches(&f.name))
    });
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    if fixtures.is_empty() {
        return Err(SessionError::NothingSelected(format!(
            "{} client fixtures, none left by --filter and --skip",
            names.len()
        ))
        .into());
    }
    let (known_failing, known_flaky) = session::known_lists(
        args.known_failing.as_ref(),
        args.known_flaky.as_ref(),
        &names,
    )?;
    let (program, rest) = args.command.split_first().expect("clap requires CMD");
    let store = match &args.bless_golden {
        Some(_) => Store::empty(),
        None => Store::client(args.snapshots.clone(), !cli_run::in_ci() || args.write_new),
    };
    Ok(ClientRunConfig {
        client: ClientUnderTest::Command {
            program: program.clone(),
            args: rest.to_vec(),
        },
        descriptors,
        fixtures,
        time_scale: args.time_scale,
        store,
        known_failing,
        known_flaky,
        jobs: usize::from(args.jobs),
    })
}

/// Bad fixtures as the session error the server run gives for them.
fn fixture_errors(mut bad: Vec<FixtureError>) -> SessionError {
    match bad.len() {
        1 => SessionError::Fixture(bad.remove(0)),
        _ => SessionError::Fixtures(bad),
    }
}

/// Writes each transcript as a golden snapshot; 1 when some were refused.
fn bless(dir: &std::path::Path, report: &RunReport) -> Result<u8, CliError> {
    let mut refused = 0;
    for r in &report.results {
        match (&r.transcript, &r.error) {
            (Some(t), None) => {
                let text = snapshot::render(&r.name, &r.source, &r.description, t);
                if snapshot::bless(dir, &r.name, &text)
                    .map_err(|e| CliError::Other(e.to_string()))?
                {
                    out::line(&format!("wrote {}/{}.snap", dir.display(), r.name))?;
                }
            }
            _ => {
                refused += 1;
                out::line(&format!(
                    "NOT WRITTEN {}: {}",
                    r.name,
                    r.error.clone().unwrap_or_default()
                ))?;
            }
        }
    }
    Ok(u8::from(refused > 0))
}
