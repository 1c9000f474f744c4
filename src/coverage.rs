//! The rules grpc-conform knows (`docs/rules.toml`) and which fixtures check
//! each: a fixture's `rule` field cites rule ids separated by `;`. Builds the
//! map, refuses citations of unknown ids and rules that are neither checked
//! nor marked uncovered with a reason, and renders `docs/coverage.md`.

use crate::{fixture::NamedFixture, model::Level};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The rule list compiled into the binary.
pub const EMBEDDED_RULES: &str = include_str!("../docs/rules.toml");

/// Where the embedded rule list lives in the repository (shown in errors).
pub const RULES_PATH: &str = "docs/rules.toml";

/// One rule of a spec document, a test case of a suite, or a contract clause.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique id, `<document prefix>/<name>`, cited by fixtures.
    pub id: String,
    /// The document that states the rule (`PROTOCOL-HTTP2.md`, `RFC 9113`, ...).
    pub document: String,
    /// RFC 2119 level as the document gives it.
    pub level: Level,
    /// A short paraphrase; the document is the authority.
    pub text: String,
    /// Why no fixture checks it; absent for a rule fixtures check.
    #[serde(default)]
    pub uncovered: Option<Uncovered>,
    /// The reason in a sentence, required with `uncovered`.
    #[serde(default)]
    pub why: Option<String>,
}

/// Why a rule has no fixture.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Uncovered {
    /// An obligation or a behaviour of the client; a target is a server.
    ClientOnly,
    /// The contract cannot ask a target for it.
    NeedsCapability,
    /// Outside gRPC over plaintext HTTP/2 or outside what a snapshot can fix.
    OutOfScope,
    /// Checkable, but the driver lacks the step still.
    NotYet,
}

