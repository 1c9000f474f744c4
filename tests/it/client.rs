//! The client mode (`grpc-conform client -- CMD`): bad client fixtures are
//! named by file, line and field; a client that hangs, crashes or prints
//! garbage is a failed fixture in bounded time with its stderr; the
//! transcript joins what a client reported with what the server saw; and
//! the kit's own client passes through the command interface.

use crate::support::conform;
use grpc_conform::client::fixture::{self as client_fixture};
use grpc_conform::client::plan::{Plan, Report, ReportCall, ReportStatus};
use grpc_conform::client::suite::{self, ClientRunConfig};
use grpc_conform::client::under_test::ClientUnderTest;
use grpc_conform::client_driver::{self, Faults};
use grpc_conform::descriptors::Descriptors;
use grpc_conform::run::{RunReport, Verdict};
use grpc_conform::snapshot::Store;
use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

/// A unary fixture with a short timeout.
const SAY_HELLO: &str = r#"{
  "description": "A unary call",
  "rule": "http2/request-outline",
  "level": "MUST",
  "timeout_ms": 300,
  "calls": [{"method": "/Greeter/SayHello",
             "steps": [{"send": {"message": {"name": "world"}}}, "half_close", "receive_all"]}]
}"#;

/// A directory holding `files` as `(relative path, text)`.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(file, text).expect("write fixture");
    }
    dir
}

/// `grpc-conform client --fixtures DIR -- sh -c SCRIPT`: its exit code,
/// stdout, and how long it took.
fn run_script(fixtures: &Path, script: &str) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = conform()
        .args(["client", "-q", "--fixtures"])
        .arg(fixtures)
        .args(["--", "sh", "-c", script])
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn check_names_the_file_line_and_field_of_a_bad_client_fixture() {
    let bad = "{\"description\": \"x\", \"rule\": \"r\", \"level\": \"MUST\",\n\"calls\": [\n  {\"method\": \"/Greeter/SayHello\",\n   \"steps\": [\"half_close\", \"receive_all\"]}]}";
    let unknown = "{\"description\": \"x\", \"rule\": \"r\", \"level\": \"MUST\",\n\"calls\": [{\"method\": \"/Greeter/SayHello\", \"answer\": {\"http_staus\": 503},\n  \"steps\": []}]}";
    let dir = dir_with(&[("bad.json", bad), ("sub/unknown.json", unknown)]);
    let out = conform()
        .arg("check")
        .arg("--client-fixtures")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.json:4:") && stderr.contains("calls[0].steps[0]"),
        "{stderr}"
    );
    assert!(stderr.contains("exactly one `send`"), "{stderr}");
    assert!(
        stderr.contains("unknown.json:2:") && stderr.contains("calls[0].answer"),
        "{stderr}"
    );
    assert!(stderr.contains("http_staus"), "{stderr}");
}

