//! `cargo insta review` on a target's snapshots directory, with the real
//! cargo-insta (.ci/run installs it; without it this test says so and
//! checks nothing).

use super::{against, conform, snapshots::fixtures_differing_from_golden};
use std::{collections::BTreeSet, path::Path, process::Command};

/// Every file under `dir`, relative.
fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

/// `cargo insta ARGS` in `dir`, stdin closed (non-interactive).
fn cargo_insta(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("cargo")
        .arg("insta")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CLICOLOR", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cargo runs")
}

#[test]
fn cargo_insta_review_diffs_against_the_golden_and_leaves_nothing_behind() {
    let probe = Command::new("cargo").args(["insta", "--version"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: cargo-insta is not installed (`cargo install cargo-insta --locked`)");
        return;
    }
    let fixtures = fixtures_differing_from_golden();
    let snaps = tempfile::tempdir().unwrap();
    conform()
        .args(["snapshots", "init", "--snapshots"])
        .arg(snaps.path())
        .assert()
        .code(0)
        .stdout(predicates::str::contains("Cargo.lock"));
    against(&fixtures, &snaps).assert().code(1);
    let before = files(snaps.path());

    let review = cargo_insta(
        snaps.path(),
        &["review", "--snapshot", "greeter/unary/say-hello.snap"],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&review.stdout),
        String::from_utf8_lossy(&review.stderr),
    );
    assert!(review.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("insta not found"), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    // The golden line is shown removed, the target's added: a diff, not
    // the whole transcript as new.
    assert!(
        stdout.contains("-  → message {\"name\":\"world\"}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+  → message {\"name\":\"there\"}"),
        "{stdout}"
    );
    assert!(stdout.contains("│   → half-close"), "{stdout}");
    assert_eq!(
        files(snaps.path()),
        before,
        "the review wrote or removed files"
    );

    let accept = cargo_insta(snaps.path(), &["accept"]);
    assert!(
        accept.status.success(),
        "{}",
        String::from_utf8_lossy(&accept.stderr)
    );
    let mut expected = before.clone();
    expected.remove("greeter/unary/say-hello.snap.new");
    assert_eq!(files(snaps.path()), expected);
    against(&fixtures, &snaps).assert().code(0);
}
