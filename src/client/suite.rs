//! A client run: for each selected client fixture, a fresh reference, the
//! client under test on the fixture's plan, the transcript joining its
//! report with the server's view, judged against the snapshots as a server
//! run is ([`crate::run::Judging`]); results and events are the server
//! run's, so every reporter serves both.

use super::fixture::NamedClientFixture;
use super::plan::Report;
use super::server::{FixtureServer, ServerView};
use super::under_test::{ClientRun, ClientUnderTest};
use super::{planner, transcript};
use crate::{
    capabilities::Capabilities,
    descriptors::Descriptors,
    judge::{self, Lens, MAX_REPORTED_BYTES},
    run::{FixtureResult, Judging, RunEvent, RunReport},
    snapshot::Store,
    wire::log::render_trace,
};
use futures::StreamExt;
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write,
    time::{Duration, Instant},
};

/// How long a call the server still sees running gets to settle once the
/// client is gone (its connection closed, the server notices at once).
const SETTLE: Duration = Duration::from_millis(500);

/// Everything a client run needs.
pub struct ClientRunConfig {
    /// The client under test.
    pub client: ClientUnderTest,
    /// Message types.
    pub descriptors: Descriptors,
    /// The selected fixtures, validated.
    pub fixtures: Vec<NamedClientFixture>,
    /// Multiplies every time of the fixtures.
    pub time_scale: f64,
    /// Golden (`snapshots/client/`) and accepted snapshots.
    pub store: Store,
    /// Fixtures expected to fail with this client.
    pub known_failing: BTreeSet<String>,
    /// Fixtures whose transcript varies with this client, with why.
    pub known_flaky: BTreeMap<String, String>,
    /// Fixtures run at once (each with its own server and client process).
    pub jobs: usize,
    /// Keep each connection's frame log as text (`--trace`).
    pub trace: bool,
}

impl ClientRunConfig {
    /// `ms` scaled by the time scale.
    fn scale(&self, ms: u64) -> u64 {
        (ms as f64 * self.time_scale).round() as u64
    }
}

/// Runs every fixture of `config`, `jobs` at a time; `events` sees the run
/// start and each result as it completes. `label` names the client.
pub async fn run(
    config: ClientRunConfig,
    label: &str,
    mut events: impl FnMut(RunEvent<'_>),
) -> RunReport {
    let started = Instant::now();
    let total = config.fixtures.len();
    let capabilities = Capabilities::everything();
    events(RunEvent::Started {
        total,
        capabilities: &capabilities,
    });
    let mut stream = futures::stream::iter(config.fixtures.iter().map(|f| run_one(&config, f)))
        .buffer_unordered(config.jobs.max(1));
    let mut results = Vec::with_capacity(total);
    while let Some(result) = stream.next().await {
        results.push(result);
        events(RunEvent::FixtureFinished {
            result: results.last().expect("just pushed"),
            done: results.len(),
            total,
        });
    }
    drop(stream);
    results.sort_by(|a, b| a.name.cmp(&b.name));
    RunReport {
        target: label.to_string(),
        transport: "client under test against the reference".to_string(),
        capabilities,
        results,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// Runs one fixture and judges it.
async fn run_one(config: &ClientRunConfig, named: &NamedClientFixture) -> FixtureResult {
    let started = Instant::now();
    let f = &named.fixture;
    let mut result =
        FixtureResult::for_fixture(&named.name, &named.source, &f.description, &f.rule, f.level);
    let judging = Judging {
        store: &config.store,
        known_failing: &config.known_failing,
        known_flaky: &config.known_flaky,
    };
    match hold(config, named).await {
        Err(e) => result.error = Some(e),
        Ok((run, _, trace)) if run.report.is_err() => {
            result.trace = trace;
            // The client did not do its part: a failure of the client, not
            // of the kit, with what it did and what it said.
            judging.judge_failure(&mut result);
            let what = run.report.err().unwrap_or_default();
            result.error = Some(with_stderr(&what, &run.stderr));
        }
        Ok((run, text, trace)) => {
            result.trace = trace;
            let lens = Lens {
                without_server_view: false,
            };
            let text = lens.apply(&text);
            result.transcript = Some(judge::for_report(text.clone(), MAX_REPORTED_BYTES));
            judging.judge(&named.source, &f.description, lens, text, &mut result);
            // Only against a snapshot: blessing (no snapshots) keeps the
            // transcripts of calls that fail by design.
            if result.verdict.fails_run()
                && result.error.is_none()
                && result.expected_from.is_some()
            {
                if let Ok(report) = &run.report {
                    result.error = client_errors(report, &run.stderr);
                }
            }
        }
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

/// Starts the fixture's server, runs the client on its plan, renders the
/// transcript (empty when the client gave no report) and, with `trace`, the
/// frames of each connection.
async fn hold(
    config: &ClientRunConfig,
    named: &NamedClientFixture,
) -> Result<(ClientRun, String, Option<String>), String> {
    let scale = |ms| config.scale(ms);
    let server = FixtureServer::start(named, &config.descriptors, scale).await?;
    let target = server.local_addr().to_string();
    let plan = planner::build(named, &config.descriptors, &target, &scale)?;
    let run = config.client.run(&plan).await;
    let view: ServerView = server.finish(plan.calls.len(), SETTLE).await;
    let text = match &run.report {
        Ok(report) => transcript::render(named, &plan, &config.descriptors, report, &view),
        Err(_) => String::new(),
    };
    let trace = config.trace.then(|| {
        let mut text = String::new();
        for (n, frames) in view.connections.iter().enumerate() {
            let _ = writeln!(text, "connection {}:", n + 1);
            text.push_str(&render_trace(frames, &[]));
        }
        judge::for_report(text, judge::MAX_REPORTED_TRACE_BYTES)
    });
    Ok((run, text, trace))
}

/// The errors the client reported, per call, and its stderr: shown with a
/// failure, never compared.
fn client_errors(report: &Report, stderr: &str) -> Option<String> {
    let mut out = String::new();
    for (i, call) in report.calls.iter().enumerate() {
        if let Some(error) = &call.error {
            let _ = write!(out, "{}call {}: {error}", sep(&out), i + 1);
        }
    }
    let text = with_stderr(&out, stderr);
    (!text.is_empty()).then(|| format!("the client said: {text}"))
}

fn sep(out: &str) -> &'static str {
    if out.is_empty() {
        ""
    } else {
        "; "
    }
}

/// `what`, then the client's stderr (its tail) indented below it.
fn with_stderr(what: &str, stderr: &str) -> String {
    let stderr = stderr.trim_end();
    if stderr.is_empty() {
        return what.to_string();
    }
    let indented: Vec<String> = stderr.lines().map(|l| format!("    {l}")).collect();
    format!("{what}\n  stderr:\n{}", indented.join("\n"))
}
