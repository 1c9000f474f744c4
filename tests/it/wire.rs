//! The wire level: the recorder carries bytes untouched and logs every
//! frame, the raw and recorded fixtures pass against the reference, and
//! servers that break a wire rule fail the fixture written to catch them.

mod faulty;
mod recorder;

use crate::support;
use grpc_conform::{
    capabilities::Capabilities,
    descriptors::Descriptors,
    drive::{Connector, DriveOptions, Target},
    fixture::{self, NamedFixture},
    run::{self, RunConfig, RunReport, Verdict},
    snapshot::Store,
};
use std::{collections::BTreeSet, net::SocketAddr};

/// A plain-TCP connector to `addr`.
pub fn connector(addr: SocketAddr) -> Connector {
    Connector::new(Target {
        address: addr.to_string(),
        tls: None,
    })
    .expect("plain TCP connector")
}

/// The embedded fixtures named in `names`; a name ending in `/` selects
/// every fixture under it.
pub fn corpus(names: &[&str]) -> Vec<NamedFixture> {
    fixture::load_embedded()
        .expect("embedded corpus parses")
        .into_iter()
        .filter(|f| {
            names
                .iter()
                .any(|n| f.name == *n || (n.ends_with('/') && f.name.starts_with(n)))
        })
        .collect()
}

/// Runs `fixtures` against `addr` with the golden snapshots.
pub async fn run_against(addr: SocketAddr, fixtures: Vec<NamedFixture>) -> RunReport {
    // A margin for a machine loaded by the tests beside this one;
    // transcripts do not depend on the scale.
    let drive = DriveOptions {
        time_scale: 2.0,
        ..DriveOptions::default()
    };
    run_with(addr, fixtures, drive).await
}

/// Runs `fixtures` against `addr` with the golden snapshots and `drive`.
pub async fn run_with(
    addr: SocketAddr,
    fixtures: Vec<NamedFixture>,
    drive: DriveOptions,
) -> RunReport {
    run_with_capabilities(addr, fixtures, drive, Capabilities::everything()).await
}

/// [`run_with`] for a target with `capabilities`.
pub async fn run_with_capabilities(
    addr: SocketAddr,
    fixtures: Vec<NamedFixture>,
    drive: DriveOptions,
    capabilities: Capabilities,
) -> RunReport {
    let config = RunConfig {
        connector: connector(addr),
        descriptors: Descriptors::contract().unwrap(),
        fixtures,
        drive,
        store: Store::new(None, false),
        known_failing: Default::default(),
        jobs: 8,
        known_flaky: Default::default(),
        repeat: 1,
        capabilities,
    };
    run::run(config, "test", "h2c", |_| {}).await
}

/// Names of the fixtures of `report` that did not pass, with their diffs
/// for the failure message.
pub fn failing(report: &RunReport) -> (BTreeSet<String>, String) {
    let mut names = BTreeSet::new();
    let mut text = String::new();
    for r in report.results.iter().filter(|r| r.verdict != Verdict::Pass) {
        names.insert(r.name.clone());
        text.push_str(&format!(
            "{} {:?} {:?}\n{}\n{}\n",
            r.name,
            r.verdict,
            r.error,
            r.diff.as_deref().unwrap_or(""),
            r.transcript.as_deref().unwrap_or("")
        ));
    }
    (names, text)
}

#[tokio::test]
async fn wire_and_keepalive_fixtures_pass_against_the_reference() {
    let server = support::start_reference().await;
    let fixtures = corpus(&["wire/", "keepalive/"]);
    assert!(
        fixtures.len() >= 30,
        "only {} wire fixtures",
        fixtures.len()
    );
    let descriptors = Descriptors::contract().unwrap();
    for f in &fixtures {
        fixture::validate(f, &descriptors).unwrap_or_else(|e| panic!("{e}"));
    }
    let report = run_against(server.local_addr(), fixtures).await;
    let (names, text) = failing(&report);
    assert!(names.is_empty(), "{text}");
}

#[tokio::test]
async fn fixtures_with_reference_needs_are_skipped_against_an_external_target() {
    let server = support::start_reference().await;
    let fixtures = corpus(&["keepalive/goaway/max-idle", "keepalive/ping/echo"]);
    assert_eq!(fixtures.len(), 2);
    let external = Capabilities {
        reference_settings: false,
        ..Capabilities::everything()
    };
    let report = run_with_capabilities(
        server.local_addr(),
        fixtures,
        DriveOptions::default(),
        external,
    )
    .await;
    let verdict = |name: &str| {
        report
            .results
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.verdict)
    };
    assert_eq!(verdict("keepalive/goaway/max-idle"), Some(Verdict::Skipped));
    assert_eq!(verdict("keepalive/ping/echo"), Some(Verdict::Pass));
    assert!(report.passed(), "a skip does not fail the run");
}

#[tokio::test]
async fn trace_shows_decoded_frames_both_ways() {
    let server = support::start_reference().await;
    let fixtures = corpus(&[
        "wire/compression/gzip-flag-one",
        "wire/recorded/server-stream-shape",
    ]);
    let drive = DriveOptions {
        trace: true,
        extra_headers: vec![(
            http::HeaderName::from_static("authorization"),
            http::HeaderValue::from_static("Bearer secret-token"),
        )],
        ..DriveOptions::default()
    };
    let report = run_with(server.local_addr(), fixtures, drive).await;
    for r in &report.results {
        let trace = r.trace.as_deref().expect("trace kept");
        assert!(trace.contains("→ HEADERS s1"), "{trace}");
        // `--header` values reach the target but never the trace.
        assert!(trace.contains("authorization=<hidden>"), "{trace}");
        assert!(!trace.contains("secret-token"), "{trace}");
        assert!(trace.contains("← HEADERS s1 END_STREAM"), "{trace}");
        assert!(
            trace.contains("← SETTINGS MAX_CONCURRENT_STREAMS=200"),
            "{trace}"
        );
    }
    let raw = &report.results[0];
    let trace = raw.trace.as_deref().unwrap();
    assert!(trace.contains("grpc-encoding=gzip"), "{trace}");
    assert!(trace.contains("messages [flag 1 len"), "{trace}");
    let recorded = report.results[1].trace.as_deref().unwrap();
    // One request and three responses, whatever DATA frames carried them.
    assert_eq!(recorded.matches("[flag 0 len").count(), 4, "{recorded}");
}