impl Uncovered {
    /// The name as written in the rule list.
    pub fn as_str(self) -> &'static str {
        match self {
            Uncovered::ClientOnly => "client-only",
            Uncovered::NeedsCapability => "needs-capability",
            Uncovered::OutOfScope => "out-of-scope",
            Uncovered::NotYet => "not-yet",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<Rule>,
}

/// A rule list or a fixture citation that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// The TOML does not parse or does not fit the format.
    #[error("{file}: {source}")]
    Parse {
        /// The rule list.
        file: String,
        /// What the TOML parser said (with line and column).
        #[source]
        source: toml::de::Error,
    },
    /// The list parses but an entry is wrong (duplicate id, missing reason).
    #[error("{file}: rule `{id}`: {message}")]
    InvalidRule {
        /// The rule list.
        file: String,
        /// The entry.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A fixture cites an id the list does not have.
    #[error("{source_file}: at `rule`: `{id}` is not a rule of {rules}")]
    UnknownRule {
        /// The fixture file.
        source_file: String,
        /// The id cited.
        id: String,
        /// The rule list.
        rules: String,
    },
    /// A fixture cites a rule the list marks as not covered.
    #[error("{source_file}: at `rule`: `{id}` is marked uncovered in {rules}; drop the mark")]
    CitedUncovered {
        /// The fixture file.
        source_file: String,
        /// The id cited.
        id: String,
        /// The rule list.
        rules: String,
    },
    /// Rules no fixture cites and that give no reason.
    #[error("{rules}: no fixture cites {} and none says why (`uncovered`, `why`)", .ids.join(", "))]
    Unaccounted {
        /// The rule list.
        rules: String,
        /// The ids.
        ids: Vec<String>,
    },
}

/// Parses a rule list; `file` names it in errors.
pub fn parse_rules(file: &str, text: &str) -> Result<Vec<Rule>, CoverageError> {
    let parsed: RuleFile = toml::from_str(text).map_err(|source| CoverageError::Parse {
        file: file.to_string(),
        source,
    })?;
    let mut seen = BTreeSet::new();
    for rule in &parsed.rule {
        let invalid = |message: &str| CoverageError::InvalidRule {
            file: file.to_string(),
            id: rule.id.clone(),
            message: message.to_string(),
        };
        if !seen.insert(rule.id.as_str()) {
            return Err(invalid("the id is used twice"));
        }
        if rule.id.contains(';') || rule.id.trim() != rule.id || rule.id.is_empty() {
            return Err(invalid("an id has no `;` and no surrounding spaces"));
        }
        match (&rule.uncovered, &rule.why) {
            (Some(_), None) => return Err(invalid("`uncovered` needs a `why`")),
            (None, Some(_)) => return Err(invalid("`why` is only for an `uncovered` rule")),
            (Some(_), Some(_)) | (None, None) => {}
        }
    }
    Ok(parsed.rule)
}

/// The ids a fixture's `rule` field cites, in order.
pub fn citations(rule_field: &str) -> impl Iterator<Item = &str> {
    rule_field
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Every rule with the fixtures citing it.
#[derive(Debug)]
pub struct Coverage {
    /// The rules in list order, each with the names of its fixtures (sorted).
    pub rules: Vec<(Rule, Vec<String>)>,
    /// How many fixtures were mapped.
    pub fixtures: usize,
}

impl Coverage {
    /// Maps `fixtures` onto `rules`; `rules_file` names the list in errors.
    pub fn build(
        rules: Vec<Rule>,
        rules_file: &str,
        fixtures: &[NamedFixture],
    ) -> Result<Coverage, CoverageError> {
        let mut cited: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let by_id: BTreeMap<&str, &Rule> = rules.iter().map(|r| (r.id.as_str(), r)).collect();
        for named in fixtures {
            for id in citations(&named.fixture.rule) {
                let rule = by_id.get(id).ok_or_else(|| CoverageError::UnknownRule {
                    source_file: named.source.clone(),
                    id: id.to_string(),
                    rules: rules_file.to_string(),
                })?;
                if rule.uncovered.is_some() {
                    return Err(CoverageError::CitedUncovered {
                        source_file: named.source.clone(),
                        id: id.to_string(),
                        rules: rules_file.to_string(),
                    });
                }
                let names = cited.entry(rule.id.as_str()).or_default();
                if !names.contains(&named.name) {
                    names.push(named.name.clone());
                }
            }
        }
        let unaccounted: Vec<String> = rules
            .iter()
            .filter(|r| r.uncovered.is_none() && !cited.contains_key(r.id.as_str()))
            .map(|r| r.id.clone())
            .collect();
        if !unaccounted.is_empty() {
            return Err(CoverageError::Unaccounted {
                rules: rules_file.to_string(),
                ids: unaccounted,
            });
        }
        let mut mapped: BTreeMap<String, Vec<String>> = cited
            .into_iter()
            .map(|(id, mut names)| {
                names.sort();
                (id.to_string(), names)
            })
            .collect();
        let rules = rules
            .into_iter()
            .map(|r| {
                let names = mapped.remove(&r.id).unwrap_or_default();
                (r, names)
            })
            .collect();
        Ok(Coverage {
            rules,
            fixtures: fixtures.len(),
        })
    }

    /// `docs/coverage.md`: a summary, then one table per document.
    pub fn render_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("# Coverage\n\n");
        out.push_str(
            "Generated by `grpc-conform coverage --output docs/coverage.md` from \
             [`rules.toml`](rules.toml) and the fixtures' `rule` fields; \
             `cargo test` fails when it is stale. Each rule is a short paraphrase: \
             the document named is the authority.\n\n",
        );
        let covered = self.rules.iter().filter(|(r, _)| r.uncovered.is_none());
        let uncovered: Vec<&Rule> = self
            .rules
            .iter()
            .filter_map(|(r, _)| r.uncovered.map(|_| r))
            .collect();
        out.push_str(&format!(
            "{} rules, {} checked by {} fixtures, {} not covered",
            self.rules.len(),
            covered.count(),
            self.fixtures,
            uncovered.len()
        ));
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &uncovered {
            if let Some(u) = r.uncovered {
                *reasons.entry(u.as_str()).or_default() += 1;
            }
        }
        let reasons: Vec<String> = reasons.iter().map(|(k, n)| format!("{n} {k}")).collect();
        if !reasons.is_empty() {
            out.push_str(&format!(" ({})", reasons.join(", ")));
        }
        out.push_str(".\n");
        let mut documents: Vec<&str> = Vec::new();
        for (r, _) in &self.rules {
            if !documents.contains(&r.document.as_str()) {
                documents.push(&r.document);
            }
        }
        for document in documents {
            out.push_str(&format!(
                "\n## {document}\n\n| rule | level | text | fixtures |\n|---|---|---|---|\n"
            ));
            for (r, names) in self.rules.iter().filter(|(r, _)| r.document == document) {
                let fixtures = match (r.uncovered, &r.why) {
                    (Some(u), why) => format!(
                        "not covered ({}): {}",
                        u.as_str(),
                        why.as_deref().unwrap_or("")
                    ),
                    (None, _) => names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                out.push_str(&format!(
                    "| `{}` | {} | {} | {} |\n",
                    r.id,
                    r.level.as_str(),
                    escape_cell(&r.text),
                    escape_cell(&fixtures)
                ));
            }
        }
        out
    }
}

/// A table cell: `|` would end the cell.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::parse;

    fn fixture(name: &str, rule: &str) -> NamedFixture {
        let text = format!(
            r#"{{"description": "d", "rule": "{rule}", "level": "MUST", "calls": [
                {{"method": "/Greeter/SayHello", "steps": ["half_close"]}}]}}"#
        );
        NamedFixture {
            name: name.into(),
            source: format!("fixtures/{name}.json"),
            fixture: parse("x", &text).unwrap(),
        }
    }

    const RULES: &str = r#"
