use clap::Parser;
use grpc_conform::cli::{serve, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Serve(args)) => match serve::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("grpc-conform serve: {e}");
                ExitCode::from(2)
            }
        },
        None => ExitCode::SUCCESS,
    }
}
