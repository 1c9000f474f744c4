//! The client fixtures against the kit's own client, in process: the
//! conforming driver passes every one (its transcripts are the goldens), and
//! each fault (a client that half-closes instead of cancelling, never sends
//! grpc-timeout, ignores GOAWAY, pings too often) fails exactly the fixtures
//! meant to catch it and passes the rest. Which fixtures are meant is read
//! from the fixtures themselves (a cancel step, a deadline, a GOAWAY before a
//! later call, a keepalive), so a new fixture is covered as it is added.

use grpc_conform::client::fixture::{self as client_fixture, ClientStep, NamedClientFixture};
use grpc_conform::client::suite::{self, ClientRunConfig};
use grpc_conform::client::under_test::ClientUnderTest;
use grpc_conform::client_driver::{self, Faults};
use grpc_conform::descriptors::Descriptors;
use grpc_conform::judge::Verdict;
use grpc_conform::snapshot::Store;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The embedded client fixtures, validated.
fn fixtures() -> Vec<NamedClientFixture> {
    let descriptors = Descriptors::contract().expect("the contract loads");
    let (fixtures, problems) =
        client_fixture::check_all(client_fixture::read_embedded(), &descriptors);
    assert!(problems.is_empty(), "{problems:?}");
    fixtures
}

/// The keepalive fixtures carry real times (the Go tutorial's 30 s): the
/// kit's own client honours any keepalive time, so they run here at this
/// scale (30 s becomes 600 ms); transcripts bucket PINGs against the
/// keepalive time, so they do not depend on it.
const KEEPALIVE_TIME_SCALE: f64 = 0.02;

/// Runs every client fixture against the driver with `faults`, judged
/// against the golden snapshots; the names of those that did not pass, with
/// their diffs or errors for the assertion message.
async fn failing(faults: Faults) -> (BTreeSet<String>, String) {
    let (slow, rest): (Vec<_>, Vec<_>) = fixtures().into_iter().partition(keepalive);
    let mut names = BTreeSet::new();
    let mut why = String::new();
    for (fixtures, time_scale) in [(rest, 1.0), (slow, KEEPALIVE_TIME_SCALE)] {
        let client = ClientUnderTest::InProcess(Arc::new(move |plan| {
            Box::pin(async move {
                client_driver::run(&plan, faults)
                    .await
                    .map_err(|e| e.to_string())
            })
        }));
        let config = ClientRunConfig {
            client,
            descriptors: Descriptors::contract().expect("the contract loads"),
            fixtures,
            time_scale,
            store: Store::client(None, false),
            known_failing: BTreeSet::new(),
            known_flaky: Default::default(),
            jobs: 4,
            trace: false,
        };
        let report = suite::run(config, "client-driver", |_| {}).await;
        for result in report.results {
            if result.verdict != Verdict::Pass {
                why.push_str(&format!(
                    "{} {:?}: {}\n",
                    result.name,
                    result.verdict,
                    result
                        .diff
                        .or(result.error)
                        .unwrap_or_else(|| "no snapshot".into())
                ));
                names.insert(result.name);
            }
        }
    }
    (names, why)
}

/// The fixtures whose calls satisfy `meant`.
fn meant(meant: impl Fn(&NamedClientFixture) -> bool) -> BTreeSet<String> {
    fixtures()
        .into_iter()
        .filter(|f| meant(f))
        .map(|f| f.name)
        .collect()
}

fn cancels(f: &NamedClientFixture) -> bool {
    let calls = &f.fixture.calls;
    calls
        .iter()
        .any(|c| c.steps.iter().any(|s| matches!(s, ClientStep::Cancel)))
}

fn has_deadline(f: &NamedClientFixture) -> bool {
    f.fixture.calls.iter().any(|c| c.deadline_ms.is_some())
}

/// A GOAWAY before a later call: scripted on an earlier call, or the
/// `too_many_pings` one the back-off fixture earns with its first call.
fn goaway_then_call(f: &NamedClientFixture) -> bool {
    let calls = &f.fixture.calls;
    let scripted = calls.iter().enumerate().any(|(i, c)| {
        i + 1 < calls.len() && c.answer.as_ref().is_some_and(|a| a.goaway_after.is_some())
    });
    scripted || f.name == "keepalive/go-tutorial-backs-off"
}

fn keepalive(f: &NamedClientFixture) -> bool {
    f.fixture.channel.keepalive.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_passes_every_client_fixture_and_each_fault_fails_only_its_own() {
    let (failed, why) = failing(Faults::default()).await;
    assert!(failed.is_empty(), "the conforming driver failed:\n{why}");

    let cases = [
        (
            "half-close instead of cancel",
            Faults {
                half_close_on_cancel: true,
                ..Faults::default()
            },
            meant(cancels),
        ),
        (
            "no grpc-timeout",
            Faults {
                no_grpc_timeout: true,
                ..Faults::default()
            },
            meant(has_deadline),
        ),
        (
            "ignores GOAWAY",
            Faults {
                ignore_goaway: true,
                ..Faults::default()
            },
            meant(goaway_then_call),
        ),
        (
            "pings too often",
            Faults {
                ping_too_often: true,
                ..Faults::default()
            },
            meant(keepalive),
        ),
    ];
    for (what, faults, expected) in cases {
        assert!(
            expected.len() >= 3,
            "{what}: only {expected:?} meant to catch it"
        );
        let (failed, why) = failing(faults).await;
        assert_eq!(failed, expected, "{what}: caught by\n{why}");
    }
}
