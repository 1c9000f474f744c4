//! `grpc-conform`: parses the command line, runs the library, maps the
//! outcome to the exit codes documented in `cli`.

use clap::Parser;
use grpc_conform::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("grpc-conform: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => grpc_conform::cli::run::execute(cli.run).await,
            Some(Command::Snapshots(args)) => grpc_conform::cli::snapshots::execute(args).await,
            Some(Command::Serve) => Err(grpc_conform::cli::run::CliError::Usage(
                "serve is not built yet".into(),
            )),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("grpc-conform: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
