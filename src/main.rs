//! `grpc-conform`: parses the command line, runs the library, maps the
//! outcome to the exit codes documented in `cli`.

use clap::{CommandFactory, FromArgMatches};
use grpc_conform::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let outcome = runtime(&cli)
        .map_err(|e| cli::run::CliError::Other(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(cli::execute(cli, &matches)));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            cli::out::note(&format!("grpc-conform: {e}"));
            ExitCode::from(e.exit_code())
        }
    }
}

/// The async runtime: one worker thread per core, except that `serve` and
/// `bench` given one core run on one thread (`serve::runtime`): a load
/// generator pinned to a core pays for no hand-offs it cannot use.
fn runtime(cli: &Cli) -> std::io::Result<tokio::runtime::Runtime> {
    if matches!(
        cli.command,
        Some(cli::Command::Serve(_) | cli::Command::Bench(_))
    ) {
        cli::serve::runtime()
    } else {
        tokio::runtime::Runtime::new()
    }
}
