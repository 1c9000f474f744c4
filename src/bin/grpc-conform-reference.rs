//! `grpc-conform-reference`: the reference server alone, with the flags of
//! `grpc-conform serve`. The same server code linked without the kit's
//! client side, so a deployment that only serves (a baseline under load, a
//! peer in a container) maps a binary a fraction of the size.

use clap::Parser;
use grpc_conform::cli::serve::{self, ServeArgs};
use std::process::ExitCode;

/// The reference server of the grpc-conform contract, until SIGINT or SIGTERM.
#[derive(Parser)]
#[command(name = "grpc-conform-reference", version)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = serve::runtime()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| {
            runtime
                .block_on(serve::execute(&cli.serve))
                .map_err(|e| e.to_string())
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grpc-conform-reference: {e}");
            ExitCode::from(2)
        }
    }
}
