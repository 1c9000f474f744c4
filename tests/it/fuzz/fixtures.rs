//! The fixture parser and validator: corpus fixtures with random edits
//! (bytes cut, JSON tokens and extreme numbers spliced in) are loaded or
//! refused with the file named, never a panic, and what loads stays within
//! the limits of `grpc_conform::limits`.

use super::fuzz;
use grpc_conform::{
    descriptors::Descriptors,
    fixture::{self, NamedFixture},
    limits,
    model::{RawStep, Step},
};
use proptest::{prelude::*, test_runner::TestCaseError};
use std::sync::OnceLock;

/// The corpus as text, and the contract's descriptors.
fn corpus() -> &'static (Vec<String>, Descriptors) {
    static CORPUS: OnceLock<(Vec<String>, Descriptors)> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let texts = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
            .map(|_| ())
            .and_then(|()| {
                let mut out = Vec::new();
                collect(
                    concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures").as_ref(),
                    &mut out,
                )?;
                Ok(out)
            })
            .expect("the corpus is readable");
        (texts, Descriptors::contract().unwrap())
    })
}

fn collect(dir: &std::path::Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(std::fs::read_to_string(path)?);
        }
    }
    Ok(())
}

/// One edit of a fixture's text, at a position given as a fraction.
#[derive(Clone, Debug)]
enum Edit {
    /// Cut this many bytes.
    Cut(f64, usize),
    /// Splice in a token.
    Splice(f64, String),
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("4294967295".to_string()),
        Just("18446744073709551615".to_string()),
        Just("1e300".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("99999999".to_string()),
        Just("100000000".to_string()),
        Just("null".to_string()),
        Just("\"\"".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
        Just(",".to_string()),
        Just("\"{i}\"".to_string()),
        Just("\"é←\\u0000\"".to_string()),
        any::<String>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0f64, 0..16usize).prop_map(|(at, n)| Edit::Cut(at, n)),
        (0.0..1.0f64, token()).prop_map(|(at, t)| Edit::Splice(at, t)),
    ]
}

/// The byte offset nearest `at` that is a character boundary of `text`.
fn boundary(text: &str, at: f64) -> usize {
    let mut i = ((text.len() as f64) * at) as usize;
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(mut text: String, edits: &[Edit]) -> String {
    for e in edits {
        match e {
            Edit::Cut(at, n) => {
                let from = boundary(&text, *at);
                let to = boundary(
                    &text,
                    ((from + n) as f64 / text.len().max(1) as f64).min(1.0),
                );
                text.replace_range(from..to.max(from), "");
            }
            Edit::Splice(at, token) => {
                let i = boundary(&text, *at);
                text.insert_str(i, token);
            }
        }
    }
    text
}

/// What loaded respects the limits that drive loops and allocation.
fn within_limits(named: &NamedFixture) -> Result<(), TestCaseError> {
    let f = &named.fixture;
    prop_assert!(f.timeout_ms.is_none_or(|t| t <= limits::MAX_TIMEOUT_MS));
    for call in &f.calls {
        prop_assert!(call
            .deadline_ms
            .is_none_or(|d| d <= limits::MAX_DEADLINE_MS));
        for step in &call.steps {
            if let Step::SendMany(m) = step {
                prop_assert!(u64::from(m.count) <= limits::MAX_SEND_MANY);
            }
        }
    }
    for step in &f.raw {
        match step {
            RawStep::ResetMany(r) => prop_assert!(u64::from(r.count) <= limits::MAX_RESET_MANY),
            RawStep::Open(o) => prop_assert!(o
                .filler_bytes
                .is_none_or(|b| b as u64 <= limits::MAX_FILLER_BYTES)),
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn edited_fixtures_load_or_are_refused_with_the_file_named() {
    let count = corpus().0.len();
    let input = (0..count, prop::collection::vec(edit(), 0..6));
    fuzz(file!(), "fixture parse+validate", input, |(i, edits)| {
        let (texts, descriptors) = corpus();
        let text = apply(texts[i].clone(), &edits);
        let named = match fixture::parse("f.json", &text) {
            Ok(fixture) => NamedFixture {
                name: "f".into(),
                source: "f.json".into(),
                fixture,
            },
            Err(e) => {
                prop_assert!(e.to_string().starts_with("f.json"), "{}", e);
                return Ok(());
            }
        };
        within_limits(&named)?;
        if let Err(e) = fixture::validate(&named, descriptors) {
            prop_assert!(e.to_string().starts_with("f.json"), "{}", e);
        }
        Ok(())
    });
}

#[test]
fn any_text_is_refused_without_a_panic() {
    fuzz(
        file!(),
        "fixture parse (any text)",
        any::<String>(),
        |text| {
            if let Err(e) = fixture::parse("f.json", &text) {
                prop_assert!(e.to_string().starts_with("f.json"), "{}", e);
            }
            Ok(())
        },
    );
}
