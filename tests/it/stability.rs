//! `--repeat` and `--known-flaky`: a conforming server's transcripts are the
//! same run after run, and a listed flaky fixture is run but not judged.

use crate::support::conform;

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

#[test]
fn repeated_runs_of_cancel_fixtures_against_the_reference_are_stable() {
    // The cancel fixtures are where a server's counts race with the reset.
    let output = conform()
        .args(["--repeat", "3", "--filter", "cancel", "--format", "json"])
        .args(["--time-scale", "2"])
        .output()
        .unwrap();
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    let results = report["results"].as_array().unwrap();
    assert!(results.len() >= 10, "{} cancel fixtures", results.len());
    for r in results {
        assert_eq!(r["verdict"], "pass", "{r:#}");
    }
}

#[test]
fn a_known_flaky_fixture_runs_but_is_not_judged() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("known-flaky.txt");
    std::fs::write(
        &list,
        "# The stack races a status against a reset.\ngreeter/unary/say-hello\n",
    )
    .unwrap();
    let output = conform()
        .args(["--filter", "greeter/unary/say-hello", "--format", "json"])
        .arg("--known-flaky")
        .arg(&list)
        .output()
        .unwrap();
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    let r = &report["results"][0];
    assert_eq!(r["verdict"], "unstable");
    assert_eq!(
        r["reason"],
        "known flaky: The stack races a status against a reset."
    );
    assert!(r["transcript"].as_str().unwrap().contains("Hello"));
}
