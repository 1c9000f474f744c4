//! `grpc-conform coverage`: maps the rule list onto the fixtures' `rule`
//! fields and prints or writes `docs/coverage.md`, or checks it is current.

use super::run::CliError;
use crate::{
    coverage::{self, Coverage},
    fixture::{self, NamedFixture},
};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `coverage`.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Fixtures directory; the embedded corpus when absent.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// Rule list (TOML, see docs/rules.toml); the embedded list when absent.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Write the Markdown here instead of printing it.
    #[arg(long, value_name = "FILE", conflicts_with = "check")]
    pub output: Option<PathBuf>,
    /// Exit 1 when this file differs from what would be written.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

/// Runs `coverage`: 0 written or current, 1 stale (with `--check`).
pub fn execute(args: &CoverageArgs) -> Result<u8, CliError> {
    let fixtures: Vec<NamedFixture> = match &args.fixtures {
        Some(dir) => fixture::load_dir(dir),
        None => fixture::load_embedded(),
    }
    .map_err(|e| CliError::Session(e.into()))?;
    let (rules_file, text) = match &args.rules {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .map_err(|e| CliError::Other(format!("cannot read {}: {e}", path.display())))?,
        ),
        None => (
            coverage::RULES_PATH.to_string(),
            coverage::EMBEDDED_RULES.to_string(),
        ),
    };
    let rules =
        coverage::parse_rules(&rules_file, &text).map_err(|e| CliError::Other(e.to_string()))?;
    let markdown = Coverage::build(rules, &rules_file, &fixtures)
        .map_err(|e| CliError::Other(e.to_string()))?
        .render_markdown();
    if let Some(path) = &args.check {
        let current = std::fs::read_to_string(path).unwrap_or_default();
        if current == markdown {
            return Ok(0);
        }
        eprintln!(
            "{} is stale: run `grpc-conform coverage --output {}`",
            path.display(),
            path.display()
        );
        return Ok(1);
    }
    match &args.output {
        Some(path) => std::fs::write(path, markdown)
            .map_err(|e| CliError::Other(format!("cannot write {}: {e}", path.display())))?,
        None => print!("{markdown}"),
    }
    Ok(0)
}
