//! The judge: evaluates a fixture's checks on what the driver read, compares
//! a transcript with its snapshot, diffs them, and gives the verdict. No I/O
//! happens here; the driver and the run hand it values and text.

use crate::{
    message,
    model::{Event, ExpectStatusStep},
    normalise,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What became of one fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The transcript matches the snapshot.
    Pass,
    /// The transcript differs, or there is no snapshot.
    Fail,
    /// It differs, and the known-failing list says so.
    KnownFailure,
    /// It is on the known-failing list but matches: the list is stale.
    Stale,
    /// The conversation could not be held (no connection, bad fixture).
    Error,
    /// Not run: the fixture needs reference settings (A9 limits, a short
    /// ping policy) that an external target is not known to have.
    Skipped,
    /// Not run: the target lacks what the fixture needs to mean anything (a
    /// control header it ignores, a method it does not serve).
    NotApplicable,
    /// Run but not judged: its transcript differed between repetitions
    /// (`--repeat`), or the known-flaky list names it.
    Unstable,
}

impl Verdict {
    /// Whether this outcome makes the run fail (exit code 1).
    pub fn fails_run(self) -> bool {
        match self {
            Verdict::Fail | Verdict::Stale | Verdict::Error => true,
            Verdict::Pass
            | Verdict::KnownFailure
            | Verdict::Skipped
            | Verdict::NotApplicable
            | Verdict::Unstable => false,
        }
    }
}

/// How a transcript is to be compared.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lens {
    /// The target has no Observer: both sides lose the Observer's lines.
    pub without_server_view: bool,
}

impl Lens {
    /// `text` as this lens compares it.
    pub fn apply(self, text: &str) -> String {
        let text = normalise::snapshot_text(text);
        if self.without_server_view {
            normalise::without_server_view(&text)
        } else {
            text
        }
    }
}

/// The comparison of one transcript with its snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// Whether they are the same under the lens.
    pub matched: bool,
    /// Unified diff expected → actual, when they differ.
    pub diff: Option<String>,
}

/// Compares `actual` with `expected` (both already through the lens); no
/// snapshot is a mismatch without a diff.
pub fn compare(expected: Option<&str>, actual: &str) -> Comparison {
    match expected {
        None => Comparison {
            matched: false,
            diff: None,
        },
        Some(e) if e == actual => Comparison {
            matched: true,
            diff: None,
        },
        Some(e) => Comparison {
            matched: false,
            diff: Some(diff(e, actual, "expected", "actual")),
        },
    }
}

/// The one unified diff of the project: `old` → `new`, three lines of context.
pub fn diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    // Both end in a newline so the diff has no "no newline" noise.
    let (old, new) = (
        format!("{}\n", old.trim_end()),
        format!("{}\n", new.trim_end()),
    );
    similar::TextDiff::from_lines(old.as_str(), new.as_str())
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

/// The verdict of a held conversation.
pub fn verdict(matched: bool, known_failing: bool) -> Verdict {
    match (matched, known_failing) {
        (true, false) => Verdict::Pass,
        (true, true) => Verdict::Stale,
        (false, false) => Verdict::Fail,
        (false, true) => Verdict::KnownFailure,
    }
}

/// The distinct transcripts of repeated runs of one fixture, in first-seen
/// order with how often each came; one entry means the fixture is stable.
pub fn variants(transcripts: &[String]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for t in transcripts {
        match out.iter_mut().find(|(v, _)| v == t) {
            Some((_, n)) => *n += 1,
            None => out.push((t.clone(), 1)),
        }
    }
    out
}

/// The check of a received message against a `receive` step's expectation
/// (canonical JSON both; `partial`: only the fields given).
pub fn check_message(expected: &Value, actual: &Value, partial: bool) -> Event {
    let ok = if partial {
        message::partial_match(expected, actual)
    } else {
        expected == actual
    };
    let kind = if partial { "message with" } else { "message" };
    Event::Check {
        ok,
        what: format!("{kind} {}", message::one_line(expected)),
    }
}

/// The check of an `expect_status` step against the status read (if any).
pub fn check_status(expected: &ExpectStatusStep, actual: Option<&(String, String)>) -> Event {
    let (code, message) = actual
        .cloned()
        .unwrap_or_else(|| ("<none>".into(), String::new()));
    let ok = code == expected.code && expected.message.as_ref().is_none_or(|m| *m == message);
    let what = match &expected.message {
        Some(m) => format!("status {} {m:?}", expected.code),
        None => format!("status {}", expected.code),
    };
    Event::Check { ok, what }
}

/// The checks of named header or trailer fields; `None` expectations only
/// record what came.
pub fn check_fields(
    kind: &str,
    expected: &BTreeMap<String, Option<String>>,
    map: Option<&http::HeaderMap>,
) -> Vec<Event> {
    expected
        .iter()
        .map(|(name, want)| {
            let got = map
                .and_then(|m| m.get(name.as_str()))
                .and_then(|v| normalise::response_field(name, v.as_bytes()));
            let shown = got
                .as_deref()
                .map_or("<absent>".to_string(), |g| format!("{g:?}"));
            let (ok, what) = match want {
                None => (true, format!("{kind} {name}: {shown}")),
                Some(w) if got == normalise::response_field(name, w.as_bytes()) => {
                    (true, format!("{kind} {name} = {w:?}"))
                }
                Some(w) => (false, format!("{kind} {name} = {w:?}, got {shown}")),
            };
            Event::Check { ok, what }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_has_no_diff_and_a_mismatch_names_the_line() {
        assert!(compare(Some("a\nb"), "a\nb").matched);
        let c = compare(Some("a\nb"), "a\nc");
        assert!(!c.matched);
        let d = c.diff.unwrap();
        assert!(d.contains("-b") && d.contains("+c"), "{d}");
        assert_eq!(
            compare(None, "a"),
            Comparison {
                matched: false,
                diff: None
            }
        );
    }

    #[test]
    fn known_failing_turns_pass_into_stale() {
        assert_eq!(verdict(true, true), Verdict::Stale);
        assert_eq!(verdict(false, true), Verdict::KnownFailure);
        assert!(!Verdict::NotApplicable.fails_run());
        assert!(!Verdict::Unstable.fails_run());
    }

    #[test]
    fn variants_count_each_distinct_transcript() {
        let v = variants(&["a".into(), "b".into(), "a".into()]);
        assert_eq!(v, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
    }

    #[test]
    fn the_lens_leaves_the_server_view_out_of_both_sides() {
        let lens = Lens {
            without_server_view: true,
        };
        let golden = "call 1 /G/S\n  observer: outcome=COMPLETED\n  ← status OK";
        let actual = "call 1 /G/S\n  ← status OK";
        assert_eq!(lens.apply(golden), lens.apply(actual));
    }
}
