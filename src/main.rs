//! `grpc-conform`: parses the command line, runs the library, maps the
//! outcome to the exit codes documented in `cli`.

use clap::Parser;
use grpc_conform::cli::{serve, Cli, Command};
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
    runtime.block_on(async {
        let result = match cli.command {
            Some(Command::Serve(args)) => {
                return match serve::execute(&args).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("grpc-conform serve: {e}");
                        ExitCode::from(2)
                    }
                };
            }
            Some(Command::Snapshots(args)) => grpc_conform::cli::snapshots::execute(args).await,
            None => grpc_conform::cli::run::execute(cli.run).await,
        };
        match result {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("grpc-conform: {e}");
                ExitCode::from(e.exit_code())
            }
        }
    })
}
