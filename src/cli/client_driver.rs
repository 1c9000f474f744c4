//! `grpc-conform client-driver`: the kit's own conforming client as a client
//! under test (docs/clients.md): reads a plan on standard input, prints the
//! report on standard output, exit 0; a plan it cannot run is exit 2 with
//! the reason on standard error.

use super::{out, run::CliError};
use crate::client::plan::Plan;
use crate::client_driver::{self, Faults};
use clap::Args;
use std::{io::Read, path::PathBuf};

/// The largest plan read (a plan is a few kilobytes; this bounds a runaway pipe).
const MAX_PLAN_BYTES: u64 = 64 * 1024 * 1024;

/// Arguments of `client-driver`.
#[derive(Debug, Args)]
pub struct ClientDriverArgs {
    /// Read the plan from this file instead of standard input.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
}

/// Runs the plan and prints the report as one line of JSON.
pub async fn execute(args: &ClientDriverArgs) -> Result<u8, CliError> {
    let (source, text) = read_plan(args)?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let plan: Plan = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        CliError::Usage(format!(
            "{source}:{}:{}: field `{}`: {inner}",
            inner.line(),
            inner.column(),
            e.path()
        ))
    })?;
    let report = client_driver::run(&plan, Faults::default())
        .await
        .map_err(|e| CliError::Usage(format!("{source}: {e}")))?;
    let json = serde_json::to_string(&report).map_err(|e| CliError::Report {
        what: "the report".into(),
        source: Box::new(e),
    })?;
    out::line(&json)?;
    Ok(0)
}

/// The plan's text and where it came from.
fn read_plan(args: &ClientDriverArgs) -> Result<(String, String), CliError> {
    let mut text = String::new();
    let (source, read) = match &args.plan {
        Some(path) => (
            path.display().to_string(),
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_PLAN_BYTES).read_to_string(&mut text)),
        ),
        None => (
            "<stdin>".to_string(),
            std::io::stdin()
                .lock()
                .take(MAX_PLAN_BYTES)
                .read_to_string(&mut text),
        ),
    };
    read.map_err(|e| CliError::Usage(format!("{source}: cannot read the plan: {e}")))?;
    Ok((source, text))
}
