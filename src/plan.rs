//! Which fixtures run, in which order: `--filter` and `--skip` patterns on
//! names, sorted by name so reports and snapshots line up run after run.

use crate::{
    contract,
    fixture::NamedFixture,
    model::{Fixture, RawStep, Step},
};
use futures::{Stream, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

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

/// What a fixture needs of the target, derived from its steps plus its
/// `needs` field: `observer` for an `observe` step, `method:<path>` for each
/// contract method it calls, `control:<header>` for each control header it
/// sends, `encoding:<name>` for each contract encoding it sends in, and
/// `reference` for reference settings.
pub fn needs(fixture: &Fixture) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = fixture.needs.iter().cloned().collect();
    let mut method = |m: &str| {
        if contract::METHODS.contains(&m) {
            out.insert(format!("method:{m}"));
        }
    };
    for call in &fixture.calls {
        method(&call.method);
    }
    for step in &fixture.raw {
        match step {
            RawStep::Open(open) if open.path.is_none() => method(&open.method),
            RawStep::ResetMany(many) => method(&many.method),
            RawStep::OpenFramed(open) => method(&open.method),
            RawStep::OpenMany(many) => method(&many.method),
            RawStep::PaddedMessage(_)
            | RawStep::MessageBytes(_)
            | RawStep::Priority(_)
            | RawStep::UnknownFrame(_)
            | RawStep::Settings(_)
            | RawStep::WindowUpdate(_)
            | RawStep::Open(_)
            | RawStep::Message(_)
            | RawStep::Messages(_)
            | RawStep::EndStream(_)
            | RawStep::Reset(_)
            | RawStep::Ping(_)
            | RawStep::PingFlood(_)
            | RawStep::Pause(_)
            | RawStep::Await(_)
            | RawStep::AwaitGoaway(_)
            | RawStep::ServerSettings(_) => {}
        }
    }
    let mut metadata: Vec<&str> = Vec::new();
    let mut encodings: Vec<&str> = Vec::new();
    for call in &fixture.calls {
        metadata.extend(call.metadata.keys().map(String::as_str));
        encodings.extend(call.encoding.as_deref());
        if call.steps.iter().any(|s| matches!(s, Step::Observe)) {
            out.insert("observer".into());
        }
    }
    for step in &fixture.raw {
        let sent = match step {
            RawStep::Open(open) => {
                encodings.extend(open.encoding.as_deref());
                &open.metadata
            }
            RawStep::OpenFramed(open) => &open.metadata,
            RawStep::OpenMany(many) => &many.metadata,
            RawStep::Message(_)
            | RawStep::Messages(_)
            | RawStep::EndStream(_)
            | RawStep::Reset(_)
            | RawStep::Ping(_)
            | RawStep::PingFlood(_)
            | RawStep::Pause(_)
            | RawStep::Await(_)
            | RawStep::AwaitGoaway(_)
            | RawStep::ResetMany(_)
            | RawStep::ServerSettings(_)
            | RawStep::PaddedMessage(_)
            | RawStep::MessageBytes(_)
            | RawStep::Priority(_)
            | RawStep::UnknownFrame(_)
            | RawStep::Settings(_)
            | RawStep::WindowUpdate(_) => continue,
        };
        metadata.extend(sent.iter().map(|(k, _)| k.as_str()));
    }
    for name in metadata {
        let name = name.to_ascii_lowercase();
        if contract::is_control_header(&name) && name != contract::CALL_ID {
            out.insert(format!("control:{name}"));
        }
    }
    for encoding in encodings {
        if contract::ENCODINGS.contains(&encoding) {
            out.insert(format!("encoding:{encoding}"));
        }
    }
    if fixture.reference.is_some() {
        out.insert("reference".into());
    }
    out
}

/// Parses a known-flaky file: as a known-failing file, each name with its
/// reason, the `#` comment paragraph right above it (blank-line separated).
pub fn parse_known_flaky(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut paragraph: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            paragraph.clear();
        } else if let Some(comment) = line.strip_prefix('#') {
            paragraph.push(comment.trim());
        } else {
            let name = line.split('#').next().unwrap_or("").trim();
            out.insert(name.to_string(), paragraph.join(" "));
        }
    }
    out
}

/// Whether the fixture runs with no other fixture in flight: it says so,
/// or it opens or resets streams by the hundred (see [`Fixture::alone`]).
pub fn runs_alone(fixture: &Fixture) -> bool {
    fixture.alone
        || fixture
            .raw
            .iter()
            .any(|step| matches!(step, RawStep::OpenMany(_) | RawStep::ResetMany(_)))
}

