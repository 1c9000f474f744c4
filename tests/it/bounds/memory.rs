//! A target that streams forever: one conversation records what its limits
//! allow and says how much more came; the whole corpus against it ends every
//! fixture within its time (diffing included) plus the judge's margin, keeps
//! each transcript and diff in the report within the report limit, and the
//! process stays under 100 MB of resident memory (its peak, VmHWM, read from
//! /proc while it runs; Linux only).

use super::hostile::{self, Hostility};
use grpc_conform::{
    drive::budget::MAX_MESSAGES,
    fixture,
    judge::{JUDGE_MARGIN, MAX_REPORTED_BYTES},
    model::{Event, DEFAULT_TIMEOUT_MS},
};
use std::{collections::BTreeMap, time::Duration};

/// The peak resident memory of the run, in bytes: what the per-conversation
/// budgets add up to with the default four conversations at once (a message
/// being read, at most 16 MiB; 1 MiB of recorded messages; 4 MiB of DATA in
/// the frame log; a 4 MiB request of the size fixtures, built and encoded)
/// plus the binary itself. Measured at 95 to 102 MB with the size fixtures in
/// the corpus; a run that is not bounded grows to gigabytes.
const MAX_PEAK_RSS: u64 = 160 * 1000 * 1000;
/// Times are scaled by this so the corpus takes about half a minute;
/// `STREAM_FOREVER_TIME_SCALE=1` runs it with the fixtures' own times.
const TIME_SCALE: f64 = 0.2;

/// VmHWM of process `pid`, in bytes, if it can be read.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test]
async fn a_target_that_streams_forever_cannot_take_memory_or_time() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("no /proc: peak memory cannot be read here");
        return;
    }
    let time_scale: f64 = std::env::var("STREAM_FOREVER_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(TIME_SCALE);
    let addr = hostile::start(Hostility::StreamForever).await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_grpc-conform"))
        .arg("--target")
        .arg(addr.to_string())
        .arg(format!("--time-scale={time_scale}"))
        .args(["--format", "json", "--output"])
        .arg(&report_path)
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let pid = child.id().expect("a running child");
    let started = std::time::Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(rss) = peak_rss(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the run did not end within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "every fixture fails against it");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let timeouts: BTreeMap<String, u64> = fixture::load_embedded()
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.fixture.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)))
        .collect();
    let results = report["results"].as_array().expect("results");
    assert!(results.len() > 100, "{} results", results.len());
    let mut slowest = (String::new(), 0);
    let mut late = Vec::new();
    for r in results {
        let name = r["name"].as_str().unwrap();
        let ms = r["duration_ms"].as_u64().unwrap();
        // Diffing and writing included (duration_ms ends after the judge).
        let allowed = (timeouts[name] as f64 * time_scale) as u64 + JUDGE_MARGIN.as_millis() as u64;
        if ms > allowed {
            late.push(format!("{name} took {ms} ms, allowed {allowed}"));
        }
        for field in ["transcript", "diff"] {
            let len = r[field].as_str().map_or(0, str::len);
            assert!(
                len <= MAX_REPORTED_BYTES + 200,
                "{name}: a {len}-byte {field} in the report"
            );
        }
        if ms > slowest.1 {
            slowest = (name.to_string(), ms);
        }
    }
    assert!(late.is_empty(), "{late:#?}");
    let report_bytes = std::fs::metadata(&report_path).unwrap().len();
    eprintln!(
        "streaming forever, time scale {time_scale}: {} fixtures in {took:?}, peak RSS {} MB, \
         report {} KB, slowest {} ({} ms)",
        results.len(),
        peak / 1_000_000,
        report_bytes / 1000,
        slowest.0,
        slowest.1
    );
    assert!(peak > 0, "VmHWM was read");
    assert!(peak < MAX_PEAK_RSS, "peak RSS {peak} bytes");
}

#[tokio::test]
async fn past_the_message_limit_the_transcript_says_how_much_more_came() {
    for wire in [false, true] {
        let text = super::floods::h2_fixture(wire);
        let (events, took) = super::floods::run(&text, Hostility::StreamForever).await;
        let received = events
            .iter()
            .filter(|e| matches!(e, Event::Received { .. }))
            .count() as u64;
        assert_eq!(received, MAX_MESSAGES, "wire {wire}");
        let what = events
            .iter()
            .find_map(|e| match e {
                Event::Failure { what } if what.contains("more messages") => Some(what),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no failure for the messages not recorded: {events:#?}"));
        assert!(what.starts_with("the target sent "), "{what}");
        assert!(
            events.iter().any(|e| matches!(e, Event::TimedOut { .. })),
            "a stream without end ends at the timeout: {:#?}",
            &events[events.len().saturating_sub(4)..]
        );
        if wire {
            let notes: Vec<&String> = events
                .iter()
                .filter_map(|e| match e {
                    Event::WireNote { what } => Some(what),
                    _ => None,
                })
                .collect();
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains("not shown") || n.contains("not kept")),
                "{notes:?}"
            );
            let messages = events
                .iter()
                .filter(|e| matches!(e, Event::WireMessage { .. }))
                .count() as u64;
            assert!(messages <= MAX_MESSAGES, "{messages} wire messages");
        }
        eprintln!("wire {wire}: {what} ({took:?})");
    }
}
