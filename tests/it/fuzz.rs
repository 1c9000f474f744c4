//! Fuzzing on stable Rust: proptest harnesses for everything that reads
//! untrusted input (fixtures, snapshot files, gRPC message prefixes, HTTP/2
//! frames, HPACK header blocks). Each runs as an ordinary test with a
//! bounded number of cases (`PROPTEST_CASES`, 256 by default); with
//! `FUZZ_SECONDS` set, each runs round after round with fresh seeds for that
//! long (the campaign of `scripts/fuzz`, see docs/fuzzing.md). A failing case
//! is shrunk and kept in `proptest-regressions/`, and replayed first on every
//! later run.

mod fixtures;
mod frames;
mod hpack;
mod prefix;
mod snapshots;

use proptest::{
    strategy::Strategy,
    test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner},
};
use std::time::{Duration, Instant};

/// Cases of one round when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

/// Runs `test` on values of `strategy`: one round, or rounds for
/// `FUZZ_SECONDS`. `source` is the harness's file, for the regressions.
pub fn fuzz<S: Strategy>(
    source: &'static str,
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seconds: Option<u64> = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let started = Instant::now();
    let until = seconds.map(|s| started + Duration::from_secs(s));
    let (mut rounds, mut total) = (0u64, 0u64);
    loop {
        let config = Config {
            cases,
            source_file: Some(source),
            failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
                "proptest-regressions",
            ))),
            ..Config::default()
        };
        // A fresh random seed every round.
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        rounds += 1;
        total += u64::from(cases);
        if until.is_none_or(|u| Instant::now() >= u) {
            break;
        }
    }
    if seconds.is_some() {
        eprintln!(
            "fuzz {name}: {total} cases in {rounds} rounds, {:.0} s, 0 failures",
            started.elapsed().as_secs_f64()
        );
    }
}