[[rule]]
id = "a/one"
document = "A.md"
level = "MUST"
text = "one | two"

[[rule]]
id = "a/two"
document = "A.md"
level = "SHOULD"
text = "two"
uncovered = "client-only"
why = "the client's"
"#;

    #[test]
    fn maps_citations_and_renders_reasons() {
        let rules = parse_rules("r.toml", RULES).unwrap();
        let cov = Coverage::build(
            rules,
            "r.toml",
            &[fixture("b", "a/one"), fixture("a", " a/one ;")],
        )
        .unwrap();
        assert_eq!(cov.rules[0].1, vec!["a".to_string(), "b".to_string()]);
        let md = cov.render_markdown();
        assert!(
            md.contains("| `a/one` | MUST | one \\| two | `a`, `b` |"),
            "{md}"
        );
        assert!(
            md.contains("not covered (client-only): the client's"),
            "{md}"
        );
    }

    #[test]
    fn unknown_and_uncovered_citations_name_the_fixture() {
        let rules = parse_rules("r.toml", RULES).unwrap();
        let err = Coverage::build(rules.clone(), "r.toml", &[fixture("x", "a/one; a/three")])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "fixtures/x.json: at `rule`: `a/three` is not a rule of r.toml"
        );
        let err =
            Coverage::build(rules.clone(), "r.toml", &[fixture("x", "a/one; a/two")]).unwrap_err();
        assert!(
            err.to_string().contains("`a/two` is marked uncovered"),
            "{err}"
        );
        let err = Coverage::build(rules, "r.toml", &[]).unwrap_err();
        assert!(err.to_string().contains("no fixture cites a/one"), "{err}");
    }

    #[test]
    fn a_bad_list_is_refused_with_its_entry() {
        let twice = format!(
            "{RULES}\n[[rule]]\nid = \"a/one\"\ndocument = \"A\"\nlevel = \"MAY\"\ntext = \"t\"\n"
        );
        assert!(parse_rules("r.toml", &twice)
            .unwrap_err()
            .to_string()
            .contains("`a/one`: the id is used twice"));
        let no_why = "[[rule]]\nid = \"a\"\ndocument = \"A\"\nlevel = \"MAY\"\ntext = \"t\"\nuncovered = \"not-yet\"\n";
        assert!(parse_rules("r.toml", no_why)
            .unwrap_err()
            .to_string()
            .contains("needs a `why`"));
        let typo = "[[rule]]\nid = \"a\"\ndocument = \"A\"\nlevel = \"MAY\"\ntxt = \"t\"\n";
        assert!(parse_rules("r.toml", typo)
            .unwrap_err()
            .to_string()
            .starts_with("r.toml: "));
    }

    #[test]
    fn the_embedded_list_parses() {
        let rules = parse_rules(RULES_PATH, EMBEDDED_RULES).unwrap();
        assert!(rules.len() > 100);
    }
}
