//! `grpc-conform snapshots ...` as a CI step: exit codes, patterns that
//! match nothing, a closed stdout, orphans, and golden bases for review.

use super::{against, conform, corpus_fixture};
use predicates::prelude::*;
use std::{fs, io::BufRead, path::Path};

/// A fixtures dir holding the corpus's say-hello under its own name, with
/// a different name sent, so its transcript differs from the golden one.
pub(super) fn fixtures_differing_from_golden() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greeter/unary/say-hello.json");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let text = corpus_fixture("greeter/unary/say-hello")
        .replace("\"name\": \"world\"", "\"name\": \"there\"")
        .replace("Hello world", "Hello there");
    fs::write(file, text).unwrap();
    dir
}

fn snapshots(action: &str, dir: &Path) -> assert_cmd::Command {
    let mut cmd = conform();
    cmd.args(["snapshots", action, "--snapshots"]).arg(dir);
    cmd
}

#[test]
fn pending_exits_1_with_something_pending_and_0_without() {
    let snaps = tempfile::tempdir().unwrap();
    snapshots("pending", snaps.path())
        .assert()
        .code(0)
        .stdout("")
        .stderr(predicates::str::contains("nothing pending"));
    fs::write(
        snaps.path().join("a.snap.new"),
        "---\nexpression: a\n---\ncall 1\n",
    )
    .unwrap();
    snapshots("pending", snaps.path())
        .assert()
        .code(1)
        .stdout(predicates::str::contains("+call 1"));
}

#[test]
fn a_missing_directory_and_patterns_matching_nothing_are_errors() {
    let snaps = tempfile::tempdir().unwrap();
    let missing = snaps.path().join("nope");
    for action in ["pending", "accept", "reject", "orphans", "prune"] {
        snapshots(action, &missing)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("does not exist"));
    }
    fs::write(
        snaps.path().join("a.snap.new"),
        "---\nexpression: a\n---\ncall 1\n",
    )
    .unwrap();
    for action in ["pending", "accept", "reject"] {
        snapshots(action, snaps.path())
            .args(["a", "nomatch"])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("matches nomatch (1 pending)"));
    }
    assert!(snaps.path().join("a.snap.new").exists(), "nothing was done");
}

#[test]
fn a_closed_stdout_ends_the_listing_quietly() {
    let snaps = tempfile::tempdir().unwrap();
    // Far more than a pipe buffer, so the writer meets the closed pipe.
    let body = "line of a transcript\n".repeat(200);
    for i in 0..100 {
        fs::write(
            snaps.path().join(format!("f{i:03}.snap.new")),
            format!("---\nexpression: f{i:03}\n---\n{body}"),
        )
        .unwrap();
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("grpc-conform"))
        .args(["snapshots", "pending", "--snapshots"])
        .arg(snaps.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("f000"), "{first}");
    // The reader is dropped here: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}

#[test]
fn orphans_are_reported_and_pruned() {
    let snaps = tempfile::tempdir().unwrap();
    let kept = snaps.path().join("greeter/unary/say-hello.snap");
    let gone = snaps.path().join("greeter/unary/removed-long-ago.snap");
    fs::create_dir_all(kept.parent().unwrap()).unwrap();
    fs::write(&kept, "---\nexpression: x\n---\ncall 1\n").unwrap();
    fs::write(&gone, "---\nexpression: y\n---\ncall 1\n").unwrap();
    snapshots("orphans", snaps.path())
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "greeter/unary/removed-long-ago\t",
        ))
        .stdout(predicates::str::contains("say-hello").not());
    snapshots("prune", snaps.path())
        .assert()
        .code(0)
        .stdout(predicates::str::contains("removed-long-ago.snap"));
    assert!(kept.exists() && !gone.exists());
    snapshots("orphans", snaps.path()).assert().code(0);
    // With the user's own fixtures, the corpus's names are orphans there.
    let own = super::fixtures_without_golden();
    snapshots("orphans", snaps.path())
        .arg("--fixtures")
        .arg(own.path())
        .assert()
        .code(1)
        .stdout(predicates::str::contains("greeter/unary/say-hello\t"));
}

/// A snapshots directory prepared for cargo-insta by `snapshots init`.
fn insta_ready_dir() -> tempfile::TempDir {
    let snaps = tempfile::tempdir().unwrap();
    snapshots("init", snaps.path()).assert().code(0);
    snaps
}

#[test]
fn a_mismatch_without_accepted_snapshot_leaves_the_golden_as_review_base() {
    let fixtures = fixtures_differing_from_golden();
    let snaps = insta_ready_dir();
    let run = || against(&fixtures, &snaps);
    run().assert().code(1);
    let base = snaps.path().join("greeter/unary/say-hello.snap");
    let base_text = fs::read_to_string(&base).unwrap();
    assert!(
        base_text.contains("\ninfo: \"golden snapshot of grpc-conform"),
        "{base_text}"
    );
    // insta reads it, and its contents are the golden transcript.
    let golden = insta::Snapshot::from_file(&base).unwrap();
    assert!(golden
        .as_text()
        .unwrap()
        .to_string()
        .contains("Hello world"));
    // The base is not an accepted divergence: the run still fails, the
    // diff is against the golden.
    run().assert().code(1);
    snapshots("pending", snaps.path())
        .assert()
        .code(1)
        .stdout(predicates::str::contains("--- golden"))
        .stdout(predicates::str::contains(
            "-  ← message {\"message\":\"Hello world\"}",
        ))
        .stdout(predicates::str::contains(
            "+  ← message {\"message\":\"Hello there\"}",
        ));
    snapshots("accept", snaps.path()).assert().code(0);
    assert!(!fs::read_to_string(&base).unwrap().contains("info:"));
    run().assert().code(0);
}

#[test]
fn reject_and_a_later_match_remove_the_golden_base() {
    let fixtures = fixtures_differing_from_golden();
    let snaps = insta_ready_dir();
    let base = snaps.path().join("greeter/unary/say-hello.snap");
    against(&fixtures, &snaps).assert().code(1);
    assert!(base.exists());
    snapshots("reject", snaps.path()).assert().code(0);
    assert!(!base.exists(), "reject left the golden base");
    // The corpus's own say-hello matches the golden: its base goes too.
    against(&fixtures, &snaps).assert().code(1);
    conform()
        .args(["--filter", "greeter/unary/say-hello", "--snapshots"])
        .arg(snaps.path())
        .assert()
        .code(0);
    assert!(!base.exists(), "a match left the golden base");
    assert_eq!(
        fs::read_dir(snaps.path().join("greeter/unary"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn no_golden_base_outside_a_directory_prepared_for_cargo_insta() {
    let fixtures = fixtures_differing_from_golden();
    let snaps = tempfile::tempdir().unwrap();
    against(&fixtures, &snaps).assert().code(1);
    let dir = snaps.path().join("greeter/unary");
    assert!(dir.join("say-hello.snap.new").exists());
    assert!(!dir.join("say-hello.snap").exists(), "a stray golden base");
}

#[test]
fn a_run_warns_about_snapshots_without_fixture() {
    let snaps = tempfile::tempdir().unwrap();
    fs::write(
        snaps.path().join("gone.snap"),
        "---\nexpression: gone\n---\ncall 1\n",
    )
    .unwrap();
    conform()
        .args(["--filter", "greeter/unary/say-hello", "--snapshots"])
        .arg(snaps.path())
        .assert()
        .code(0)
        .stderr(predicates::str::contains("warning: 1 snapshot files in"))
        .stderr(predicates::str::contains("snapshots prune"));
}
