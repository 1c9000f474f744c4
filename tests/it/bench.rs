//! `grpc-conform bench`: short runs against the embedded reference (a child
//! process the command starts) give consistent counts; the open loop keeps
//! its schedule; reports parse; bad flags are usage errors; a target that
//! stops answering ends the run in bounded time.
//!
//! No assertion here depends on how fast the machine is: counts are exact
//! or fixed by the schedule, never by throughput.

use crate::support::{conform, serve_process, start_reference};
use serde_json::Value;
use std::{
    process::{Command, Stdio},
    time::Duration,
};

/// Runs `grpc-conform bench ARGS --format json`; the exit code and the document.
pub(super) fn bench_json(args: &[&str]) -> (i32, Value) {
    let output = conform()
        .arg("bench")
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), doc)
}

fn summary(doc: &Value) -> &Value {
    &doc["summary"][0]
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn closed_loop_bidi_echo_gets_every_message_back() {
    let (code, doc) = bench_json(&[
        "--messages",
        "400",
        "--warmup",
        "0s",
        "--connections",
        "2",
        "--streams",
        "2",
    ]);
    let s = summary(&doc);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(u(&s["messages_sent"]), 400, "{s:#}");
    assert_eq!(u(&s["messages_received"]), 400, "{s:#}");
    assert_eq!(u(&s["latency_us"]["count"]), 400, "{s:#}");
    assert_eq!(u(&s["calls"]), 4, "one call per stream: {s:#}");
    assert_eq!(s["errors_by_code"], serde_json::json!({}));
    let l = &s["latency_us"];
    assert!(u(&l["p50"]) >= 1 && u(&l["p50"]) <= u(&l["p99"]) && u(&l["p99"]) <= u(&l["max"]));
    // 1024-byte requests and their 5-byte prefixes (the rate is computed
    // from the exact total; duration_s is rounded in the report).
    assert_eq!(u(&s["bytes_sent"]), 400 * 1029, "{s:#}");
    let rate = s["bytes_per_s_sent"].as_f64().unwrap();
    assert!(rate > 0.0, "{s:#}");
    assert_eq!(doc["config"]["mode"], "bidi");
    assert_eq!(doc["config"]["targets"][0]["embedded_reference"], true);
}

#[test]
fn a_timed_round_drains_what_it_sent_after_the_warmup() {
    let (code, doc) = bench_json(&[
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--streams",
        "3",
        "--window",
        "4",
        "--method",
        "/Greeter/AllStream",
    ]);
    let s = summary(&doc);
    assert_eq!(code, 0, "{doc:#}");
    assert!(u(&s["messages_sent"]) > 0, "{s:#}");
    assert_eq!(s["messages_sent"], s["messages_received"], "{s:#}");
    assert_eq!(s["latency_us"]["count"], s["messages_received"], "{s:#}");
    assert!(s["client_cpu_s"].as_f64().unwrap() > 0.0, "{s:#}");
}

#[test]
fn every_mode_of_the_contract_runs_without_errors() {
    for (method, mode, sent, received) in [
        ("/Greeter/ServerStream", "server_streaming", None, Some(300)),
        ("/SensorService/Watch", "server_streaming", None, Some(300)),
        (
            "/Greeter/ClientStream",
            "client_streaming",
            Some(300),
            Some(3),
        ),
        (
            "/SensorService/Record",
            "client_streaming",
            Some(300),
            Some(3),
        ),
        ("/Greeter/SayHello", "unary", Some(300), Some(300)),
    ] {
        let (code, doc) = bench_json(&[
            "--method",
            method,
            "--messages",
            "300",
            "--warmup",
            "0s",
            "--size",
            "200",
        ]);
        let s = summary(&doc);
        assert_eq!(code, 0, "{method}: {doc:#}");
        assert_eq!(doc["config"]["mode"], mode, "{method}");
        assert_eq!(s["errors_by_code"], serde_json::json!({}), "{method}");
        if let Some(n) = sent {
            assert_eq!(u(&s["messages_sent"]), n, "{method}: {s:#}");
        }
        if let Some(n) = received {
            assert_eq!(u(&s["messages_received"]), n, "{method}: {s:#}");
        }
        assert!(u(&s["latency_us"]["count"]) > 0, "{method}: {s:#}");
    }
}

#[test]
fn the_open_loop_sends_on_its_schedule() {
    // 400 msgs/s for 2 s: the schedule holds 800 sends whatever the
    // machine's speed (late ones go out late and count their lateness).
    let (code, doc) = bench_json(&[
        "--rate",
        "400",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--streams",
        "4",
    ]);
    let s = summary(&doc);
    assert_eq!(code, 0, "{doc:#}");
    let sent = u(&s["messages_sent"]);
    assert!((796..=804).contains(&sent), "{s:#}");
    assert_eq!(s["messages_sent"], s["messages_received"], "{s:#}");
    assert_eq!(doc["config"]["rate"], 400.0);
}

#[test]
fn a_slow_open_loop_round_ends_without_spinning() {
    // 50 msgs/s over 100 streams: each stream sends every 2 s, so when the
    // round stops most streams' next send is still ahead. They half-close
    // then; a connection that waited for those sends awake would keep a
    // core busy until the last of them (up to 2 s).
    let (code, doc) = bench_json(&[
        "--rate",
        "50",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--streams",
        "100",
    ]);
    let s = summary(&doc);
    assert_eq!(code, 0, "{doc:#}");
    let cores = s["client_cpu_s"].as_f64().unwrap() / s["duration_s"].as_f64().unwrap();
    assert!(cores < 0.25, "{cores:.2} cores busy for 50 msgs/s: {s:#}");
    assert!(s["duration_s"].as_f64().unwrap() < 3.0, "{s:#}");
}

#[test]
fn an_idle_stream_at_the_end_of_a_round_is_not_a_stall() {
    // One send every 2 s; the round stops at 3.5 s, 1.5 s after the last
    // echo: the wait for the call's end starts at the half-close.
    let (code, doc) = bench_json(&[
        "--rate",
        "0.5",
        "--duration",
        "3500ms",
        "--warmup",
        "0s",
        "--stall-timeout",
        "1s",
    ]);
    let s = summary(&doc);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(s["errors_by_code"], serde_json::json!({}), "{s:#}");
    assert_eq!(u(&s["calls"]), 1, "{s:#}");
    assert_eq!(u(&s["messages_received"]), 2, "{s:#}");
}

#[test]
fn csv_has_a_row_per_round_and_target_then_the_summaries() {
    let output = conform()
        .args([
            "bench",
            "--messages",
            "50",
            "--warmup",
            "0s",
            "--rounds",
            "2",
            "--format",
            "csv",
        ])
        .output()
        .expect("bench runs");
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    let header = &rows[0];
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows.iter().all(|r| r.len() == header.len()), "{text}");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(
        rows[1..]
            .iter()
            .map(|r| r[col("round")])
            .collect::<Vec<_>>(),
        ["1", "2", "all"]
    );
    assert_eq!(rows[3][col("messages_received")], "100", "{text}");
    for r in &rows[1..] {
        r[col("msgs_per_s_received")]
            .parse::<f64>()
            .expect("a number");
        r[col("latency_p99_us")].parse::<u64>().expect("a count");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_interleaves_rounds_and_gives_ratios() {
    let b = start_reference().await;
    let b_address = b.local_addr().to_string();
    let (code, doc) = tokio::task::spawn_blocking(move || {
        bench_json(&[
            "--compare",
            &b_address,
            "--rounds",
            "2",
            "--messages",
            "100",
            "--warmup",
            "0s",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{doc:#}");
    let order: Vec<&str> = doc["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["A", "B", "A", "B"]);
    assert_eq!(u(&doc["summary"][1]["messages_received"]), 200);
    assert!(
        doc["ratios"]["msgs_per_s_received"].as_f64().unwrap() > 0.0,
        "{doc:#}"
    );
    drop(b);
}

/// The targets of the rounds, in the order run.
fn round_order(doc: &Value) -> Vec<&str> {
    doc["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect()
}

#[test]
fn compare_flags_runs_a_second_configuration_on_the_same_reference() {
    let (code, doc) = bench_json(&[
        "--size",
        "64",
        "--compare-flags",
        "--size 512",
        "--messages",
        "100",
        "--warmup",
        "0s",
    ]);
    assert_eq!(code, 0, "{doc:#}");
    // Three rounds by default, as with --compare.
    assert_eq!(round_order(&doc), ["A", "B", "A", "B", "A", "B"]);
    let (a, b) = (&doc["summary"][0], &doc["summary"][1]);
    for s in [a, b] {
        assert_eq!(s["errors_by_code"], serde_json::json!({}), "{s:#}");
        assert_eq!(u(&s["messages_received"]), 300, "{s:#}");
    }
    // Each message: its size and the 5-byte prefix; B's is B's own size.
    assert_eq!(u(&a["bytes_sent"]), 300 * 69, "{a:#}");
    assert_eq!(u(&b["bytes_sent"]), 300 * 517, "{b:#}");
    assert_eq!(a["address"], b["address"], "B is A's own reference");
    let targets = &doc["config"]["targets"];
    assert_eq!(targets[1]["embedded_reference"], true);
    assert_eq!(targets[1]["flags"], serde_json::json!(["--size", "512"]));
    assert_eq!(targets[0]["flags"], serde_json::json!([]));
    assert_eq!(targets[1]["shape"]["size"], 512);
    assert_eq!(doc["config"]["size"], 64, "A's shape stays at the top");
    let bytes_ratio = doc["ratios"]["bytes_per_s_received"].as_f64().unwrap();
    assert!(bytes_ratio > 0.0, "{doc:#}");
    assert!(doc["ratios"]["msgs_per_s_received"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_flags_with_compare_runs_b_on_the_other_target() {
    let b = start_reference().await;
    let b_address = b.local_addr().to_string();
    let expect = b_address.clone();
    let (code, doc) = tokio::task::spawn_blocking(move || {
        bench_json(&[
            "--compare",
            &b_address,
            "--compare-flags",
            "--method /Greeter/SayHello --size 100",
            "--rounds",
            "2",
            "--messages",
            "50",
            "--warmup",
            "0s",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(round_order(&doc), ["A", "B", "A", "B"]);
    let b_summary = &doc["summary"][1];
    assert_eq!(b_summary["address"], expect.as_str());
    assert_eq!(b_summary["errors_by_code"], serde_json::json!({}));
    // Unary: one call a message, each request 100 bytes and its prefix.
    assert_eq!(u(&b_summary["calls"]), 100, "{b_summary:#}");
    assert_eq!(u(&b_summary["bytes_sent"]), 100 * 105, "{b_summary:#}");
    assert_eq!(
        u(&doc["summary"][0]["calls"]),
        2,
        "A: one bidi call a round"
    );
    let b_config = &doc["config"]["targets"][1];
    assert_eq!(b_config["embedded_reference"], false);
    assert_eq!(b_config["shape"]["mode"], "unary");
    assert_eq!(doc["config"]["mode"], "bidi");
    drop(b);
}

#[test]
fn compare_flags_are_named_in_the_human_report() {
    let output = conform()
        .args([
            "bench",
            "--messages",
            "20",
            "--warmup",
            "0s",
            "--rounds",
            "1",
        ])
        .args(["--compare-flags", "--compression gzip"])
        .output()
        .expect("bench runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let b_line = text.lines().find(|l| l.trim_start().starts_with("B = "));
    assert!(
        b_line.is_some_and(|l| l.ends_with(", --compression gzip")),
        "{text}"
    );
    assert!(text.contains("\nB/A: "), "{text}");
}

#[test]
fn bad_flags_are_usage_errors_that_name_the_flag() {
    for (args, says) in [
        (&["--connections", "0"][..], "--connections"),
        (&["--rate=-5"], "--rate"),
        (&["--rate=0"], "--rate"),
        (&["--duration", "1s", "--messages", "5"], "--messages"),
        (&["--duration", "soon"], "--duration"),
        (&["--method", "/Nope/Nothing"], "--method /Nope/Nothing"),
        (&["--target", "http://127.0.0.1:1"], "--target"),
        (
            &["--method", "/Greeter/ServerStream", "--rate", "10"],
            "--rate",
        ),
        (&["--request", "{not json"], "--request"),
        (&["--compression", "lz4"], "--compression lz4"),
        (&["--streams", "10000", "--window", "10000"], "in flight"),
        (&["--compare-flags", "--size 0"], "--size"),
        (&["--compare-flags", "--nope"], "--nope"),
        (
            &["--compare-flags", "--compression 'gzip"],
            "does not split",
        ),
        (
            &["--compare-flags", "--compression lz4"],
            "--compression lz4",
        ),
        (
            &["--compare-flags", "--method /Nope/Nothing"],
            "/Nope/Nothing",
        ),
        (&["--compare-flags", "--rounds 2"], "--rounds"),
        (&["--compare-flags", "--format csv"], "--format"),
        (&["--compare-flags", "--output out.json"], "--output"),
        (&["--compare-flags", "--compare 127.0.0.1:1"], "--compare "),
        (
            &["--compare-flags", "--compare-flags x"],
            "--compare-flags is",
        ),
        (&["--compare-flags", "--rate 0"], "--rate"),
    ] {
        let compare_flags = args.first() == Some(&"--compare-flags");
        let output = conform().arg("bench").args(args).output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should name {says}: {stderr}"
        );
        assert!(
            !compare_flags || stderr.contains("--compare-flags: "),
            "{args:?} should name --compare-flags: {stderr}"
        );
    }
}

#[test]
fn a_target_that_stops_answering_ends_the_run_with_a_clear_error() {
    let exe = assert_cmd::cargo::cargo_bin("grpc-conform");
    let (mut server, address) = serve_process();
    let bench = Command::new(&exe)
        .args([
            "bench",
            "--target",
            &address,
            "--duration",
            "60s",
            "--warmup",
            "0s",
        ])
        .args([
            "--stall-timeout",
            "2s",
            "--streams",
            "2",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bench starts");
    std::thread::sleep(Duration::from_millis(1500));
    let stop = |signal: &str| {
        Command::new("kill")
            .args([signal, &server.id().to_string()])
            .status()
            .expect("kill runs");
    };
    stop("-STOP");
    // The stall timeout bounds it; a minute is far past that.
    let mut bench = bench;
    let started = std::time::Instant::now();
    while bench.try_wait().expect("waits").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = bench.kill();
            stop("-CONT");
            let _ = server.kill();
            panic!("bench did not end within a minute of the target stopping");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = bench.wait_with_output().expect("bench ended");
    stop("-CONT");
    let _ = server.kill();
    let _ = server.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped answering"), "{stderr}");
    let doc: Value = serde_json::from_slice(&output.stdout).expect("the report is still written");
    assert!(
        u(&doc["summary"][0]["errors_by_code"]["stalled"]) >= 1,
        "{doc:#}"
    );
    assert_eq!(doc["stalled"], format!("A {address}"));
}