/// The order a run starts its items in, and how many at once: those that
/// run `alone` first, one at a time, then the others `jobs` at a time, the
/// longest `wait_ms` first (a long one started last would hold the run's
/// end; reports are sorted by name, so only the end moves). The stream
/// yields each outcome of `run` as it ends.
pub fn schedule<T, R, Fut>(
    items: Vec<T>,
    jobs: usize,
    alone: impl Fn(&T) -> bool,
    wait_ms: impl Fn(&T) -> u64,
    run: impl Fn(T) -> Fut + Clone,
) -> impl Stream<Item = R>
where
    Fut: Future<Output = R>,
{
    let (by_themselves, mut together): (Vec<T>, Vec<T>) = items.into_iter().partition(alone);
    together.sort_by_key(|item| std::cmp::Reverse(wait_ms(item)));
    let one_at_a_time = futures::stream::iter(by_themselves).then(run.clone());
    let the_rest = futures::stream::iter(together)
        .map(run)
        .buffer_unordered(jobs.max(1));
    one_at_a_time.chain(the_rest)
}

/// A rough guess of how long a fixture waits, in milliseconds before
/// `--time-scale`: its pauses, the pauses its control headers ask of the
/// server, its deadlines and its raw waits. Runs start the longest first so
/// that a long fixture does not start last and hold the run's end.
pub fn expected_wait_ms(fixture: &Fixture) -> u64 {
    let header = |call: &crate::model::Call, name: &str| -> u64 {
        call.metadata
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut total: u64 = 0;
    for call in &fixture.calls {
        let pauses: u64 = call
            .steps
            .iter()
            .map(|s| match s {
                Step::Pause(p) => p.ms,
                _ => 0,
            })
            .sum();
        let responses = header(call, contract::RESPONSE_COUNT).clamp(1, 1_000);
        total = total
            .saturating_add(pauses)
            .saturating_add(header(call, contract::DELAY_MS))
            .saturating_add(header(call, contract::RESPONSE_INTERVAL_MS).saturating_mul(responses))
            .saturating_add(call.deadline_ms.unwrap_or(0).min(10_000));
    }
    for step in &fixture.raw {
        let wait = match step {
            RawStep::Pause(p) => p.ms,
            RawStep::PingFlood(f) => f.interval_ms.saturating_mul(u64::from(f.max)),
            RawStep::AwaitGoaway(a) => a.within_ms,
            RawStep::Await(a) => a.linger_ms,
            _ => 0,
        };
        total = total.saturating_add(wait);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_flaky_entries_keep_the_paragraph_above_as_reason() {
        let text = "# header\n\n# a race\n# in the stack\na/b\nc/d\n\nx/y\n";
        let flaky = parse_known_flaky(text);
        assert_eq!(flaky["a/b"], "a race in the stack");
        assert_eq!(flaky["c/d"], "a race in the stack");
        assert_eq!(flaky["x/y"], "");
    }

    #[test]
    fn substring_and_glob() {
        let p = NamePattern::parse("cancel").unwrap();
        assert!(p.matches("greeter/client-stream/cancel-mid-stream"));
        let g = NamePattern::parse("greeter/*/cancel-*").unwrap();
        assert!(g.matches("greeter/client-stream/cancel-mid-stream"));
        assert!(!g.matches("chat/bidi/cancel-mid-stream"));
    }

    /// Items `(name, alone, wait)`; each records how many were in flight
    /// while it ran.
    #[tokio::test]
    async fn alone_items_run_first_with_nothing_else_in_flight() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let items = vec![
            ("short", false, 1),
            ("many-streams", true, 0),
            ("long", false, 9),
            ("also-alone", true, 5),
            ("middle", false, 4),
        ];
        let in_flight = Arc::new(AtomicUsize::new(0));
        let run = {
            let in_flight = in_flight.clone();
            move |(name, _, _): (&'static str, bool, u64)| {
                let in_flight = in_flight.clone();
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    // Long enough for the others the limit lets in to start.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    let most = now.max(in_flight.load(Ordering::SeqCst));
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    (name, most)
                }
            }
        };
        let ran: Vec<(&str, usize)> = schedule(items, 3, |i| i.1, |i| i.2, run).collect().await;
        assert_eq!(&ran[..2], &[("many-streams", 1), ("also-alone", 1)]);
        let mut rest: Vec<&str> = ran[2..].iter().map(|r| r.0).collect();
        // The other three started together.
        assert_eq!(ran[2..].iter().map(|r| r.1).max(), Some(3), "{ran:?}");
        rest.sort();
        assert_eq!(rest, ["long", "middle", "short"]);
    }

    #[test]
    fn known_failing_ignores_comments() {
        let names = parse_known_failing("# header\na/b  # why\n\n c/d \n");
        assert_eq!(names, vec!["a/b".to_string(), "c/d".to_string()]);
    }
}
