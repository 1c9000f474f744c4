//! The conformance run: every selected fixture driven against the target,
//! its transcript handed to the judge, the outcome kept as data for the
//! reporters, which see the run as [`RunEvent`]s. A fixture's outcome is
//! decided by the snapshot alone; its checks (`✓`/`✗` lines) are part of the
//! transcript, so an accepted divergence can include a failed check.

pub use crate::judge::Verdict;
use crate::{
    capabilities::Capabilities,
    descriptors::Descriptors,
    drive::{self, Connector, DriveOptions},
    fixture::NamedFixture,
    judge::{self, Lens, MAX_REPORTED_BYTES},
    model::{Level, ReferenceNeeds},
    plan,
    reference::{ReferenceConfig, ReferenceServer},
    snapshot::{self, Origin, Store},
    transcript,
};
use futures::StreamExt;
use serde::Serialize;
use std::{
    collections::{BTreeMap, BTreeSet},
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
    /// Fixtures whose transcript varies on this target, with why: run and
    /// shown, never judged.
    pub known_flaky: BTreeMap<String, String>,
    /// Conversations in flight at once (each on its own connection).
    pub jobs: usize,
    /// Runs of each fixture; transcripts that differ make it unstable.
    pub repeat: u32,
    /// What the target offers.
    pub capabilities: Capabilities,
    /// Stop starting fixtures after the first that fails the run; the rest
    /// are reported as skipped ("not run").
    pub fail_fast: bool,
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
    /// Why it was not judged ([`Verdict::NotApplicable`], [`Verdict::Skipped`],
    /// [`Verdict::Unstable`]).
    pub reason: Option<String>,
    /// Each distinct transcript of an unstable fixture, with how many of
    /// the runs gave it.
    pub variants: Vec<(String, usize)>,
    /// Wall time of the conversation in milliseconds (reports only, never in
    /// a transcript).
    pub duration_ms: u64,
    /// The frame log of the conversation for a person (`--trace`).
    pub trace: Option<String>,
}

impl FixtureResult {
    /// The result of `named` before it is run: an error with nothing seen.
    pub fn new(named: &NamedFixture) -> FixtureResult {
        let f = &named.fixture;
        FixtureResult::for_fixture(&named.name, &named.source, &f.description, &f.rule, f.level)
    }

    /// The result of a fixture (of any format) before it is run.
    pub fn for_fixture(
        name: &str,
        source: &str,
        description: &str,
        rule: &str,
        level: Level,
    ) -> FixtureResult {
        FixtureResult {
            name: name.to_string(),
            source: source.to_string(),
            description: description.to_string(),
            rule: rule.to_string(),
            level,
            verdict: Verdict::Error,
            transcript: None,
            expected_from: None,
            diff: None,
            failed_checks: Vec::new(),
            new_snapshot: None,
            error: None,
            reason: None,
            variants: Vec::new(),
            duration_ms: 0,
            trace: None,
        }
    }
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The target's `host:port`, or `reference` for the embedded server.
    pub target: String,
    /// How the target was reached.
    pub transport: String,
    /// What the target offers (the capability probes, or `--assume`).
    pub capabilities: Capabilities,
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

    /// The report of a run that could not start (the target unreachable):
    /// every selected fixture an error with `why`, so report files still
    /// show each one.
    pub fn not_run(fixtures: &[NamedFixture], target: &str, why: &str) -> RunReport {
        let results = fixtures
            .iter()
            .map(|f| {
                let mut result = FixtureResult::new(f);
                result.error = Some(why.to_string());
                result
            })
            .collect();
        RunReport {
            target: target.to_string(),
            transport: "none".to_string(),
            capabilities: Capabilities::default(),
            results,
            duration_ms: 0,
        }
    }

    /// How many results have `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.results.iter().filter(|r| r.verdict == verdict).count()
    }
}

/// What reporters see of a run, in order.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The run starts with this many fixtures.
    Started {
        /// Fixtures selected.
        total: usize,
        /// The target's profile.
        capabilities: &'a Capabilities,
    },
    /// One fixture finished.
    FixtureFinished {
        /// Its outcome.
        result: &'a FixtureResult,
        /// Fixtures finished so far, this one included.
        done: usize,
        /// Fixtures selected.
        total: usize,
    },
}

