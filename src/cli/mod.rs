//! The command line: `grpc-conform [--target host:port] ...` runs the suite,
//! `grpc-conform snapshots ...` manages snapshots, `grpc-conform serve` runs
//! the reference server.
//!
//! Exit codes: 0 all fixtures passed, 1 a fixture failed (or a known-failing
//! entry is stale), 2 usage or fixture error, 3 target unreachable.

pub mod coverage;
pub mod run;
pub mod serve;
pub mod snapshots;

use clap::{Parser, Subcommand};

/// Cross-language gRPC conformance and interop test kit.
#[derive(Debug, Parser)]
#[command(
    name = "grpc-conform",
    version,
    about,
    args_conflicts_with_subcommands = true
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
    Serve(serve::ServeArgs),
    /// Review, accept or reject a target's snapshots; regenerate the golden ones.
    Snapshots(snapshots::SnapshotsArgs),
    /// Map the rule list onto the fixtures' `rule` fields: print or write
    /// docs/coverage.md, or check that it is current.
    Coverage(coverage::CoverageArgs),
}

/// Runs what the command line asks: the exit code of a job that ran to its
/// end, or the error that stopped it (which knows its own exit code).
pub async fn execute(cli: Cli) -> Result<u8, run::CliError> {
    match cli.command {
        Some(Command::Serve(args)) => serve::execute(&args)
            .await
            .map(|()| 0)
            .map_err(|e| run::CliError::Other(format!("serve: {e}"))),
        Some(Command::Snapshots(args)) => snapshots::execute(args).await,
        Some(Command::Coverage(args)) => coverage::execute(&args),
        None => run::execute(cli.run).await,
    }
}
