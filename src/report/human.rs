//! The human report: one line per fixture that did not simply pass, the
//! diff of each failure, and a summary. Colours only on a terminal.

use crate::run::{FixtureResult, RunReport, Verdict};
use std::fmt::Write;

/// ANSI styles, empty when colour is off.
struct Style {
    red: &'static str,
    green: &'static str,
    yellow: &'static str,
    dim: &'static str,
    reset: &'static str,
}

impl Style {
    fn new(color: bool) -> Style {
        if color {
            Style {
                red: "\x1b[31m",
                green: "\x1b[32m",
                yellow: "\x1b[33m",
                dim: "\x1b[2m",
                reset: "\x1b[0m",
            }
        } else {
            Style {
                red: "",
                green: "",
                yellow: "",
                dim: "",
                reset: "",
            }
        }
    }
}

/// One progress line for a finished fixture (`[3/50] PASS name`).
pub fn progress_line(result: &FixtureResult, done: usize, total: usize, color: bool) -> String {
    let s = Style::new(color);
    let (colour, word) = verdict_word(result.verdict, &s);
    format!("[{done}/{total}] {colour}{word}{} {}", s.reset, result.name)
}

/// The full report.
pub fn render(report: &RunReport, color: bool) -> String {
    let s = Style::new(color);
    let mut out = String::new();
    for r in &report.results {
        if r.verdict == Verdict::Pass {
            continue;
        }
        let (colour, word) = verdict_word(r.verdict, &s);
        let _ = writeln!(
            out,
            "{colour}{word}{} {} {}({}: {}){}",
            s.reset,
            r.name,
            s.dim,
            r.level.as_str(),
            r.rule,
            s.reset
        );
        let _ = writeln!(out, "  {}", r.description);
        if let Some(error) = &r.error {
            let _ = writeln!(out, "  error: {error}");
        }
        if let Some(reason) = &r.reason {
            let _ = writeln!(out, "  why: {reason}");
        }
        for (i, (variant, n)) in r.variants.iter().enumerate() {
            let _ = writeln!(out, "  variant {} ({n} of the runs):", i + 1);
            for line in variant.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        for check in &r.failed_checks {
            let _ = writeln!(out, "  {}✗ {check}{}", s.red, s.reset);
        }
        match (&r.diff, &r.expected_from, &r.transcript) {
            (Some(diff), Some(from), _) => {
                let _ = writeln!(out, "  transcript differs from the snapshot ({from}):");
                for line in diff.lines() {
                    let colour = match line.chars().next() {
                        Some('+') if !line.starts_with("+++") => s.green,
                        Some('-') if !line.starts_with("---") => s.red,
                        Some('@') => s.dim,
                        _ => "",
                    };
                    let _ = writeln!(out, "    {colour}{line}{}", s.reset);
                }
            }
            (None, None, Some(transcript)) if r.verdict != Verdict::Error => {
                let _ = writeln!(out, "  no snapshot; the transcript was:");
                for line in transcript.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            _ => {}
        }
        if let Some(path) = &r.new_snapshot {
            let _ = writeln!(out, "  wrote {}", path.display());
        }
    }
    let _ = writeln!(out, "target: {} ({})", report.target, report.transport);
    for line in report.capabilities.summary() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(
        out,
        "{} fixtures against {}: {} passed, {} failed, {} known failures, {} stale, {} errors, {} skipped, {} not applicable, {} unstable ({:.1} s)",
        report.results.len(),
        report.target,
        report.count(Verdict::Pass),
        report.count(Verdict::Fail),
        report.count(Verdict::KnownFailure),
        report.count(Verdict::Stale),
        report.count(Verdict::Error),
        report.count(Verdict::Skipped),
        report.count(Verdict::NotApplicable),
        report.count(Verdict::Unstable),
        report.duration_ms as f64 / 1000.0
    );
    out
}

/// Colour and word for a verdict.
fn verdict_word(v: Verdict, s: &Style) -> (&'static str, &'static str) {
    match v {
        Verdict::Pass => (s.green, "PASS"),
        Verdict::Fail => (s.red, "FAIL"),
        Verdict::KnownFailure => (s.yellow, "KNOWN-FAILURE"),
        Verdict::Stale => (s.yellow, "STALE (known-failing but passed)"),
        Verdict::Error => (s.red, "ERROR"),
        Verdict::Skipped => (s.dim, "SKIPPED"),
        Verdict::NotApplicable => (s.dim, "NOT-APPLICABLE"),
        Verdict::Unstable => (s.yellow, "UNSTABLE"),
    }
}
