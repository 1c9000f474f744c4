//! Reports of a run: human text (coloured on a terminal), JSON, JUnit XML.

pub mod human;
pub mod junit;

use crate::run::RunReport;

/// Output formats of `--format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text with diffs of failures.
    #[default]
    Human,
    /// The whole run as one JSON document (`RunReport`).
    Json,
    /// JUnit XML, one test case per fixture.
    Junit,
}

/// A report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// JSON serialisation failed.
    #[error("JSON report: {0}")]
    Json(#[from] serde_json::Error),
    /// JUnit serialisation failed.
    #[error("JUnit report: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

/// Renders `report` in `format`; `color` only affects the human format.
pub fn render(report: &RunReport, format: Format, color: bool) -> Result<String, ReportError> {
    Ok(match format {
        Format::Human => human::render(report, color),
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Junit => junit::render(report)?,
    })
}
