//! `--list`: the selected fixtures (validated first, so a fixture naming an
//! unknown method is an error here too), as lines or JSON.

use super::run::CliError;
use crate::{fixture::NamedFixture, report::Format};
use serde::Serialize;

/// One listed fixture in `--list --format json`.
#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    level: &'a str,
    rule: &'a str,
    description: &'a str,
    source: &'a str,
}

/// The listing: `name<TAB>level<TAB>rule` lines, or a JSON array with the
/// descriptions and files too (JUnit has no listing: an error).
pub fn render(selected: &[NamedFixture], format: Format) -> Result<String, CliError> {
    let listed = selected.iter().map(|f| Listed {
        name: &f.name,
        level: f.fixture.level.as_str(),
        rule: &f.fixture.rule,
        description: &f.fixture.description,
        source: &f.source,
    });
    match format {
        Format::Human => Ok(listed
            .map(|l| format!("{}\t{}\t{}\n", l.name, l.level, l.rule))
            .collect()),
        Format::Json => {
            let all: Vec<Listed> = listed.collect();
            Ok(serde_json::to_string_pretty(&all).expect("strings serialise") + "\n")
        }
        Format::Junit => Err(CliError::Usage(
            "--list prints lines or JSON: use --format human or json".into(),
        )),
    }
}
