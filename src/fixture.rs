//! Loading fixtures: from a directory or the corpus embedded in the binary,
//! named by path, parsed with errors that name file, line and field, then
//! checked against the descriptors so a typo fails before anything is sent.

use crate::{
    descriptors::Descriptors,
    message,
    model::{Fixture, Step, STATUS_NAMES},
};
use std::path::{Path, PathBuf};

/// The corpus and golden snapshots compiled into the binary (see build.rs).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/corpus.rs"));
}

/// The embedded golden snapshots as `(name, file text)`.
pub fn embedded_snapshots() -> &'static [(&'static str, &'static str)] {
    embedded::SNAPSHOTS
}

/// The embedded client fixtures (`client-fixtures/`) as `(name, file text)`.
pub fn embedded_client_fixtures() -> &'static [(&'static str, &'static str)] {
    embedded::CLIENT_FIXTURES
}

/// The embedded golden client snapshots (`snapshots/client/`) as `(name, file text)`.
pub fn embedded_client_snapshots() -> &'static [(&'static str, &'static str)] {
    embedded::CLIENT_SNAPSHOTS
}

/// A fixture (a server fixture unless `F` says otherwise) with its name and
/// where it came from.
#[derive(Clone, Debug)]
pub struct NamedFixture<F = Fixture> {
    /// Hierarchical name from the path, `/`-separated, without `.json`.
    pub name: String,
    /// The file it was read from (`fixtures/<name>.json` for the embedded corpus).
    pub source: String,
    /// The parsed content.
    pub fixture: F,
}

/// A fixture that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The JSON is malformed or does not fit the format.
    #[error("{file}:{line}:{column}: at `{field}`: {message}")]
    Parse {
        /// The fixture file.
        file: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Path of the field, e.g. `calls[0].steps[2].send.message`.
        field: String,
        /// What serde said.
        message: String,
    },
    /// The JSON fits the format but not the descriptors or the step rules.
    #[error("{file}{at}: at `{field}`: {message}")]
    Invalid {
        /// The fixture file.
        file: String,
        /// `:line:column` of the field when known (see [`FixtureError::located_in`]), else empty.
        at: String,
        /// Path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Parses one fixture's text; `file` is only used in errors.
pub fn parse(file: &str, text: &str) -> Result<Fixture, FixtureError> {
    parse_as(file, text)
}

/// Parses one file's text as any fixture format (server or client
/// fixtures); `file` is only used in errors.
pub fn parse_as<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, FixtureError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let fixture: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        FixtureError::Parse {
            file: file.to_string(),
            line: inner.line(),
            column: inner.column(),
            field,
            message: inner.to_string(),
        }
    })?;
    Ok(fixture)
}

/// The embedded corpus, parsed (not yet validated).
pub fn load_embedded() -> Result<Vec<NamedFixture>, FixtureError> {
    parse_all(read_embedded())
}

/// A fixture file's text before parsing.
#[derive(Clone, Debug)]
pub struct FixtureText {
    /// The fixture's name (its path without `.json`).
    pub name: String,
    /// The file it was read from.
    pub source: String,
    /// Its contents.
    pub text: String,
}

/// Every `*.json` under `dir`, named by its path relative to `dir`, sorted.
pub fn load_dir(dir: &Path) -> Result<Vec<NamedFixture>, FixtureError> {
    parse_all(read_dir(dir)?)
}

/// Parses every text; the first error stops.
fn parse_all(texts: Vec<FixtureText>) -> Result<Vec<NamedFixture>, FixtureError> {
    texts
        .into_iter()
        .map(|f| {
            Ok(NamedFixture {
                fixture: parse(&f.source, &f.text)?,
                name: f.name,
                source: f.source,
            })
        })
        .collect()
}

/// The text of every `*.json` under `dir`, named by its path relative to
/// `dir`, sorted; only reading can fail here.
pub fn read_dir(dir: &Path) -> Result<Vec<FixtureText>, FixtureError> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| FixtureError::Io {
            path: file.clone(),
            source,
        })?;
        let rel = file.strip_prefix(dir).unwrap_or(&file).with_extension("");
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        out.push(FixtureText {
            name,
            source: file.display().to_string(),
            text,
        });
    }
    Ok(out)
}

