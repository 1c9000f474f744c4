//! The command line: `grpc-conform [--target host:port] ...` runs the suite,
//! `grpc-conform snapshots ...` manages snapshots, `grpc-conform serve` runs
//! the reference server.
//!
//! Exit codes: [`EXIT_CODES`] (also at the end of `--help` and in README.md).

pub mod bench;
pub mod check;
pub mod client;
pub mod client_driver;
pub mod color;
pub mod compare_flags;
pub mod config;
pub mod coverage;
pub mod install;
pub mod list;
pub mod out;
pub mod run;
pub mod serve;
pub mod snapshots;

use clap::{Parser, Subcommand};

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  every selected fixture passed (known failures and known-flaky allowed)
  1  a fixture failed, a known-failing entry is stale, or a conversation could not be held
  2  usage or fixture error: a malformed flag value or target (http://..., no port,
     port out of range), a bad fixture, .proto, list entry or config file; nothing was sent
  3  the target is unreachable or does not speak gRPC over HTTP/2 as addressed
  4  nothing selected (--filter, --skip, --partition or an empty --fixtures directory)
`snapshots pending` and `snapshots orphans` exit 1 when they find something.";

/// Cross-language gRPC conformance and interop test kit.
#[derive(Debug, Parser)]
#[command(
    name = "grpc-conform",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// What to do; with none, run the conformance suite.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the conformance run (when no subcommand is given).
    #[command(flatten)]
    pub run: run::RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reference server of the contract until SIGINT or SIGTERM.
    Serve(Box<serve::ServeArgs>),
    /// Review, accept or reject a target's snapshots; regenerate the golden ones.
    Snapshots(snapshots::SnapshotsArgs),
    /// Parse and validate every fixture (all problems, each with file, line,
    /// column and field); sends nothing. Exit 0 when all are valid, 2 otherwise.
    Check(check::CheckArgs),
    /// Run the client fixtures with CMD as the client under test: the plan
    /// on its stdin, its report on stdout (docs/clients.md). Exit codes as
    /// a run's.
    Client(Box<client::ClientArgs>),
    /// Print the shell completion script for SHELL (e.g. `grpc-conform
    /// completions bash > /etc/bash_completion.d/grpc-conform`).
    Completions(install::CompletionsArgs),
    /// Print the man page (roff; `grpc-conform man > grpc-conform.1`), or
    /// write a page per subcommand with --dir.
    Man(install::ManArgs),
    /// Map the rule list onto the fixtures' `rule` fields: print or write
    /// docs/coverage.md, or check that it is current.
    Coverage(coverage::CoverageArgs),
    /// The kit's own conforming gRPC client: read a client plan on standard
    /// input, run it, print the report (the golden producer of `client`).
    ClientDriver(client_driver::ClientDriverArgs),
    /// Load one method of a target (the embedded reference by default) and
    /// report msgs/s, bytes/s, per-message latency, errors and the load
    /// generator's own CPU; compare two targets round by round (docs/bench.md).
    Bench(Box<bench::BenchArgs>),
}

/// Runs what the command line asks: the exit code of a job that ran to its
/// end, or the error that stopped it (which knows its own exit code).
pub async fn execute(cli: Cli, matches: &clap::ArgMatches) -> Result<u8, run::CliError> {
    match cli.command {
        Some(Command::Serve(args)) => serve::execute(&args)
            .await
            .map(|()| 0)
            .map_err(|e| run::CliError::Other(format!("serve: {e}"))),
        Some(Command::Snapshots(args)) => snapshots::execute(args).await,
        Some(Command::Check(args)) => check::execute(&args),
        Some(Command::Client(args)) => client::execute(*args).await,
        Some(Command::Completions(args)) => install::completions(&args),
        Some(Command::Man(args)) => install::man(&args),
        Some(Command::Coverage(args)) => coverage::execute(&args),
        Some(Command::ClientDriver(args)) => client_driver::execute(&args).await,
        Some(Command::Bench(args)) => bench::execute(&args).await,
        None => run::execute(cli.run, matches).await,
    }
}
