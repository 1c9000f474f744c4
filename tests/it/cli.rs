//! The binary end to end (assert_cmd): exit codes, formats, selection,
//! snapshot writing and review. Every run uses the embedded reference server
//! on 127.0.0.1 unless a test says otherwise.

mod check;
mod ci_options;
mod insta_review;
mod install;
mod reflect;
mod snapshots;
mod tls;

pub(crate) use crate::support::conform;
use assert_cmd::Command;
use std::{fs, path::Path, time::Duration};

/// The first line `child` prints on its piped stdout, waiting at most
/// `within` (a server's readiness line).
fn first_line_within(child: &mut std::process::Child, within: Duration) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(within).unwrap_or_default()
}

/// A run of the fixtures in `fixtures` with accepted snapshots in `snaps`.
fn against(fixtures: &tempfile::TempDir, snaps: &tempfile::TempDir) -> Command {
    let mut cmd = conform();
    cmd.arg("--fixtures")
        .arg(fixtures.path())
        .arg("--snapshots")
        .arg(snaps.path());
    cmd
}

/// The repository's copy of a fixture.
fn corpus_fixture(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(format!("{name}.json")),
    )
    .unwrap()
}

/// A fixtures dir holding the corpus's say-hello under a name that has no
/// golden snapshot (`local/hello`).
fn fixtures_without_golden() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("local")).unwrap();
    fs::write(
        dir.path().join("local/hello.json"),
        corpus_fixture("greeter/unary/say-hello"),
    )
    .unwrap();
    dir
}

#[test]
fn passing_run_exits_0() {
    conform()
        .args(["--filter", "greeter/unary", "--filter", "status/*"])
        .assert()
        .code(0)
        .stdout(
            predicates::str::is_match(r"(\d+) fixtures against the embedded reference: (\d+) passed, 0 failed, 0 known failures, 0 stale, 0 errors").unwrap(),
        );
}

#[test]
fn list_honours_filter_and_skip() {
    let out = conform()
        .args(["--list", "--filter", "greeter/*", "--skip", "cancel"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("greeter/unary/say-hello\tMUST\t"), "{out}");
    assert!(!out.contains("cancel"), "{out}");
    assert!(!out.contains("chat/"), "{out}");
}

#[test]
fn a_fixture_without_snapshot_fails_with_1_and_json_report_parses() {
    let fixtures = fixtures_without_golden();
    let out = conform()
        .arg("--fixtures")
        .arg(fixtures.path())
        .args(["--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).expect("JSON report");
    let result = &report["results"][0];
    assert_eq!(result["name"], "local/hello");
    assert_eq!(result["verdict"], "fail");
    assert!(result["transcript"]
        .as_str()
        .unwrap()
        .contains("← message {\"message\":\"Hello world\"}"));
}

#[test]
fn junit_report_goes_to_the_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.xml");
    conform()
        .args([
            "--filter",
            "greeter/unary/say-hello",
            "--format",
            "junit",
            "--output",
        ])
        .arg(&file)
        .assert()
        .code(0)
        .stdout("");
    let xml = fs::read_to_string(&file).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(r#"<testcase name="greeter/unary/say-hello" classname="greeter.unary""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"tests="1""#) && xml.contains(r#"failures="0""#),
        "{xml}"
    );
}

#[test]
fn a_bad_fixture_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        corpus_fixture("greeter/unary/say-hello").replace("\"half_close\"", "\"half_clsoe\"");
    fs::write(dir.path().join("bad.json"), text).unwrap();
    let err = conform()
        .arg("--fixtures")
        .arg(dir.path())
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("bad.json:10:"), "{err}");
    assert!(err.contains("calls[0].steps[1]"), "{err}");
    assert!(err.contains("half_clsoe"), "{err}");
}

#[test]
fn a_usage_error_exits_2() {
    conform().args(["--format", "yaml"]).assert().code(2);
    conform().args(["--time-scale", "0"]).assert().code(2);
}

#[test]
fn an_unreachable_target_exits_3_within_2_seconds() {
    // A port that was free a moment ago: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    conform()
        .args(["--target", &format!("127.0.0.1:{port}")])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("unreachable"));
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn mismatch_writes_snap_new_and_never_touches_the_accepted_snap() {
    let fixtures = fixtures_without_golden();
    let snaps = tempfile::tempdir().unwrap();
    let accepted = snaps.path().join("local/hello.snap");
    fs::create_dir_all(accepted.parent().unwrap()).unwrap();
    let stale = "---\nexpression: local/hello\n---\ncall 1 /Greeter/SayHello\n  ← status OK\n";
    fs::write(&accepted, stale).unwrap();
    against(&fixtures, &snaps)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("local/hello.snap.new"));
    assert_eq!(
        fs::read_to_string(&accepted).unwrap(),
        stale,
        "accepted .snap was overwritten"
    );
    let new = fs::read_to_string(snaps.path().join("local/hello.snap.new")).unwrap();
    assert!(new.starts_with("---\nsource: "), "{new}");
    assert!(
        new.contains("\nexpression: local/hello\n---\ncall 1 /Greeter/SayHello\n"),
        "{new}"
    );

    // pending shows it, accept moves it onto the .snap, and the run passes.
    conform()
        .args(["snapshots", "pending", "--snapshots"])
        .arg(snaps.path())
        .assert()
        .code(1)
        .stdout(predicates::str::contains("local/hello"));
    conform()
        .args(["snapshots", "accept", "--snapshots"])
        .arg(snaps.path())
        .assert()
        .code(0)
        .stdout(predicates::str::contains("accepted local/hello"));
    assert!(!snaps.path().join("local/hello.snap.new").exists());
    against(&fixtures, &snaps).assert().code(0);
}