/// The text of every fixture of the embedded corpus.
pub fn read_embedded() -> Vec<FixtureText> {
    embedded_texts(embedded::FIXTURES, "fixtures")
}

/// The texts of embedded `files`, named as read from `dir/<name>.json`.
pub fn embedded_texts(files: &[(&str, &str)], dir: &str) -> Vec<FixtureText> {
    files
        .iter()
        .map(|(name, text)| FixtureText {
            name: name.to_string(),
            source: format!("{dir}/{name}.json"),
            text: text.to_string(),
        })
        .collect()
}

/// The text a fixture was parsed from: the embedded corpus's, or its file's
/// as it is now; `None` when that cannot be read.
pub fn text_of(named: &NamedFixture) -> Option<String> {
    match embedded::FIXTURES
        .iter()
        .find(|(name, _)| *name == named.name && named.source == format!("fixtures/{name}.json"))
    {
        Some((_, text)) => Some(text.to_string()),
        None => std::fs::read_to_string(&named.source).ok(),
    }
}

/// Parses and validates every fixture, going on after a bad one: the good
/// fixtures, and every problem with its file, line, column and field.
pub fn check_all(
    texts: Vec<FixtureText>,
    descriptors: &Descriptors,
) -> (Vec<NamedFixture>, Vec<FixtureError>) {
    check_all_as(texts, |named| validate(named, descriptors))
}

/// Parses every text as format `F` and checks it with `validate`, going on
/// after a bad one: the good fixtures, and every problem located in its file.
pub fn check_all_as<F: serde::de::DeserializeOwned>(
    texts: Vec<FixtureText>,
    validate: impl Fn(&NamedFixture<F>) -> Result<(), FixtureError>,
) -> (Vec<NamedFixture<F>>, Vec<FixtureError>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for f in texts {
        let named = parse_as(&f.source, &f.text).map(|fixture| NamedFixture {
            name: f.name,
            source: f.source,
            fixture,
        });
        match named.and_then(|n| validate(&n).map(|()| n)) {
            Ok(n) => good.push(n),
            Err(e) => bad.push(e.located_in(&f.text)),
        }
    }
    (good, bad)
}

impl FixtureError {
    /// A validation error with the line and column of its field in `text`
    /// (the fixture's contents); other errors unchanged.
    pub fn located_in(self, text: &str) -> FixtureError {
        match self {
            FixtureError::Invalid {
                file,
                at,
                field,
                message,
            } if at.is_empty() => FixtureError::Invalid {
                at: crate::locate::locate(text, &field)
                    .map_or(String::new(), |(line, column)| format!(":{line}:{column}")),
                file,
                field,
                message,
            },
            other => other,
        }
    }
}

/// Collects `*.json` files under `dir` recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FixtureError> {
    let io = |source| FixtureError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// The method at `path`, or why not, with the closest known path as a hint.
pub fn find_method(
    descriptors: &Descriptors,
    path: &str,
) -> Result<prost_reflect::MethodDescriptor, String> {
    descriptors.method(path).ok_or_else(|| {
        let known = descriptors.method_paths();
        let hint = crate::suggest::closest(path, known.iter().map(String::as_str))
            .map_or(String::new(), |m| format!("; did you mean {m}?"));
        format!("no method {path} in the descriptors{hint}")
    })
}

/// Checks that header fields can be sent as they are: lower-case names and
/// visible ASCII values. The error is the field under `field` (`field` or
/// `field.<name>`) and what is wrong.
pub fn check_header_fields(
    fields: &std::collections::BTreeMap<String, String>,
    field: &str,
) -> Result<(), (String, String)> {
    for (name, value) in fields {
        if http::HeaderValue::from_str(value).is_err() {
            return Err((
                format!("{field}.{name}"),
                "header values must be visible ASCII: percent-encode other text".into(),
            ));
        }
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.to_lowercase() != *name {
            return Err((
                field.to_string(),
                format!("`{name}` is not a lower-case header name"),
            ));
        }
    }
    Ok(())
}

