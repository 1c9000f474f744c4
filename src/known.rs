//! Entries of the known-failing and known-flaky lists matched against the
//! fixtures: an entry is a name or a glob (`*` crosses `/`), and an entry
//! that matches no fixture is an error, so a typo never silently lets a
//! failure through (connect conformance rejects them for the same reason).

use crate::plan::NamePattern;
use std::collections::BTreeSet;

/// A list entry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KnownListError {
    /// An entry is not a valid glob.
    #[error("{list}: `{entry}` is not a valid glob: {reason}")]
    BadGlob {
        /// The list file.
        list: String,
        /// The entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// Entries match no fixture.
    #[error("{list}: no fixture matches {} (a typo, or a fixture removed or renamed?)", entries.join(", "))]
    Unmatched {
        /// The list file.
        list: String,
        /// The entries.
        entries: Vec<String>,
    },
}

/// The fixture names `entries` (names or globs) cover among `names`; an
/// entry covering none is an error.
pub fn expand<'a>(
    list: &str,
    entries: &[String],
    names: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<BTreeSet<String>, KnownListError> {
    let mut covered = BTreeSet::new();
    let mut unmatched = Vec::new();
    for entry in entries {
        let pattern = if entry.contains(['*', '?', '[']) {
            NamePattern::parse(entry).map_err(|e| KnownListError::BadGlob {
                list: list.to_string(),
                entry: entry.clone(),
                reason: e.reason,
            })?
        } else {
            // A plain entry is a whole name, never a substring.
            NamePattern::Glob(glob::Pattern::new(&glob::Pattern::escape(entry)).expect("escaped"))
        };
        let mut any = false;
        for name in names.clone() {
            if pattern.matches(name) {
                covered.insert(name.to_string());
                any = true;
            }
        }
        if !any {
            unmatched.push(entry.clone());
        }
    }
    if unmatched.is_empty() {
        Ok(covered)
    } else {
        Err(KnownListError::Unmatched {
            list: list.to_string(),
            entries: unmatched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_globs_expand_and_typos_are_errors() {
        let names = ["a/b/one", "a/b/two", "c/three"];
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = expand("k.txt", &e(&["a/b/*", "c/three"]), names).unwrap();
        assert_eq!(got.len(), 3);
        let err = expand("k.txt", &e(&["a/b/one", "c/thre", "x/*"]), names).unwrap_err();
        assert_eq!(
            err.to_string(),
            "k.txt: no fixture matches c/thre, x/* (a typo, or a fixture removed or renamed?)"
        );
        // A plain entry is the whole name, not a substring.
        assert!(expand("k.txt", &e(&["three"]), names).is_err());
    }
}
