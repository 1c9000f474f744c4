//! `grpc-conform check`: every fixture (server and client) parsed and validated against the
//! descriptors, every problem reported (not only the first) with file, line,
//! column, field and, for a misspelt method or message field, the closest
//! known name. Nothing is sent.

use super::{out, run::CliError};
use crate::{
    client::fixture as client_fixture,
    fixture,
    session::{self, SessionError},
};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The fixtures to check; the embedded corpus when absent.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// The client fixtures to check; the embedded client corpus when absent.
    #[arg(long, value_name = "DIR")]
    pub client_fixtures: Option<PathBuf>,
    /// Compile these .proto files (protox) and add their types; repeatable.
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,
    /// Import path for --proto files (their own directory is always one); repeatable.
    #[arg(long = "proto-path", value_name = "DIR")]
    pub proto_paths: Vec<PathBuf>,
}

/// Checks every fixture; 0 when all are valid, 2 otherwise (each problem on
/// standard error, a summary on standard output).
pub fn execute(args: &CheckArgs) -> Result<u8, CliError> {
    let descriptors = session::descriptors(&args.protos, &args.proto_paths)?;
    let texts = match &args.fixtures {
        Some(dir) => fixture::read_dir(dir).map_err(SessionError::from)?,
        None => fixture::read_embedded(),
    };
    let client_texts = match &args.client_fixtures {
        Some(dir) => client_fixture::read_dir(dir).map_err(SessionError::from)?,
        None => client_fixture::read_embedded(),
    };
    let total = texts.len() + client_texts.len();
    let (_, mut problems) = fixture::check_all(texts, &descriptors);
    problems.extend(client_fixture::check_all(client_texts, &descriptors).1);
    for problem in &problems {
        out::note(&problem.to_string());
    }
    out::line(&format!(
        "{total} fixtures checked: {} valid, {} invalid",
        total - problems.len(),
        problems.len()
    ))?;
    Ok(if problems.is_empty() { 0 } else { 2 })
}
