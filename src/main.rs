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
        match &cli.command {
            Some(Command::Serve(args)) => match serve::execute(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("grpc-conform serve: {e}");
                    ExitCode::from(2)
                }
            },
            None => ExitCode::SUCCESS,
        }
    })
}