/// Checks what serde cannot: methods exist, messages fit their types, status
/// names are known, and steps come in an order the driver can follow.
pub fn validate(named: &NamedFixture, descriptors: &Descriptors) -> Result<(), FixtureError> {
    let invalid = |field: String, message: String| FixtureError::Invalid {
        file: named.source.clone(),
        at: String::new(),
        field,
        message,
    };
    let f = &named.fixture;
    if f.calls.is_empty() == f.raw.is_empty() {
        return Err(invalid(
            "calls".into(),
            "a conversation needs at least one call, or a raw script instead".into(),
        ));
    }
    if !f.raw.is_empty() && (f.wire || f.concurrent) {
        return Err(invalid(
            "raw".into(),
            "a raw script shows its wire facts itself and runs in order: drop `wire` and `concurrent`".into(),
        ));
    }
    crate::drive::raw::validate(&f.raw, descriptors).map_err(|(at, e)| invalid(at, e))?;
    if f.rule.trim().is_empty() {
        return Err(invalid(
            "rule".into(),
            "cite the spec rule the fixture checks".into(),
        ));
    }
    for (c, call) in f.calls.iter().enumerate() {
        let at = |rest: &str| format!("calls[{c}]{rest}");
        let method =
            find_method(descriptors, &call.method).map_err(|e| invalid(at(".method"), e))?;
        check_header_fields(&call.metadata, ".metadata")
            .map_err(|(field, e)| invalid(at(&field), e))?;
        // Where the script stands, so impossible orders are caught here.
        let (mut closed, mut ended, mut cancelled) = (false, false, false);
        for (s, step) in call.steps.iter().enumerate() {
            let at = |rest: &str| format!("calls[{c}].steps[{s}]{rest}");
            let sends = matches!(step, Step::Send(_) | Step::SendMany(_) | Step::HalfClose);
            let reads = matches!(
                step,
                Step::ReceiveHeaders
                    | Step::Receive(_)
                    | Step::ReceiveAll
                    | Step::ExpectHeaders(_)
                    | Step::ExpectTrailers(_)
                    | Step::ExpectStatus(_)
            );
            if cancelled && (sends || reads || matches!(step, Step::Cancel)) {
                return Err(invalid(
                    at(""),
                    "only pause and observe may follow cancel".into(),
                ));
            }
            if closed && sends {
                return Err(invalid(
                    at(""),
                    "the request stream is already half-closed".into(),
                ));
            }
            if ended && matches!(step, Step::Receive(_) | Step::ReceiveAll) {
                return Err(invalid(
                    at(""),
                    "the response stream was already read to its end".into(),
                ));
            }
            match step {
                Step::Send(send) => {
                    message::from_json(&method.input(), &send.message)
                        .map_err(|e| invalid(at(".send.message"), e))?;
                    if let Some(size) = send.size {
                        message::sized(&method.input(), &send.message, size)
                            .map_err(|e| invalid(at(".send.size"), e))?;
                    }
                }
                Step::SendMany(many) => {
                    let sample = message::expand_template(&many.template, 1);
                    message::from_json(&method.input(), &sample)
                        .map_err(|e| invalid(at(".send_many.template"), e))?;
                }
                Step::Receive(receive) => {
                    if let Some(expected) = &receive.message {
                        message::from_json(&method.output(), expected)
                            .map_err(|e| invalid(at(".receive.message"), e))?;
                    }
                }
                Step::ExpectStatus(status) if !STATUS_NAMES.contains(&status.code.as_str()) => {
                    return Err(invalid(
                        at(".expect_status.code"),
                        format!("unknown status code `{}`", status.code),
                    ));
                }
                Step::ExpectStatus(_)
                | Step::ReceiveHeaders
                | Step::ReceiveAll
                | Step::HalfClose
                | Step::Cancel
                | Step::Pause(_)
                | Step::ExpectHeaders(_)
                | Step::ExpectTrailers(_)
                | Step::Observe => {}
            }
            closed |= matches!(step, Step::HalfClose);
            ended |= matches!(
                step,
                Step::ReceiveAll | Step::ExpectTrailers(_) | Step::ExpectStatus(_)
            );
            cancelled |= matches!(step, Step::Cancel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_line_and_field() {
        let text = "{\n  \"description\": \"x\",\n  \"rule\": \"r\",\n  \"level\": \"MUST\",\n  \"calls\": [{\"method\": \"/Greeter/SayHello\", \"steps\": [\n    {\"sned\": {}}\n  ]}]\n}";
        let err = parse("f.json", text).unwrap_err().to_string();
        assert!(err.starts_with("f.json:6:"), "{err}");
        assert!(err.contains("calls[0].steps[0]"), "{err}");
        assert!(err.contains("sned"), "{err}");
    }

    #[test]
    fn numbers_past_their_limits_name_file_line_and_field() {
        let call = |step: &str| {
            format!(
                "{{\"description\": \"x\", \"rule\": \"r\", \"level\": \"MUST\",\n\"calls\": [{{\"method\": \"/Greeter/ClientStream\",\n\"steps\": [{step}]}}]}}"
            )
        };
        for (step, field) in [
            (
                r#"{"send_many": {"count": 4294967295, "template": {}}}"#,
                "calls[0].steps[0].send_many.count",
            ),
            (
                r#"{"pause": {"ms": 18446744073709551615}}"#,
                "calls[0].steps[0].pause.ms",
            ),
        ] {
            let err = parse("f.json", &call(step)).unwrap_err().to_string();
            assert!(err.starts_with("f.json:3:"), "{err}");
            assert!(err.contains(field) && err.contains("allowed"), "{err}");
        }
        let deadline = r#"{"description": "x", "rule": "r", "level": "MUST", "calls": [
            {"method": "/Greeter/SayHello", "deadline_ms": 100000000, "steps": []}]}"#;
        let err = parse("d.json", deadline).unwrap_err().to_string();
        assert!(
            err.starts_with("d.json:2:") && err.contains("calls[0].deadline_ms"),
            "{err}"
        );
        let raw = |step: &str| {
            format!(
                "{{\"description\": \"x\", \"rule\": \"r\", \"level\": \"MUST\",\n\"raw\": [{step}]}}"
            )
        };
        for (step, field) in [
            (
                r#"{"open": {"stream": 1, "method": "/Greeter/SayHello", "filler_bytes": 18446744073709551615}}"#,
                "raw[0].open.filler_bytes",
            ),
            (
                r#"{"reset_many": {"first_stream": 1, "count": 3000000, "method": "/Greeter/SayHello"}}"#,
                "raw[0].reset_many.count",
            ),
            (
                r#"{"message": {"stream": 1, "message": {}, "frame_bytes": 0}}"#,
                "raw[0].message.frame_bytes",
            ),
            (
                r#"{"await": {"stream": 4294967295}}"#,
                "raw[0].await.stream",
            ),
        ] {
            let err = parse("r.json", &raw(step)).unwrap_err().to_string();
            assert!(err.starts_with("r.json:2:") && err.contains(field), "{err}");
        }
    }

    #[test]
    fn validation_names_the_bad_message_field() {
        let text = r#"{"description": "x", "rule": "r", "level": "SHOULD", "calls": [
            {"method": "/Greeter/SayHello", "steps": [{"send": {"message": {"nmae": "a"}}}]}]}"#;
        let named = NamedFixture {
            name: "x".into(),
            source: "x.json".into(),
            fixture: parse("x.json", text).unwrap(),
        };
        let err = validate(&named, &Descriptors::contract().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("calls[0].steps[0].send.message"), "{err}");
        assert!(err.contains("nmae"), "{err}");
    }

    #[test]
    fn unknown_method_and_bad_order_are_rejected() {
        let d = Descriptors::contract().unwrap();
        let mk = |calls: &str| NamedFixture {
            name: "x".into(),
            source: "x.json".into(),
            fixture: parse(
                "x.json",
                &format!(
                    r#"{{"description": "x", "rule": "r", "level": "MUST", "calls": {calls}}}"#
                ),
            )
            .unwrap(),
        };
        let err = validate(&mk(r#"[{"method": "/Greeter/Nope", "steps": []}]"#), &d)
            .unwrap_err()
            .to_string();
        assert!(err.contains("calls[0].method"), "{err}");
        let err = validate(
            &mk(r#"[{"method": "/Greeter/ClientStream", "steps": ["cancel", "half_close"]}]"#),
            &d,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("calls[0].steps[1]"), "{err}");
    }
}
