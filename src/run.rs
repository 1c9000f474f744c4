//! The conformance run: every selected fixture driven against the target,
//! its transcript compared with its snapshot, the outcome kept as data for
//! the reports. A fixture's outcome is decided by the snapshot alone; its
//! checks (`✓`/`✗` lines) are part of the transcript, so an accepted
//! divergence can include a failed check.

use crate::{
    descriptors::Descriptors,
    drive::{self, Connector, DriveOptions},
    fixture::NamedFixture,
    model::Level,
    snapshot::{self, Origin, Store},
    transcript,
};
use futures::StreamExt;
use serde::Serialize;
use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

/// Everything a run needs.
pub struct RunConfig {
    /// Opens connections to the target.
    pub connector: Connector,
    /// Message types.
    pub descriptors: Descriptors,
    /// The selected fixtures, in report order.
    pub fixtures: Vec<NamedFixture>,
    /// Headers and time scale.
    pub drive: DriveOptions,
    /// Golden and accepted snapshots.
    pub store: Store,
    /// Fixtures expected to fail on this target.
    pub known_failing: BTreeSet<String>,
    /// Conversations in flight at once (each on its own connection).
    pub jobs: usize,
}

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
}

impl Verdict {
    /// Whether this outcome makes the run fail (exit code 1).
    pub fn fails_run(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Stale | Verdict::Error)
    }
}

/// One fixture's outcome, with what a report shows of it.
#[derive(Clone, Debug, Serialize)]
pub struct FixtureResult {
    /// The fixture's name.
    pub name: String,
    /// The fixture's file.
    pub source: String,
    /// What it checks.
    pub description: String,
    /// The rule cited.
    pub rule: String,
    /// MUST, SHOULD or MAY.
    pub level: Level,
    /// The outcome.
    pub verdict: Verdict,
    /// The transcript produced, when the conversation was held.
    pub transcript: Option<String>,
    /// Where the expected transcript came from: `golden`, a path, or none.
    pub expected_from: Option<String>,
    /// Unified diff expected → actual, on a mismatch.
    pub diff: Option<String>,
    /// Checks in the transcript that did not hold.
    pub failed_checks: Vec<String>,
    /// The `.snap.new` written, if any.
    pub new_snapshot: Option<PathBuf>,
    /// The harness error, for [`Verdict::Error`].
    pub error: Option<String>,
    /// Wall time of the conversation in milliseconds (reports only, never in
    /// a transcript).
    pub duration_ms: u64,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The target's `host:port`, or `reference` for the embedded server.
    pub target: String,
    /// One entry per fixture, sorted by name.
    pub results: Vec<FixtureResult>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

impl RunReport {
    /// Whether every fixture passed (known failures allowed).
    pub fn passed(&self) -> bool {
        !self.results.iter().any(|r| r.verdict.fails_run())
    }

    /// How many results have `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.results.iter().filter(|r| r.verdict == verdict).count()
    }
}

/// Runs every fixture of `config`, `jobs` at a time; `progress` sees each
/// result as it completes (with the number done and the total).
pub async fn run(
    config: RunConfig,
    target_label: &str,
    progress: impl Fn(&FixtureResult, usize, usize),
) -> RunReport {
    let started = Instant::now();
    let total = config.fixtures.len();
    let shared = Arc::new(config);
    let jobs = shared.jobs.max(1);
    let fixtures = shared.fixtures.clone();
    let mut stream = futures::stream::iter(fixtures.into_iter().map(|f| {
        let shared = shared.clone();
        async move { run_one(&shared, &f).await }
    }))
    .buffer_unordered(jobs);
    let mut results = Vec::with_capacity(total);
    while let Some(result) = stream.next().await {
        results.push(result);
        progress(results.last().expect("just pushed"), results.len(), total);
    }
    results.sort_by(|a, b| a.name.cmp(&b.name));
    RunReport {
        target: target_label.to_string(),
        results,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// Drives one fixture and judges it.
async fn run_one(config: &RunConfig, named: &NamedFixture) -> FixtureResult {
    let started = Instant::now();
    let f = &named.fixture;
    let mut result = FixtureResult {
        name: named.name.clone(),
        source: named.source.clone(),
        description: f.description.clone(),
        rule: f.rule.clone(),
        level: f.level,
        verdict: Verdict::Error,
        transcript: None,
        expected_from: None,
        diff: None,
        failed_checks: Vec::new(),
        new_snapshot: None,
        error: None,
        duration_ms: 0,
    };
    // The driver bounds every wait by the fixture's timeout; this outer bound
    // only guards against a bug in that (a run must never hang).
    let outer = Duration::from_millis(
        config
            .drive
            .scale(f.timeout_ms.unwrap_or(crate::model::DEFAULT_TIMEOUT_MS))
            * 2
            + 5_000,
    );
    let events = match tokio::time::timeout(
        outer,
        drive::run_conversation(&config.connector, f, &config.descriptors, &config.drive),
    )
    .await
    {
        Ok(Ok(events)) => events,
        Ok(Err(e)) => {
            result.error = Some(e.to_string());
            result.duration_ms = started.elapsed().as_millis() as u64;
            return result;
        }
        Err(_) => {
            result.error = Some(format!(
                "the conversation did not end within {outer:?} (driver bug)"
            ));
            return result;
        }
    };
    result.duration_ms = started.elapsed().as_millis() as u64;
    let actual = snapshot::normalise(&transcript::render(&events));
    result.failed_checks = transcript::failed_checks(&events);
    let known = config.known_failing.contains(&named.name);
    let expected = match config.store.expected(&named.name) {
        Ok(e) => e,
        Err(e) => {
            result.error = Some(e.to_string());
            result.transcript = Some(actual);
            return result;
        }
    };
    let matched = match &expected {
        Some((text, origin)) => {
            result.expected_from = Some(match origin {
                Origin::Golden => "golden".to_string(),
                Origin::Accepted(p) => p.display().to_string(),
            });
            if *text != actual {
                // Both end in a newline so the diff has no "no newline" noise.
                let (old, new) = (format!("{text}\n"), format!("{actual}\n"));
                let diff = similar::TextDiff::from_lines(old.as_str(), new.as_str())
                    .unified_diff()
                    .context_radius(3)
                    .header("expected", "actual")
                    .to_string();
                result.diff = Some(diff);
            }
            *text == actual
        }
        None => false,
    };
    let snap_text = snapshot::render(&named.name, &named.source, &f.description, &actual);
    let written = if matched {
        config.store.clear_new(&named.name).map(|_| None)
    } else {
        config.store.write_new(&named.name, &snap_text)
    };
    match written {
        Ok(path) => result.new_snapshot = path,
        Err(e) => result.error = Some(e.to_string()),
    }
    result.transcript = Some(actual);
    result.verdict = match (matched, known) {
        _ if result.error.is_some() => Verdict::Error,
        (true, false) => Verdict::Pass,
        (true, true) => Verdict::Stale,
        (false, false) => Verdict::Fail,
        (false, true) => Verdict::KnownFailure,
    };
    result
}
