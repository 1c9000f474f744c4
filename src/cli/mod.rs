//! The command line: `grpc-conform [--target host:port] ...` runs the suite,
//! `grpc-conform serve` runs the reference server.

pub mod serve;

use clap::{Parser, Subcommand};

/// Cross-language gRPC conformance and interop test kit.
#[derive(Debug, Parser)]
#[command(name = "grpc-conform", version, about)]
pub struct Cli {
    /// What to do; with none, run the conformance suite.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reference server of the contract until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
}
