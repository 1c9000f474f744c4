//! The conformance run: every selected fixture driven against the target,
//! its transcript compared with its snapshot, the outcome kept as data for
//! the reports. A fixture's outcome is decided by the snapshot alone; its
//! checks (`✓`/`✗` lines) are part of the transcript, so an accepted
//! divergence can include a failed check.

use crate::{
    descriptors::Descriptors,
    drive::{self, Connector, DriveOptions},
    fixture::NamedFixture,
    model::{Level, ReferenceNeeds},
    reference::{ReferenceConfig, ReferenceServer},
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
    /// Not run: the fixture needs reference settings (A9 limits, a short
    /// ping policy) that an external target is not known to have.
    Skipped,
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
    /// The frame log of the conversation for a person (`--trace`).
    pub trace: Option<String>,
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
        trace: None,
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
    // A fixture with reference needs gets a reference of its own, started
    // with them, or is skipped against an external target.
    let own = match (&f.reference, config.drive.spawn_reference) {
        (None, _) => None,
        (Some(_), false) => {
            result.verdict = Verdict::Skipped;
            result.error = Some(
                "needs reference settings the target is not known to have (see `reference`)".into(),
            );
            return result;
        }
        (Some(needs), true) => match start_reference(needs, &config.drive).await {
            Ok(pair) => Some(pair),
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        },
    };
    let connector = own.as_ref().map_or(&config.connector, |(_, c)| c);
    let events = match tokio::time::timeout(
        outer,
        drive::run_traced(connector, f, &config.descriptors, &config.drive),
    )
    .await
    {
        Ok(Ok((events, frames))) => {
            if config.drive.trace {
                let hidden: Vec<String> = config
                    .drive
                    .extra_headers
                    .iter()
                    .map(|(n, _)| n.as_str().to_string())
                    .collect();
                result.trace = Some(crate::wire::log::render_trace(&frames, &hidden));
            }
            events
        }
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
    drop(own);
    result.verdict = match (matched, known) {
        _ if result.error.is_some() => Verdict::Error,
        (true, false) => Verdict::Pass,
        (true, true) => Verdict::Stale,
        (false, false) => Verdict::Fail,
        (false, true) => Verdict::KnownFailure,
    };
    result
}

/// A reference server started with a fixture's needs, and a connector to it.
async fn start_reference(
    needs: &ReferenceNeeds,
    drive: &drive::DriveOptions,
) -> Result<(ReferenceServer, Connector), String> {
    let ms = |v: u64| Duration::from_millis(drive.scale(v));
    let mut config = ReferenceConfig {
        max_connection_age: needs.max_connection_age_ms.map(ms),
        max_connection_age_grace: needs.max_connection_age_grace_ms.map(ms),
        max_connection_idle: needs.max_connection_idle_ms.map(ms),
        max_concurrent_streams: needs.max_concurrent_streams,
        ..ReferenceConfig::default()
    };
    if let Some(v) = needs.ping_min_interval_ms {
        config.ping_policy.min_interval = ms(v);
    }
    if let Some(v) = needs.permit_without_calls {
        config.ping_policy.permit_without_calls = v;
    }
    let server = ReferenceServer::start(config)
        .await
        .map_err(|e| format!("reference with the fixture's settings: {e}"))?;
    let connector = Connector::new(drive::Target {
        address: server.local_addr().to_string(),
        tls: None,
    })
    .map_err(|e| e.to_string())?;
    Ok((server, connector))
}