#[test]
fn a_hanging_client_is_killed_with_its_children_and_fails_in_bounded_time() {
    let fixtures = dir_with(&[("hang.json", SAY_HELLO)]);
    let pid_file = fixtures.path().join("child.pid");
    // A script that starts a child of its own and waits forever: the
    // whole process group must go, or the child would hold the pipes.
    let script = format!(
        "echo waiting for nothing >&2; sleep 60 & echo $! > {}; wait",
        pid_file.display()
    );
    let (code, stdout, took) = run_script(fixtures.path(), &script);
    assert_eq!(code, Some(1), "{stdout}");
    // 300 ms of fixture time plus the 5 s grace, with room for a slow machine.
    assert!(took < Duration::from_secs(12), "took {took:?}");
    assert!(stdout.contains("did not finish within 5300 ms"), "{stdout}");
    assert!(
        stdout.contains("waiting for nothing"),
        "stderr shown: {stdout}"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the child wrote its pid");
    let proc_dir = Path::new("/proc").join(pid.trim());
    let gone = (0..40).any(|_| {
        let alive =
            std::fs::read_to_string(proc_dir.join("stat")).is_ok_and(|stat| !stat.contains(") Z "));
        if alive {
            std::thread::sleep(Duration::from_millis(50));
        }
        !alive
    });
    assert!(gone, "the client's child {} outlived it", pid.trim());
}

#[test]
fn a_crashing_exiting_or_garbage_printing_client_is_a_failed_fixture() {
    let fixtures = dir_with(&[("one.json", SAY_HELLO)]);
    for (script, said) in [
        (
            "echo segfaulting now >&2; kill -SEGV $$",
            "killed by a signal",
        ),
        (
            "cat > /dev/null; echo bad config >&2; exit 3",
            "exited with status 3",
        ),
        ("cat > /dev/null; echo hello", "is not a report"),
        ("cat > /dev/null", "printed no report"),
        (
            r#"cat > /dev/null; echo '{"version": 1, "calls": []}'"#,
            "the report has 0 calls, the plan 1",
        ),
        (
            r#"cat > /dev/null; echo '{"version": 9, "calls": []}'"#,
            "version 9",
        ),
    ] {
        let (code, stdout, took) = run_script(fixtures.path(), script);
        assert_eq!(code, Some(1), "{script}: {stdout}");
        assert!(took < Duration::from_secs(10), "{script}: took {took:?}");
        assert!(stdout.contains("FAIL one"), "{script}: {stdout}");
        assert!(stdout.contains(said), "{script}: {stdout}");
    }
    let (_, stdout, _) = run_script(fixtures.path(), "echo segfaulting now >&2; kill -SEGV $$");
    assert!(stdout.contains("segfaulting now"), "stderr shown: {stdout}");
}

#[test]
fn the_kit_s_own_client_passes_through_the_command_interface() {
    let fixtures = dir_with(&[("unary/hello.json", SAY_HELLO)]);
    let snapshots = tempfile::tempdir().expect("temp dir");
    let driver = assert_cmd::cargo::cargo_bin("grpc-conform");
    let run = || {
        conform()
            .args(["client", "-q", "--fixtures"])
            .arg(fixtures.path())
            .arg("--snapshots")
            .arg(snapshots.path())
            .arg("--")
            .arg(&driver)
            .arg("client-driver")
            .output()
            .expect("runs")
    };
    // No snapshot yet: a failure that writes the transcript for review.
    let first = run();
    assert_eq!(first.status.code(), Some(1));
    let new = snapshots.path().join("unary/hello.snap.new");
    let text = std::fs::read_to_string(&new).expect("a .snap.new written");
    for line in [
        "call 1 /Greeter/SayHello (connection 1)",
        "→ headers te=trailers content-type=application/grpc grpc-timeout=absent",
        "→ message {\"name\":\"world\"}",
        "→ END_STREAM on the last DATA with a message",
        "← message {\"message\":\"Hello world\"}",
        "← status OK",
        "observer: requests_received=1 half_close_received=true outcome=COMPLETED",
        "connections: 1",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let accepted = conform()
        .args(["snapshots", "accept", "--snapshots"])
        .arg(snapshots.path())
        .output()
        .expect("runs");
    assert!(accepted.status.success());
    let second = run();
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    // The embedded golden of the same conversation passes too, as JUnit.
    let golden = conform()
        .args([
            "client",
            "-q",
            "--filter",
            "unary/say-hello",
            "--format",
            "junit",
            "--",
        ])
        .arg(&driver)
        .arg("client-driver")
        .output()
        .expect("runs");
    let junit = String::from_utf8_lossy(&golden.stdout);
    assert_eq!(golden.status.code(), Some(0), "{junit}");
    assert!(junit.contains("unary/say-hello"), "{junit}");
}

/// Runs the embedded client fixtures named in `names` with `client`, in
/// process, against the golden client snapshots.
async fn run_in_process(client: ClientUnderTest, names: &[&str]) -> RunReport {
    let descriptors = Descriptors::contract().expect("contract descriptors");
    let (mut fixtures, bad) =
        client_fixture::check_all(client_fixture::read_embedded(), &descriptors);
    assert!(bad.is_empty(), "{bad:?}");
    fixtures.retain(|f| names.contains(&f.name.as_str()));
    assert_eq!(fixtures.len(), names.len(), "every named fixture exists");
    let config = ClientRunConfig {
        client,
        descriptors,
        fixtures,
        time_scale: 1.0,
        store: Store::client(None, false),
        known_failing: Default::default(),
        known_flaky: Default::default(),
        jobs: 2,
        trace: false,
    };
    suite::run(config, "in process", |_| {}).await
}

/// The kit's own client in this process, with `faults`.
fn driver(faults: Faults) -> ClientUnderTest {
    ClientUnderTest::InProcess(Arc::new(move |plan: Plan| {
        Box::pin(async move {
            client_driver::run(&plan, faults)
                .await
                .map_err(|e| e.to_string())
        })
    }))
}

fn result<'a>(report: &'a RunReport, name: &str) -> &'a grpc_conform::run::FixtureResult {
    report
        .results
        .iter()
        .find(|r| r.name == name)
        .expect("a result per fixture")
}

