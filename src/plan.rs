//! Which fixtures run, in which order: `--filter` and `--skip` patterns on
//! names, sorted by name so reports and snapshots line up run after run.

use crate::fixture::NamedFixture;

/// A name pattern: a glob when it has `*`, `?` or `[`, otherwise a substring.
#[derive(Clone, Debug)]
pub enum NamePattern {
    /// Matches names containing the text.
    Substring(String),
    /// Matches whole names against the glob (`*` also crosses `/`).
    Glob(glob::Pattern),
}

/// A pattern given on the command line did not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad name pattern `{pattern}`: {reason}")]
pub struct PatternError {
    /// What was given.
    pub pattern: String,
    /// Why it is not a glob.
    pub reason: String,
}

impl NamePattern {
    /// Parses one `--filter` or `--skip` value.
    pub fn parse(pattern: &str) -> Result<NamePattern, PatternError> {
        if pattern.contains(['*', '?', '[']) {
            glob::Pattern::new(pattern)
                .map(NamePattern::Glob)
                .map_err(|e| PatternError {
                    pattern: pattern.to_string(),
                    reason: e.to_string(),
                })
        } else {
            Ok(NamePattern::Substring(pattern.to_string()))
        }
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Substring(s) => name.contains(s.as_str()),
            NamePattern::Glob(g) => g.matches(name),
        }
    }
}

/// Keeps the fixtures matching any filter (all when there is none) and no
/// skip pattern, sorted by name.
pub fn select(
    mut fixtures: Vec<NamedFixture>,
    filters: &[NamePattern],
    skips: &[NamePattern],
) -> Vec<NamedFixture> {
    fixtures.retain(|f| {
        (filters.is_empty() || filters.iter().any(|p| p.matches(&f.name)))
            && !skips.iter().any(|p| p.matches(&f.name))
    });
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    fixtures
}

/// Parses a known-failing file: one fixture name per line; blank lines and
/// `#` comments are ignored, so each entry can say why it is there.
pub fn parse_known_failing(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_and_glob() {
        let p = NamePattern::parse("cancel").unwrap();
        assert!(p.matches("greeter/client-stream/cancel-mid-stream"));
        let g = NamePattern::parse("greeter/*/cancel-*").unwrap();
        assert!(g.matches("greeter/client-stream/cancel-mid-stream"));
        assert!(!g.matches("chat/bidi/cancel-mid-stream"));
    }

    #[test]
    fn known_failing_ignores_comments() {
        let names = parse_known_failing("# header\na/b  # why\n\n c/d \n");
        assert_eq!(names, vec!["a/b".to_string(), "c/d".to_string()]);
    }
}