/// Runs every fixture of `config`, `jobs` at a time; `events` sees the run
/// start and each result as it completes.
pub async fn run(
    config: RunConfig,
    target_label: &str,
    transport: &str,
    mut events: impl FnMut(RunEvent<'_>),
) -> RunReport {
    let started = Instant::now();
    let total = config.fixtures.len();
    events(RunEvent::Started {
        total,
        capabilities: &config.capabilities,
    });
    let shared = Arc::new(config);
    let mut stream = Box::pin(plan::schedule(
        shared.fixtures.clone(),
        shared.jobs,
        |f| plan::runs_alone(&f.fixture),
        |f| plan::expected_wait_ms(&f.fixture),
        {
            let shared = shared.clone();
            move |f| {
                let shared = shared.clone();
                async move { run_one(&shared, &f).await }
            }
        },
    ));
    let mut results = Vec::with_capacity(total);
    while let Some(result) = stream.next().await {
        let stop = shared.fail_fast && result.verdict.fails_run();
        results.push(result);
        events(RunEvent::FixtureFinished {
            result: results.last().expect("just pushed"),
            done: results.len(),
            total,
        });
        if stop {
            break;
        }
    }
    // Dropping the stream cancels the conversations in flight: they, and
    // those never started, were not run.
    drop(stream);
    let finished: BTreeSet<String> = results.iter().map(|r| r.name.clone()).collect();
    for f in shared
        .fixtures
        .iter()
        .filter(|f| !finished.contains(&f.name))
    {
        let mut result = FixtureResult::new(f);
        result.verdict = Verdict::Skipped;
        result.reason = Some("not run: --fail-fast stopped the run after a failure".into());
        results.push(result);
    }
    results.sort_by(|a, b| a.name.cmp(&b.name));
    RunReport {
        target: target_label.to_string(),
        transport: transport.to_string(),
        capabilities: shared.capabilities.clone(),
        results,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// What the target lacks of a fixture's needs, and what that means for it.
enum Applicability {
    /// Run and judge it, with the Observer's lines left out or not.
    Run(Lens),
    /// Do not run it, with this verdict and reason.
    Not(Verdict, String),
}

/// Decides from the fixture's needs and the target's profile.
fn applicability(config: &RunConfig, named: &NamedFixture) -> Applicability {
    let caps = &config.capabilities;
    let missing: Vec<String> = plan::needs(&named.fixture)
        .into_iter()
        .filter(|n| caps.has(n) == Some(false))
        .collect();
    if missing.iter().any(|n| n == "reference") {
        return Applicability::Not(
            Verdict::Skipped,
            "needs reference settings the target is not known to have (see `reference`)".into(),
        );
    }
    let lacking: Vec<&str> = missing
        .iter()
        .map(String::as_str)
        .filter(|n| *n != "observer")
        .collect();
    if !lacking.is_empty() {
        return Applicability::Not(
            Verdict::NotApplicable,
            format!("not applicable: the target lacks {}", lacking.join(", ")),
        );
    }
    Applicability::Run(Lens {
        without_server_view: !missing.is_empty(),
    })
}

/// Drives one fixture (`repeat` times) and judges it.
async fn run_one(config: &RunConfig, named: &NamedFixture) -> FixtureResult {
    let started = Instant::now();
    let mut result = FixtureResult::new(named);
    let lens = match applicability(config, named) {
        Applicability::Run(lens) => lens,
        Applicability::Not(verdict, reason) => {
            result.verdict = verdict;
            result.reason = Some(reason);
            return result;
        }
    };
    let mut transcripts = Vec::new();
    for _ in 0..config.repeat.max(1) {
        match hold(config, named, &mut result).await {
            Ok(text) => transcripts.push(lens.apply(&text)),
            Err(e) => {
                result.error = Some(e);
                result.duration_ms = started.elapsed().as_millis() as u64;
                return result;
            }
        }
    }
    let variants = judge::variants(&transcripts);
    let actual = variants[0].0.clone();
    result.transcript = Some(judge::for_report(actual.clone(), MAX_REPORTED_BYTES));
    if variants.len() > 1 {
        result.verdict = Verdict::Unstable;
        result.reason = Some(format!(
            "{} different transcripts in {} runs",
            variants.len(),
            transcripts.len()
        ));
        result.variants = variants
            .into_iter()
            .map(|(text, n)| (judge::for_report(text, MAX_REPORTED_BYTES), n))
            .collect();
    } else {
        judge_one(config, named, lens, actual, &mut result);
    }
    // Judging included: a result's time is what the fixture cost the run.
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

/// Holds the conversation once; its transcript, or the harness error.
async fn hold(
    config: &RunConfig,
    named: &NamedFixture,
    result: &mut FixtureResult,
) -> Result<String, String> {
    let f = &named.fixture;
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
    // with them (against an external target it was skipped above).
    let own = match &f.reference {
        Some(needs) => Some(start_reference(needs, &config.drive).await?),
        None => None,
    };
    let connector = own.as_ref().map_or(&config.connector, |(_, c)| c);
    let driven = tokio::time::timeout(
        outer,
        drive::run_traced(connector, f, &config.descriptors, &config.drive),
    )
    .await;
    let (events, frames) = match driven {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "the conversation did not end within {outer:?} (driver bug)"
            ))
        }
    };
    if config.drive.trace {
        let hidden: Vec<String> = config
            .drive
            .extra_headers
            .iter()
            .map(|(n, _)| n.as_str().to_string())
            .collect();
        let trace = crate::wire::log::render_trace(&frames, &hidden);
        result.trace = Some(judge::for_report(trace, judge::MAX_REPORTED_TRACE_BYTES));
    }
    result.failed_checks = transcript::failed_checks(&events);
    Ok(transcript::render(&events))
}

/// Compares a held conversation's transcript with its snapshot, writes or
/// clears its `.snap.new`, and sets the verdict.
fn judge_one(
    config: &RunConfig,
    named: &NamedFixture,
    lens: Lens,
    actual: String,
    result: &mut FixtureResult,
) {
    let judging = Judging {
        store: &config.store,
        known_failing: &config.known_failing,
        known_flaky: &config.known_flaky,
    };
    judging.judge(
        &named.source,
        &named.fixture.description,
        lens,
        actual,
        result,
    );
}

/// What judging a transcript needs of a run (server or client fixtures).
pub struct Judging<'a> {
    /// Golden and accepted snapshots.
    pub store: &'a Store,
    /// Fixtures expected to fail.
    pub known_failing: &'a BTreeSet<String>,
    /// Fixtures run but never judged, with why.
    pub known_flaky: &'a BTreeMap<String, String>,
}

