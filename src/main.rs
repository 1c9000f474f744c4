use clap::Parser;
use grpc_conform::cli::Cli;

fn main() {
    let _cli = Cli::parse();
}