#[test]
fn accepted_snapshots_load_with_insta() {
    // The .snap.new we write must be a snapshot insta itself reads back.
    let fixtures = fixtures_without_golden();
    let snaps = tempfile::tempdir().unwrap();
    against(&fixtures, &snaps).assert().code(1);
    let path = snaps.path().join("local/hello.snap.new");
    let snapshot = insta::Snapshot::from_file(&path).expect("insta reads our file");
    let text = snapshot.as_text().expect("a text snapshot").to_string();
    assert!(text.starts_with("call 1 /Greeter/SayHello\n"), "{text}");
    assert!(text.ends_with("observer: requests_received=1 half_close_received=true outcome=COMPLETED status=OK responses_sent=1 timeout=none"), "{text}");
}

#[test]
fn reject_deletes_pending_snapshots() {
    let fixtures = fixtures_without_golden();
    let snaps = tempfile::tempdir().unwrap();
    against(&fixtures, &snaps).assert().code(1);
    conform()
        .args(["snapshots", "reject", "--snapshots"])
        .arg(snaps.path())
        .arg("local/*")
        .assert()
        .code(0)
        .stdout(predicates::str::contains("rejected local/hello"));
    assert!(!snaps.path().join("local/hello.snap.new").exists());
}

#[test]
fn under_ci_nothing_is_written_unless_asked() {
    let fixtures = fixtures_without_golden();
    let snaps = tempfile::tempdir().unwrap();
    let run = |write_new: bool| {
        let mut cmd = against(&fixtures, &snaps);
        cmd.env("CI", "true");
        if write_new {
            cmd.arg("--write-new");
        }
        cmd.assert().code(1);
    };
    run(false);
    assert_eq!(
        fs::read_dir(snaps.path()).unwrap().count(),
        0,
        "CI run wrote files"
    );
    run(true);
    assert!(snaps.path().join("local/hello.snap.new").exists());
}

#[test]
fn known_failing_passes_a_failure_and_flags_a_stale_entry() {
    let fixtures = fixtures_without_golden();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("known.txt");
    fs::write(&list, "# no snapshot for this one yet\nlocal/hello\n").unwrap();
    conform()
        .arg("--fixtures")
        .arg(fixtures.path())
        .arg("--known-failing")
        .arg(&list)
        .assert()
        .code(0)
        .stdout(predicates::str::contains("KNOWN-FAILURE local/hello"));
    fs::write(&list, "greeter/unary/say-hello\n").unwrap();
    conform()
        .args(["--filter", "greeter/unary/say-hello", "--known-failing"])
        .arg(&list)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("STALE"));
}

#[test]
fn header_values_reach_the_target_but_not_the_transcript() {
    let fixtures = fixtures_without_golden();
    let out = conform()
        .arg("--fixtures")
        .arg(fixtures.path())
        .args(["--header", "x-secret-token: s3cr3t", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains("s3cr3t"),
        "a --header value leaked into the report: {text}"
    );
    assert!(text.contains("Hello world"), "{text}");
}

#[test]
fn reflection_and_proto_files_add_to_the_contract() {
    conform()
        .args(["--reflect", "--filter", "greeter/unary"])
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "reflection v1 on the embedded reference: ",
        ));
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/greeter.proto");
    conform()
        .arg("--proto")
        .arg(&proto)
        .args(["--filter", "greeter/unary"])
        .assert()
        .code(0);
}

#[test]
fn a_bad_proto_file_exits_2_naming_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("mine.proto");
    fs::write(&proto, "syntax = \"proto3\";\nmessage A { strin x = 1; }\n").unwrap();
    conform()
        .arg("--proto")
        .arg(&proto)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "mine.proto:2:13: name 'strin' is not defined",
        ));
}

#[test]
fn the_corpus_passes_against_a_separately_started_reference() {
    let (mut server, addr) = crate::support::serve_process();
    let result = conform()
        .args(["--target", &addr, "--time-scale", "2"])
        .assert()
        .try_code(0);
    let _ = server.kill();
    let _ = server.wait();
    result.unwrap();
}