impl Judging<'_> {
    /// Compares `actual`, the transcript of fixture `result.name` (read from
    /// `source`), with its snapshot, writes or clears its `.snap.new`, and
    /// sets the verdict.
    pub fn judge(
        &self,
        source: &str,
        description: &str,
        lens: Lens,
        actual: String,
        result: &mut FixtureResult,
    ) {
        let name = result.name.clone();
        let expected = match self.store.expected(&name) {
            Ok(e) => e,
            Err(e) => {
                result.error = Some(e.to_string());
                return;
            }
        };
        if let Some((_, origin)) = &expected {
            result.expected_from = Some(match origin {
                Origin::Golden => "golden".to_string(),
                Origin::Accepted(p) => p.display().to_string(),
            });
        }
        let expected = expected.map(|(text, _)| lens.apply(&text));
        let comparison = judge::compare(expected.as_deref(), &actual);
        result.diff = comparison
            .diff
            .map(|d| judge::for_report(d, MAX_REPORTED_BYTES));
        if let Some(reason) = self.known_flaky.get(&name) {
            result.verdict = Verdict::Unstable;
            result.reason = Some(format!("known flaky: {reason}"));
            return;
        }
        let written = if comparison.matched {
            self.store.clear_new(&name).map(|_| None)
        } else {
            let text = snapshot::render(&name, source, description, &actual);
            self.store.write_new(&name, &text)
        };
        match written {
            Ok(path) => result.new_snapshot = path,
            Err(e) => {
                result.error = Some(e.to_string());
                return;
            }
        }
        let known = self.known_failing.contains(&name);
        result.verdict = judge::verdict(comparison.matched, known);
    }

    /// The verdict of a fixture that failed before there was a transcript
    /// to compare (a client under test that crashed or hung): the lists
    /// still apply, as for a transcript that differs.
    pub fn judge_failure(&self, result: &mut FixtureResult) {
        if let Some(reason) = self.known_flaky.get(&result.name) {
            result.verdict = Verdict::Unstable;
            result.reason = Some(format!("known flaky: {reason}"));
            return;
        }
        result.verdict = judge::verdict(false, self.known_failing.contains(&result.name));
    }
}

/// The configuration of a reference started with a fixture's `needs`;
/// `scale` multiplies their times.
pub fn reference_config(needs: &ReferenceNeeds, scale: impl Fn(u64) -> u64) -> ReferenceConfig {
    let ms = |v: u64| Duration::from_millis(scale(v));
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
    if let Some(v) = needs.ping_max_strikes {
        config.ping_policy.max_strikes = v;
    }
    config
}

/// A reference server started with a fixture's needs, and a connector to it.
async fn start_reference(
    needs: &ReferenceNeeds,
    drive: &DriveOptions,
) -> Result<(ReferenceServer, Connector), String> {
    let config = reference_config(needs, |v| drive.scale(v));
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
