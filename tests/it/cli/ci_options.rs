//! The run as a CI step: exit codes for every mistake, reports written
//! whatever happens, the CI options (partition, fail-fast, colour,
//! verbosity, per-fixture lines) and the config file.

use super::{conform, fixtures_without_golden};
use predicates::prelude::*;
use std::{collections::BTreeSet, fs};

/// A port that was free a moment ago: connection refused.
fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn malformed_targets_and_values_are_usage_errors() {
    for target in [
        "http://127.0.0.1:34647",
        "localhost",
        "127.0.0.1:99999",
        "127.0.0.1:0",
    ] {
        conform()
            .args(["--target", target])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(target));
    }
    for args in [
        &["--jobs", "0"][..],
        &["--partition", "0/3"],
        &["--partition", "4/3"],
        &["--partition", "x"],
        &["--color", "sometimes"],
        &["--repeat", "0"],
    ] {
        conform().args(args).assert().code(2);
    }
}

#[test]
fn an_empty_selection_exits_4() {
    conform()
        .args(["--filter", "nomatch"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("no fixture selected"));
    let empty = tempfile::tempdir().unwrap();
    conform()
        .arg("--fixtures")
        .arg(empty.path())
        .assert()
        .code(4);
    conform()
        .args(["--list", "--filter", "nomatch"])
        .assert()
        .code(4);
}

#[test]
fn an_unreachable_target_still_writes_the_junit_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.xml");
    conform()
        .args(["--target", &format!("127.0.0.1:{}", refused_port())])
        .args(["--filter", "greeter/unary", "--format", "junit", "--output"])
        .arg(&file)
        .assert()
        .code(3);
    let xml = fs::read_to_string(&file).expect("the report was written");
    assert!(
        xml.contains(r#"<testcase name="greeter/unary/say-hello""#),
        "{xml}"
    );
    assert!(xml.contains("<error"), "{xml}");
    assert!(xml.contains("unreachable"), "{xml}");
}

#[test]
fn an_unwritable_output_is_refused_before_the_run() {
    let started = std::time::Instant::now();
    conform()
        .args(["--output", "/nonexistent/dir/r.xml", "--format", "junit"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/dir/r.xml"));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn under_ci_a_mismatch_says_how_to_get_a_snap_new() {
    let fixtures = fixtures_without_golden();
    let snaps = tempfile::tempdir().unwrap();
    super::against(&fixtures, &snaps)
        .env("CI", "true")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("no .snap.new written"))
        .stdout(predicate::str::contains("--write-new"));
}

#[test]
fn a_first_run_without_snapshot_explains_the_accept_workflow() {
    let fixtures = fixtures_without_golden();
    conform()
        .arg("--fixtures")
        .arg(fixtures.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("--snapshots DIR"))
        .stdout(predicate::str::contains("snapshots accept"));
}

#[test]
fn known_failing_entries_must_match_and_may_be_globs() {
    let fixtures = fixtures_without_golden();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("known.txt");
    fs::write(&list, "local/helo\n").unwrap();
    conform()
        .arg("--fixtures")
        .arg(fixtures.path())
        .arg("--known-failing")
        .arg(&list)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no fixture matches local/helo"));
    fs::write(&list, "# everything local\nlocal/*\n").unwrap();
    conform()
        .arg("--fixtures")
        .arg(fixtures.path())
        .arg("--known-failing")
        .arg(&list)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("KNOWN-FAILURE local/hello"));
    fs::write(&list, "greeter/nope/*\n").unwrap();
    conform()
        .arg("--known-flaky")
        .arg(&list)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no fixture matches greeter/nope/*",
        ));
}

fn listed(args: &[&str]) -> Vec<String> {
    let out = conform()
        .arg("--list")
        .args(args)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

#[test]
fn partitions_cover_every_fixture_exactly_once_and_are_stable() {
    let all: BTreeSet<String> = listed(&[]).into_iter().collect();
    let mut seen = BTreeSet::new();
    for k in 1..=3 {
        let shard = listed(&["--partition", &format!("{k}/3")]);
        assert!(!shard.is_empty(), "shard {k} is empty");
        assert_eq!(
            shard,
            listed(&["--partition", &format!("{k}/3")]),
            "shard {k} moved"
        );
        for name in shard {
            assert!(seen.insert(name.clone()), "{name} is in two shards");
        }
    }
    assert_eq!(seen, all);
}

#[test]
fn fail_fast_stops_after_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let text = super::corpus_fixture("greeter/unary/say-hello");
    for i in 0..4 {
        fs::write(dir.path().join(format!("f{i}.json")), &text).unwrap();
    }
    let out = conform()
        .arg("--fixtures")
        .arg(dir.path())
        .args(["--jobs", "1", "--fail-fast", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let verdicts: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts.iter().filter(|v| **v == "fail").count(),
        1,
        "{verdicts:?}"
    );
    assert_eq!(
        verdicts.len(),
        4,
        "every selected fixture is in the report: {verdicts:?}"
    );
    assert!(out.windows(7).any(|w| w == b"not run"), "{report}");
}

#[test]
fn colour_follows_the_flag_and_the_environment() {
    let fixtures = fixtures_without_golden();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = conform();
        cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .arg("--fixtures")
            .arg(fixtures.path())
            .args(args)
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        out.contains(&0x1b)
    };
    assert!(!run(&[], &[]), "no colour without a terminal");
    assert!(run(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(!run(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]));
    assert!(run(&["--color", "always"], &[("NO_COLOR", "1")]));
    assert!(!run(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]));
}

#[test]
fn a_log_gets_a_line_per_finished_fixture_unless_quiet() {
    let run = |extra: &[&str]| {
        let out = conform()
            .args(["--filter", "greeter/unary/say-hello"])
            .args(extra)
            .assert()
            .code(0)
            .get_output()
            .stderr
            .clone();
        String::from_utf8(out).unwrap()
    };
    let log = run(&[]);
    assert!(
        predicate::str::is_match(r"(?m)^PASS greeter/unary/say-hello \(\d+ ms\)$")
            .unwrap()
            .eval(&log),
        "{log}"
    );
    assert!(!run(&["-q"]).contains("greeter/unary/say-hello"));
    let verbose = conform()
        .args(["--filter", "greeter/unary/say-hello", "-v"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8(verbose)
        .unwrap()
        .contains("PASS greeter/unary/say-hello"));
}

#[test]
fn a_config_file_supplies_options_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = fixtures_without_golden();
    fs::write(
        dir.path().join("grpc-conform.toml"),
        format!(
            "fixtures = {:?}\nfilter = [\"local/*\"]\n[headers]\nx-secret-token = \"${{GRPC_CONFORM_TEST_SECRET}}\"\n",
            fixtures.path()
        ),
    )
    .unwrap();
    let run = || {
        let mut cmd = conform();
        cmd.current_dir(dir.path());
        cmd
    };
    // The header's variable is not set: a usage error naming it.
    run()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("GRPC_CONFORM_TEST_SECRET"));
    let out = run()
        .env("GRPC_CONFORM_TEST_SECRET", "s3cr3t")
        .args(["--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("local/hello") && !text.contains("s3cr3t"),
        "{text}"
    );
    // A flag wins over the file.
    run()
        .env("GRPC_CONFORM_TEST_SECRET", "s3cr3t")
        .args(["--filter", "nomatch"])
        .assert()
        .code(4);
    // --config names another file; a bad key is an error.
    let other = dir.path().join("other.toml");
    fs::write(&other, "targte = \"x\"\n").unwrap();
    conform()
        .arg("--config")
        .arg(&other)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("targte"));
}

#[test]
fn list_as_json_has_descriptions_and_an_unknown_method_is_an_error() {
    let out = conform()
        .args([
            "--list",
            "--format",
            "json",
            "--filter",
            "greeter/unary/say-hello",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let list: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(list[0]["name"], "greeter/unary/say-hello");
    assert!(list[0]["description"]
        .as_str()
        .unwrap()
        .starts_with("A unary call"));
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("x.json"),
        super::corpus_fixture("greeter/unary/say-hello").replace("SayHello", "SayHelo"),
    )
    .unwrap();
    conform()
        .arg("--list")
        .arg("--fixtures")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean /Greeter/SayHello?"));
}

#[test]
fn help_ends_with_the_exit_codes() {
    conform()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains("3  the target is unreachable"))
        .stdout(predicate::str::contains("4  nothing selected"));
}

#[test]
fn a_run_reports_every_bad_fixture_not_only_the_first() {
    let good = super::corpus_fixture("greeter/unary/say-hello");
    let run = |files: [(&str, String); 2]| {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs::write(dir.path().join(name), text).unwrap();
        }
        let out = conform()
            .arg("--fixtures")
            .arg(dir.path())
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone();
        String::from_utf8(out).unwrap()
    };
    // Two files that do not parse.
    let err = run([
        ("a.json", good.replace("half_close", "half_clsoe")),
        ("b.json", good.replace("\"level\"", "\"levle\"")),
    ]);
    assert!(
        err.contains("a.json:10:20: at `calls[0].steps[1]`"),
        "{err}"
    );
    assert!(err.contains("b.json:4:"), "{err}");
    // Two that parse but do not validate.
    let err = run([
        ("c.json", good.replace("SayHello", "SayHelo")),
        (
            "d.json",
            good.replace("\"name\": \"world\"", "\"nmae\": \"world\""),
        ),
    ]);
    assert!(err.contains("c.json:7:17: at `calls[0].method`"), "{err}");
    assert!(
        err.contains("d.json:9:30: at `calls[0].steps[0].send.message`"),
        "{err}"
    );
}