#[tokio::test]
async fn the_transcript_joins_the_report_with_the_server_s_view() {
    let names = [
        "cancel/bidi-after-first-response",
        "answers/trailers-without-status",
    ];
    let report = run_in_process(driver(Faults::default()), &names).await;
    for name in names {
        let r = result(&report, name);
        assert_eq!(r.verdict, Verdict::Pass, "{name}: {r:?}");
    }
    // A client that half-closes where it should cancel: the server saw an
    // END_STREAM and no RST_STREAM, though the client reported CANCELLED.
    let report = run_in_process(
        driver(Faults {
            half_close_on_cancel: true,
            ..Faults::default()
        }),
        &names[..1],
    )
    .await;
    let r = result(&report, names[0]);
    assert_eq!(r.verdict, Verdict::Fail);
    let diff = r.diff.as_deref().expect("a diff against the golden");
    assert!(diff.contains("-  → RST_STREAM CANCEL"), "{diff}");
    assert!(diff.contains("+  → END_STREAM on an empty DATA"), "{diff}");
    // A client that reports OK whatever the server sent: its status line
    // says what the server really sent, and its error is shown.
    let says_ok = ClientUnderTest::InProcess(Arc::new(|plan: Plan| {
        Box::pin(async move {
            let mut report = client_driver::run(&plan, Faults::default())
                .await
                .map_err(|e| e.to_string())?;
            for call in &mut report.calls {
                call.status = ReportStatus::default();
                call.error = Some("all is well, says the faulty client".into());
            }
            Ok(report)
        })
    }));
    let report = run_in_process(says_ok, &names[1..]).await;
    let r = result(&report, names[1]);
    assert_eq!(r.verdict, Verdict::Fail);
    let transcript = r.transcript.as_deref().expect("a transcript");
    assert!(
        transcript.contains("← status OK (the server sent no grpc-status)"),
        "{transcript}"
    );
    let error = r.error.as_deref().unwrap_or_default();
    assert!(error.contains("all is well"), "{error}");
}

#[tokio::test]
async fn an_in_process_client_that_hangs_or_fails_is_a_failed_fixture() {
    let hangs = ClientUnderTest::InProcess(Arc::new(|_plan: Plan| {
        Box::pin(async {
            std::future::pending::<()>().await;
            Ok(Report {
                version: 1,
                client: None,
                calls: vec![ReportCall::default()],
            })
        })
    }));
    let started = Instant::now();
    let report = run_in_process(hangs, &["unary/say-hello"]).await;
    // The fixture's 5 s plus the 5 s grace.
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_failed_with(&report, "did not finish");
    let fails = ClientUnderTest::InProcess(Arc::new(|_plan: Plan| {
        Box::pin(async { Err("no channel".to_string()) })
    }));
    let report = run_in_process(fails, &["unary/say-hello"]).await;
    assert_failed_with(&report, "no channel");
}

/// unary/say-hello failed, its error saying `what`.
fn assert_failed_with(report: &RunReport, what: &str) {
    let r = result(report, "unary/say-hello");
    assert_eq!(r.verdict, Verdict::Fail);
    let error = r.error.as_deref().unwrap_or_default();
    assert!(error.contains(what), "{r:?}");
}
